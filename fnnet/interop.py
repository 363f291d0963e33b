"""torch ``state_dict`` of ``nn.Linear`` layers <-> Flax params of ``Dense`` layers, bit-exact.

torch stores a Linear weight as ``(out, in)`` and computes ``x @ W.T + b``; Flax stores the Dense
kernel as ``(in, out)`` and computes ``x @ K + b``, so ``K = W.T`` (a transpose, no arithmetic:
values are copied bit for bit). Biases are the same ``(out,)`` vector. torch is never imported
here: tensors are read duck-typed through ``.detach().cpu().numpy()`` (or anything ``np.asarray``
takes), and :func:`flax_to_torch` returns NumPy arrays (wrap them with ``torch.from_numpy`` before
``load_state_dict``). The dtype is kept; float64 weights need ``jax_enable_x64`` and raise a
``ValueError`` otherwise instead of being rounded to float32 silently.

Pairing layers: a Flax layer is a dict of params holding a ``kernel`` (and a ``bias`` unless the
layer was built with ``use_bias=False``); its name is the path to it joined with ``"."``. torch
layers are the ``<prefix>.weight`` / ``<prefix>.bias`` keys in ``state_dict`` order (``weight`` /
``bias`` alone for a bare ``nn.Linear``, prefix ``""``). Layers are
paired by name when the torch prefixes and Flax names are the same set, otherwise in order: the
Flax order is the template's dict order (``Module.init`` returns layers in call order; JAX tree
functions sort dict keys, so auto-named ``Dense_<n>`` layers are ordered by ``n``), or ``layers``
when given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["flax_to_torch", "flax_layers", "torch_to_flax"]

_AUTO_DENSE = re.compile(r"Dense_(\d+)")


def _to_numpy(value: Any, key: str) -> np.ndarray:
    """A torch tensor (duck-typed) or array-like as a NumPy array, without copying when possible."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as e:  # noqa: BLE001 - re-raised with the offending key named
        raise TypeError(f"state_dict[{key!r}] is not an array or tensor: {type(value).__name__}") from e


def _check_dtype(array: np.ndarray, key: str) -> None:
    if array.dtype.kind != "f":
        raise TypeError(f"{key} has dtype {array.dtype}; a Linear/Dense parameter must be floating point")
    if array.dtype == np.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            f"{key} is float64 but jax_enable_x64 is off; enable it with "
            "jax.config.update('jax_enable_x64', True) or convert the weights to float32 first "
            "(fnnet does not downcast silently)"
        )


def _unwrap(params: Mapping) -> tuple[Mapping, bool]:
    """``params`` without a ``{"params": ...}`` wrapper, and whether it had one."""
    if not isinstance(params, Mapping):
        raise TypeError(f"Flax params must be a dict, got {type(params).__name__}")
    if set(params) == {"params"}:
        return params["params"], True
    return params, False


def flax_layers(params: Mapping) -> list[tuple[str, ...]]:
    """The paths of the Dense layers (dicts holding a ``kernel``) in ``params``, in pairing order.

    Raises ``ValueError`` for a parameter that is not part of such a layer (no torch Linear matches it).
    """
    tree, _ = _unwrap(params)
    found: list[tuple[str, ...]] = []

    def walk(node: Mapping, path: tuple[str, ...]) -> None:
        if "kernel" in node:
            extra = sorted(set(node) - {"kernel", "bias"})
            if extra:
                raise ValueError(
                    f"Flax layer {'.'.join(path)!r} has params {extra} besides kernel/bias; "
                    "only Dense layers convert to torch Linear layers"
                )
            found.append(path)
            return
        for k, v in node.items():
            if not isinstance(v, Mapping):
                raise ValueError(
                    f"Flax param {'.'.join((*path, str(k)))!r} is not inside a Dense layer "
                    "(a dict with a 'kernel'); it has no torch Linear counterpart"
                )
            walk(v, (*path, str(k)))

    walk(tree, ())
    names = [p[-1] for p in found]
    if found and all(len(p) == 1 and _AUTO_DENSE.fullmatch(n) for p, n in zip(found, names)):
        found.sort(key=lambda p: int(_AUTO_DENSE.fullmatch(p[0]).group(1)))
    return found


def _torch_layers(state_dict: Mapping[str, Any]) -> list[str]:
    """Prefixes of the Linear layers in ``state_dict``, in order; rejects keys that are not one."""
    prefixes: list[str] = []
    for key in state_dict:
        prefix, _, leaf = str(key).rpartition(".")
        if leaf not in ("weight", "bias"):
            raise ValueError(f"state_dict key {key!r} is not '<prefix>.weight' or '<prefix>.bias' of an nn.Linear")
        if prefix not in prefixes:
            prefixes.append(prefix)
    for prefix in prefixes:
        if _key(prefix, "weight") not in state_dict:
            raise ValueError(f"state_dict has {_key(prefix, 'bias')!r} but no {_key(prefix, 'weight')!r}")
    return prefixes


def _key(prefix: str, leaf: str) -> str:
    """torch's state_dict key: ``prefix.leaf``, or just ``leaf`` for a bare ``nn.Linear``."""
    return f"{prefix}.{leaf}" if prefix else leaf


def _shape(leaf: Any) -> tuple[int, ...]:
    """Shape of a template leaf: an array or a ``jax.ShapeDtypeStruct`` from ``jax.eval_shape``."""
    shape = getattr(leaf, "shape", None)
    return tuple(shape) if shape is not None else tuple(np.shape(leaf))


def _get(tree: Mapping, path: tuple[str, ...]) -> Mapping:
    for k in path:
        tree = tree[k]
    return tree


def _resolve_layers(template: Mapping, layers: Sequence[str] | None) -> list[tuple[str, ...]]:
    found = flax_layers(template)
    if layers is None:
        return found
    by_name = {".".join(p): p for p in found}
    missing = [name for name in layers if name not in by_name]
    if missing:
        raise ValueError(f"layers {missing} are not Dense layers of the template; it has {list(by_name)}")
    if len(set(layers)) != len(layers) or len(layers) != len(found):
        raise ValueError(
            f"layers must name each of the template's Dense layers {list(by_name)} once, got {list(layers)}"
        )
    return [by_name[name] for name in layers]


def torch_to_flax(state_dict: Mapping[str, Any], template: Mapping, layers: Sequence[str] | None = None) -> dict:
    """Flax params shaped like ``template`` holding the weights of a torch ``state_dict``.

    ``template`` is e.g. ``model.init(key, x)`` or, without computing any weights,
    ``jax.eval_shape(model.init, key, x)`` (with or without the ``{"params": ...}`` wrapper, which
    the result keeps); only its structure and shapes are used. Raises
    ``ValueError`` naming the key and both shapes when a layer does not fit, and when the number of
    layers, their names or their biases differ.
    """
    tree, wrapped = _unwrap(template)
    prefixes = _torch_layers(state_dict)
    paths = _resolve_layers(template, layers)
    names = [".".join(p) for p in paths]
    if len(prefixes) != len(paths):
        raise ValueError(
            f"state_dict has {len(prefixes)} Linear layers {prefixes} but the Flax template has "
            f"{len(paths)} Dense layers {names}"
        )
    if layers is None and set(prefixes) == set(names):
        paths = [paths[names.index(p)] for p in prefixes]

    out = _deep_dict(tree)  # a fresh copy of the structure; converted layers replace their leaves
    for prefix, path in zip(prefixes, paths):
        name = ".".join(path)
        flax_layer = _get(tree, path)
        w_key = _key(prefix, "weight")
        weight = _to_numpy(state_dict[w_key], w_key)
        _check_dtype(weight, f"state_dict[{w_key!r}]")
        k_shape = _shape(flax_layer["kernel"])
        if weight.ndim != 2 or weight.shape[::-1] != k_shape:
            raise ValueError(
                f"state_dict[{w_key!r}] has shape {tuple(weight.shape)} but Flax layer {name!r} has "
                f"kernel shape {k_shape}, so it needs a torch weight of shape {k_shape[::-1]} (out, in)"
            )
        new_layer = {"kernel": jnp.asarray(weight.T)}
        b_key = _key(prefix, "bias")
        if ("bias" in flax_layer) != (b_key in state_dict):
            raise ValueError(
                f"Flax layer {name!r} {'has' if 'bias' in flax_layer else 'has no'} bias but "
                f"state_dict {'has' if b_key in state_dict else 'has no'} {b_key!r}"
            )
        if b_key in state_dict:
            bias = _to_numpy(state_dict[b_key], b_key)
            _check_dtype(bias, f"state_dict[{b_key!r}]")
            b_shape = _shape(flax_layer["bias"])
            if tuple(bias.shape) != b_shape:
                raise ValueError(
                    f"state_dict[{b_key!r}] has shape {tuple(bias.shape)} but Flax layer {name!r} "
                    f"has bias shape {b_shape}"
                )
            new_layer["bias"] = jnp.asarray(bias)
        _set(out, path, new_layer)
    return {"params": out} if wrapped else out


def _deep_dict(tree: Mapping) -> dict:
    return {k: _deep_dict(v) if isinstance(v, Mapping) else v for k, v in tree.items()}


def _set(tree: dict, path: tuple[str, ...], value: dict) -> None:
    for k in path[:-1]:
        tree = tree[k]
    tree[path[-1]] = value


def flax_to_torch(
    params: Mapping, prefixes: Sequence[str] | None = None, layers: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """A torch-style ``state_dict`` (``"<prefix>.weight"`` ``(out, in)``, ``"<prefix>.bias"``) of NumPy arrays.

    ``prefixes`` default to the Flax layer names; for ``nn.Sequential(Linear, ReLU, Linear)`` pass
    ``prefixes=["0", "2"]``; for a bare ``nn.Linear``, ``prefixes=[""]``. Load it with
    ``module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.
    """
    paths = _resolve_layers(params, layers)
    tree, _ = _unwrap(params)
    names = [".".join(p) for p in paths]
    if prefixes is None:
        prefixes = names
    prefixes = [str(p) for p in prefixes]
    if len(prefixes) != len(paths):
        raise ValueError(
            f"prefixes {prefixes} name {len(prefixes)} layers but the Flax params have "
            f"{len(paths)} Dense layers {names}"
        )
    if len(set(prefixes)) != len(prefixes):
        raise ValueError(f"prefixes must be distinct, got {prefixes}")
    state: dict[str, np.ndarray] = {}
    for prefix, path in zip(prefixes, paths):
        layer = _get(tree, path)
        kernel = np.asarray(layer["kernel"])
        if kernel.ndim != 2:
            raise ValueError(f"Flax layer {'.'.join(path)!r} kernel has shape {kernel.shape}; expected (in, out)")
        state[_key(prefix, "weight")] = np.ascontiguousarray(kernel.T)
        if "bias" in layer:
            state[_key(prefix, "bias")] = np.array(layer["bias"])
    return state
