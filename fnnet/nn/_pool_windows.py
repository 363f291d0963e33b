"""The window machinery of ``fnnet.nn.functional``'s pooling (``_pooling``): compiled per configuration.

* Max pooling is a scan over each window's candidates, one strided slice per kernel offset (a gather of
  static positions for adaptive windows that do not tile the input), done separably: first along W in
  every row, then along H over the row maxima, which keeps torch's row-major choice. Each step is
  ``where(candidate > max or isnan(candidate), candidate, max)``, so the value is exact and the gradient
  goes to the one element torch picks: the first maximum in scan order, or the last NaN. Padding is
  ``-inf`` and never stays chosen (torch starts each window at its first in-range element).
  ``lax.reduce_window(max)`` gives the same values, but its gradient (XLA's select-and-scatter) differs
  under NaN and next to ``-inf`` padding, and XLA's CPU backend runs it ~20x slower (measured on
  (128, 32, 28, 28) float32, kernel 2).
* Sums (average pooling) likewise add strided slices of the zero-padded input (``lax.reduce_window(add)``
  is ~10x slower on XLA's CPU backend), then divide by torch's divisor, a static array.
* Every configuration (shapes and the static window parameters) is one ``jax.jit`` program, also when
  called eagerly; inside a caller's ``jit`` it inlines.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["adaptive_avg", "avg_pool", "index_dtype", "max_pool_adaptive", "max_pool_regular", "max_pool_select"]


def index_dtype() -> jnp.dtype:
    """torch's int64 indices; int32 unless x64 is on (JAX has no int64 without it)."""
    return jnp.dtype(jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)


# ---- max pooling -----------------------------------------------------------------------------------


def _bcast(a: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """A 1-d static array shaped to broadcast along ``axis`` of an ``ndim``-d array (same rank)."""
    shape = [1] * ndim
    shape[axis] = a.shape[0]
    return a.reshape(shape)


def _max_pass(
    values: jax.Array, carried: list[jax.Array], axis: int, positions: np.ndarray, prepare: Callable
) -> tuple[jax.Array, jax.Array, list[jax.Array]]:
    """One separable pass of torch's max scan along ``axis``.

    ``positions[t, o]`` is the input position of the ``t``-th candidate of window ``o`` (out of range:
    padding). ``prepare(array, fill)`` returns ``take(t)``, the ``t``-th candidates of every window. Returns
    the maximum, the chosen positions, and the ``carried`` arrays (indices of an earlier pass) at the choice.
    """
    ndim = values.ndim
    valid = (positions >= 0) & (positions < values.shape[axis])
    take = prepare(values, -jnp.inf)
    takes = [prepare(c, 0) for c in carried]
    # torch starts from the first window position >= 0 (its index even if the window holds no input).
    start = np.where(
        (positions >= 0).any(0), positions[np.argmax(positions >= 0, 0), np.arange(positions.shape[1])], positions[0]
    )
    m = take(0)
    idx = jnp.broadcast_to(_bcast(start, ndim, axis).astype(index_dtype()), m.shape)
    kept = [tk(0) for tk in takes]
    seen = valid[0].copy()
    for t in range(1, positions.shape[0]):
        cand = take(t)
        update = (cand > m) | jnp.isnan(cand)
        first = valid[t] & ~seen  # torch starts at the first in-range element: padding never stays chosen
        if first.any():
            update = update | _bcast(first, ndim, axis)
        seen |= valid[t]
        m = jnp.where(update, cand, m)
        idx = jnp.where(update, _bcast(positions[t], ndim, axis).astype(idx.dtype), idx)
        kept = [jnp.where(update, tk(t), k) for tk, k in zip(takes, kept)]
    return m, idx, kept


def _strided_take(axis: int, out: int, k: int, stride: int, pad: int, dilation: int) -> tuple[np.ndarray, Callable]:
    """Candidates of regular windows: one strided slice of the (padded) array per kernel offset."""
    positions = np.arange(out)[None, :] * stride - pad + np.arange(k)[:, None] * dilation

    def prepare(a: jax.Array, fill: Any) -> Callable[[int], jax.Array]:
        hi = max(0, int(positions.max()) + 1 - a.shape[axis])
        widths = [(0, 0)] * a.ndim
        widths[axis] = (pad, hi)
        padded = jnp.pad(a, widths, constant_values=fill) if pad or hi else a

        def take(t: int) -> jax.Array:
            return lax.slice_in_dim(padded, t * dilation, t * dilation + stride * (out - 1) + 1, stride, axis)

        return take

    return positions, prepare


def _adaptive_bounds(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's adaptive windows: ``start = floor(i * L / O)``, ``end = ceil((i + 1) * L / O)``."""
    i = np.arange(out)
    return (i * size) // out, ((i + 1) * size + out - 1) // out


def _adaptive_take(axis: int, size: int, out: int) -> tuple[np.ndarray, Callable]:
    """Candidates of adaptive windows: offset ``t`` of window ``i`` is ``min(start_i + t, end_i - 1)``.

    Repeating a window's last element never changes torch's choice (a repeat is not greater, and a
    repeated NaN is the same element). Windows that tile the axis are regular pooling (strided slices).
    """
    if size % out == 0:
        return _strided_take(axis, out, size // out, size // out, 0, 1)
    start, end = _adaptive_bounds(size, out)
    positions = np.minimum(start[None, :] + np.arange(int((end - start).max()))[:, None], end[None, :] - 1)

    def prepare(a: jax.Array, fill: Any) -> Callable[[int], jax.Array]:
        block = jnp.take(a, positions.T.reshape(-1), axis=axis, mode="clip")  # one gather (one scatter in the gradient)
        block = block.reshape(a.shape[:axis] + positions.T.shape + a.shape[axis + 1 :])
        return lambda t: lax.index_in_dim(block, t, axis + 1, keepdims=False)

    return positions, prepare


def _max_pool(
    x: jax.Array, takes: list[tuple[np.ndarray, Callable]], carried: tuple[jax.Array, ...] = ()
) -> tuple[jax.Array, jax.Array, list[jax.Array]]:
    """Max over windows of the trailing ``len(takes)`` dims (``takes`` for H then W): value, flat index,
    and each ``carried`` array (shaped as ``x``) at the chosen positions."""
    if len(takes) == 1:
        return _max_pass(x, list(carried), x.ndim - 1, *takes[0])
    (pos_h, take_h), (pos_w, take_w) = takes
    m, cols, kept = _max_pass(x, list(carried), x.ndim - 1, pos_w, take_w)  # along W in each row ...
    m, rows, (cols, *kept) = _max_pass(m, [cols, *kept], x.ndim - 2, pos_h, take_h)  # ... then the first row
    return m, rows * x.shape[-1] + cols, kept


def _regular_takes(ndim: int, out: tuple, k: tuple, s: tuple, p: tuple, d: tuple) -> list:
    nd = len(out)
    return [_strided_take(ndim - nd + i, out[i], k[i], s[i], p[i], d[i]) for i in range(nd)]


@partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def max_pool_regular(x: jax.Array, out: tuple, k: tuple, s: tuple, p: tuple, d: tuple) -> tuple[jax.Array, jax.Array]:
    return _max_pool(x, _regular_takes(x.ndim, out, k, s, p, d))[:2]


def max_pool_select(key: jax.Array, values: jax.Array, out: tuple, k: tuple, s: tuple, p: tuple, d: tuple) -> jax.Array:
    """``values`` at the position torch's max pooling of ``key`` picks in each regular window (for
    :func:`fnnet.nn._fused.batch_norm_relu_max_pool_stats`). Not jitted: it inlines in the caller's."""
    return _max_pool(key, _regular_takes(key.ndim, out, k, s, p, d), (values,))[2][0]


@partial(jax.jit, static_argnums=(1,))
def max_pool_adaptive(x: jax.Array, out: tuple) -> tuple[jax.Array, jax.Array]:
    nd = len(out)
    return _max_pool(x, [_adaptive_take(x.ndim - nd + i, x.shape[x.ndim - nd + i], out[i]) for i in range(nd)])[:2]


def _avg_divisor(size: int, out: int, k: int, stride: int, pad: int, count_include_pad: bool) -> np.ndarray:
    """torch's per-window divisor along one dim (the 2-d divisor is the product of two)."""
    start = np.arange(out) * stride - pad
    end = np.minimum(start + k, size + pad)  # the window inside the padded input
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)  # the window inside the input


def _strided_sum(x: jax.Array, axis: int, out: int, k: int, stride: int, pad: int) -> jax.Array:
    """Sums over regular windows along ``axis`` of the zero-padded array: one strided slice per kernel offset.

    (``lax.reduce_window(add)`` gives the same sums, but XLA's CPU backend runs it ~10x slower, and its
    gradient too.)
    """
    hi = max(0, (out - 1) * stride + k - x.shape[axis] - pad)  # ceil_mode's window part past the padding
    widths = [(0, 0)] * x.ndim
    widths[axis] = (pad, hi)
    padded = jnp.pad(x, widths) if pad or hi else x
    parts = [lax.slice_in_dim(padded, t, t + stride * (out - 1) + 1, stride, axis) for t in range(k)]
    return functools.reduce(operator.add, parts)


@partial(jax.jit, static_argnums=(1, 2, 3, 4, 5, 6))
def avg_pool(x: jax.Array, k, s, p, out, count_include_pad, divisor_override) -> jax.Array:
    nd = len(k)
    lead = x.ndim - nd
    total = x
    for i in reversed(range(nd)):  # along W, then along H
        total = _strided_sum(total, lead + i, out[i], k[i], s[i], p[i])
    if divisor_override is not None:
        return total / divisor_override
    div = np.ones((), np.int64)
    for i in range(nd):
        div = np.multiply.outer(div, _avg_divisor(x.shape[lead + i], out[i], k[i], s[i], p[i], count_include_pad))
    div = np.maximum(div, 1)  # an all-padding window (torch gives 0; its sum is 0 here)
    return total / div.reshape((1,) * lead + div.shape).astype(x.dtype)


def _window_sum(x: jax.Array, axis: int, out: int) -> jax.Array:
    """Sums over the adaptive windows along ``axis``: regular pooling when they tile it, else one gather of each
    window's (padded) positions, the padding masked with ``where`` (a 0/1 matrix product would turn an inf into
    NaN in every window of its row)."""
    size = x.shape[axis]
    if out == 0:
        return jnp.zeros(x.shape[:axis] + (0,) + x.shape[axis + 1 :], x.dtype)
    if size % out == 0:
        return _strided_sum(x, axis, out, size // out, size // out, 0)
    start, end = _adaptive_bounds(size, out)
    offsets = np.arange(int((end - start).max()))
    positions = np.minimum(start[:, None] + offsets, end[:, None] - 1)  # (out, k)
    inside = (start[:, None] + offsets) < end[:, None]
    block = jnp.take(x, positions.reshape(-1), axis=axis, mode="clip")
    block = block.reshape(x.shape[:axis] + positions.shape + x.shape[axis + 1 :])
    mask = inside.reshape((1,) * axis + inside.shape + (1,) * (x.ndim - axis - 1))
    return jnp.where(mask, block, jnp.zeros((), x.dtype)).sum(axis + 1)


@partial(jax.jit, static_argnums=(1,))
def adaptive_avg(x: jax.Array, out: tuple[int, ...]) -> jax.Array:
    nd = len(out)
    total, div = x, np.ones((), np.int64)
    for i in range(nd):
        axis = x.ndim - nd + i
        total = _window_sum(total, axis, out[i])
        start, end = _adaptive_bounds(x.shape[axis], out[i])
        div = np.multiply.outer(div, end - start)
    return total / div.reshape((1,) * (x.ndim - nd) + div.shape).astype(x.dtype)
