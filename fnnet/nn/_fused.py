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
1->32->64, batch 128) 30.0-30.2 ms against 32.8-33.6 ms (XLA's temporaries stayed ~65 MB a step).

``Conv -> BatchNorm -> ReLU -> MaxPool`` (:func:`conv_batch_norm_relu_max_pool_stats`) goes further where the
convolution is cheap and the pooling tiles its output: one loop over batch chunks in each direction, the
convolution computed in "phase" order (each window's positions as separate slabs), so that the pooling and
its gradient are elementwise across slabs and the convolution's output is never held for the whole batch.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fnnet.nn._activations import _relu
from fnnet.nn._conv import (
    _add_bias,
    _bmm,
    _chunk_images,
    _chunk_input_grad,
    _conv_xla,
    _geometry_out,
    _map_batch,
    _map_sum_batch,
    _offsets,
    _weights,
)
from fnnet.nn._normalization import _affine, _channel_sum, _checked, _running
from fnnet.nn._pool_windows import max_pool_select

__all__ = [
    "batch_norm_relu_max_pool_stats",
    "cheap_to_recompute",
    "conv_batch_norm_relu_max_pool_stats",
    "conv_output_shape",
    "tiles",
]


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
    mean, var, count = _stats(x)
    # sign(weight) orders each channel as the map does; 0 makes a window's values all tie (first wins).
    chosen = max_pool_select(jax.lax.stop_gradient(_key(x, weight)), x, *window)
    return _tail(chosen, mean, var, weight, bias, running_mean, running_var, momentum, eps=eps, count=count)


def _stats(x):
    """The batch mean and biased variance per channel, as ``_batch_norm_core`` computes them, and their count."""
    xr = x.reshape(x.shape[0], x.shape[1], -1)
    count = xr.shape[0] * xr.shape[2]
    mean = _channel_sum(xr) / count
    # The variance's derivative in the mean is zero (the deviations sum to zero): stop_gradient spares
    # the backward that sum, the same gradient up to rounding.
    var = _channel_sum(jnp.square(xr - jax.lax.stop_gradient(mean)[None, :, None])) / count
    return mean, var, count


def _shape(x) -> tuple[int, ...]:
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _key(x, weight):
    return x if weight is None else x * jnp.sign(weight).astype(x.dtype).reshape(_shape(x))


def _tail(chosen, mean, var, weight, bias, running_mean, running_var, momentum, *, eps, count):
    """Normalise, scale, shift and ReLU the pooled values; update the running statistics."""
    normalised = _normalise(chosen, mean, var, eps)
    out = _relu(_affine(normalised, weight, bias, _shape(chosen)))
    return (out, *_running(running_mean, running_var, mean, var, momentum, count))


def _normalise(chosen, mean, var, eps):
    shape = _shape(chosen)
    return (chosen - mean.reshape(shape)) * jax.lax.rsqrt(var + eps).reshape(shape)


# ------------------------------------------------------------- Conv -> BatchNorm -> ReLU -> MaxPool
#: Most multiply-adds an output (``C / groups * prod(kernel)``) of a convolution that
#: :func:`conv_batch_norm_relu_max_pool_stats` takes: it computes the convolution twice (the forward and the
#: backward pass), which pays where the output is many times the input (the strong CNN's 1->32 3x3 layer:
#: 9). Measured on its 32->64 layer (288), keeping the output instead (spatial layout): 37 ms a step
#: against 30 ms without that fusion.
_RECOMPUTE_MAX_K = 16


def cheap_to_recompute(weight_shape) -> bool:
    """Whether a convolution with this weight shape is one :func:`conv_batch_norm_relu_max_pool_stats` takes."""
    return weight_shape[1] * math.prod(weight_shape[2:]) <= _RECOMPUTE_MAX_K


def tiles(window: tuple, size: tuple[int, ...]) -> bool:
    """Whether the pooling ``window`` (``(out, kernel, stride, padding, dilation)``) tiles the trailing
    dims ``size`` exactly, without overlap, padding or remainder: then each element lies in exactly one
    window, which :func:`conv_batch_norm_relu_max_pool_stats` needs."""
    out, k, s, p, d = window
    return all(kk == ss and pp == 0 and dd == 1 and o * kk == n for o, kk, ss, pp, dd, n in zip(out, k, s, p, d, size))


def conv_batch_norm_relu_max_pool_stats(
    input: jax.Array,
    conv_weight: jax.Array,
    conv_bias: jax.Array | None,
    geometry,
    running_mean: jax.Array | None,
    running_var: jax.Array | None,
    weight: jax.Array | None,
    bias: jax.Array | None,
    momentum: float | jax.Array,
    eps: float,
    window: tuple[tuple[int, ...], ...],
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    """``max_pool(relu(batch_norm(conv(input), training=True)))`` and the new running statistics, in one
    operation that never holds the convolution's output, nor its gradient, for the whole batch.

    ``input`` is batched and checked, ``geometry`` the convolution's (``fnnet.nn._conv._Geometry``), the
    convolution :func:`cheap_to_recompute`, the batch norm's arguments as
    :func:`batch_norm_relu_max_pool_stats` takes them, ``window`` one that :func:`tiles` the convolution's
    output. On the CPU (``jax.lax.platform_dependent``; elsewhere the unfused composition):

    * forward, one loop over batch chunks: the chunk's convolution in phase order (:func:`_phase_patches`),
      its statistics (merged across chunks by Chan et al.'s update: the batch statistics equal the unfused
      ones up to rounding) and its pooling choice across the phases (:func:`_phase_pool`: torch's scan
      order, ties to the first, NaN to the last); then the normalisation of the pooled values. It saves
      the input, the normalised values, the output and each window's choice (an int8 phase);
    * backward (``jax.custom_vjp``), one loop over batch chunks: the chunk's convolution again, the
      gradient at its output (the pooled gradient at the chosen phase, plus the two statistics' terms),
      straight into the convolution's weight and bias gradients (in phase order) and its input gradient
      (back in spatial order).

    The strong CNN's training step (batch 128, 2-core CPU): XLA's temporaries 66.6 -> 32.5 MB; inside a
    compiled epoch 30 -> 25 ms, jitted from Python 45 -> 29 ms (glibc's default allocator).
    """
    x, rm, rv, w_bn, b_bn = _checked(
        jax.ShapeDtypeStruct(conv_output_shape(input.shape, conv_weight.shape, geometry), input.dtype),
        running_mean, running_var, weight, bias, True, momentum, eps, 1,
    )  # fmt: skip
    static = (geometry, float(eps), window)
    operands = (input, conv_weight, conv_bias, rm, rv, w_bn, b_bn, momentum)

    def unfused(ops):
        x_, w_, cb_, rm_, rv_, wb_, bb_, m_ = ops
        y = _add_bias(_conv_xla(x_, w_, geometry), cb_, w_.shape[0], w_.shape)
        return _core(y, rm_, rv_, wb_, bb_, m_, eps=float(eps), window=window)

    return jax.lax.platform_dependent(operands, cpu=lambda ops: _block(static, *ops), default=unfused)


def conv_output_shape(x_shape, w_shape, geometry) -> tuple[int, ...]:
    """The shape of a batched convolution's output."""
    return (x_shape[0], w_shape[0]) + _geometry_out(x_shape, w_shape[2:], geometry)


def _phase_patches(x, kernel, g, window) -> jax.Array:
    """The patch matrix of one batch chunk with the output positions in "phase" order: ``(b, G, Cg * KK,
    P * L)``, columns first by the position inside the pooling window (``P``, row-major, torch's scan order),
    then by window (``L``). Phase ``t`` of window ``o`` is output position ``o * k + t`` (per dim), so the
    pooling is elementwise across the ``P`` slabs and its gradient needs no interleaving."""
    out, k = window[0], window[1]
    b, c = x.shape[:2]
    src = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0)] * 2 + [(lo, hi, 0) for lo, hi in g.padding])
    step = [kk * s for kk, s in zip(k, g.stride)]
    views = []
    for off in _offsets(kernel):  # rows: (channel, kernel offset), as _weights lays out the kernel
        for phase in _offsets(k):
            start = [t * s + o * d for t, s, o, d in zip(phase, g.stride, off, g.dilation)]
            limit = [st + sp * (m - 1) + 1 for st, sp, m in zip(start, step, out)]
            views.append(lax.slice(src, [0, 0] + start, [b, c] + limit, [1, 1] + step))
    rows = c // g.groups * math.prod(kernel)
    return jnp.stack(views, axis=2).reshape(b, g.groups, rows, math.prod(k) * math.prod(out))


def _phase_conv(patches, w, conv_bias, g, window) -> jax.Array:
    """The convolution from :func:`_phase_patches`: ``(b, O, P, L)``."""
    b, o = patches.shape[0], w.shape[0]
    y = _bmm(_weights(w, g, b, True), patches, 3, 2, 2).reshape(b, o, math.prod(window[1]), -1)
    return y if conv_bias is None else y + conv_bias.astype(y.dtype).reshape(1, o, 1, 1)


def _phase_pool(key, values):
    """torch's max pooling choice across the phases (axis 2, in scan order): ``(values at the choice, phase
    index as int8)``: the first maximum of ``key``, or its last NaN."""
    best, chosen = key[:, :, 0], values[:, :, 0]
    index = jnp.zeros(best.shape, jnp.int8)
    for t in range(1, key.shape[2]):
        candidate = key[:, :, t]
        update = (candidate > best) | jnp.isnan(candidate)
        best = jnp.where(update, candidate, best)
        chosen = jnp.where(update, values[:, :, t], chosen)
        index = jnp.where(update, jnp.int8(t), index)
    return chosen, index


def _image_bytes(x, w, g, y_shape) -> int:
    """Bytes an image of the larger of the patch matrix and the convolution's output."""
    return max(x.shape[1] // g.groups * math.prod(w.shape[2:]), w.shape[0]) * math.prod(y_shape[2:]) * x.dtype.itemsize


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _block(static, x, w, conv_bias, running_mean, running_var, weight, bias, momentum):
    return _block_fwd(static, x, w, conv_bias, running_mean, running_var, weight, bias, momentum)[0]


def _block_fwd(static, x, w, conv_bias, running_mean, running_var, weight, bias, momentum):
    g, eps, window = static
    y_shape = conv_output_shape(x.shape, w.shape, g)
    b = _chunk_images(x.shape[0], _image_bytes(x, w, g, y_shape))

    def chunk(xc):  # the chunk's convolution, its statistics, its pooling choice
        yp = _phase_conv(_phase_patches(xc, w.shape[2:], g, window), w, conv_bias, g, window)
        mean_c, var_c, count_c = _stats(yp)
        key = yp if weight is None else yp * jnp.sign(weight).astype(yp.dtype).reshape(1, -1, 1, 1)
        chosen_c, index_c = _phase_pool(key, yp)
        pooled = xc.shape[:1] + y_shape[1:2] + window[0]
        return mean_c[None], (var_c * count_c)[None], chosen_c.reshape(pooled), index_c.reshape(pooled)

    means, m2s, chosen, index = _map_batch(chunk, (x,), b)
    mean, var, count = _merge_stats(means, m2s, x.shape[0], b, math.prod(y_shape[2:]))

    def finish(chosen_c):
        normalised_c = _normalise(chosen_c, mean, var, eps)
        return normalised_c, _relu(_affine(normalised_c, weight, bias, _shape(chosen_c)))

    # A loop too, so that its outputs are written here: XLA would otherwise fuse their computation into
    # the backward's first use and keep the pooled values alive until then.
    normalised, out = _map_batch(finish, (chosen,), b)
    outs = (out, *_running(running_mean, running_var, mean, var, momentum, count))
    # The backward reads the normalised values and the output (ReLU's mask), not the pooled values: it
    # recomputes nothing that XLA could merge with the forward's intermediates and so keep alive.
    return outs, (x, w, conv_bias, normalised, out, index, mean, var, running_mean, running_var, weight, bias, momentum)


def _block_bwd(static, res, cts):
    g, eps, window = static
    x, w, conv_bias, normalised, out, index, mean, var, running_mean, running_var, weight, bias, momentum = res
    y_shape = conv_output_shape(x.shape, w.shape, g)
    count = y_shape[0] * math.prod(y_shape[2:])
    d_chosen, d_mean, d_var, d_weight, d_bias = _tail_pullback(cts[0], normalised, out, var, weight, bias, eps)
    _, pullback = jax.vjp(partial(_running, count=count), running_mean, running_var, mean, var, momentum)
    d_rm, d_rv, d_mean_running, d_var_running, d_momentum = pullback(tuple(cts[1:]))
    d_mean, d_var = d_mean + d_mean_running, d_var + d_var_running
    # d mean / dy = 1 / count; d var / dy = 2 (y - mean) / count (the mean's own term is zero, see _stats)
    shift, scale, centre = (
        (d_mean / count).reshape(1, -1, 1, 1),
        (2 * d_var / count).reshape(1, -1, 1, 1),
        mean.reshape(1, -1, 1, 1),
    )

    phases = np.arange(math.prod(window[1]), dtype=np.int8).reshape(1, 1, -1, 1)

    def chunk(xc, dc, ic):
        patches = _phase_patches(xc, w.shape[2:], g, window)
        yp = _phase_conv(patches, w, conv_bias, g, window)
        lead = dc.shape[:2] + (1, -1)
        picked = jnp.where(ic.reshape(lead) == phases, dc.reshape(lead), jnp.zeros((), dc.dtype))
        dy = picked + shift + scale * (yp - centre)  # (b, O, P, L)
        d_w = _bmm(dy.reshape(dy.shape[0], g.groups, -1, dy.shape[2] * dy.shape[3]), patches, 3, 3, 2)
        d_cb = None if conv_bias is None else dy.sum((0, 2, 3))
        return (d_w.sum(0).reshape(w.shape), d_cb), _chunk_input_grad(_unphase(dy, window), w, x.shape[2:], g)

    b = _chunk_images(x.shape[0], _image_bytes(x, w, g, y_shape))
    init = (jnp.zeros(w.shape, w.dtype), None if conv_bias is None else jnp.zeros_like(conv_bias))
    (d_w, d_cb), d_x = _map_sum_batch(chunk, (x, d_chosen, index), b, init)
    return d_x, d_w, d_cb, d_rm, d_rv, d_weight, d_bias, d_momentum


_block.defvjp(_block_fwd, _block_bwd)


def _tail_pullback(ct, normalised, out, var, weight, bias, eps):
    """The derivative of the block's output ``out = relu(normalised * weight + bias)``, ``normalised = (chosen
    - mean) * rsqrt(var + eps)``, in ``(chosen, mean, var, weight, bias)``, written out from the saved
    ``normalised`` and ``out``."""
    shape = _shape(normalised)
    invstd = jax.lax.rsqrt(var + eps)
    d_pre = jnp.where(out == 0, jnp.zeros((), ct.dtype), ct)  # _relu's derivative: out == 0 iff pre <= 0
    d_bias = None if bias is None else _sum_nc(d_pre)
    d_weight = None if weight is None else _sum_nc(d_pre * normalised)
    d_normalised = d_pre if weight is None else d_pre * weight.reshape(shape)
    d_chosen = d_normalised * invstd.reshape(shape)
    d_mean = -_sum_nc(d_chosen)
    d_var = _sum_nc(d_normalised * normalised) * (-0.5 * invstd * invstd)  # d normalised / d var
    return d_chosen, d_mean, d_var, d_weight, d_bias


def _sum_nc(a):
    return _channel_sum(a.reshape(a.shape[0], a.shape[1], -1))


def _merge_stats(means, m2s, n, b, positions: int):
    """The batch's mean and biased variance from each chunk's mean and sum of squared deviations (Chan et
    al.'s pairwise update, all chunks at once), and the count of values a channel."""
    count = n * positions
    if means.shape[0] == 1:  # one chunk: its own statistics
        return means[0], m2s[0] / count, count
    counts = np.full(means.shape[0], b * positions)
    counts[-1] = count - b * positions * (means.shape[0] - 1)  # the remainder chunk, if any
    weights = jnp.asarray(counts, means.dtype)[:, None]
    mean = jnp.sum(weights * means, axis=0) / count
    var = (jnp.sum(m2s, axis=0) + jnp.sum(weights * jnp.square(means - mean[None]), axis=0)) / count
    return mean, var, count


def _unphase(a: jax.Array, window) -> jax.Array:
    """``(b, O, P, L)`` in phase order (see :func:`_phase_patches`) back to ``(b, O, *size)``."""
    out, k = window[0], window[1]
    nd = len(out)
    a = a.reshape(a.shape[:2] + tuple(k) + tuple(out))  # (b, O, k_0, k_1, out_0, out_1)
    a = a.transpose((0, 1) + tuple(v for i in range(nd) for v in (2 + nd + i, 2 + i)))  # (b, O, out_0, k_0, ...)
    return a.reshape(a.shape[:2] + tuple(o * kk for o, kk in zip(out, k)))
