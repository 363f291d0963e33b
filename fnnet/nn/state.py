"""``state_dict`` / ``load_state_dict`` with torch's keys, for any module tree of ``fnnet.nn`` layers.

Keys are torch's: attribute paths joined by dots (``"0.weight"``, ``"fc1.bias"``,
``"layer1.0.bn1.running_mean"``), parameters (``nnx.Param``) and persistent buffers
(:class:`fnnet.nn.Buffer`) only, in torch's order: each module's own parameters, then its buffers,
then its children, in the order their attributes were first assigned. This holds for a user's own
``nnx.Module`` subclass too, as long as its attributes are named like the torch model's (a plain
``nnx.Module`` that is not an ``fnnet.nn.Module`` keeps Python's attribute order).

Values are copied bit for bit: torch tensors are read duck-typed (``.detach().cpu().numpy()``; fnnet
never imports torch), arrays with ``np.asarray``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from fnnet.nn.module import Buffer, _ordered_items

__all__ = ["IncompatibleKeys", "StateDictError", "load_state_dict", "named_parameters", "state_dict"]


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(..., strict=False)`` returns (torch's ``_IncompatibleKeys``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(ValueError, RuntimeError):
    """A state_dict that does not fit the module. A ``ValueError`` (fnnet's convention for bad input)
    and a ``RuntimeError`` (what torch raises), so code written for either catches it."""


def _named_variables(node: Any, prefix: str = "") -> Iterator[tuple[str, nnx.Variable]]:
    """(key, variable) of every Param and persistent Buffer below ``node``, in torch's order."""
    if isinstance(node, nnx.Module):
        items = _ordered_items(node)
        for kind in (nnx.Param, Buffer):
            for name, value in items:
                if isinstance(value, kind) and not (kind is Buffer and value.get_metadata().get("persistent") is False):
                    yield prefix + name, value
        for name, value in items:
            if not isinstance(value, nnx.Variable):
                yield from _named_variables(value, prefix + name + ".")
    elif isinstance(node, (list, tuple, nnx.List)):
        for i, value in enumerate(node):
            yield from _named_variables(value, f"{prefix}{i}.")
    elif isinstance(node, (dict, nnx.Dict)):
        for key, value in node.items():
            yield from _named_variables(value, f"{prefix}{key}.")


def _check_module(module: Any) -> None:
    if not isinstance(module, nnx.Module):
        raise TypeError(f"expected an nnx.Module (an fnnet.nn layer or model), got {type(module).__name__}")


def state_dict(module: nnx.Module) -> dict[str, np.ndarray]:
    """torch's ``module.state_dict()``: ``{key: NumPy copy}`` of parameters and persistent buffers.

    Load it into torch with ``net.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.
    """
    _check_module(module)
    return {key: np.array(var.get_value()) for key, var in _named_variables(module)}


def named_parameters(module: nnx.Module) -> dict[str, jax.Array]:
    """torch's ``dict(module.named_parameters())``: the ``nnx.Param`` arrays under torch's keys."""
    _check_module(module)
    return {key: var.get_value() for key, var in _named_variables(module) if isinstance(var, nnx.Param)}


def _to_numpy(value: Any, key: str) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch.Tensor, without importing torch
        value = value.detach().cpu()
        if hasattr(value, "resolve_conj"):
            value = value.resolve_conj().resolve_neg()
        return value.numpy()
    try:
        return np.asarray(value)
    except Exception as err:  # anything np.asarray cannot read
        raise StateDictError(f"state_dict[{key!r}] is not an array or tensor ({type(value).__name__})") from err


def _fit(key: str, value: np.ndarray, current: jax.Array) -> jax.Array:
    """``value`` as the new content of a variable holding ``current``: same shape; same dtype, except that
    an integer buffer takes integers of another width when every value fits (torch's int64
    ``num_batches_tracked`` into an int32 counter without x64)."""
    if tuple(value.shape) != tuple(current.shape):
        raise StateDictError(
            f"size mismatch for {key}: copying a param with shape {tuple(value.shape)} from checkpoint, "
            f"the shape in current model is {tuple(current.shape)}"
        )
    want = np.dtype(current.dtype)
    if value.dtype == want:
        # A copy: ``value`` may be a view of a torch tensor, and JAX on a CPU can adopt a NumPy buffer without
        # copying it, after which torch's in-place updates (a BatchNorm's counter, optimizer steps) would
        # change the loaded array (seen: num_batches_tracked read 1 after torch's forward, 1 run in ~50).
        return jnp.asarray(np.array(value, copy=True))
    if np.issubdtype(value.dtype, np.integer) and np.issubdtype(want, np.integer):
        info = np.iinfo(want)
        if value.size == 0 or (value.min() >= info.min and value.max() <= info.max):
            return jnp.asarray(value.astype(want))
    raise StateDictError(
        f"dtype mismatch for {key}: copying a param of dtype {value.dtype} (shape {tuple(value.shape)}) from "
        f"checkpoint, the dtype in current model is {want} (shape {tuple(current.shape)}); build the module "
        f"with dtype={value.dtype} (float64 needs jax_enable_x64) or cast the state_dict"
    )


def load_state_dict(module: nnx.Module, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
    """torch's ``module.load_state_dict(state_dict, strict=True)``, in place.

    ``state_dict`` maps torch's keys to torch tensors or arrays. A shape or dtype mismatch raises
    :class:`StateDictError` (a ``ValueError``) naming the key and both shapes (dtypes). With ``strict``,
    missing and unexpected keys raise it too, listed as torch lists them; without, they are returned.
    Nothing is changed unless every present key fits.
    """
    _check_module(module)
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
    variables = dict(_named_variables(module))
    missing = [k for k in variables if k not in state_dict]
    unexpected = [k for k in state_dict if k not in variables]
    errors = []  # torch's order: missing keys, unexpected keys, then each mismatch
    if strict and missing:
        errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
    if strict and unexpected:
        errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
    new = {}
    for key, variable in variables.items():
        if key in state_dict:
            try:
                new[key] = _fit(key, _to_numpy(state_dict[key], key), variable.get_value())
            except StateDictError as err:
                errors.append(str(err))
    if errors:
        raise StateDictError(f"Error(s) in loading state_dict for {type(module).__name__}:\n\t" + "\n\t".join(errors))
    for key, value in new.items():
        variables[key].set_value(value)
    return IncompatibleKeys(missing, unexpected)
