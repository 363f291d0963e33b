"""``torch.nn.functional.pad`` as a pure JAX function, with torch 2.13's semantics and errors.

``pad`` is torch's tuple: pairs from the LAST dimension backwards, ``(left, right, top, bottom, front,
back)``, the reverse of ``jnp.pad``'s per-axis list. A negative entry crops.

* ``constant``: any number of padded dimensions (up to the input's rank); ``lax.pad`` does it in one
  op, negative widths included.
* ``reflect`` / ``replicate`` / ``circular``: ``jnp.pad``'s ``reflect`` / ``edge`` / ``wrap`` modes
  are torch's (numpy's ``reflect`` does not repeat the edge, as torch's does not). Only the last 1, 2
  or 3 dimensions, of a batched or unbatched input (torch's rule: pad length 2 needs a 2-D or 3-D
  input, 4 a 3-D or 4-D one, 6 a 4-D or 5-D one). Negative widths: reflect and replicate pad the
  original and then crop, circular crops first and wraps the cropped core, as torch's kernels do.

Gradients are JAX's own through ``lax.pad``/``jnp.pad``/slices: a reflected or wrapped element's
gradient is the sum over its copies, as in torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["pad"]

Array = jax.Array

_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(input: jax.typing.ArrayLike, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Array:
    """torch.nn.functional.pad: pad (or, with negative widths, crop) the last ``len(pad) // 2`` dims.

    ``mode`` is ``"constant"`` (fill with ``value``, default 0), ``"reflect"``, ``"replicate"`` or
    ``"circular"``; the last three take no ``value`` (torch accepts ``None`` or 0) and pad at most the
    last 3 dimensions. Errors carry torch's messages.
    """
    x = jnp.asarray(input)
    widths = _widths(pad)
    if len(widths) % 2:
        raise ValueError("Padding length must be divisible by 2")
    if len(widths) // 2 > x.ndim:
        raise ValueError(
            "Padding length should be less than or equal to two times the input dimension but got padding "
            f"length {len(widths)} and input of dimension {x.ndim}"
        )
    if mode == "constant":
        return _constant(x, widths, 0 if value is None else value)
    if mode not in _MODES:
        raise ValueError(f"Unrecognised padding mode {mode}")
    if value is not None and value != 0:
        raise ValueError(f'Padding mode "{mode}" doesn\'t take in value argument')
    nd = len(widths) // 2
    if nd not in (1, 2, 3) or x.ndim not in (nd + 1, nd + 2):
        raise NotImplementedError(f"Padding size {len(widths)} is not supported for {x.ndim}D input tensor.")
    pairs = _pairs(x.ndim, widths)
    return _circular(x, pairs) if mode == "circular" else _reflect_or_replicate(x, pairs, nd, mode)


def _widths(pad: Sequence[int]) -> tuple[int, ...]:
    widths = tuple(pad)
    for i, w in enumerate(widths):
        if not isinstance(w, (int, np.integer)) or isinstance(w, bool):
            raise TypeError(
                f"pad(): argument 'pad' (position 2) must be tuple of ints, but found element of type "
                f"{type(w).__name__} at pos {i}"
            )
    return tuple(int(w) for w in widths)


def _pairs(ndim: int, widths: tuple[int, ...]) -> list[tuple[int, int]]:
    """torch's last-dim-first pairs -> one (low, high) per axis, zeros for the unpadded leading axes."""
    nd = len(widths) // 2
    tail = [(widths[2 * i], widths[2 * i + 1]) for i in range(nd)][::-1]
    return [(0, 0)] * (ndim - nd) + tail


def _constant(x: Array, widths: tuple[int, ...], value: float) -> Array:
    pairs = _pairs(x.ndim, widths)
    for axis, (lo, hi) in enumerate(pairs):
        if x.shape[axis] + lo + hi < 0:
            raise ValueError("narrow(): length must be non-negative.")
    # value cast to the input's dtype, as torch's fill does (2.7 -> 2 for an integer input).
    fill = jnp.asarray(value).astype(x.dtype)
    return lax.pad(x, fill, [(lo, hi, 0) for lo, hi in pairs])


def _crop(x: Array, pairs: list[tuple[int, int]]) -> Array:
    """Apply the negative widths: slice away ``-w`` elements on each side where ``w < 0``."""
    start = [max(-lo, 0) for lo, _ in pairs]
    limit = [n - max(-hi, 0) for n, (_, hi) in zip(x.shape, pairs)]
    return lax.slice(x, start, limit)


def _reflect_or_replicate(x: Array, pairs: list[tuple[int, int]], nd: int, mode: str) -> Array:
    checked = x.shape[1:] if x.ndim == nd + 2 else x.shape  # every dim but a batch dim must be non-empty
    if 0 in checked:
        raise ValueError(
            f"Expected {nd + 1}D or {nd + 2}D (batch mode) tensor with possibly 0 batch size and other non-zero "
            f"dimensions for input, but got: {list(x.shape)}"
        )
    for axis in range(x.ndim - nd, x.ndim):
        lo, hi = pairs[axis]
        if mode == "reflect" and (lo >= x.shape[axis] or hi >= x.shape[axis]):
            raise ValueError(
                f"Argument #{2 * (x.ndim - axis) + 2}: Padding size should be less than the corresponding input "
                f"dimension, but got: padding ({lo}, {hi}) at dimension {axis} of input {list(x.shape)}"
            )
        out = x.shape[axis] + lo + hi
        if nd == 1 and out < 1:  # torch's 1-D kernels alone reject an empty output
            raise ValueError(f"input (W: {x.shape[axis]}) is too small. Calculated output W: {out}")
        if out < 0:  # torch fails here with an unrelated internal message
            raise ValueError(f"padding ({lo}, {hi}) at dimension {axis} of input {list(x.shape)} leaves {out} elements")
    grown = jnp.pad(x, [(max(lo, 0), max(hi, 0)) for lo, hi in pairs], mode=_MODES[mode])
    return _crop(grown, pairs)


def _circular(x: Array, pairs: list[tuple[int, int]]) -> Array:
    for axis, (lo, hi) in enumerate(pairs):
        if lo > x.shape[axis] or hi > x.shape[axis]:
            raise ValueError("Padding value causes wrapping around more than once.")
        if x.shape[axis] + lo + hi < 0:
            raise ValueError("Negative padding value is resulting in an empty dimension")
    core = _crop(x, pairs)
    return jnp.pad(core, [(max(lo, 0), max(hi, 0)) for lo, hi in pairs], mode="wrap")
