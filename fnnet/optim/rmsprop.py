"""``torch.optim.RMSprop`` as an optax ``GradientTransformation``."""

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
    check_lr,
    check_nonneg,
    coupled_weight_decay,
    leaf,
    lerp,
    maximize_tx,
    scale_by_lr,
    scheduled,
    unzip,
)

__all__ = ["rmsprop"]


class ScaleByTorchRMSpropState(NamedTuple):
    square_avg: optax.Updates
    grad_avg: optax.Updates
    momentum_buffer: optax.Updates


def _scale_by_torch_rmsprop(alpha: Hyper, eps: Hyper, momentum: Hyper, centered: bool) -> Tx:
    """torch's RMSprop direction, literally, for array or scheduled hyperparameters: ``g / (sqrt(v) +
    eps)`` (``v - mean(g)**2`` when centered), through ``buf = momentum * buf + that``. The buffer is
    always kept: with momentum 0 it equals the plain direction exactly, which is torch's other branch.
    """

    def init_fn(params):
        zeros = optax.tree.zeros_like(params)
        return ScaleByTorchRMSpropState(zeros, zeros, zeros)

    def update_fn(updates, state, params=None):
        del params

        def one(g, square_avg, grad_avg, buf):
            square_avg = square_avg * leaf(alpha, g) + leaf(1 - alpha, g) * (g * g)
            if centered:
                grad_avg = lerp(grad_avg, g, 1 - alpha)
                avg = jnp.sqrt(square_avg - grad_avg * grad_avg)
            else:
                avg = jnp.sqrt(square_avg)
            buf = buf * leaf(momentum, g) + g / (avg + leaf(eps, g))
            return buf, square_avg, grad_avg, buf

        quads = jax.tree.map(one, updates, *state)
        out, square_avg, grad_avg, buf = unzip(updates, quads, 4)
        return out, ScaleByTorchRMSpropState(square_avg, grad_avg, buf)

    return optax.GradientTransformation(init_fn, update_fn)


def rmsprop(
    lr: ScalarOrSchedule = 1e-2,
    alpha: Hyper = 0.99,
    eps: Hyper = 1e-8,
    weight_decay: Hyper = 0,
    momentum: Any = 0,
    centered: bool = False,
    *,
    maximize: bool = False,
) -> Tx:
    """``torch.optim.RMSprop``, built on ``optax.scale_by_rms``/``scale_by_stddev`` with
    ``eps_in_sqrt=False`` and ``optax.trace`` for momentum when the hyperparameters are Python floats
    (a literal port of torch's step for arrays and schedules, which optax's transforms do not take).

    Plain ``optax.rmsprop`` puts eps inside the square root by default (``eps_in_sqrt=True``), its decay
    defaults to 0.9 (torch's ``alpha``: 0.99), and it has no weight decay. ``momentum`` accepts a
    schedule (e.g. a ``CyclicLR``'s ``.momentum``; step t uses ``momentum(t - 1)``).
    """
    lr = check_lr(lr)
    eps = check_nonneg(eps, "eps", "epsilon value")
    momentum = check_nonneg(momentum, "momentum", "momentum value", schedule=True)
    weight_decay = check_nonneg(weight_decay, "weight_decay", "weight_decay value")
    alpha = check_nonneg(alpha, "alpha", "alpha value")
    if not all(isinstance(h, numbers.Real) for h in (alpha, eps, momentum)):
        direction = scheduled(_scale_by_torch_rmsprop, alpha=alpha, eps=eps, momentum=momentum, centered=centered)
        return optax.chain(
            maximize_tx(maximize), coupled_weight_decay(weight_decay, "rmsprop"), direction, scale_by_lr(lr)
        )
    if centered:
        scale = optax.scale_by_stddev(decay=alpha, eps=eps, eps_in_sqrt=False)
    else:
        scale = optax.scale_by_rms(decay=alpha, eps=eps, eps_in_sqrt=False)
    return optax.chain(
        maximize_tx(maximize),
        coupled_weight_decay(weight_decay, "rmsprop"),
        scale,
        optax.trace(decay=momentum) if momentum > 0 else optax.identity(),
        scale_by_lr(lr),
    )
