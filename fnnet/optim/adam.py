"""``torch.optim.Adam`` as an optax ``GradientTransformation``."""

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
    scale_by_lr,
    scheduled,
    static_zero,
    step_float,
    unzip,
    zero_count,
)

__all__ = ["adam"]


class ScaleByTorchAdamState(NamedTuple):
    count: jax.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates
    max_exp_avg_sq: optax.Updates | None


def _scale_by_torch_adam(beta1: Hyper, beta2: Hyper, eps: Hyper, amsgrad: bool) -> Tx:
    """torch's Adam direction ``exp_avg / bias_correction1 / (sqrt(v) / sqrt(bias_correction2) + eps)``.

    Hand-written: optax's ``scale_by_amsgrad`` keeps the max of the bias-corrected second moment,
    torch the max of the raw one (divided by the current correction); one literal port covers both.
    The bias corrections use the current betas (``1 - beta1 ** t``), as torch's do when a scheduler
    changes ``betas`` between steps.
    """

    def init_fn(params):
        zeros = optax.tree.zeros_like(params)
        return ScaleByTorchAdamState(zero_count(), zeros, zeros, zeros if amsgrad else None)

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_increment(state.count)
        step = step_float(count)
        bias_correction1 = one_minus_pow(beta1, step)
        bias_correction2_sqrt = jnp.sqrt(one_minus_pow(beta2, step))

        def one(g, m, v, vmax):
            m = lerp(m, g, 1 - beta1)
            v = v * leaf(beta2, v) + leaf(1 - beta2, g) * (g * g)
            vmax = jnp.maximum(vmax, v) if amsgrad else v
            denom = jnp.sqrt(vmax) / leaf(bias_correction2_sqrt, g) + leaf(eps, g)
            return m / denom / leaf(bias_correction1, g), m, v, vmax

        maxes = state.max_exp_avg_sq if amsgrad else state.exp_avg_sq
        quads = jax.tree.map(one, updates, state.exp_avg, state.exp_avg_sq, maxes)
        out, exp_avg, exp_avg_sq, max_sq = unzip(updates, quads, 4)
        return out, ScaleByTorchAdamState(count, exp_avg, exp_avg_sq, max_sq if amsgrad else None)

    return optax.GradientTransformation(init_fn, update_fn)


def scale_by_torch_adam(beta1: Any, beta2: Any, eps: Hyper, amsgrad: bool) -> Tx:
    """The Adam direction, with a schedule allowed for either beta (evaluated at ``t - 1``)."""
    return scheduled(_scale_by_torch_adam, beta1=beta1, beta2=beta2, eps=eps, amsgrad=amsgrad)


def decoupled_decay(weight_decay: Hyper, what: str) -> Tx:
    """``direction + wd * param``; chained before ``-lr`` it is torch's ``param.mul_(1 - lr * wd)``."""
    if static_zero(weight_decay):
        return optax.identity()

    def update_fn(updates, state, params):
        return jax.tree.map(lambda u, p: u + leaf(weight_decay, p) * p, updates, params), state

    return needs_params(optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn), what)


def adam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Hyper = 1e-8,
    weight_decay: Hyper = 0,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> Tx:
    """``torch.optim.Adam`` (including ``amsgrad``, ``maximize`` and ``decoupled_weight_decay``).

    Differences from plain ``optax.adam``: ``weight_decay`` here is torch's coupled L2 term added to
    the gradient before the moments (optax.adam has none); ``amsgrad=True`` keeps the max of the raw
    second moment (``optax.amsgrad`` maxes the bias-corrected one); the arithmetic follows torch's
    order (``lerp`` moments, ``sqrt(v)/sqrt(bc2) + eps``). ``decoupled_weight_decay=True`` is AdamW.

    ``lr``, ``betas``, ``eps`` and ``weight_decay`` accept 0-d arrays (so everything works under
    ``optax.inject_hyperparams``); ``lr`` and either beta accept a schedule (step t uses its value at
    ``t - 1``), e.g. ``betas=(sched.momentum, 0.999)`` for a ``fnnet.optim.lr_scheduler.OneCycleLR``
    cycling beta1 as torch's does. torch's "betas must be either both floats or both Tensors" is not
    enforced: JAX arrays and floats mix freely. A weight decay given as an array needs ``params`` in
    ``update`` even when it is 0.
    """
    lr = check_lr(lr)
    eps = check_nonneg(eps, "eps", "epsilon value")
    beta1, beta2 = check_betas(betas)
    weight_decay = check_nonneg(weight_decay, "weight_decay", "weight_decay value")
    moments = scale_by_torch_adam(beta1, beta2, eps, amsgrad)
    if decoupled_weight_decay:
        # -lr * (direction + wd * param) == torch's param *= 1 - lr*wd followed by the Adam step
        decayed = decoupled_decay(weight_decay, "adamw(weight_decay != 0)")
        return optax.chain(maximize_tx(maximize), moments, decayed, scale_by_lr(lr))
    return optax.chain(
        maximize_tx(maximize),
        coupled_weight_decay(weight_decay, "adam"),
        moments,
        scale_by_lr(lr),
    )
