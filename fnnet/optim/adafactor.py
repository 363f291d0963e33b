"""``torch.optim.Adafactor`` as an optax ``GradientTransformation``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fnnet.optim._base import (
    Hyper,
    ScalarOrSchedule,
    Tx,
    check,
    hparam,
    leaf,
    lerp,
    maximize_tx,
    needs_params,
    py_max,
    py_min,
    scheduled,
    static_zero,
    step_float,
    unzip,
    zero_count,
)

__all__ = ["adafactor"]


class TorchAdafactorState(NamedTuple):
    """torch's per-parameter state: ``row_var``/``col_var`` for parameters of 2+ dims (a 0-d zero
    stands in for the other kind), ``variance`` for 0-d and 1-d ones."""

    count: jax.Array
    row_var: optax.Updates
    col_var: optax.Updates
    variance: optax.Updates


def _norm(x: jax.Array, axis: Any = None, keepdims: bool = False) -> jax.Array:
    return jnp.sqrt(jnp.sum(x * x, axis=axis, keepdims=keepdims))


def _torch_adafactor(
    lr: Hyper, beta2_decay: Hyper, eps1: Hyper | None, eps2: Hyper, d: Hyper, weight_decay: Hyper
) -> Tx:
    """torch's ``_single_tensor_adafactor``, the whole update (it reads lr and the parameters' RMS)."""

    def init_fn(params):
        if any(jnp.iscomplexobj(p) for p in jax.tree.leaves(params)):
            raise ValueError("Adafactor does not support complex parameters")

        def factored(p, axis):
            if p.ndim <= 1:
                return jnp.zeros([], p.dtype)
            shape = list(p.shape)
            shape[axis] = 1
            return jnp.zeros(shape, p.dtype)

        return TorchAdafactorState(
            zero_count(),
            jax.tree.map(lambda p: factored(p, -1), params),
            jax.tree.map(lambda p: factored(p, -2), params),
            jax.tree.map(lambda p: jnp.zeros_like(p) if p.ndim <= 1 else jnp.zeros([], p.dtype), params),
        )

    def update_fn(updates, state, params):
        count = optax.safe_increment(state.count)
        step = step_float(count)
        one_minus_beta2_t = step**beta2_decay
        rho_t = py_min(lr, 1 / (step**0.5))

        def one(g, p, row_var, col_var, variance):
            e1 = jnp.finfo(p.dtype).eps if eps1 is None else eps1
            alpha = py_max(eps2, _norm(p).astype(step.dtype) / (p.size**0.5)) * rho_t
            if g.ndim > 1:
                row_mean = jnp.square(_norm(g, -1, True)) / g.shape[-1]
                row_var = lerp(row_var, row_mean, one_minus_beta2_t)
                col_mean = jnp.square(_norm(g, -2, True)) / g.shape[-2]
                col_var = lerp(col_var, col_mean, one_minus_beta2_t)
                var_estimate = row_var * col_var  # torch: row_var @ col_var, an outer product
                var_estimate = var_estimate / jnp.maximum(jnp.mean(row_var, axis=-2, keepdims=True), leaf(e1, g))
            else:
                variance = lerp(variance, g * g, one_minus_beta2_t)
                var_estimate = variance
            update = jax.lax.rsqrt(jnp.maximum(var_estimate, leaf(e1 * e1, g))) * g
            denom = py_max(1.0, _norm(update).astype(step.dtype) / ((update.size**0.5) * d))
            new = p if static_zero(weight_decay) else p * leaf(1 - lr * weight_decay, p)
            new = new + leaf(-alpha / denom, p) * update
            return new - p, row_var, col_var, variance

        quints = jax.tree.map(one, updates, params, state.row_var, state.col_var, state.variance)
        out, row_var, col_var, variance = unzip(updates, quints, 4)
        return out, TorchAdafactorState(count, row_var, col_var, variance)

    return optax.GradientTransformation(init_fn, update_fn)


def adafactor(
    lr: ScalarOrSchedule = 1e-2,
    beta2_decay: Hyper = -0.8,
    eps: tuple[Any, Any] = (None, 1e-3),
    d: Hyper = 1.0,
    weight_decay: Hyper = 0.0,
    *,
    maximize: bool = False,
) -> Tx:
    """``torch.optim.Adafactor``: ``beta2_t = 1 - t ** beta2_decay``, relative step
    ``rho_t = min(lr, 1 / sqrt(t))`` times ``max(eps2, RMS(param))``, every parameter of 2+ dims
    factored over its last two dims, the update clipped to RMS ``d``, decoupled weight decay
    ``param *= 1 - lr * weight_decay``. ``eps=(None, 1e-3)``: ``eps1=None`` is the parameters' dtype
    machine epsilon.

    Plain ``optax.adafactor`` is another algorithm in these details: its decay is ``1 - t ** -0.8``
    but it factors only dims of at least ``min_dim_size_to_factor=128``, puts ``eps=1e-30`` *inside* the
    squared gradient (torch clamps the variance estimate at ``eps1**2`` and the row mean at ``eps1``),
    uses ``min(1e-2, 1/sqrt(t))`` with its own ``learning_rate`` multiplying on top (torch: ``lr`` is
    the cap of ``rho_t``), clips at ``clipping_threshold=1.0`` after the RMS scaling, and has
    ``momentum``/``weight_decay_rate`` of its own. ``update`` needs ``params`` (the step size is
    relative to their RMS). Every float hyperparameter accepts a 0-d array; ``lr`` a schedule.
    """
    lr = hparam(lr, "lr", schedule=True)
    check(lr, lambda v: v >= 0.0, lambda v: f"Learning rate should be >= 0 but is: {v}")
    beta2_decay = hparam(beta2_decay, "beta2_decay")
    check(beta2_decay, lambda v: v <= 0.0, lambda v: f"beta2_decay should be <= 0 but is: {v}")
    if isinstance(eps, str) or not hasattr(eps, "__len__") or len(eps) != 2:
        raise ValueError(f"eps must be a pair (eps1, eps2), got {eps!r}")
    eps1 = None if eps[0] is None else hparam(eps[0], "eps[0]")
    eps2 = hparam(eps[1], "eps[1]")
    if eps1 is not None:
        check(eps1, lambda v: v >= 0.0, lambda v: f"epsilon1 should be >= 0 but is: {v}")
    check(eps2, lambda v: v >= 0.0, lambda v: f"epsilon2 should be >= 0 but is: {v}")
    d = hparam(d, "d")
    check(d, lambda v: v >= 1.0, lambda v: f"Clipping threshold d should be >= 1 but is: {v}")
    weight_decay = hparam(weight_decay, "weight_decay")
    check(weight_decay, lambda v: v >= 0.0, lambda v: f"weight_decay should be >= 0 but is: {v}")
    update = scheduled(
        _torch_adafactor, lr=lr, beta2_decay=beta2_decay, eps1=eps1, eps2=eps2, d=d, weight_decay=weight_decay
    )
    return optax.chain(maximize_tx(maximize), needs_params(update, "adafactor"))
