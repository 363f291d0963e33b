"""torch.nn.functional's convolutions (``conv1d``, ``conv2d``, ``conv_transpose1d``, ``conv_transpose2d``).

torch's layouts, arguments, output sizes and error messages: input ``(N, C, *S)`` or unbatched
``(C, *S)``, weight ``(O, C / groups, *K)`` (transposed: ``(C, O / groups, *K)``), ``padding`` an int,
a tuple, ``"valid"`` or ``"same"`` (``"same"`` with an even kernel pads one more on the right, as torch
does).

Two lowerings compute the same function; ``jax.lax.platform_dependent`` picks one per backend inside
ONE traced program, so a ``jax.export`` artifact for ``("cpu", "cuda")`` carries both:

* any non-CPU backend gets XLA's own ``lax.conv_general_dilated`` (cuDNN on a GPU);
* the CPU gets matrix products (``_conv_mm``, ``_conv_transpose_mm``). XLA's CPU convolutions are slow,
  and very slow inside a ``lax.scan`` (jax-ml/jax#12868): issue 14's strong-CNN training step (batch 128,
  convs 1->32->64) takes 485-495 ms inside a scan with XLA's convolution, 20-30 ms with this one
  (``benchmarks/conv_probe.py``, 2 cores).

``impl="matmul"`` or ``"xla"`` on the private ``_conv``/``_conv_transpose`` forces one (tests, benchmarks).

The CPU lowering. For each kernel offset, the strided slice of the zero-padded input under it (a "view");
the views stacked into a patch matrix with one row per (input channel, offset) and one column per (image,
output position); the output is ``W (O, C*K) @ patches`` in one ``dot_general`` (groups are a batch axis).
A ``jax.custom_vjp`` makes the backward two more products: the weight gradient ``dY @ patches^T`` (the
patches recomputed from the saved input) and the input gradient ``W^T @ dY``, whose slab per offset is
padded back into place (interior padding undoes the stride) and summed ("col2im"). The transposed
convolution IS that input gradient, so it reuses it, with the forward convolution as its own input
gradient. Choices, each measured on the 2-core CPU of issue 14 (numbers next to the code):

* the batch is processed in chunks of ~``_CHUNK_BYTES`` of patches inside a ``lax.scan``: the patch
  matrix and the products stay in cache, and a jitted step allocates (and page-faults: ~0.4 ms per MB
  on that VM) a few MB of temporaries instead of the whole batch's patch matrix (9x the input);
* the matrices are laid out per image, ``(b, G, ., positions)``, batched products, no transposes at all,
  when a patch column is short (``_per_image``); else channels-major, ``(G, ., b * positions)``, one
  long product per group and a transpose of the input and output chunks;
* rejected, CPU time of the whole step: the channels-last "im2col" (``(positions, C*K)`` rows) +17%
  (its col2im alone +43%), the input gradient as a convolution of ``dY`` with the flipped kernel +8-13%;
  of the forward product: a gather building the patches +27%.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]

Array = jax.Array
IntOrTuple = int | Sequence[int]
Pairs = tuple[tuple[int, int], ...]
_IMPLS = ("auto", "matmul", "xla")


# ------------------------------------------------------------------------------------ public API
def conv1d(input, weight, bias=None, stride: IntOrTuple = 1, padding: IntOrTuple | str = 0, dilation=1, groups=1):
    """torch.nn.functional.conv1d: ``(N, C, L)`` or ``(C, L)`` input, ``(O, C / groups, K)`` weight."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, nd=1, name="conv1d")


def conv2d(input, weight, bias=None, stride: IntOrTuple = 1, padding: IntOrTuple | str = 0, dilation=1, groups=1):
    """torch.nn.functional.conv2d: ``(N, C, H, W)`` or ``(C, H, W)`` input, ``(O, C / groups, kH, kW)`` weight."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, nd=2, name="conv2d")


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose1d: weight ``(C, O / groups, K)``; output length
    ``(L - 1) * stride - 2 * padding + dilation * (K - 1) + output_padding + 1``."""
    return _conv_transpose(
        input, weight, bias, stride, padding, output_padding, groups, dilation, nd=1, name="conv_transpose1d"
    )


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose2d: weight ``(C, O / groups, kH, kW)``; each output size is
    ``(S - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``."""
    return _conv_transpose(
        input, weight, bias, stride, padding, output_padding, groups, dilation, nd=2, name="conv_transpose2d"
    )


# ----------------------------------------------------------------------------- argument handling
def _tuple(value, nd: int, what: str) -> tuple[int, ...]:
    """torch's int-or-list argument: one int for every dim, or exactly ``nd`` of them (1 is broadcast)."""
    values = (value,) if isinstance(value, int) else tuple(value)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{what} must be an int or a tuple of ints, got {value!r}")
    if len(values) == 1:
        values = values * nd
    if len(values) != nd:
        raise ValueError(
            f"expected {what} to be a single integer value or a list of {nd} values to match the convolution "
            f"dimensions, but got {what}={list(values)}"
        )
    return values


def _check_common(x: Array, w: Array, nd: int, name: str, stride, dilation, groups) -> None:
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(
            f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {name}, but got input of size: "
            f"{list(x.shape)}"
        )
    if w.ndim != nd + 2:
        raise ValueError(f"{name} expects a {nd + 2}-D weight, got weight of size {list(w.shape)}")
    if x.dtype != w.dtype:
        raise TypeError(f"Input type ({x.dtype}) and weight type ({w.dtype}) should be the same")
    if any(s <= 0 for s in stride):
        raise ValueError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise ValueError("non-positive dilation is not supported")
    if not isinstance(groups, int) or groups <= 0:
        raise ValueError("non-positive groups is not supported")
    if w.shape[0] % groups:
        raise ValueError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but got weight "
            f"of size [{list(w.shape)}] instead"
        )


def _add_bias(y: Array, bias, channels: int, weight_shape) -> Array:
    if bias is None:
        return y
    b = jnp.asarray(bias)
    if b.shape != (channels,):
        raise ValueError(
            f"Given weight of size {list(weight_shape)}, expected bias to be 1-dimensional with {channels} "
            f"elements, but got bias of size {list(b.shape)} instead"
        )
    return y + b.astype(y.dtype).reshape((1, channels) + (1,) * (y.ndim - 2))


def _same_padding(kernel, dilation) -> Pairs:
    """torch's ``padding="same"``: total ``dilation * (k - 1)``, the odd one extra on the right."""
    return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation))


def _conv(input, weight, bias, stride, padding, dilation, groups, *, nd: int, name: str = "conv", impl="auto"):
    """The convolution behind conv1d/conv2d (any ``nd``); ``impl`` forces a lowering (see the module doc)."""
    x, w, geometry, unbatched = conv_plan(input, weight, stride, padding, dilation, groups, nd=nd, name=name)
    y = _conv_dispatch(x, w, geometry, impl)
    y = _add_bias(y, bias, w.shape[0], w.shape)
    return y[0] if unbatched else y


def conv_plan(input, weight, stride, padding, dilation, groups, *, nd: int, name: str):
    """The arguments of a convolution checked as torch checks them: ``(x, w, geometry, unbatched)``, ``x``
    batched (the bias is checked where it is added, ``_add_bias``)."""
    x, w = jnp.asarray(input), jnp.asarray(weight)
    stride, dilation = _tuple(stride, nd, "stride"), _tuple(dilation, nd, "dilation")
    _check_common(x, w, nd, name, stride, dilation, groups)
    kernel = w.shape[2:]
    if isinstance(padding, str):
        if padding == "valid":
            pairs = ((0, 0),) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            pairs = _same_padding(kernel, dilation)
        else:
            raise ValueError(f"Invalid padding string: '{padding}'")
    else:
        pads = _tuple(padding, nd, "padding")
        if any(p < 0 for p in pads):
            raise ValueError("negative padding is not supported")
        pairs = tuple((p, p) for p in pads)
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x[None]
    if x.shape[1] != w.shape[1] * groups:
        shape = list(x.shape[1:] if unbatched else x.shape)
        raise ValueError(
            f"Given groups={groups}, weight of size {list(w.shape)}, expected input{shape} to have "
            f"{w.shape[1] * groups} channels, but got {x.shape[1]} channels instead"
        )
    padded = [s + lo + hi for s, (lo, hi) in zip(x.shape[2:], pairs)]
    reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(p < r for p, r in zip(padded, reach)):
        raise ValueError(
            f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). Kernel size: "
            f"({' x '.join(map(str, reach))}). Kernel size can't be greater than actual input size"
        )
    return x, w, _Geometry(stride, pairs, dilation, groups), unbatched


def _conv_transpose(
    input, weight, bias, stride, padding, output_padding, groups, dilation, *, nd: int, name="conv_t", impl="auto"
):
    """The transposed convolution behind conv_transpose1d/2d (any ``nd``); ``impl`` as for ``_conv``."""
    x, w = jnp.asarray(input), jnp.asarray(weight)
    stride, dilation = _tuple(stride, nd, "stride"), _tuple(dilation, nd, "dilation")
    if isinstance(padding, str):
        raise TypeError(f"{name}(): argument 'padding' must be tuple of ints, not str")
    pads, out_pads = _tuple(padding, nd, "padding"), _tuple(output_padding, nd, "output_padding")
    _check_common(x, w, nd, name, stride, dilation, groups)
    if any(p < 0 for p in pads):
        raise ValueError("negative padding is not supported")
    if any(op < 0 for op in out_pads):
        raise ValueError("negative output_padding is not supported")
    if any(op >= max(s, d) for op, s, d in zip(out_pads, stride, dilation)):
        # torch words it for 2-D (a 1-D convolution is a 2-D one of height 1 there)
        names, values = ("height", "width"), [(0, 1, 1)] * (2 - nd) + list(zip(out_pads, stride, dilation))
        got = [f"{what}_{n}: {v[i]}" for i, what in enumerate(("output_padding", "stride", "dilation"))
               for n, v in zip(names, values)]  # fmt: skip
        raise ValueError("output padding must be smaller than either stride or dilation, but got " + " ".join(got))
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x[None]
    if x.shape[1] != w.shape[0]:
        shape = list(x.shape[1:] if unbatched else x.shape)
        raise ValueError(
            f"Given transposed=1, weight of size {list(w.shape)}, expected input{shape} to have {w.shape[0]} "
            f"channels, but got {x.shape[1]} channels instead"
        )
    kernel = w.shape[2:]
    out = tuple(
        (n - 1) * s - 2 * p + d * (k - 1) + op + 1
        for n, s, p, d, k, op in zip(x.shape[2:], stride, pads, dilation, kernel, out_pads)
    )
    if any(o < 0 for o in out):
        raise ValueError(f"{name}: the calculated output size {list(out)} is negative")
    geometry = _Geometry(stride, tuple((p, p) for p in pads), dilation, groups)
    y = _conv_transpose_dispatch(x, w, geometry, (x.shape[0], w.shape[1] * groups) + out, impl)
    y = _add_bias(y, bias, w.shape[1] * groups, w.shape)
    return y[0] if unbatched else y


# ------------------------------------------------------------------------------ the two lowerings
class _Geometry(tuple):
    """(stride, padding pairs, dilation, groups): hashable, so it can be a static custom_vjp argument."""

    def __new__(cls, stride, padding: Pairs, dilation, groups: int):
        return super().__new__(cls, (tuple(stride), tuple(padding), tuple(dilation), int(groups)))

    stride = property(lambda self: self[0])
    padding = property(lambda self: self[1])
    dilation = property(lambda self: self[2])
    groups = property(lambda self: self[3])


def _check_impl(impl: str) -> None:
    if impl not in _IMPLS:
        raise ValueError(f"impl must be one of {_IMPLS}, got {impl!r}")


def _conv_dispatch(x: Array, w: Array, g: _Geometry, impl: str) -> Array:
    _check_impl(impl)
    if impl == "xla":
        return _conv_xla(x, w, g)
    if impl == "matmul":
        return _conv_mm(x, w, g)
    return lax.platform_dependent(x, w, cpu=lambda x, w: _conv_mm(x, w, g), default=lambda x, w: _conv_xla(x, w, g))


def _conv_transpose_dispatch(x: Array, w: Array, g: _Geometry, out_shape, impl: str) -> Array:
    _check_impl(impl)
    out_shape = tuple(out_shape)
    if impl == "xla":
        return _conv_transpose_xla(x, w, g, out_shape)
    if impl == "matmul":
        return _conv_transpose_mm(x, w, g, out_shape)
    return lax.platform_dependent(
        x,
        w,
        cpu=lambda x, w: _conv_transpose_mm(x, w, g, out_shape),
        default=lambda x, w: _conv_transpose_xla(x, w, g, out_shape),
    )


def _conv_xla(x: Array, w: Array, g: _Geometry) -> Array:
    return lax.conv_general_dilated(x, w, g.stride, g.padding, rhs_dilation=g.dilation, feature_group_count=g.groups)


def _conv_transpose_xla(x: Array, w: Array, g: _Geometry, out_shape) -> Array:
    """torch's transposed convolution as XLA's input-dilated convolution with the flipped, regrouped kernel."""
    groups, kernel = g.groups, w.shape[2:]
    c_in, o_per_group = w.shape[0], w.shape[1]
    # (C, O/g, *K) -> (O, C/g, *K): swap the two channel axes inside each group, flip the kernel.
    wt = w.reshape((groups, c_in // groups, o_per_group) + kernel)
    wt = jnp.swapaxes(wt, 1, 2).reshape((groups * o_per_group, c_in // groups) + kernel)
    wt = jnp.flip(wt, axis=tuple(range(2, wt.ndim)))
    pads = []
    for (p, _), d, k, n, s, o in zip(g.padding, g.dilation, kernel, x.shape[2:], g.stride, out_shape[2:]):
        lo = d * (k - 1) - p
        pads.append((lo, o - ((n - 1) * s + 1) - lo + d * (k - 1)))
    return lax.conv_general_dilated(
        x, wt, (1,) * len(kernel), pads, lhs_dilation=g.stride, rhs_dilation=g.dilation, feature_group_count=groups
    )


# ------------------------------------------------------------------ CPU: convolution as matmuls
#: Bytes of patch matrix per batch chunk. The CPU lowering loops over chunks of this size (``lax.scan``):
#: the patches and their products stay in cache, and a jitted step allocates (and page-faults) a few MB
#: of temporaries instead of the whole batch's patch matrix. CPU time of issue 14's strong-CNN step
#: (inside a scan / jitted from Python): 0.25 MiB 44 / 57 ms, 0.5 MiB 42 / 55, 1 MiB 39 / 55, 2 MiB
#: 37 / 52, 4 MiB 38 / 55, unchunked 51 / 83; wall time, 1 vs 2 MiB, in a quiet moment: 25 vs 22 ms.
_CHUNK_BYTES = 2 << 20
#: Longest patch-matrix column (``C / groups * prod(kernel)``) still laid out per image (see ``_per_image``).
_PER_IMAGE_MAX_K = 144


def _out_size(size: int, k: int, s: int, lo_hi: tuple[int, int], d: int) -> int:
    return (size + lo_hi[0] + lo_hi[1] - d * (k - 1) - 1) // s + 1


def _offsets(kernel) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(k) for k in kernel)))


def _bmm(a: Array, b: Array, contract_a: int, contract_b: int, batch: int) -> Array:
    """Matrix product over the given axes of two operands sharing ``batch`` leading batch axes."""
    lead = tuple(range(batch))
    return lax.dot_general(a, b, (((contract_a,), (contract_b,)), (lead, lead)))


def _per_image(w_shape) -> bool:
    """The layout of the matrices: per image (``(b, G, ., positions)``, batched products, no transposes) when
    a column of the patch matrix is short (``Cg * KK <= _PER_IMAGE_MAX_K``: the products are cheap, the
    transposes would dominate), else channels-major (``(G, ., b * positions)``, one long product per group).
    CPU time of forward + backward at batch 128, 3x3 kernels, per image vs channels-major: 4->16 at 28x28
    (K = 36) 6.9 vs 9.0 ms, 8->16 (72) 11.4 vs 14.8, 16->32 at 14x14 (144) 7.8 vs 8.1, 32->32 (288)
    18.0 vs 15.4, 64->64 at 7x7 (576) 44 vs 12."""
    return w_shape[1] * math.prod(w_shape[2:]) <= _PER_IMAGE_MAX_K


def _patches(x: Array, kernel, g: _Geometry, out, per_image: bool) -> Array:
    """The zero-padded input under each kernel offset, as ``(b, G, Cg * KK, prod(out))`` (per image) or
    ``(G, Cg * KK, b * prod(out))`` (channels-major); rows are (channel, offset), each offset's view one slab."""
    b, c = x.shape[:2]
    src = x if per_image else jnp.swapaxes(x, 0, 1)  # (b, C, *S) or (C, b, *S)
    src = lax.pad(src, jnp.zeros((), x.dtype), [(0, 0, 0)] * 2 + [(lo, hi, 0) for lo, hi in g.padding])
    views = []
    for off in _offsets(kernel):
        start = [o * d for o, d in zip(off, g.dilation)]
        limit = [t + s * (m - 1) + 1 for t, s, m in zip(start, g.stride, out)]
        views.append(lax.slice(src, [0, 0] + start, list(src.shape[:2]) + limit, [1, 1] + list(g.stride)))
    rows = c // g.groups * len(views)
    if per_image:
        return jnp.stack(views, axis=2).reshape(b, g.groups, rows, math.prod(out))
    return jnp.stack(views, axis=1).reshape(g.groups, rows, b * math.prod(out))


def _weights(w: Array, g: _Geometry, b: int, per_image: bool) -> Array:
    """``(O, Cg, *K)`` as ``(G, Og, Cg * KK)``, broadcast over the images when per image."""
    wm = w.reshape(g.groups, w.shape[0] // g.groups, -1)
    return jnp.broadcast_to(wm, (b,) + wm.shape) if per_image else wm


def _rows(dy: Array, g: _Geometry, per_image: bool) -> Array:
    """``(b, O, *out)`` in the product's layout: ``(b, G, Og, prod(out))`` or ``(G, Og, b * prod(out))``."""
    b, o = dy.shape[:2]
    if per_image:
        return dy.reshape(b, g.groups, o // g.groups, -1)
    return jnp.swapaxes(dy, 0, 1).reshape(g.groups, o // g.groups, -1)


def _chunk_forward(x: Array, w: Array, g: _Geometry, out) -> Array:
    """``W @ patches`` for one batch chunk, as ``(b, O, *out)``."""
    b, o, per_image = x.shape[0], w.shape[0], _per_image(w.shape)
    nb = 2 if per_image else 1
    y = _bmm(_weights(w, g, b, per_image), _patches(x, w.shape[2:], g, out, per_image), nb + 1, nb, nb)
    if per_image:
        return y.reshape((b, o) + tuple(out))
    return jnp.swapaxes(y.reshape((o, b) + tuple(out)), 0, 1)


def _chunk_weight_grad(x: Array, dy: Array, w_shape, g: _Geometry) -> Array:
    """``dY @ patches^T``: contracts every (image, position) of the chunk."""
    per_image = _per_image(w_shape)
    nb = 2 if per_image else 1
    gw = _bmm(_rows(dy, g, per_image), _patches(x, w_shape[2:], g, dy.shape[2:], per_image), nb + 1, nb + 1, nb)
    return (gw.sum(0) if per_image else gw).reshape(w_shape)


def _chunk_input_grad(dy: Array, w: Array, size, g: _Geometry) -> Array:
    """The adjoint of ``_chunk_forward`` in ``x``: ``W^T @ dY`` gives each offset's slab ("columns"); each
    slab is padded back into place (interior padding undoes the stride) and the slabs are summed."""
    b, (cg, *kernel), out = dy.shape[0], w.shape[1:], dy.shape[2:]
    per_image = _per_image(w.shape)
    nb = 2 if per_image else 1
    cols = _bmm(_weights(w, g, b, per_image), _rows(dy, g, per_image), nb, nb, nb)
    c, kk = g.groups * cg, math.prod(kernel)
    slabs = cols.reshape(((b, c, kk) if per_image else (c, kk, b)) + tuple(out))
    zero, total = jnp.zeros((), dy.dtype), None
    for i, off in enumerate(_offsets(kernel)):
        cfg = [(0, 0, 0)] * 2
        for o_, d, s, m, n, (lo, hi) in zip(off, g.dilation, g.stride, out, size, g.padding):
            cfg.append((o_ * d, n + lo + hi - o_ * d - s * (m - 1) - 1, s - 1))
        term = lax.pad(lax.index_in_dim(slabs, i, 2 if per_image else 1, keepdims=False), zero, cfg)
        total = term if total is None else total + term
    dx = lax.pad(total, zero, [(0, 0, 0)] * 2 + [(-lo, -hi, 0) for lo, hi in g.padding])
    return dx if per_image else jnp.swapaxes(dx, 0, 1)


def _chunk_size(x_shape, kernel, out, itemsize: int) -> int:
    """Images per chunk: about ``_CHUNK_BYTES`` of patches, preferably a divisor of the batch (within a
    factor 2 of that), since a remainder chunk costs one more copy of the whole output. No loop at all
    (the whole batch) when the patches of the batch are at most 2 chunks: the loop's own costs (its output
    buffer zeroed, then written chunk by chunk) would outweigh the locality it buys (the 1->32 layer at
    batch 128, 3.6 MB of patches for 12.8 MB of output: 2 chunks cost 2.5 ms of CPU time more)."""
    return _chunk_images(x_shape[0], x_shape[1] * math.prod(kernel) * math.prod(out) * itemsize)


def _chunk_images(n, image_bytes: int):
    """:func:`_chunk_size` for ``image_bytes`` of temporaries an image."""
    if not isinstance(n, int):  # a symbolic batch (jax.export): one chunk, whatever its size
        return n
    target = max(1, _CHUNK_BYTES // max(image_bytes, 1))
    if 2 * target >= n:
        return n
    return next((d for d in range(target, target // 2, -1) if n % d == 0), target)


def _split(arrays, b: int):
    """Each array's batch axis as ``(k, b)`` full chunks plus the remainder (``None`` if there is none)."""
    n = arrays[0].shape[0]
    k = n // b
    heads = tuple(a[: k * b].reshape((k, b) + a.shape[1:]) for a in arrays)
    tails = tuple(a[k * b :] for a in arrays) if n % b else None
    return heads, tails


def _map_batch(fn, arrays, b: int) -> Array:
    """``fn`` over batch chunks of ``arrays`` (one ``lax.map``), outputs (a pytree) joined along the batch."""
    if not isinstance(b, int) or arrays[0].shape[0] < 2 * b:  # a single chunk (b is the batch), or one and a remainder
        return fn(*arrays)
    heads, tails = _split(arrays, b)
    out = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), lax.map(lambda chunk: fn(*chunk), heads))
    return out if tails is None else jax.tree.map(lambda a, t: jnp.concatenate([a, t]), out, fn(*tails))


def _map_sum_batch(fn, arrays, b: int, init: Array) -> tuple[Array, Array]:
    """``fn(*chunk) -> (summand, batch output)`` over batch chunks: the summands' total (a pytree), the
    outputs joined."""
    if not isinstance(b, int) or arrays[0].shape[0] < 2 * b:
        return fn(*arrays)
    heads, tails = _split(arrays, b)

    def body(total, chunk):
        part, out = fn(*chunk)
        return jax.tree.map(jnp.add, total, part), out

    total, out = lax.scan(body, init, heads)
    out = out.reshape((-1,) + out.shape[2:])
    if tails is not None:
        part, tail_out = fn(*tails)
        total, out = jax.tree.map(jnp.add, total, part), jnp.concatenate([out, tail_out])
    return total, out


def _geometry_out(x_shape, kernel, g: _Geometry) -> tuple[int, ...]:
    sizes = zip(x_shape[2:], kernel, g.stride, g.padding, g.dilation)
    return tuple(_out_size(n, k, s, p, d) for n, k, s, p, d in sizes)


def _forward_mm(x: Array, w: Array, g: _Geometry, out=None) -> Array:
    out = _geometry_out(x.shape, w.shape[2:], g) if out is None else tuple(out)
    b = _chunk_size(x.shape, w.shape[2:], out, x.dtype.itemsize)
    return _map_batch(lambda xc: _chunk_forward(xc, w, g, out), (x,), b)


def _backward_mm(x_shape, w: Array, dy: Array, x_for_dw: Array, g: _Geometry) -> tuple[Array, Array]:
    """(input gradient, weight gradient) of the convolution, in one pass over batch chunks."""
    b = _chunk_size(x_shape, w.shape[2:], dy.shape[2:], dy.dtype.itemsize)

    def chunk(dyc, xc):
        return _chunk_weight_grad(xc, dyc, w.shape, g), _chunk_input_grad(dyc, w, x_shape[2:], g)

    gw, dx = _map_sum_batch(chunk, (dy, x_for_dw), b, jnp.zeros(w.shape, w.dtype))
    return dx, gw


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_mm(x: Array, w: Array, g: _Geometry) -> Array:
    """Convolution as matrix products over the kernel-offset views, with a matrix-product backward."""
    return _forward_mm(x, w, g)


def _conv_mm_fwd(x, w, g):
    return _forward_mm(x, w, g), (x, w)


def _conv_mm_bwd(g, res, dy):
    x, w = res
    return _backward_mm(x.shape, w, dy, x, g)


_conv_mm.defvjp(_conv_mm_fwd, _conv_mm_bwd)


def _transpose_forward(u: Array, w: Array, g: _Geometry, out_shape) -> Array:
    b = _chunk_size(out_shape, w.shape[2:], u.shape[2:], u.dtype.itemsize)
    return _map_batch(lambda uc: _chunk_input_grad(uc, w, out_shape[2:], g), (u,), b)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_transpose_mm(u: Array, w: Array, g: _Geometry, out_shape) -> Array:
    """Transposed convolution = the input gradient of the convolution with weight ``w`` (``(C, O/g, *K)``
    read as a convolution from O to C channels), evaluated at ``u``; its own input gradient is that
    convolution's forward pass."""
    return _transpose_forward(u, w, g, out_shape)


def _conv_transpose_mm_fwd(u, w, g, out_shape):
    return _transpose_forward(u, w, g, out_shape), (u, w)


def _conv_transpose_mm_bwd(g, out_shape, res, dz):
    u, w = res
    b = _chunk_size(out_shape, w.shape[2:], u.shape[2:], u.dtype.itemsize)

    def chunk(dzc, uc):
        return _chunk_weight_grad(dzc, uc, w.shape, g), _chunk_forward(dzc, w, g, u.shape[2:])

    gw, du = _map_sum_batch(chunk, (dz, u), b, jnp.zeros(w.shape, w.dtype))
    return du, gw


_conv_transpose_mm.defvjp(_conv_transpose_mm_fwd, _conv_transpose_mm_bwd)
