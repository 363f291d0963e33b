"""``torch.optim.SparseAdam`` as an optax ``GradientTransformation`` on dense JAX gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fnnet.optim._base import (
    Hyper,
    ScalarOrSchedule,
    Tx,
    check,
    check_betas,
    check_lr,
    hparam,
    leaf,
    maximize_tx,
    one_minus_pow,
    scale_by_lr,
    scheduled,
    step_float,
    unzip,
    zero_count,
)

__all__ = ["sparse_adam"]


class ScaleBySparseAdamState(NamedTuple):
    count: jax.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates


def _touched_rows(g: jax.Array) -> jax.Array:
    """Boolean of g's shape-rank: True on rows (slices along axis 0) with any nonzero entry."""
    if g.ndim == 0:
        return g != 0
    touched = jnp.any(g != 0, axis=tuple(range(1, g.ndim)))
    return touched.reshape((g.shape[0],) + (1,) * (g.ndim - 1))


def _reject_complex(params: Any) -> None:
    """torch's check in ``SparseAdam.__init__``; indices are [group, position] in tree-leaves order."""
    leaves = jax.tree.leaves(params)
    bad = [[0, i] for i, p in enumerate(leaves) if jnp.iscomplexobj(p)]
    if bad:
        raise ValueError(f"Complex params at indices {bad}: SparseAdam does not support complex parameters")


def _scale_by_sparse_adam(beta1: Hyper, beta2: Hyper, eps: Hyper) -> Tx:
    """torch's SparseAdam direction on touched rows; untouched rows keep their moments and get 0.
    Hand-written: optax has no SparseAdam."""

    def init_fn(params):
        _reject_complex(params)
        zeros = optax.tree.zeros_like(params)
        return ScaleBySparseAdamState(zero_count(), zeros, zeros)

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_increment(state.count)
        step = step_float(count)
        scale = jnp.sqrt(one_minus_pow(beta2, step)) / one_minus_pow(beta1, step)

        def one(g, m, v):
            rows = _touched_rows(g)
            m_update = (g - m) * leaf(1 - beta1, g)
            v_update = (g * g - v) * leaf(1 - beta2, g)
            numer = m_update + m
            denom = jnp.sqrt(v_update + v) + leaf(eps, g)
            direction = jnp.where(rows, numer / denom * leaf(scale, g), jnp.zeros_like(g))
            return direction, jnp.where(rows, m + m_update, m), jnp.where(rows, v + v_update, v)

        out, m, v = unzip(updates, jax.tree.map(one, updates, state.exp_avg, state.exp_avg_sq), 3)
        return out, ScaleBySparseAdamState(count, m, v)

    return optax.GradientTransformation(init_fn, update_fn)


def sparse_adam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Hyper = 1e-8,
    *,
    maximize: bool = False,
) -> Tx:
    """``torch.optim.SparseAdam`` on dense JAX gradients.

    torch updates only the rows (slices along axis 0) that a sparse gradient lists. JAX gradients are
    dense, so a row whose gradient is **all zero** counts as untouched: its moments and parameters stay
    as they are. (A row torch lists with an all-zero gradient would still have its moments decayed
    there; that case cannot be told apart here.) The step count advances every step, as torch's does.
    Note torch's SparseAdam adds eps to ``sqrt(v)`` *before* bias correction
    (``lr * sqrt(bc2) / bc1 * m / (sqrt(v) + eps)``), unlike Adam. optax has no SparseAdam.
    ``init`` raises torch's ``ValueError`` for complex parameters. Arrays for ``lr``, betas and
    ``eps``; schedules for ``lr`` and betas.
    """
    lr = check_lr(lr, strict=True)
    eps = hparam(eps, "eps")
    check(eps, lambda v: v > 0.0, lambda v: f"Invalid epsilon value: {v}")
    beta1, beta2 = check_betas(betas)
    return optax.chain(
        maximize_tx(maximize),
        scheduled(_scale_by_sparse_adam, beta1=beta1, beta2=beta2, eps=eps),
        scale_by_lr(lr),
    )
