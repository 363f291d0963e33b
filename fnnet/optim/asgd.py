"""``torch.optim.ASGD`` as an optax ``GradientTransformation``."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from fnnet.optim._base import (
    Hyper,
    ScalarOrSchedule,
    Tx,
    at,
    check_lr,
    check_nonneg,
    coupled_weight_decay,
    float_dtype,
    hparam,
    maximize_tx,
    needs_params,
    zero_count,
)

__all__ = ["asgd"]


class TorchASGDState(NamedTuple):
    """``ax`` is torch's averaged iterate (``optimizer.state[p]["ax"]``)."""

    count: jax.Array
    eta: jax.Array
    mu: jax.Array
    ax: optax.Params


def _torch_asgd(lr: ScalarOrSchedule, lambd: Hyper, alpha: Hyper, t0: Hyper) -> Tx:
    """torch's ASGD step (post-2024 form): ``p = p * (1 - lambd * eta) - eta * g``, then the average
    ``ax`` and the next ``eta = lr / (1 + lambd * lr * t) ** alpha``, ``mu = 1 / max(1, t - t0)``.
    Hand-written: optax has no ASGD. torch creates ``eta`` from the lr in force at the first step."""

    def init_fn(params):
        dtype = float_dtype(params)
        return TorchASGDState(
            zero_count(),
            jnp.asarray(at(lr, zero_count()), dtype),
            jnp.ones([], dtype),
            optax.tree.zeros_like(params),
        )

    def update_fn(updates, state, params):
        lr_t = jnp.asarray(at(lr, state.count), state.eta.dtype)
        eta = jnp.where(state.count == 0, lr_t, state.eta)
        mu = state.mu
        new_params = jax.tree.map(
            lambda p, g: p * (1 - lambd * eta).astype(p.dtype) - eta.astype(p.dtype) * g,
            params,
            updates,
        )
        out = jax.tree.map(lambda new, p: new - p, new_params, params)
        ax = jax.tree.map(
            lambda a, new: jnp.where(mu == 1, new, a + (new - a) * mu.astype(a.dtype)),
            state.ax,
            new_params,
        )
        step = state.count.astype(eta.dtype) + 1
        new_eta = (lr_t / (1 + lambd * lr_t * step) ** alpha).astype(eta.dtype)
        new_mu = (1 / jnp.maximum(1, step - t0)).astype(mu.dtype)
        return out, TorchASGDState(optax.safe_increment(state.count), new_eta, new_mu, ax)

    return optax.GradientTransformation(init_fn, update_fn)


def asgd(
    lr: ScalarOrSchedule = 1e-2,
    lambd: Hyper = 1e-4,
    alpha: Hyper = 0.75,
    t0: Hyper = 1e6,
    weight_decay: Hyper = 0,
    *,
    maximize: bool = False,
) -> Tx:
    """``torch.optim.ASGD`` (torch's current semantics: ``eta`` and ``mu`` are recomputed from the step
    count after each step, the lr in force being that step's). optax has no ASGD.

    The averaged parameters torch keeps in ``state[p]["ax"]`` are in the returned state's
    ``TorchASGDState.ax`` (the last element of the chain state). ``update`` needs ``params``.
    Every float hyperparameter accepts a 0-d array; ``lr`` also a schedule.
    """
    lr = check_lr(lr)
    lambd, alpha, t0 = hparam(lambd, "lambd"), hparam(alpha, "alpha"), hparam(t0, "t0")
    weight_decay = check_nonneg(weight_decay, "weight_decay", "weight_decay value")
    return optax.chain(
        maximize_tx(maximize),
        coupled_weight_decay(weight_decay, "asgd"),
        needs_params(_torch_asgd(lr, lambd, alpha, t0), "asgd"),
    )
