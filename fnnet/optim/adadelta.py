"""``torch.optim.Adadelta`` as an optax ``GradientTransformation``."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from fnnet.optim._base import (
    Hyper,
    ScalarOrSchedule,
    Tx,
    check,
    check_lr,
    check_nonneg,
    coupled_weight_decay,
    hparam,
    leaf,
    maximize_tx,
    scale_by_lr,
    unzip,
)

__all__ = ["adadelta"]


class ScaleByTorchAdadeltaState(NamedTuple):
    square_avg: optax.Updates
    acc_delta: optax.Updates


def _scale_by_torch_adadelta(rho: Hyper, eps: Hyper) -> Tx:
    """torch's Adadelta direction, literally, for array hyperparameters (cast to each update's dtype;
    optax.scale_by_adadelta would promote float32 updates to an array's float64)."""

    def init_fn(params):
        zeros = optax.tree.zeros_like(params)
        return ScaleByTorchAdadeltaState(zeros, zeros)

    def update_fn(updates, state, params=None):
        del params

        def one(g, square_avg, acc_delta):
            square_avg = square_avg * leaf(rho, g) + leaf(1 - rho, g) * (g * g)
            std = jnp.sqrt(square_avg + leaf(eps, g))
            delta = jnp.sqrt(acc_delta + leaf(eps, g)) / std * g
            acc_delta = acc_delta * leaf(rho, g) + leaf(1 - rho, g) * (delta * delta)
            return delta, square_avg, acc_delta

        out, square_avg, acc_delta = unzip(updates, jax.tree.map(one, updates, *state), 3)
        return out, ScaleByTorchAdadeltaState(square_avg, acc_delta)

    return optax.GradientTransformation(init_fn, update_fn)


def adadelta(
    lr: ScalarOrSchedule = 1.0,
    rho: Hyper = 0.9,
    eps: Hyper = 1e-6,
    weight_decay: Hyper = 0,
    *,
    maximize: bool = False,
) -> Tx:
    """``torch.optim.Adadelta``; with Python floats its direction is exactly ``optax.scale_by_adadelta``,
    reused (with array hyperparameters a literal port of torch's step, see above).

    Plain ``optax.adadelta`` defaults to ``learning_rate=None``, which skips the ``-lr`` scaling and so
    *ascends*; torch's lr defaults to 1.0.
    """
    lr = check_lr(lr)
    rho = hparam(rho, "rho")
    check(rho, lambda v: 0.0 <= v <= 1.0, lambda v: f"Invalid rho value: {v}")
    eps = check_nonneg(eps, "eps", "epsilon value")
    weight_decay = check_nonneg(weight_decay, "weight_decay", "weight_decay value")
    if isinstance(rho, numbers.Real) and isinstance(eps, numbers.Real):
        direction = optax.scale_by_adadelta(rho=rho, eps=eps)
    else:
        direction = _scale_by_torch_adadelta(rho, eps)
    return optax.chain(
        maximize_tx(maximize),
        coupled_weight_decay(weight_decay, "adadelta"),
        direction,
        scale_by_lr(lr),
    )
