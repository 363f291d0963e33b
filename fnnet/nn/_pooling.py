"""``torch.nn.functional`` pooling: max, average and adaptive pooling over 1 or 2 trailing dimensions.

torch's semantics, edge cases included:

* output size ``floor((L + 2p - d(k-1) - 1) / s) + 1`` (``ceil`` with ``ceil_mode``, where the last window
  must start inside the input or the left padding), and torch's argument checks and messages;
* max pooling pads with ``-inf``, returns ``indices`` as torch does (flat positions ``h * W + w`` in each
  input plane) and sends the gradient of each output to ONE input, the one torch picks: the first maximum
  in the window's row-major scan, or the last NaN (a NaN wins, as in torch's ``val > max || isnan(val)``);
* ``avg_pool``'s divisor: with ``count_include_pad`` the window part inside the padded input (not the part
  beyond it that ``ceil_mode`` adds), without it the part inside the input, or ``divisor_override``;
* adaptive windows ``[floor(i L / O), ceil((i + 1) L / O))``; ``None`` in ``output_size`` keeps that size;
* unbatched inputs (``(C, L)``, ``(C, H, W)``) as well as batched ones.

How: see ``fnnet.nn._pool_windows`` (one compiled program per configuration).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnnet.nn._pool_windows import (
    adaptive_avg,
    avg_pool,
    index_dtype,
    max_pool_adaptive,
    max_pool_regular,
)

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool1d",
    "adaptive_max_pool1d_with_indices",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_with_indices",
    "avg_pool1d",
    "avg_pool2d",
    "max_pool1d",
    "max_pool1d_with_indices",
    "max_pool2d",
    "max_pool2d_with_indices",
]

Size = int | Sequence[int]


# ---- arguments and output sizes (torch's checks and messages) -----------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _ints(value: Any, fn: str, name: str) -> tuple[int, ...]:
    """An int or a sequence of ints as a tuple; anything else is torch's ``TypeError``."""
    if _is_int(value):
        return (int(value),)
    if isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        return tuple(int(v) for v in value)
    kind = type(value).__name__ if not isinstance(value, (tuple, list)) else "sequence with non-int elements"
    raise TypeError(f"{fn}(): argument '{name}' must be tuple of ints, not {kind}")


def _pair(value: Any, fn: str, name: str, message: str, *, optional: bool = False) -> tuple[int, int]:
    """torch's 2-d ``unpack``: an int or 1 or 2 ints (``optional``: also ``None``/``[]``, returned as ``()``)."""
    if optional and (value is None or (isinstance(value, (tuple, list)) and len(value) == 0)):
        return ()  # type: ignore[return-value]
    v = _ints(value, fn, name)
    if len(v) not in (1, 2):
        raise ValueError(f"{fn}: {name} {message}")
    return (v[0], v[-1])


def _single(value: Any, fn: str, name: str, message: str | None = None) -> int:
    """A 1-d argument: an int or a sequence of one int (``message`` is torch's text for other lengths)."""
    v = _ints(value, fn, name)
    if len(v) != 1:
        raise ValueError(
            message.format(len(v)) if message else f"{fn}() argument '{name}' should contain one int (got {len(v)})"
        )
    return v[0]


def _out_size(size: int, k: int, pad: int, stride: int, dilation: int, ceil_mode: bool) -> int:
    """torch's ``pooling_output_shape`` (with its checks): the number of windows along one dimension."""
    if stride == 0:
        raise ValueError("stride should not be zero")
    if pad < 0:
        raise ValueError(f"pad must be non-negative, but got pad: {pad}")
    if pad > ((k - 1) * dilation + 1) // 2:
        raise ValueError(
            f"pad should be at most half of effective kernel size, but got pad={pad}, kernel_size={k} and "
            f"dilation={dilation}"
        )
    out = (size + 2 * pad - dilation * (k - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window must start inside the input or the left padding
    return out


def _shape_check(x: jax.Array, k, s, p, d, out, fn: str) -> None:
    """torch's ``pool2d_shape_check`` on a (possibly unbatched) ``(..., C, H, W)`` input."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = k, s, p, d, out
    if kw <= 0 or kh <= 0:
        raise ValueError(f"kernel size should be greater than zero, but got kH: {kh} kW: {kw}")
    if sw <= 0 or sh <= 0:
        raise ValueError(f"stride should be greater than zero, but got dH: {sh} dW: {sw}")
    if dh <= 0 or dw <= 0:
        raise ValueError(f"dilation should be greater than zero, but got dilationH: {dh} dilationW: {dw}")
    shape = x.shape
    if not ((x.ndim == 3 and 0 not in shape) or (x.ndim == 4 and shape[1] != 0 and shape[2] != 0 and shape[3] != 0)):
        raise ValueError(
            f"Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but got: {list(shape)}"
        )
    if kw // 2 < pw or kh // 2 < ph:
        raise ValueError(
            "pad should be smaller than or equal to half of kernel size, but got "
            f"padW = {pw}, padH = {ph}, kW = {kw}, kH = {kh}"
        )
    if ow < 1 or oh < 1:
        c, h, w = shape[-3:]
        raise ValueError(
            f"Given input size: ({c}x{h}x{w}). Calculated output size: ({c}x{oh}x{ow}). Output size is too small"
        )


def _float_input(input: jax.typing.ArrayLike, fn: str) -> jax.Array:
    x = jnp.asarray(input)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{fn}: input must be a floating-point array, got dtype {x.dtype}")
    return x


# ---- max_pool1d / max_pool2d ---------------------------------------------------------------------


def max_pool2d_with_indices(
    input: jax.typing.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.max_pool2d_with_indices``: ``(output, indices)`` of :func:`max_pool2d`."""
    x = _float_input(input, "max_pool2d")
    return max_pool_regular(x, *max_pool2d_window(x, kernel_size, stride, padding, dilation, ceil_mode))


def max_pool2d_window(x: jax.Array, kernel_size, stride, padding, dilation, ceil_mode) -> tuple[tuple[int, ...], ...]:
    """:func:`max_pool2d`'s arguments checked as torch checks them: ``(out, kernel, stride, padding, dilation)``."""
    fn = "max_pool2d"
    k = _pair(kernel_size, fn, "kernel_size", "must either be a single int, or a tuple of two ints")
    s = _pair(stride, fn, "stride", "must either be omitted, a single int, or a tuple of two ints", optional=True)
    s = s or k
    p = _pair(padding, fn, "padding", "must either be a single int, or a tuple of two ints")
    d = _pair(dilation, fn, "dilation", "must be either a single int, or a tuple of two ints")
    if x.ndim not in (3, 4):
        raise ValueError("non-empty 3D or 4D (batch mode) tensor expected for input")
    out = tuple(_out_size(x.shape[-2 + i], k[i], p[i], s[i], d[i], ceil_mode) for i in range(2))
    _shape_check(x, k, s, p, d, out, fn)
    return out, k, s, p, d


def max_pool2d(
    input: jax.typing.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.max_pool2d``: the maximum over each (dilated) window of a ``(N, C, H, W)`` or
    ``(C, H, W)`` input, padded with ``-inf``.

    ``return_indices=True`` also returns each maximum's flat position ``h * W + w`` in its input plane
    (int64 under x64, else int32). The gradient goes to that one position, as torch's.
    """
    out, idx = max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return (out, idx) if return_indices else out


def max_pool1d_with_indices(
    input: jax.typing.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.max_pool1d_with_indices``: ``(output, indices)`` of :func:`max_pool1d`."""
    x = _float_input(input, "max_pool1d")
    return max_pool_regular(x, *max_pool1d_window(x, kernel_size, stride, padding, dilation, ceil_mode))


def max_pool1d_window(x: jax.Array, kernel_size, stride, padding, dilation, ceil_mode) -> tuple[tuple[int, ...], ...]:
    """:func:`max_pool1d`'s arguments checked as torch checks them: ``(out, kernel, stride, padding, dilation)``."""
    fn = "max_pool1d"
    tail = "tuple of ints of size 1 but got size {}"
    k = _single(kernel_size, fn, "kernel_size", f"max_pool1d() kernel_size must be an int, list of ints or {tail}")
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        s = k
    else:
        s = _single(stride, fn, "stride", f"max_pool1d() stride must be None, an int, list of ints, or {tail}")
    p = _single(padding, fn, "padding", f"max_pool1d() padding must be an int, list of ints, or {tail}")
    d = _single(dilation, fn, "dilation", f"max_pool1d() dilation must be an int, list of ints or {tail}")
    if not ((x.ndim == 2 and 0 not in x.shape) or (x.ndim == 3 and x.shape[1] != 0 and x.shape[2] != 0)):
        raise ValueError(
            "max_pool1d: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size for input, but got:"
            f"{list(x.shape)}"
        )
    for name, value, what in (("kernel_size", k, "greater than zero"), ("stride", s, "greater than zero")):
        if value <= 0:
            raise ValueError(f"max_pool1d() {name} must be {what}, but got {value}")
    if p < 0:
        raise ValueError(f"max_pool1d() padding must be non-negative, but got {p}")
    if p > k // 2:
        raise ValueError(
            f"max_pool1d() padding should be at most half of kernel size, but got padding={p} and kernel_size={k}"
        )
    if d <= 0:
        raise ValueError(f"max_pool1d() dilation must be greater than zero, but got {d}")
    out = _out_size(x.shape[-1], k, p, s, d, ceil_mode)
    if out < 1:
        raise ValueError(f"max_pool1d() Invalid computed output size: {out}")
    return (out,), (k,), (s,), (p,), (d,)


def max_pool1d(
    input: jax.typing.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.max_pool1d`` over the last dim of ``(N, C, L)`` or ``(C, L)`` (see :func:`max_pool2d`)."""
    out, idx = max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return (out, idx) if return_indices else out


# ---- avg_pool1d / avg_pool2d ---------------------------------------------------------------------


def avg_pool2d(
    input: jax.typing.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> jax.Array:
    """``torch.nn.functional.avg_pool2d``: window sums (``lax.reduce_window``) over torch's divisor.

    The divisor is ``divisor_override`` if given; else with ``count_include_pad`` the size of the window's
    part inside the zero-padded input (in ``ceil_mode`` the part beyond it is not counted), without it the
    size of its part inside the input.
    """
    fn = "avg_pool2d"
    x = _float_input(input, fn)
    k = _pair(kernel_size, fn, "kernel_size", "must either be a single int, or a tuple of two ints")
    s = _pair(stride, fn, "stride", "must either be omitted, a single int, or a tuple of two ints", optional=True)
    s = s or k
    p = _pair(padding, fn, "padding", "must either be a single int, or a tuple of two ints")
    if divisor_override is not None and divisor_override == 0:
        raise ValueError("divisor must be not zero")
    if x.ndim < 3:
        raise ValueError(
            f"Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but got: {list(x.shape)}"
        )
    out = tuple(_out_size(x.shape[-2 + i], k[i], p[i], s[i], 1, ceil_mode) for i in range(2))
    _shape_check(x, k, s, p, (1, 1), out, fn)
    return avg_pool(x, k, s, p, out, count_include_pad, divisor_override)


def avg_pool1d(
    input: jax.typing.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> jax.Array:
    """``torch.nn.functional.avg_pool1d`` over the last dim of ``(N, C, L)`` or ``(C, L)`` (see :func:`avg_pool2d`)."""
    fn = "avg_pool1d"
    x = _float_input(input, fn)
    k = _single(kernel_size, fn, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else _single(stride, fn, "stride")
    p = _single(padding, fn, "padding")
    if x.ndim not in (2, 3):
        raise ValueError(
            f"Expected 2 to 3 dimensions, but got {x.ndim}-dimensional tensor for argument #1 'self' (while checking "
            "arguments for avg_pool1d)"
        )
    out = _out_size(x.shape[-1], k, p, s, 1, ceil_mode)
    _shape_check(x[..., None, :], (1, k), (1, s), (0, p), (1, 1), (1, out), "avg_pool2d")
    return avg_pool(x, (k,), (s,), (p,), (out,), count_include_pad, None)


# ---- adaptive pooling ----------------------------------------------------------------------------


def _output_size(output_size: Any, shape: tuple[int, ...], nd: int, fn: str) -> tuple[int, ...]:
    """torch's ``output_size``: an int, or ``nd`` ints or ``None`` (``None`` keeps the input's size)."""
    if output_size is None or _is_int(output_size):
        values = (output_size,) * nd
    elif isinstance(output_size, (tuple, list)):
        values = tuple(output_size)
        if nd == 1 and len(values) != 1:
            raise ValueError(f"{fn}() argument 'output_size' should contain one int (got {len(values)})")
        if len(values) != nd:
            raise ValueError(f"{fn}: output_size must be {nd}")
    else:
        raise TypeError(f"{fn}(): argument 'output_size' must be tuple of ints, not {type(output_size).__name__}")
    sizes = []
    for v, n in zip(values, shape[-nd:]):
        if v is not None and not _is_int(v):
            raise TypeError(f"{fn}(): argument 'output_size' must be tuple of ints, not {type(v).__name__}")
        sizes.append(n if v is None else int(v))
    if any(o < 0 for o in sizes):
        raise ValueError(
            f"{fn}: elements of output_size must be greater than or equal to 0 but received "
            f"{{{', '.join(map(str, sizes))}}}"
        )
    return tuple(sizes)


def _adaptive_input(input: jax.typing.ArrayLike, nd: int, fn: str) -> jax.Array:
    x = _float_input(input, fn)
    if x.ndim not in (nd + 1, nd + 2):
        if nd == 1:
            raise ValueError(
                f"Expected 2 to 3 dimensions, but got {x.ndim}-dimensional tensor for argument #1 'self' (while "
                f"checking arguments for {fn})"
            )
        raise ValueError(f"{fn}(): Expected 3D or 4D tensor, but got: {list(x.shape)}")
    for i in range(1, x.ndim):
        if x.shape[i] == 0:
            raise ValueError(
                f"{fn}(): Expected input to have non-zero size for non-batch dimensions, but input has sizes "
                f"{list(x.shape)} with dimension {i} being empty"
            )
    return x


def adaptive_avg_pool2d(input: jax.typing.ArrayLike, output_size: Any) -> jax.Array:
    """``torch.nn.functional.adaptive_avg_pool2d``: means over windows ``[floor(i H / oH), ceil((i + 1) H / oH))``
    (and likewise along W); ``None`` in ``output_size`` keeps that size.
    """
    fn = "adaptive_avg_pool2d"
    x = _adaptive_input(input, 2, fn)
    return adaptive_avg(x, _output_size(output_size, x.shape, 2, fn))


def adaptive_avg_pool1d(input: jax.typing.ArrayLike, output_size: Any) -> jax.Array:
    """``torch.nn.functional.adaptive_avg_pool1d`` over the last dim of ``(N, C, L)`` or ``(C, L)``."""
    fn = "adaptive_avg_pool1d"
    x = _adaptive_input(input, 1, fn)
    if output_size is None:
        raise TypeError(f"{fn}(): argument 'output_size' must be tuple of ints, not NoneType")
    return adaptive_avg(x, _output_size(output_size, x.shape, 1, fn))


def adaptive_max_pool2d_with_indices(
    input: jax.typing.ArrayLike, output_size: Any, return_indices: bool = False
) -> tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.adaptive_max_pool2d_with_indices``: ``(output, indices)``."""
    fn = "adaptive_max_pool2d"
    x = _adaptive_input(input, 2, fn)
    out = _output_size(output_size, x.shape, 2, fn)
    if 0 in out:
        empty = x.shape[:-2] + out
        return jnp.zeros(empty, x.dtype), jnp.zeros(empty, index_dtype())
    return max_pool_adaptive(x, out)


def adaptive_max_pool2d(
    input: jax.typing.ArrayLike, output_size: Any, return_indices: bool = False
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.adaptive_max_pool2d``: maxima over torch's adaptive windows (see
    :func:`adaptive_avg_pool2d`), indices and gradient as :func:`max_pool2d`'s.
    """
    out, idx = adaptive_max_pool2d_with_indices(input, output_size)
    return (out, idx) if return_indices else out


def adaptive_max_pool1d_with_indices(
    input: jax.typing.ArrayLike, output_size: Any, return_indices: bool = False
) -> tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.adaptive_max_pool1d_with_indices``: ``(output, indices)``."""
    fn = "adaptive_max_pool1d"
    x = _adaptive_input(input, 1, fn)
    if output_size is None:
        raise TypeError(f"{fn}(): argument 'output_size' must be tuple of ints, not NoneType")
    (out,) = _output_size(output_size, x.shape, 1, fn)
    if out == 0:
        return jnp.zeros(x.shape[:-1] + (0,), x.dtype), jnp.zeros(x.shape[:-1] + (0,), index_dtype())
    return max_pool_adaptive(x, (out,))


def adaptive_max_pool1d(
    input: jax.typing.ArrayLike, output_size: Any, return_indices: bool = False
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.adaptive_max_pool1d`` over the last dim of ``(N, C, L)`` or ``(C, L)``."""
    out, idx = adaptive_max_pool1d_with_indices(input, output_size)
    return (out, idx) if return_indices else out
