"""``torch.optim.Adagrad`` as an optax ``GradientTransformation``."""

from __future__ import annotations

from typing import NamedTuple

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
    maximize_tx,
    scale_by_lr,
)

__all__ = ["adagrad"]


class ScaleByTorchAdagradState(NamedTuple):
    sum: optax.Updates


def _scale_by_torch_adagrad(initial_accumulator_value: Hyper, eps: Hyper) -> Tx:
    """torch's Adagrad direction ``g / (sqrt(sum) + eps)``; optax.scale_by_rss puts eps inside
    ``rsqrt(sum + eps)`` and zeroes entries whose sum is 0, so it is not reused."""

    def init_fn(params):
        return ScaleByTorchAdagradState(
            jax.tree.map(lambda p: jnp.full_like(p, leaf(initial_accumulator_value, p)), params)
        )

    def update_fn(updates, state, params=None):
        del params
        acc = jax.tree.map(lambda s, g: s + g * g, state.sum, updates)
        out = jax.tree.map(lambda g, s: g / (jnp.sqrt(s) + leaf(eps, g)), updates, acc)
        return out, ScaleByTorchAdagradState(acc)

    return optax.GradientTransformation(init_fn, update_fn)


def adagrad(
    lr: ScalarOrSchedule = 1e-2,
    lr_decay: Hyper = 0,
    weight_decay: Hyper = 0,
    initial_accumulator_value: Hyper = 0,
    eps: Hyper = 1e-10,
    *,
    maximize: bool = False,
) -> Tx:
    """``torch.optim.Adagrad``: step t uses ``lr / (1 + (t - 1) * lr_decay)``.

    Plain ``optax.adagrad`` starts its accumulator at 0.1 (torch: 0), uses ``eps=1e-7`` inside
    ``rsqrt(sum + eps)`` (torch: 1e-10 added to ``sqrt(sum)``) and has no ``lr_decay`` or weight decay.
    Every float hyperparameter accepts a 0-d array (``initial_accumulator_value`` is read once, by
    ``init``, as torch reads it when it creates the state); ``lr`` also a schedule.
    """
    lr = check_lr(lr)
    lr_decay = check_nonneg(lr_decay, "lr_decay", "lr_decay value")
    weight_decay = check_nonneg(weight_decay, "weight_decay", "weight_decay value")
    initial_accumulator_value = check_nonneg(
        initial_accumulator_value, "initial_accumulator_value", "initial_accumulator_value value"
    )
    eps = check_nonneg(eps, "eps", "epsilon value")
    return optax.chain(
        maximize_tx(maximize),
        coupled_weight_decay(weight_decay, "adagrad"),
        _scale_by_torch_adagrad(initial_accumulator_value, eps),
        scale_by_lr(lr, lr_decay),
    )
