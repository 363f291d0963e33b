"""Compare an ``fnnet.nn`` layer with its torch twin: the shared harness of the layer tests.

``compare_module(torch_layer, fnnet_layer, inputs, torch=torch)`` loads the torch layer's
``state_dict`` into the fnnet layer, then, in train and in eval mode, runs both on the same inputs
and compares: the outputs; the gradients of ``sum(output * cotangent)`` (a fixed random cotangent)
with respect to every floating input and every parameter; and every buffer after the forward pass
(running statistics updated in training mode). It returns the largest absolute and relative
differences seen, for the closing note's per-layer table.

``module_db_inputs(name, torch, dtype)`` gives the constructor and forward inputs of torch's own
``common_modules.module_db`` for a layer class (its edge cases), as plain Python/NumPy values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import fnnet.nn as fnn


def to_numpy(value: Any) -> Any:
    """torch tensors (nested in tuples/lists/dicts) as NumPy arrays; anything else unchanged."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)):
        return type(value)(to_numpy(v) for v in value)
    if isinstance(value, dict):
        return {k: to_numpy(v) for k, v in value.items()}
    return value


def _flat(tree: nnx.State) -> dict[str, np.ndarray]:
    return {".".join(map(str, path)): np.asarray(v.get_value()) for path, v in nnx.to_flat_state(tree)}


def _leaves(out: Any) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


class Diff:
    """Running maximum of absolute and relative differences."""

    def __init__(self) -> None:
        self.abs = 0.0
        self.rel = 0.0

    def check(self, name: str, actual: Any, expected: Any, rtol: float, atol: float) -> None:
        a, e = np.asarray(actual), np.asarray(expected)
        assert a.shape == e.shape, f"{name}: shape {a.shape} != torch's {e.shape}"
        if a.size == 0:
            return
        if np.issubdtype(e.dtype, np.floating):
            np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=name)
            finite = np.isfinite(e) & np.isfinite(a)
            d = np.abs(a[finite].astype(np.float64) - e[finite].astype(np.float64))
            if d.size:
                self.abs = max(self.abs, float(d.max()))
                scale = np.maximum(np.abs(e[finite].astype(np.float64)), 1e-300)
                self.rel = max(self.rel, float((d / scale).max()))
        else:
            np.testing.assert_array_equal(a, e, err_msg=name)


def compare_module(
    torch_layer: Any,
    fnnet_layer: nnx.Module,
    inputs: Sequence[Any],
    *,
    torch: Any,
    rtol: float,
    atol: float = 0.0,
    modes: Sequence[bool] = (True, False),
    grads: bool = True,
    load: bool = True,
    seed: int = 0,
) -> Diff:
    """Outputs, input and parameter gradients, and buffers of both layers agree (see the module doc).

    ``inputs`` are torch tensors or other values passed positionally to both layers (NumPy copies to
    fnnet). Each mode starts from the state both layers have on entry; the fnnet layer's own state is
    not changed (it runs as a pure function of ``nnx.split``). ``load=False`` skips loading torch's
    state_dict (when the caller loaded it already).
    """
    diff = Diff()
    if load:
        fnn.load_state_dict(fnnet_layer, torch_layer.state_dict())
    initial = {k: v.clone() for k, v in torch_layer.state_dict().items()}
    rng = np.random.default_rng(seed)
    for mode in modes:
        torch_layer.load_state_dict(initial)
        torch_layer.zero_grad(set_to_none=True)
        torch_layer.train(mode)
        fnnet_layer.train(mode)
        t_inputs = [_leaf(x, grads) for x in inputs]
        t_out = torch_layer(*t_inputs)
        outs = _leaves(t_out)
        cots = [rng.standard_normal(o.shape).astype(to_numpy(o).dtype) if o.is_floating_point() else None for o in outs]
        float_pos = [i for i, x in enumerate(t_inputs) if _is_tensor(x) and x.is_floating_point()]
        if grads and any(c is not None and o.requires_grad for o, c in zip(outs, cots)):
            total = sum(
                (o * torch.from_numpy(c)).sum() for o, c in zip(outs, cots) if c is not None and o.requires_grad
            )
            total.backward()

        graphdef, params, rest = nnx.split(fnnet_layer, nnx.Param, ...)
        j_inputs = [jnp.asarray(to_numpy(x)) if _is_tensor(x) else x for x in inputs]

        def objective(params, floats, graphdef=graphdef, rest=rest, j_inputs=j_inputs, cots=cots, float_pos=float_pos):
            args = list(j_inputs)
            for i, v in zip(float_pos, floats):
                args[i] = v
            model = nnx.merge(graphdef, params, rest, copy=True)  # fresh variables at this trace level
            out = model(*args)
            total = sum(jnp.sum(o * c) for o, c in zip(_leaves(out), cots) if c is not None)
            return total, (out, nnx.state(model, fnn.Buffer))

        floats = [j_inputs[i] for i in float_pos]
        (_, (j_out, buffers)), (p_grads, x_grads) = jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(
            params, floats
        )
        label = "train" if mode else "eval"
        for k, (a, e) in enumerate(zip(_leaves(j_out), outs)):
            diff.check(f"{label} output {k}", a, to_numpy(e), rtol, atol)
        t_state = {k: v.numpy() for k, v in torch_layer.state_dict().items()}
        for key, value in _flat(buffers).items():
            diff.check(f"{label} buffer {key}", value, t_state[key], rtol, atol)
        if not grads:
            continue
        for key, g in _flat(p_grads).items():
            t_param = dict(torch_layer.named_parameters())[key]
            expected = np.zeros_like(to_numpy(t_param)) if t_param.grad is None else to_numpy(t_param.grad)
            diff.check(f"{label} grad {key}", g, expected, rtol, atol)
        for i, g in zip(float_pos, x_grads):
            t_grad = t_inputs[i].grad
            expected = np.zeros(g.shape, np.asarray(g).dtype) if t_grad is None else to_numpy(t_grad)
            diff.check(f"{label} grad input {i}", g, expected, rtol, atol)
    return diff


def _leaf(x: Any, grads: bool) -> Any:
    """A fresh leaf copy of a torch tensor (requiring grad when floating), or ``x`` itself."""
    if not _is_tensor(x):
        return x
    return x.detach().clone().requires_grad_(grads and x.is_floating_point())


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "detach") and hasattr(x, "is_floating_point")


def module_db_inputs(name: str, torch: Any, dtype: Any, training: bool = True) -> list[tuple]:
    """``(ctor_args, ctor_kwargs, forward_args, desc)`` from torch's ``module_db`` for class ``name``.

    Constructor values stay as torch gives them (tensors converted to NumPy); forward inputs stay torch
    tensors (``compare_module`` converts them).
    """
    from torch.testing._internal.common_modules import module_db

    infos = [m for m in module_db if m.module_cls.__name__ == name]
    cases = []
    for info in infos:
        for inp in info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=False, training=training):
            if inp.forward_input is None or inp.forward_input.kwargs:
                continue
            cases.append(
                (
                    tuple(to_numpy(inp.constructor_input.args)),
                    to_numpy(dict(inp.constructor_input.kwargs)),
                    tuple(inp.forward_input.args),
                    inp.desc,
                )
            )
    return cases
