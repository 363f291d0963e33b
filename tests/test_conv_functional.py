"""fnnet.nn.functional's convolutions against live torch and against XLA's own convolution.

* ``conv1d``/``conv2d``/``conv_transpose1d``/``conv_transpose2d`` against torch: outputs and the input,
  weight and bias gradients (a random cotangent), float64 (1e-10; every third case also float32, 1e-5
  relative), over a table of strides, paddings (ints, tuples, ``"valid"``, ``"same"`` incl. torch's
  asymmetric even-kernel case), dilations, groups (depthwise included), 1-D and 2-D, batched and
  unbatched; plus torch's own ``op_db`` samples for the four ops (float64).
* In the same jitted call, the CPU lowering (what the public functions run on a CPU) against ``jax.vjp``
  of ``lax.conv_general_dilated`` written out directly, float64 1e-10: output and every cotangent, in
  both layouts of its matrices; the transposed convolution against its XLA lowering (input-dilated
  convolution with the flipped kernel) the same way; the loop over batch chunks (forced small, with a
  remainder) the same way.
* The per-backend choice: on the CPU the traced program has no convolution op; a ``jax.export`` for
  ``("cpu", "cuda")`` carries both lowerings and its CPU half runs; ``jit``, ``lax.scan``, ``vmap`` and no
  recompiles.
* torch's error messages for bad arguments.
"""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export, lax

import fnnet.nn.functional as F

_conv_module = importlib.import_module("fnnet.nn._conv")  # the private impl= switch lives here

RTOL = {"float64": 1e-10, "float32": 1e-5}

# torch warns that an even kernel with padding="same" copies the input; the warning is torch's business.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")


def assert_close(actual, expected, rtol: float) -> None:
    """Same shape; entries within ``rtol`` relative to the largest |expected| entry of the array."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    scale = np.abs(expected).max(initial=0.0)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


# (id, input shape, weight shape, keyword arguments, with bias)
CONV = [
    ("2d-basic", (2, 3, 8, 8), (4, 3, 3, 3), {"padding": 1}, True),
    ("2d-stride-tuple", (2, 3, 9, 8), (4, 3, 3, 2), {"stride": (2, 3), "padding": (1, 0)}, True),
    ("2d-dilation", (2, 2, 9, 10), (3, 2, 3, 3), {"dilation": (2, 3), "padding": 2}, False),
    ("2d-stride-remainder", (2, 3, 10, 9), (4, 3, 3, 3), {"stride": 3, "padding": 1, "dilation": 2}, True),
    ("2d-groups", (2, 4, 7, 7), (6, 2, 3, 3), {"groups": 2, "stride": 2, "padding": 1}, True),
    ("2d-depthwise", (2, 4, 7, 6), (4, 1, 3, 3), {"groups": 4, "padding": 1}, True),
    ("2d-depthwise-x2", (2, 3, 7, 6), (6, 1, 3, 3), {"groups": 3, "padding": (0, 1), "stride": (1, 2)}, False),
    ("2d-same-odd", (2, 3, 6, 7), (4, 3, 3, 5), {"padding": "same"}, True),
    ("2d-same-even", (2, 3, 6, 7), (4, 3, 4, 2), {"padding": "same", "dilation": (1, 3)}, True),
    ("2d-valid", (2, 3, 6, 7), (4, 3, 2, 3), {"padding": "valid", "stride": 2}, False),
    ("2d-unbatched", (3, 8, 7), (4, 3, 3, 3), {"padding": 1}, True),
    ("2d-1x1", (2, 5, 4, 4), (3, 5, 1, 1), {}, True),
    ("2d-kernel-fills-input", (2, 3, 3, 3), (4, 3, 3, 3), {}, True),
    ("2d-large-padding", (1, 2, 3, 4), (3, 2, 2, 2), {"padding": (3, 2)}, True),
    ("1d-basic", (2, 3, 11), (4, 3, 3), {"padding": 1}, True),
    ("1d-stride-dilation-groups", (2, 4, 13), (6, 2, 3), {"stride": 2, "dilation": 3, "padding": 2, "groups": 2}, True),
    ("1d-same-even", (2, 3, 9), (4, 3, 4), {"padding": "same"}, False),
    ("1d-unbatched", (3, 9), (4, 3, 5), {"padding": 2, "stride": 2}, True),
    ("1d-depthwise", (2, 4, 9), (4, 1, 3), {"groups": 4}, True),
]

# (id, input shape, weight shape (C, O / groups, *K), keyword arguments, with bias)
CONV_T = [
    ("2d-basic", (2, 3, 5, 5), (3, 4, 3, 3), {}, True),
    ("2d-stride-outpad", (2, 3, 5, 4), (3, 4, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}, True),
    ("2d-tuples", (2, 3, 4, 5), (3, 2, 2, 3), {"stride": (3, 2), "padding": (2, 1), "output_padding": (2, 0)}, False),
    ("2d-dilation-outpad", (2, 4, 5, 6), (4, 3, 3, 2), {"dilation": 2, "output_padding": 1, "groups": 2}, True),
    ("2d-depthwise", (2, 4, 5, 5), (4, 1, 3, 3), {"groups": 4, "stride": 2}, True),
    ("2d-padding-beyond-kernel", (2, 3, 6, 6), (3, 2, 3, 3), {"stride": 3, "padding": 3, "output_padding": 2}, True),
    ("2d-unbatched", (3, 5, 5), (3, 4, 3, 3), {"stride": 2, "padding": 1}, True),
    ("1d-basic", (2, 3, 7), (3, 4, 4), {"stride": 2, "padding": 3, "output_padding": 1, "dilation": 3}, True),
    ("1d-groups", (2, 4, 6), (4, 3, 3), {"groups": 2, "stride": 2}, False),
    ("1d-unbatched", (3, 7), (3, 2, 3), {"padding": 1}, True),
]


def _data(rng, x_shape, w_shape, bias_size: int | None):
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))
    return x, w, (None if bias_size is None else rng.standard_normal(bias_size))


def _vjps(fns, args, cotangent):
    """``[(output, cotangents of args)]`` of each ``fn(*args)`` for one cotangent, all under one jit."""

    @jax.jit
    def run(args, g):
        return [(y, vjp(g)) for y, vjp in (jax.vjp(fn, *args) for fn in fns)]

    return run(args, cotangent)


def _torch_run(torch, name, args, kwargs, dtype, seed=1):
    """torch's output, the (input, weight[, bias]) gradients for a random cotangent, and that cotangent."""
    import torch.nn.functional as tF

    t_in = [torch.tensor(np.asarray(a, dtype), requires_grad=True) for a in args]
    t_out = getattr(tF, name)(*t_in[:2], t_in[2] if len(t_in) == 3 else None, **kwargs)
    g = np.random.default_rng(seed).standard_normal(tuple(t_out.shape)).astype(dtype)
    t_out.backward(torch.tensor(g))
    return t_out.detach().numpy(), [t.grad.numpy() for t in t_in], g


def _assert_same(result, expected, rtol: float) -> None:
    (y, grads), (y_ref, grads_ref) = result, expected
    assert np.asarray(y).dtype == np.asarray(y_ref).dtype
    assert_close(y, y_ref, rtol)
    assert len(grads) == len(grads_ref)
    for got, want in zip(grads, grads_ref):
        assert_close(got, want, rtol)


def _public(name: str, kwargs: dict):
    return lambda x, w, b=None: getattr(F, name)(x, w, b, **kwargs)


def _compare_with_torch(torch, name, x, w, b, kwargs, prec, references=()):
    """The public function ``name`` against torch's (value and every gradient) and against each of
    ``references`` (functions of the same arguments), at ``RTOL[prec]``."""
    dtype = np.dtype(prec)
    args = [a for a in (x, w, b) if a is not None]
    y_t, grads_t, g = _torch_run(torch, name, args, kwargs, dtype)
    results = _vjps([_public(name, kwargs), *references], [jnp.asarray(a, dtype) for a in args], jnp.asarray(g))
    _assert_same(results[0], (y_t, grads_t), RTOL[prec])
    for other in results[1:]:
        _assert_same(other, results[0], RTOL[prec])


def _lax_conv(x_shape, w_shape, kwargs):
    """torch's convolution written directly with lax.conv_general_dilated (its arguments spelled out
    independently of fnnet), bias added, the unbatched form by adding a batch axis."""
    nd = len(w_shape) - 2

    def per_dim(value):
        return (value,) * nd if isinstance(value, int) else tuple(value)

    stride, dilation = per_dim(kwargs.get("stride", 1)), per_dim(kwargs.get("dilation", 1))
    padding = kwargs.get("padding", 0)
    if padding == "valid":
        pads = [(0, 0)] * nd
    elif padding == "same":
        totals = [d * (k - 1) for d, k in zip(dilation, w_shape[2:])]
        pads = [(t // 2, t - t // 2) for t in totals]
    else:
        pads = [(p, p) for p in per_dim(padding)]
    batched = len(x_shape) == nd + 2

    def conv(x, w, b=None):
        xb = x if batched else x[None]
        y = lax.conv_general_dilated(
            xb, w, stride, pads, rhs_dilation=dilation, feature_group_count=kwargs.get("groups", 1)
        )
        if b is not None:
            y = y + b.reshape((1, -1) + (1,) * nd)
        return y if batched else y[0]

    return conv


@pytest.fixture(params=["per_image", "channels_major"])
def layout(request, monkeypatch):
    """Both layouts of the CPU lowering's matrices (chosen per layer by the patch-column length)."""
    monkeypatch.setattr(_conv_module, "_PER_IMAGE_MAX_K", 10**9 if request.param == "per_image" else 0)
    return request.param


def _conv_case(case):
    name, x_shape, w_shape, kwargs, bias = case
    x, w, b = _data(np.random.default_rng(0), x_shape, w_shape, w_shape[0] if bias else None)
    return f"conv{len(w_shape) - 2}d", x, w, b, kwargs


@pytest.mark.parametrize("case", CONV, ids=[c[0] for c in CONV])
def test_conv(case, layout, torch, x64):
    """float64: the public function (on the CPU: the matrix-product lowering) against live torch AND
    against jax.vjp of lax.conv_general_dilated: output, input, weight and bias cotangents, 1e-10."""
    name, x, w, b, kwargs = _conv_case(case)
    _compare_with_torch(torch, name, x, w, b, kwargs, "float64", [_lax_conv(x.shape, w.shape, kwargs)])


@pytest.mark.parametrize("case", CONV[::3], ids=[c[0] for c in CONV[::3]])
def test_conv_float32(case, torch):
    _compare_with_torch(torch, *_conv_case(case), "float32")


# batches of 7 in chunks of 2: three chunks through the lax.scan and a remainder of one
CHUNKED = [(c[0], (7,) + c[1][1:], *c[2:]) for c in CONV if len(c[1]) == len(c[2])][::3]


@pytest.mark.parametrize("case", CHUNKED, ids=[c[0] for c in CHUNKED])
def test_conv_chunked(case, layout, x64, monkeypatch):
    """The lowering's loop over batch chunks (forced small) against jax.vjp of lax.conv_general_dilated."""
    monkeypatch.setattr(_conv_module, "_chunk_size", lambda *args: 2)
    name, x, w, b, kwargs = _conv_case(case)
    args = [jnp.asarray(a) for a in (x, w, b) if a is not None]
    g = jnp.asarray(np.random.default_rng(1).standard_normal(jax.eval_shape(_public(name, kwargs), *args).shape))
    result, expected = _vjps([_public(name, kwargs), _lax_conv(x.shape, w.shape, kwargs)], args, g)
    _assert_same(result, expected, 1e-10)


def test_chunk_size():
    """~_CHUNK_BYTES of patches per chunk, a divisor of the batch when one is within a factor 2."""
    size = _conv_module._chunk_size
    assert _conv_module._CHUNK_BYTES == 2 << 20
    assert size((512, 1, 28, 28), (3, 3), (28, 28), 4) == 64  # 2 MiB / 28,224 B = 74 -> 64 divides 512
    assert size((128, 1, 28, 28), (3, 3), (28, 28), 4) == 128  # patches of 2 chunks or less: no loop
    assert size((128, 32, 14, 14), (3, 3), (14, 14), 4) == 8
    assert size((54_000, 1, 28, 28), (3, 3), (28, 28), 4) == 72
    assert size((211, 1, 28, 28), (3, 3), (28, 28), 4) == 74  # 211 is prime: 2 chunks and a remainder of 63


def _conv_t_case(case):
    name, x_shape, w_shape, kwargs, bias = case
    bias_size = w_shape[1] * kwargs.get("groups", 1) if bias else None
    x, w, b = _data(np.random.default_rng(0), x_shape, w_shape, bias_size)
    return f"conv_transpose{len(w_shape) - 2}d", x, w, b, kwargs


def _conv_transpose_xla(nd: int, kwargs: dict):
    args = [kwargs.get(k, d) for k, d in (("stride", 1), ("padding", 0), ("output_padding", 0), ("groups", 1))]
    args.append(kwargs.get("dilation", 1))
    return lambda x, w, b=None: _conv_module._conv_transpose(x, w, b, *args, nd=nd, impl="xla")


@pytest.mark.parametrize("case", CONV_T, ids=[c[0] for c in CONV_T])
def test_conv_transpose(case, layout, torch, x64):
    """float64: the public function (the CPU lowering) and the XLA lowering (input-dilated convolution
    with the flipped kernel) against live torch and against each other, 1e-10."""
    name, x, w, b, kwargs = _conv_t_case(case)
    _compare_with_torch(torch, name, x, w, b, kwargs, "float64", [_conv_transpose_xla(w.ndim - 2, kwargs)])


@pytest.mark.parametrize("case", CONV_T[::3], ids=[c[0] for c in CONV_T[::3]])
def test_conv_transpose_float32(case, torch):
    _compare_with_torch(torch, *_conv_t_case(case), "float32")


# ---- torch's op_db sample inputs -------------------------------------------------------------------------------

OP_DB = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]


def op_db_samples(op_name: str, torch, dtype) -> list[tuple]:
    """``(input, weight, bias, kwargs)`` of torch's ``op_db`` samples for ``op_name`` as NumPy arrays."""
    from torch.testing._internal.common_methods_invocations import op_db

    def numpy(t):
        return None if t is None else t.detach().numpy()

    samples = []
    for op in op_db:
        if op.name == f"nn.functional.{op_name}":
            for s in op.sample_inputs("cpu", dtype, requires_grad=False):
                weight, bias = s.args[0], (s.args[1] if len(s.args) > 1 else s.kwargs.get("bias"))
                kwargs = {k: v for k, v in s.kwargs.items() if k != "bias"}
                samples.append((numpy(s.input), numpy(weight), numpy(bias), kwargs))
    return samples


@pytest.mark.parametrize("op_name", OP_DB)
def test_op_db_samples(op_name, torch, x64):
    """float64; the batched samples (op_db pairs each with the same sample minus its batch axis, a path the
    tables above cover) and no repeats."""
    samples = op_db_samples(op_name, torch, torch.float64)
    nd = 1 if op_name.endswith("1d") else 2
    seen = set()
    for x, w, b, kwargs in samples:
        key = (x.shape, w.shape, b is None, repr(sorted(kwargs.items())))
        if x.ndim == nd + 2 and key not in seen:
            seen.add(key)
            _compare_with_torch(torch, op_name, x, w, b, kwargs, "float64")
    assert len(seen) >= 4, op_name


# ---- the per-backend lowering under jit, scan, vmap, export --------------------------------------------------


def _small(rng, dtype=np.float32):
    return (
        jnp.asarray(rng.standard_normal((2, 3, 8, 8)), dtype),
        jnp.asarray(rng.standard_normal((4, 3, 3, 3)) / 5, dtype),
        jnp.asarray(rng.standard_normal(4), dtype),
    )


def _loss(x, w, b):
    return jnp.sum(jnp.tanh(F.conv2d(x, w, b, padding=1)) ** 2)


def test_cpu_program_uses_the_matmul_lowering():
    """On the CPU the traced program (forward and backward) contains dot_general and no convolution."""
    x, w, b = _small(np.random.default_rng(0))
    text = jax.jit(jax.grad(_loss, argnums=(0, 1, 2))).lower(x, w, b).as_text()
    assert "dot_general" in text
    assert "convolution" not in text
    text_t = jax.jit(lambda x, w: F.conv_transpose2d(x, w, stride=2)).lower(x, w[:3]).as_text()
    assert "dot_general" in text_t and "convolution" not in text_t


def test_export_for_cpu_and_cuda_runs_on_cpu():
    """One jax.export for ("cpu", "cuda") holds both lowerings; the CPU one reproduces the direct call."""
    x, w, b = _small(np.random.default_rng(1))
    grad = jax.jit(jax.value_and_grad(_loss, argnums=(0, 1, 2)))
    exported = export.export(grad, platforms=("cpu", "cuda"))(x, w, b)
    assert exported.platforms == ("cpu", "cuda")
    text = exported.mlir_module()
    assert "stablehlo.convolution" in text  # the CUDA branch: XLA's own convolution
    assert "dot_general" in text  # the CPU branch
    restored = export.deserialize(exported.serialize())
    (value, grads), (value_ref, grads_ref) = restored.call(x, w, b), grad(x, w, b)
    assert float(value) == float(value_ref)
    for got, want in zip(grads, grads_ref):
        np.testing.assert_array_equal(got, want)


def test_scan_vmap_and_no_recompile(x64, compile_count):
    """Inside lax.scan and under vmap the lowering gives the per-example values and gradients (1e-12)."""
    rng = np.random.default_rng(2)
    x, w, b = _small(rng, np.float64)
    xs = jnp.stack([x, 2 * x, -x])
    grad = jax.jit(jax.value_and_grad(_loss, argnums=(1, 2)))

    def body(carry, xi):
        loss, (gw, gb) = grad(xi, w, b)
        return (carry[0] + gw, carry[1] + gb), loss

    (gw, gb), losses = jax.jit(lambda xs: lax.scan(body, (jnp.zeros_like(w), jnp.zeros_like(b)), xs))(xs)
    per_example = [grad(xi, w, b) for xi in xs]
    assert_close(gw, sum(p[1][0] for p in per_example), 1e-12)
    assert_close(gb, sum(p[1][1] for p in per_example), 1e-12)
    assert_close(losses, [p[0] for p in per_example], 1e-12)
    # vmap over a leading axis of batched inputs: the forward pass and the weight gradient
    conv = jax.jit(lambda x: F.conv2d(x, w, b, padding=1))
    ys = jax.jit(jax.vmap(conv))(xs)
    for xi, yi in zip(xs, ys):
        assert_close(yi, conv(xi), 1e-12)
    losses_v, (gws, gbs) = jax.jit(jax.vmap(grad, in_axes=(0, None, None)))(xs, w, b)
    for p, gwi, gbi in zip(per_example, gws, gbs):
        assert_close(gwi, p[1][0], 1e-12)
        assert_close(gbi, p[1][1], 1e-12)
    # a jitted call with new values of the same shapes does not recompile
    x2 = 2 * x
    compiled = compile_count()
    conv(x2)
    assert compile_count() == compiled


# ---- errors (torch's messages) ----------------------------------------------------------------------------------

ERRORS = [
    ("conv2d", (3, 8), (4, 3, 3, 3), {}),
    ("conv2d", (1, 2, 3, 8, 8), (4, 3, 3, 3), {}),
    ("conv1d", (2, 3, 8, 8), (4, 3, 3), {}),
    ("conv2d", (2, 3, 8, 8), (4, 2, 3, 3), {}),
    ("conv2d", (2, 3, 8, 8), (4, 3, 3, 3), {"groups": 2}),
    ("conv2d", (2, 4, 8, 8), (3, 2, 3, 3), {"groups": 2}),
    ("conv2d", (2, 3, 8, 8), (4, 3, 3, 3), {"stride": 0}),
    ("conv2d", (2, 3, 8, 8), (4, 3, 3, 3), {"padding": -1}),
    ("conv2d", (2, 3, 8, 8), (4, 3, 3, 3), {"dilation": 0}),
    ("conv2d", (2, 3, 8, 8), (4, 3, 3, 3), {"groups": 0}),
    ("conv2d", (2, 3, 8, 8), (4, 3, 3, 3), {"stride": 2, "padding": "same"}),
    ("conv2d", (2, 3, 8, 8), (4, 3, 3, 3), {"padding": "full"}),
    ("conv2d", (2, 3, 2, 2), (4, 3, 3, 3), {}),
    ("conv2d", (2, 3, 4, 4), (4, 3, 3, 3), {"dilation": 2, "padding": (1, 0)}),
    ("conv2d", (2, 3, 8, 8), (4, 3, 3, 3), {"stride": (1, 1, 1)}),
    ("conv1d", (2, 3, 8), (4, 3, 3), {"stride": (1, 1)}),
    ("conv2d", (2, 3, 8, 8), (4, 3, 3, 3), {"bias": 5}),
    ("conv_transpose2d", (2, 3, 8, 8), (4, 4, 3, 3), {}),
    ("conv_transpose2d", (2, 4, 8, 8), (4, 4, 3, 3), {"groups": 3}),
    ("conv_transpose2d", (3, 8), (3, 4, 3, 3), {}),
    ("conv_transpose2d", (2, 3, 8, 8), (3, 4, 3, 3), {"stride": 2, "output_padding": (1, 2)}),
    ("conv_transpose2d", (2, 3, 8, 8), (3, 4, 3, 3), {"stride": (2, 1), "output_padding": 1}),
    ("conv_transpose1d", (2, 3, 8), (3, 4, 3), {"stride": 2, "output_padding": 2}),
    ("conv_transpose2d", (2, 3, 8, 8), (3, 4, 3, 3), {"output_padding": -1}),
    ("conv_transpose2d", (2, 3, 8, 8), (3, 4, 3, 3), {"padding": -1}),
]


@pytest.mark.parametrize("case", ERRORS, ids=[f"{c[0]}-{i}" for i, c in enumerate(ERRORS)])
def test_errors_carry_torch_messages(case, torch):
    import torch.nn.functional as tF

    name, x_shape, w_shape, kwargs = case
    kwargs = dict(kwargs)
    bias = kwargs.pop("bias", None)
    x, w = np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)
    b = None if bias is None else np.zeros(bias, np.float32)
    t_args = [torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b)]
    with pytest.raises(RuntimeError) as torch_error:
        getattr(tF, name)(*t_args, **kwargs)
    expected = str(torch_error.value).splitlines()[0]
    with pytest.raises((ValueError, TypeError)) as error:
        getattr(F, name)(x, w, b, **kwargs)
    assert str(error.value) == expected


def test_errors_where_fnnet_words_its_own():
    x, w = np.zeros((2, 3, 5, 5), np.float32), np.zeros((3, 4, 3, 3), np.float32)
    with pytest.raises(TypeError, match="argument 'padding' must be tuple of ints, not str"):
        F.conv_transpose2d(x, w, padding="same")
    with pytest.raises(TypeError, match=r"Input type \(float16\) and weight type \(float32\) should be the same"):
        F.conv2d(np.zeros((2, 4, 5, 5), np.float16), np.zeros((3, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match="impl must be one of"):
        _conv_module._conv(x, w.swapaxes(0, 1)[:, :3], None, 1, 0, 1, 1, nd=2, impl="cudnn")
