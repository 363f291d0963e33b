"""``torch.optim.Adamax`` as an optax ``GradientTransformation``."""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fnnet.optim._base import (
    Hyper,
    ScalarOrSchedule,
    Tx,
    check_betas,
    check_lr,
    check_nonneg,
    coupled_weight_decay,
    leaf,
    lerp,
    maximize_tx,
    one_minus_pow,
    scale_by_lr,
    scheduled,
    step_float,
    unzip,
    zero_count,
)

__all__ = ["adamax"]


class ScaleByTorchAdamaxState(NamedTuple):
    count: jax.Array
    exp_avg: optax.Updates
    exp_inf: optax.Updates


def _scale_by_torch_adamax(beta1: Hyper, beta2: Hyper, eps: Hyper) -> Tx:
    """torch's Adamax direction, literally: ``exp_avg.lerp_(g, 1 - beta1)``,
    ``exp_inf = max(beta2 * exp_inf, |g| + eps)``, ``exp_avg / (1 - beta1 ** t) / exp_inf``; used for
    array or scheduled betas (optax.scale_by_adamax takes neither a schedule nor casts an array)."""

    def init_fn(params):
        zeros = optax.tree.zeros_like(params)
        return ScaleByTorchAdamaxState(zero_count(), zeros, zeros)

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_increment(state.count)
        bias_correction = one_minus_pow(beta1, step_float(count))

        def one(g, m, u):
            m = lerp(m, g, 1 - beta1)
            u = jnp.maximum(u * leaf(beta2, u), jnp.abs(g) + leaf(eps, g))
            return m / leaf(bias_correction, g) / u, m, u

        out, m, u = unzip(updates, jax.tree.map(one, updates, state.exp_avg, state.exp_inf), 3)
        return out, ScaleByTorchAdamaxState(count, m, u)

    return optax.GradientTransformation(init_fn, update_fn)


def adamax(
    lr: ScalarOrSchedule = 2e-3,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Hyper = 1e-8,
    weight_decay: Hyper = 0,
    *,
    maximize: bool = False,
) -> Tx:
    """``torch.optim.Adamax``; with Python floats its direction ``m / bias_correction1 / max(b2 * u,
    |g| + eps)`` is exactly ``optax.scale_by_adamax``, reused. Plain ``optax.adamax`` has no weight
    decay and no maximize. Arrays for every float hyperparameter; schedules for ``lr`` and betas.
    """
    lr = check_lr(lr)
    eps = check_nonneg(eps, "eps", "epsilon value")
    beta1, beta2 = check_betas(betas)
    weight_decay = check_nonneg(weight_decay, "weight_decay", "weight_decay value")
    if all(isinstance(h, numbers.Real) for h in (beta1, beta2, eps)):
        direction = optax.scale_by_adamax(b1=beta1, b2=beta2, eps=eps)
    else:
        direction = scheduled(_scale_by_torch_adamax, beta1=beta1, beta2=beta2, eps=eps)
    return optax.chain(
        maximize_tx(maximize),
        coupled_weight_decay(weight_decay, "adamax"),
        direction,
        scale_by_lr(lr),
    )
