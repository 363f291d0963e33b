"""``torch.optim.NAdam`` as an optax ``GradientTransformation``."""

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
    float_dtype,
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

__all__ = ["nadam"]


class TorchNAdamState(NamedTuple):
    """``mu_product`` is torch's ``state[p]["mu_product"]`` (in the params' widest float dtype, as torch
    keeps it in the default dtype)."""

    count: jax.Array
    mu_product: jax.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates


def _torch_nadam(
    lr: Hyper, beta1: Hyper, beta2: Hyper, eps: Hyper, weight_decay: Hyper, momentum_decay: Hyper, decoupled: bool
) -> Tx:
    """torch's ``_single_tensor_nadam``, the whole update (lr included, as torch's two ``addcdiv_``).

    Hand-written: ``optax.nadam`` has no ``momentum_decay`` schedule ``mu_t = beta1 * (1 - 0.5 *
    0.96 ** (t * momentum_decay))`` nor its running product."""

    def init_fn(params):
        zeros = optax.tree.zeros_like(params)
        return TorchNAdamState(zero_count(), jnp.ones([], float_dtype(params)), zeros, zeros)

    def update_fn(updates, state, params=None):
        count = optax.safe_increment(state.count)
        step = step_float(count)
        bias_correction2 = one_minus_pow(beta2, step)
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        mu_product = state.mu_product * jnp.asarray(mu, state.mu_product.dtype)
        mu_product_next = mu_product * mu_next
        value_g = -lr * (1.0 - mu) / (1.0 - mu_product)
        value_m = (-lr * mu_next) / (1.0 - mu_product_next)

        def one(g, m, v, p):
            m = lerp(m, g, 1 - beta1)
            v = v * leaf(beta2, v) + leaf(1 - beta2, g) * (g * g)
            denom = jnp.sqrt(v / leaf(bias_correction2, v)) + leaf(eps, g)
            out = leaf(value_g, g) * g / denom + leaf(value_m, g) * m / denom
            if decoupled and not static_zero(weight_decay):
                out = out - leaf(lr * weight_decay, p) * p  # torch: param.mul_(1 - lr * weight_decay) first
            return out, m, v

        ps = params if decoupled and not static_zero(weight_decay) else updates
        out, m, v = unzip(updates, jax.tree.map(one, updates, state.exp_avg, state.exp_avg_sq, ps), 3)
        return out, TorchNAdamState(count, mu_product, m, v)

    return optax.GradientTransformation(init_fn, update_fn)


def nadam(
    lr: ScalarOrSchedule = 2e-3,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Hyper = 1e-8,
    weight_decay: Hyper = 0,
    momentum_decay: Hyper = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> Tx:
    """``torch.optim.NAdam`` (including ``decoupled_weight_decay`` and ``maximize``).

    Plain ``optax.nadam`` differs: it has no ``momentum_decay`` (torch's momentum schedule
    ``mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))`` and the bias correction by the running
    product of the ``mu_t``; optax uses a constant ``b1`` and ``1 - b1 ** t``), and no weight decay. Every
    float hyperparameter accepts a 0-d array; ``lr`` and either beta a schedule (step t reads ``t - 1``).
    """
    lr = check_lr(lr)
    eps = check_nonneg(eps, "eps", "epsilon value")
    beta1, beta2 = check_betas(betas)
    weight_decay = check_nonneg(weight_decay, "weight_decay", "weight_decay value")
    momentum_decay = check_nonneg(momentum_decay, "momentum_decay", "momentum_decay value")
    update = scheduled(
        _torch_nadam,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        momentum_decay=momentum_decay,
        decoupled=decoupled_weight_decay,
    )
    if decoupled_weight_decay:
        if not static_zero(weight_decay):
            update = needs_params(update, "nadam(decoupled_weight_decay=True)")
        return optax.chain(maximize_tx(maximize), update)
    return optax.chain(maximize_tx(maximize), coupled_weight_decay(weight_decay, "nadam"), update)
