"""``torch.optim.SGD`` as an optax ``GradientTransformation``."""

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
    concrete,
    coupled_weight_decay,
    hparam,
    leaf,
    maximize_tx,
    scale_by_lr,
    scheduled,
    static_zero,
)

__all__ = ["sgd"]


class TorchMomentumState(NamedTuple):
    """``has_buffer``: torch's ``state["momentum_buffer"]`` exists (it is created on the first step with
    ``momentum != 0``); ``momentum_buffer``: its value (zeros before)."""

    has_buffer: jax.Array
    momentum_buffer: optax.Updates


def _torch_momentum(momentum: Hyper, dampening: Hyper, nesterov: bool) -> Tx:
    """torch's SGD momentum, array-safe: ``buf = g`` on the first momentum step, then
    ``buf = momentum * buf + (1 - dampening) * g``; the direction is ``buf`` (or ``g + momentum * buf``
    with nesterov), and plain ``g`` on a step whose momentum is 0 (the buffer then keeps its value, as
    torch's does). optax.trace has no dampening and starts its buffer at 0."""

    def init_fn(params):
        return TorchMomentumState(jnp.zeros([], bool), optax.tree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        active = jnp.asarray(momentum != 0)

        def one(g, buf):
            m = leaf(momentum, g)
            new = jnp.where(state.has_buffer, buf * m + leaf(1 - dampening, g) * g, g)
            new = jnp.where(active, new, buf)
            direction = g + m * new if nesterov else new
            return jnp.where(active, direction, g), new

        pairs = jax.tree.map(one, updates, state.momentum_buffer)
        treedef = jax.tree.structure(updates)
        out, bufs = jax.tree.transpose(treedef, jax.tree.structure((0, 0)), pairs)
        return out, TorchMomentumState(state.has_buffer | active, bufs)

    return optax.GradientTransformation(init_fn, update_fn)


def sgd(
    lr: ScalarOrSchedule = 1e-3,
    momentum: Any = 0,
    dampening: Hyper = 0,
    weight_decay: Hyper = 0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
) -> Tx:
    """``torch.optim.SGD``.

    Plain ``optax.sgd(lr, momentum, nesterov)`` equals this only with ``dampening=0`` and
    ``weight_decay=0``: optax has neither. With a Python ``momentum`` and ``dampening=0`` torch's buffer
    (``buf = g`` on step 1, then ``momentum * buf + g``) is exactly ``optax.trace``, which is reused;
    otherwise (dampening, or momentum given as an array or a schedule) a literal port of torch's
    branch keeps the buffer and a flag saying whether torch would have created it yet, so that a
    momentum set to or from 0 between steps behaves as in torch.

    ``lr``, ``momentum``, ``dampening`` and ``weight_decay`` accept 0-d arrays (and so work under
    ``optax.inject_hyperparams``); ``lr`` and ``momentum`` also accept a schedule, e.g. a
    ``fnnet.optim.lr_scheduler.OneCycleLR``'s ``.momentum``: step t uses ``momentum(t - 1)``, as torch's
    scheduler sets ``param_groups[0]["momentum"]`` after each step. A Python ``momentum=0`` builds no
    buffer at all; an array momentum always keeps one (its value chooses torch's branch at run time).
    """
    lr = check_lr(lr)
    momentum = check_nonneg(momentum, "momentum", "momentum value", schedule=True)
    dampening = hparam(dampening, "dampening")
    weight_decay = check_nonneg(weight_decay, "weight_decay", "weight_decay value")
    if nesterov:
        m, d = concrete(momentum), concrete(dampening)
        if m is not None and d is not None and (m <= 0 or d != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    if static_zero(momentum):
        trace = optax.identity()
    elif isinstance(momentum, numbers.Real) and static_zero(dampening):
        trace = optax.trace(decay=momentum, nesterov=nesterov)
    else:
        trace = scheduled(_torch_momentum, momentum=momentum, dampening=dampening, nesterov=nesterov)
    return optax.chain(
        maximize_tx(maximize),
        coupled_weight_decay(weight_decay, "sgd"),
        trace,
        scale_by_lr(lr),
    )
