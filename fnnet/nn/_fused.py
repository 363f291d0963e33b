"""Training-mode ``BatchNorm -> ReLU -> MaxPool`` as one operation: what :class:`fnnet.nn.Sequential` runs
for such a run of children (torch has no such function; fnnet writes it because XLA cannot derive it).

ReLU and the batch norm's per-channel map ``v -> ((v - mean)·invstd)·weight + bias`` are monotone in each
channel (non-decreasing where ``weight >= 0``, non-increasing where it is negative), in floating point too:
each operation rounds a monotone function. So the maximum of a window of ``relu(batch_norm(x))`` is that
map applied to the window's maximum of ``sign(weight)·x``. The operation pools ``x`` first and
normalises only the pooled values: the same output bit for bit (the same operations on the same value),
with the batch statistics of all of ``x``. Its gradient is torch's: it goes to the element torch's max
scan picks, through the batch statistics to every element; ties in ``x`` go to the first element in
torch's scan order, and ``weight == 0`` (all of a window equal after the map) to the window's first
element, as torch picks them. Where rounding makes two *different* values of ``x`` equal after the map,
torch (on its own rounding of the map, which is not fnnet's) picks the first, fnnet the larger ``x``.

Neither the normalised activations nor ReLU's mask are written at the convolution's resolution in the
forward, nor read in the backward. Measured (``benchmarks/cnn_mini.py --keep-freed-memory``, the tree
before and after, alternated, 2 runs each, 2-core CPU): the strong CNN's jitted training step (conv
1->32->64, batch 128) 30.0-30.2 ms against 32.8-33.6 ms (XLA's temporaries stay ~65 MB a step).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from fnnet.nn._activations import _relu
from fnnet.nn._normalization import _affine, _channel_sum, _checked, _running
from fnnet.nn._pool_windows import max_pool_select

__all__ = ["batch_norm_relu_max_pool_stats"]


def batch_norm_relu_max_pool_stats(
    input: jax.typing.ArrayLike,
    running_mean: jax.Array | None,
    running_var: jax.Array | None,
    weight: jax.Array | None,
    bias: jax.Array | None,
    momentum: float | jax.Array,
    eps: float,
    window: tuple[tuple[int, ...], ...],
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    """``max_pool(relu(batch_norm(input, training=True)))``: ``(output, new_running_mean, new_running_var)``
    as :func:`fnnet.nn.functional.batch_norm_stats` gives them, in one operation (see the module docstring).

    ``window``: ``(out, kernel, stride, padding, dilation)`` over the trailing dims, from
    ``max_pool2d_window``/``max_pool1d_window``. Training statistics on one device (no ``axis_name``).
    """
    x, running_mean, running_var, weight, bias = _checked(
        input, running_mean, running_var, weight, bias, True, momentum, eps, 1
    )
    return _core(x, running_mean, running_var, weight, bias, momentum, eps=float(eps), window=window)


@partial(jax.jit, static_argnames=("eps", "window"))
def _core(x, running_mean, running_var, weight, bias, momentum, *, eps, window):
    channels = x.shape[1]
    xr = x.reshape(x.shape[0], channels, -1)  # the statistics as _batch_norm_core computes them
    count = xr.shape[0] * xr.shape[2]
    mean = _channel_sum(xr) / count
    # The variance's derivative in the mean is zero (the deviations sum to zero): stop_gradient spares
    # the backward that sum, the same gradient up to rounding.
    var = _channel_sum(jnp.square(xr - jax.lax.stop_gradient(mean)[None, :, None])) / count
    invstd = jax.lax.rsqrt(var + eps)
    shape = (1, channels) + (1,) * (x.ndim - 2)
    # sign(weight) orders each channel as the map does; 0 makes a window's values all tie (first wins).
    key = x if weight is None else x * jnp.sign(weight).astype(x.dtype).reshape(shape)
    chosen = max_pool_select(jax.lax.stop_gradient(key), x, *window)
    normalised = (chosen - mean.reshape(shape)) * invstd.reshape(shape)
    out = _relu(_affine(normalised, weight, bias, shape))
    return (out, *_running(running_mean, running_var, mean, var, momentum, count))
