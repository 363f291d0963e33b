"""``torch.optim.RAdam`` as an optax ``GradientTransformation``."""

from __future__ import annotations

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
    needs_params,
    one_minus_pow,
    scheduled,
    static_zero,
    step_float,
    unzip,
    zero_count,
)

__all__ = ["radam"]


class TorchRAdamState(NamedTuple):
    count: jax.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates


def _torch_radam(lr: Hyper, beta1: Hyper, beta2: Hyper, eps: Hyper, weight_decay: Hyper, decoupled: bool) -> Tx:
    """torch's ``_single_tensor_radam``, the whole update (lr included): rectified when ``rho_t > 5``,
    ``m / bc1 * lr * sqrt(bc2) / (sqrt(v) + eps) * rect``, else the plain ``m / bc1 * lr``.

    Hand-written: ``optax.radam`` rectifies when ``rho_t >= 5`` (its ``threshold``) and puts eps inside
    the bias-corrected denominator ``sqrt(v / bc2) + eps``; torch adds eps to ``sqrt(v)`` first."""

    def init_fn(params):
        zeros = optax.tree.zeros_like(params)
        return TorchRAdamState(zero_count(), zeros, zeros)

    def update_fn(updates, state, params=None):
        count = optax.safe_increment(state.count)
        step = step_float(count)
        bias_correction1 = one_minus_pow(beta1, step)
        bias_correction2 = one_minus_pow(beta2, step)
        rho_inf = 2 / (1 - beta2) - 1
        beta2_t = beta2**step if step.dtype == jnp.float64 else 1 - bias_correction2  # see one_minus_pow
        rho_t = rho_inf - 2 * step * beta2_t / bias_correction2
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        rectify = rho_t > 5.0

        def one(g, m, v, p):
            m = lerp(m, g, 1 - beta1)
            v = v * leaf(beta2, v) + leaf(1 - beta2, g) * (g * g)
            corrected = m / leaf(bias_correction1, g) * leaf(lr, g)
            adaptive = leaf(bias_correction2**0.5, g) / (jnp.sqrt(v) + leaf(eps, g))
            out = -jnp.where(rectify, corrected * adaptive * leaf(jnp.where(rectify, rect, 1.0), g), corrected)
            if decoupled and not static_zero(weight_decay):
                out = out - leaf(lr * weight_decay, p) * p  # torch: param.mul_(1 - lr * weight_decay) first
            return out, m, v

        ps = params if decoupled and not static_zero(weight_decay) else updates
        out, m, v = unzip(updates, jax.tree.map(one, updates, state.exp_avg, state.exp_avg_sq, ps), 3)
        return out, TorchRAdamState(count, m, v)

    return optax.GradientTransformation(init_fn, update_fn)


def radam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Hyper = 1e-8,
    weight_decay: Hyper = 0,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> Tx:
    """``torch.optim.RAdam`` (including ``decoupled_weight_decay`` and ``maximize``).

    Plain ``optax.radam`` differs in two places: it rectifies from ``rho_t >= 5`` (torch: ``> 5``) and
    adds eps after the bias correction, ``sqrt(v / bc2) + eps`` (torch: ``sqrt(bc2) / (sqrt(v) +
    eps)``); it has no weight decay. Every float hyperparameter accepts a 0-d array; ``lr`` and either
    beta a schedule (step t reads ``t - 1``).
    """
    lr = check_lr(lr)
    eps = check_nonneg(eps, "eps", "epsilon value")
    beta1, beta2 = check_betas(betas)
    weight_decay = check_nonneg(weight_decay, "weight_decay", "weight_decay value")
    update = scheduled(
        _torch_radam,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        decoupled=decoupled_weight_decay,
    )
    if decoupled_weight_decay:
        if not static_zero(weight_decay):
            update = needs_params(update, "radam(decoupled_weight_decay=True)")
        return optax.chain(maximize_tx(maximize), update)
    return optax.chain(maximize_tx(maximize), coupled_weight_decay(weight_decay, "radam"), update)
