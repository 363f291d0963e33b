"""``torch.optim.Rprop`` as an optax ``GradientTransformation``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fnnet.optim._base import ScalarOrSchedule, Tx, at, check_lr, concrete, hparam, leaf, maximize_tx, unzip, zero_count

__all__ = ["rprop"]


class TorchRpropState(NamedTuple):
    prev: optax.Updates
    step_size: optax.Updates


def _torch_rprop(lr: ScalarOrSchedule, etas: tuple[Any, Any], step_sizes: tuple[Any, Any]) -> Tx:
    """torch's Rprop step ``-sign(g) * step_size`` (the gradient zeroed where its sign flipped).
    Hand-written: optax.scale_by_rprop returns a one-step-stale update (zero on step 1)."""
    etaminus, etaplus = etas
    step_size_min, step_size_max = step_sizes

    def init_fn(params):
        lr0 = at(lr, zero_count())
        return TorchRpropState(
            optax.tree.zeros_like(params),
            jax.tree.map(lambda p: jnp.full_like(p, leaf(lr0, p)), params),
        )

    def update_fn(updates, state, params=None):
        del params

        def one(g, prev, size):
            sign = jnp.sign(g * prev)
            factor = jnp.where(sign > 0, leaf(etaplus, size), jnp.where(sign < 0, leaf(etaminus, size), 1.0))
            size = jnp.clip(size * factor.astype(size.dtype), leaf(step_size_min, size), leaf(step_size_max, size))
            g = jnp.where(sign < 0, jnp.zeros_like(g), g)
            return -jnp.sign(g) * size, g, size

        out, prev, size = unzip(updates, jax.tree.map(one, updates, state.prev, state.step_size), 3)
        return out, TorchRpropState(prev, size)

    return optax.GradientTransformation(init_fn, update_fn)


def rprop(
    lr: ScalarOrSchedule = 1e-2,
    etas: tuple[Any, Any] = (0.5, 1.2),
    step_sizes: tuple[Any, Any] = (1e-6, 50),
    *,
    maximize: bool = False,
) -> Tx:
    """``torch.optim.Rprop``. ``lr`` is only the initial per-element step size (a schedule is read
    once, at 0, as torch reads ``group["lr"]`` once, when it creates the state; so is an lr changed
    later through ``optax.inject_hyperparams``, as in torch). Plain ``optax.rprop`` applies each
    step's update one step late (its first update is zero; torch's is ``-lr * sign(g)``), so it is not
    built on. The entries of ``etas`` and ``step_sizes`` accept 0-d arrays too.
    """
    lr = check_lr(lr)
    etas = (hparam(etas[0], "etas[0]"), hparam(etas[1], "etas[1]"))
    step_sizes = (hparam(step_sizes[0], "step_sizes[0]"), hparam(step_sizes[1], "step_sizes[1]"))
    low, high = concrete(etas[0]), concrete(etas[1])
    if low is not None and high is not None and not 0.0 < low < 1.0 < high:
        raise ValueError(f"Invalid eta values: {low}, {high}")
    return optax.chain(maximize_tx(maximize), _torch_rprop(lr, etas, step_sizes))
