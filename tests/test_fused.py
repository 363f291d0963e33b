"""``fnnet.nn.Sequential``'s fused training-mode ``BatchNorm -> ReLU -> MaxPool`` (``fnnet/nn/_fused.py``).

Against torch 2.13 (``_nn_compare.compare_module``: outputs, input and parameter gradients, buffers, in
train and eval mode) for max-pooling windows with stride, padding, dilation and ceil_mode, weights of both
signs and exactly zero, ``affine=False``, ``momentum=None`` and ``track_running_stats=False``, on inputs
with tied values. Float64 rtol 1e-10 / atol 1e-12, float32 rtol 1e-5 / atol 1e-5 (as tests/test_normalization.py).
Against fnnet's unfused layers: the forward bit for bit, the gradients at float64 1e-12.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _nn_compare import compare_module
from flax import nnx

import fnnet.nn as fnn
import fnnet.nn.batchnorm as batchnorm_module

POOLS = [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": 2, "stride": 1, "dilation": 2},
    {"kernel_size": 3, "stride": 2, "ceil_mode": True},
]
BN_KWARGS = [{}, {"affine": False}, {"momentum": None}, {"track_running_stats": False}]


def _count_calls(monkeypatch, name: str) -> list[int]:
    """Counts the calls of ``fnnet.nn.batchnorm``'s ``name`` (so a test knows which fused path ran)."""
    calls = [0]
    original = getattr(batchnorm_module, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(batchnorm_module, name, counted)
    return calls


@pytest.fixture
def fused_calls(monkeypatch) -> list[int]:
    """Counts the calls of the fused BatchNorm -> ReLU -> MaxPool operation."""
    return _count_calls(monkeypatch, "batch_norm_relu_max_pool_stats")


def _input(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Random values with ties: a constant patch, and a repeated value in each row of another channel."""
    x = rng.standard_normal(shape)
    x[0, 0, :4] = 0.5
    x[1, 1, ..., ::3] = x[1, 1, ..., :1]
    return x.astype(dtype)


def _pair(torch, dims: int, channels: int, pool: dict, bn_kwargs: dict, dtype: str):
    tnn = torch.nn
    t_bn, t_pool = (tnn.BatchNorm2d, tnn.MaxPool2d) if dims == 2 else (tnn.BatchNorm1d, tnn.MaxPool1d)
    f_bn, f_pool = (fnn.BatchNorm2d, fnn.MaxPool2d) if dims == 2 else (fnn.BatchNorm1d, fnn.MaxPool1d)
    t_seq = tnn.Sequential(t_bn(channels, **bn_kwargs), tnn.ReLU(), t_pool(**pool)).to(getattr(torch, dtype))
    if t_seq[0].weight is not None:  # weights of both signs and exactly zero
        with torch.no_grad():
            t_seq[0].weight.copy_(torch.tensor([1.3, -0.7, 0.0, 0.4][:channels]))
            t_seq[0].bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.05][:channels]))
    f_seq = fnn.Sequential(f_bn(channels, dtype=jnp.dtype(dtype), **bn_kwargs), fnn.ReLU(inplace=True), f_pool(**pool))
    return t_seq, f_seq


@pytest.mark.parametrize("bn_kwargs", BN_KWARGS, ids=["default", "affine_false", "momentum_none", "untracked"])
@pytest.mark.parametrize("pool", POOLS, ids=["k2", "k3s2p1", "k2s1d2", "k3s2ceil"])
@pytest.mark.parametrize("dims", [2, 1])
def test_fused_batch_norm_relu_max_pool_matches_torch_float64(torch, x64, fused_calls, dims, pool, bn_kwargs):
    if dims == 1 and "dilation" in pool:
        pool = {"kernel_size": 2, "stride": 1, "dilation": 3}
    t_seq, f_seq = _pair(torch, dims, 4, pool, bn_kwargs, "float64")
    rng = np.random.default_rng(0)
    x = _input(rng, (4, 4, 9, 11) if dims == 2 else (4, 4, 13), np.float64)
    compare_module(t_seq, f_seq, [torch.from_numpy(x)], torch=torch, rtol=1e-10, atol=1e-12)
    assert fused_calls[0] == 1  # train mode fused, eval mode not


@pytest.mark.parametrize("dims", [2, 1])
def test_fused_batch_norm_relu_max_pool_matches_torch_float32(torch, fused_calls, dims):
    t_seq, f_seq = _pair(torch, dims, 4, {"kernel_size": 2}, {}, "float32")
    x = _input(np.random.default_rng(1), (8, 4, 12, 12) if dims == 2 else (8, 4, 30), np.float32)
    compare_module(t_seq, f_seq, [torch.from_numpy(x)], torch=torch, rtol=1e-5, atol=1e-5, modes=(True,))
    assert fused_calls[0] == 1


def _run(seq: fnn.Sequential, x: jax.Array, *, fused: bool):
    """Output, gradients (input and parameters) of ``sum(sin(out))`` and buffers, fused or child by child."""
    graphdef, params, rest = nnx.split(seq, nnx.Param, ...)

    def objective(params, x):
        model = nnx.merge(graphdef, params, rest, copy=True)
        out = model(x) if fused else model[2](model[1](model[0](x)))
        return jnp.sum(jnp.sin(out)), (out, nnx.state(model, fnn.Buffer))

    (_, (out, buffers)), grads = jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(params, x)
    return out, grads, buffers


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_forward_is_bitwise_the_unfused_layers(x64, fused_calls, dtype):
    seq = fnn.Sequential(fnn.BatchNorm2d(4, dtype=jnp.dtype(dtype)), fnn.ReLU(), fnn.MaxPool2d(3, 2, 1))
    seq[0].weight.set_value(jnp.asarray([1.3, -0.7, 0.0, 0.4], dtype))
    seq[0].bias.set_value(jnp.asarray([0.1, -0.2, 0.3, 0.05], dtype))
    x = jnp.asarray(_input(np.random.default_rng(2), (6, 4, 10, 10), np.dtype(dtype)))
    out, grads, buffers = _run(seq, x, fused=True)
    assert fused_calls[0] == 1
    ref_out, ref_grads, ref_buffers = _run(seq, x, fused=False)
    assert fused_calls[0] == 1  # the children one by one: not fused
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref_out))
    for a, b in zip(jax.tree.leaves(buffers), jax.tree.leaves(ref_buffers)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Gradients: the same sums in another order (float32: 2e-6 measured max abs on O(1) values).
    rtol, atol = (1e-12, 1e-12) if dtype == "float64" else (1e-5, 1e-5)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def test_fused_forward_mode_matches_unfused(x64, fused_calls):
    """Plain JAX autodiff, no custom rule: ``jax.jvp`` through the fused operation equals the unfused one."""
    seq = fnn.Sequential(fnn.BatchNorm2d(3, dtype=jnp.float64), fnn.ReLU(), fnn.MaxPool2d(2))
    rng = np.random.default_rng(3)
    x = jnp.asarray(_input(rng, (4, 3, 8, 8), np.float64))
    t = jnp.asarray(rng.standard_normal(x.shape))
    graphdef, state = nnx.split(seq)

    def f(x, fused):
        model = nnx.merge(graphdef, state, copy=True)
        return model(x) if fused else model[2](model[1](model[0](x)))

    out, tangent = jax.jvp(lambda v: f(v, True), (x,), (t,))
    ref_out, ref_tangent = jax.jvp(lambda v: f(v, False), (x,), (t,))
    assert fused_calls[0] == 1
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref_out))
    np.testing.assert_allclose(np.asarray(tangent), np.asarray(ref_tangent), rtol=1e-12, atol=1e-12)


class _MyBatchNorm(fnn.BatchNorm2d):
    def forward(self, input):
        return super().forward(input) * 2.0


@pytest.mark.parametrize("case", ["eval", "return_indices", "axis_name", "subclass", "sigmoid", "int_input"])
def test_not_fused_where_it_would_change_meaning(fused_calls, case):
    bn = _MyBatchNorm(2) if case == "subclass" else fnn.BatchNorm2d(2)
    act = fnn.Sigmoid() if case == "sigmoid" else fnn.ReLU()
    seq = fnn.Sequential(bn, act, fnn.MaxPool2d(2, return_indices=case == "return_indices"))
    if case == "eval":
        seq.eval()
    x = jnp.asarray(np.random.default_rng(4).standard_normal((2, 2, 4, 4)), jnp.float32)
    if case == "axis_name":
        bn.axis_name = "batch"
        graphdef, state = nnx.split(seq)
        jax.vmap(lambda v: nnx.merge(graphdef, state, copy=True)(v[None])[0], axis_name="batch")(x)
    elif case == "int_input":  # the unfused layers decide what an integer input gives
        seq(jnp.arange(64, dtype=jnp.int32).reshape(2, 2, 4, 4))
    else:
        seq(x)
    assert fused_calls[0] == 0


# ---------------------------------------------------------------- Conv -> BatchNorm -> ReLU -> MaxPool
@pytest.fixture
def block_calls(monkeypatch) -> list[int]:
    """Counts the calls of the fused Conv -> BatchNorm -> ReLU -> MaxPool operation."""
    return _count_calls(monkeypatch, "conv_batch_norm_relu_max_pool_stats")


def _conv_input(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Random values with a constant patch: the convolution's output ties inside it (equal windows)."""
    x = rng.standard_normal(shape)
    x[0, :, :6] = 0.5
    return x.astype(dtype)


def _block_pair(torch, dims: int, conv: dict, pool: dict, bn_kwargs: dict, dtype: str):
    tnn = torch.nn
    t_conv, t_bn, t_pool = (tnn.Conv2d, tnn.BatchNorm2d, tnn.MaxPool2d) if dims == 2 else (
        tnn.Conv1d, tnn.BatchNorm1d, tnn.MaxPool1d)  # fmt: skip
    f_conv, f_bn, f_pool = (fnn.Conv2d, fnn.BatchNorm2d, fnn.MaxPool2d) if dims == 2 else (
        fnn.Conv1d, fnn.BatchNorm1d, fnn.MaxPool1d)  # fmt: skip
    channels = conv["out_channels"]
    torch.manual_seed(0)
    t_seq = tnn.Sequential(t_conv(**conv), t_bn(channels, **bn_kwargs), tnn.ReLU(), t_pool(**pool))
    t_seq = t_seq.to(getattr(torch, dtype))
    if t_seq[1].weight is not None:  # weights of both signs and exactly zero
        with torch.no_grad():
            t_seq[1].weight.copy_(torch.linspace(-1.0, 1.5, channels))
            t_seq[1].weight[1] = 0.0
            t_seq[1].bias.copy_(torch.linspace(-0.3, 0.4, channels))
    f_seq = fnn.Sequential(
        f_conv(**conv, dtype=jnp.dtype(dtype), rngs=0),
        f_bn(channels, dtype=jnp.dtype(dtype), **bn_kwargs),
        fnn.ReLU(),
        f_pool(**pool),
    )
    return t_seq, f_seq


# A batch of 101 images runs in chunks (41, 41, 19 at float64: ~2 MiB of convolution output each).
# The pooling tiles each convolution's output exactly.
BLOCKS = [
    ({"in_channels": 1, "out_channels": 6, "kernel_size": 3, "padding": 1}, {"kernel_size": 2}, (101, 1, 12, 12)),
    (
        {"in_channels": 1, "out_channels": 5, "kernel_size": 3, "dilation": 2, "bias": False},
        {"kernel_size": 2},
        (9, 1, 10, 14),
    ),
    ({"in_channels": 2, "out_channels": 4, "kernel_size": 2, "stride": 2}, {"kernel_size": (2, 3)}, (7, 2, 16, 24)),
    (
        {"in_channels": 2, "out_channels": 6, "kernel_size": 3, "padding": 1, "groups": 2},
        {"kernel_size": 3},
        (5, 2, 9, 9),
    ),
]


@pytest.mark.parametrize("bn_kwargs", BN_KWARGS, ids=["default", "affine_false", "momentum_none", "untracked"])
@pytest.mark.parametrize(
    "conv,pool,shape", BLOCKS, ids=["1to6_chunked", "dilated_no_bias", "stride2_pool2x3", "groups"]
)
def test_fused_conv_block_matches_torch_float64(torch, x64, block_calls, conv, pool, shape, bn_kwargs):
    t_seq, f_seq = _block_pair(torch, 2, conv, pool, bn_kwargs, "float64")
    x = _conv_input(np.random.default_rng(5), shape, np.float64)
    # The convolution's bias gets only rounding-noise gradients (BatchNorm cancels it): atol covers them.
    compare_module(t_seq, f_seq, [torch.from_numpy(x)], torch=torch, rtol=1e-10, atol=1e-12)
    assert block_calls[0] == 1  # train mode fused, eval mode not


def test_fused_conv_block_matches_torch_float32(torch, block_calls):
    # No convolution bias: its gradient is rounding noise (BatchNorm cancels it), 1e-4 apart at float32.
    conv = {"in_channels": 1, "out_channels": 8, "kernel_size": 3, "padding": 1, "bias": False}
    t_seq, f_seq = _block_pair(torch, 2, conv, {"kernel_size": 2}, {}, "float32")
    x = _conv_input(np.random.default_rng(6), (150, 1, 14, 14), np.float32)  # 3 chunks of 50
    # atol: the weight gradient sums 29,400 products into entries up to 330; float32 summation in another
    # order (chunks) puts entries 5e-4 apart (measured; 1.5e-6 of the largest).
    compare_module(t_seq, f_seq, [torch.from_numpy(x)], torch=torch, rtol=1e-5, atol=1e-3, modes=(True,))
    assert block_calls[0] == 1


def test_fused_conv1d_block_matches_torch_float64(torch, x64, block_calls):
    conv = {"in_channels": 2, "out_channels": 5, "kernel_size": 5, "padding": 2}
    t_seq, f_seq = _block_pair(torch, 1, conv, {"kernel_size": 3}, {}, "float64")
    x = _conv_input(np.random.default_rng(7), (6, 2, 30), np.float64)
    compare_module(t_seq, f_seq, [torch.from_numpy(x)], torch=torch, rtol=1e-10, atol=1e-12)
    assert block_calls[0] == 1


def test_fused_conv_block_equals_unfused_layers(x64, block_calls):
    """The output and buffers agree with fnnet's layers one by one up to rounding (the batch statistics
    are merged across chunks), the gradients at float64 1e-12."""
    f64 = jnp.float64
    # No convolution bias: its gradient is rounding noise (BatchNorm cancels it), ~1e-12 apart here.
    conv = fnn.Conv2d(1, 8, 3, padding=1, bias=False, dtype=f64, rngs=1)
    seq = fnn.Sequential(conv, fnn.BatchNorm2d(8, dtype=f64), fnn.ReLU(), fnn.MaxPool2d(2))
    x = jnp.asarray(_conv_input(np.random.default_rng(8), (90, 1, 16, 16), np.float64))  # 2 chunks of 45

    def run(fused: bool):
        graphdef, params, rest = nnx.split(seq, nnx.Param, ...)

        def objective(params, x):
            model = nnx.merge(graphdef, params, rest, copy=True)
            out = model(x) if fused else model[3](model[2](model[1](model[0](x))))
            return jnp.sum(jnp.sin(out)), (out, nnx.state(model, fnn.Buffer))

        return jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(params, x)

    (_, (out, buffers)), grads = run(True)
    assert block_calls[0] == 1
    (_, (ref_out, ref_buffers)), ref_grads = run(False)
    assert block_calls[0] == 1
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref_out), rtol=1e-12, atol=1e-12)
    for a, b in zip(jax.tree.leaves(buffers), jax.tree.leaves(ref_buffers)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "case", ["eval", "overlapping_pool", "padded_pool", "remainder", "reflect", "costly_conv", "unbatched"]
)
def test_conv_block_not_fused_where_it_does_not_apply(block_calls, fused_calls, case):
    """Not taken: eval mode, windows that overlap, pad or leave a remainder, a non-zero padding mode, a
    convolution of more than 16 multiply-adds an output (the BatchNorm -> ReLU -> MaxPool fusion still
    runs), unbatched input."""
    in_ch = 2 if case == "costly_conv" else 1  # 2 * 3 * 3 = 18 > 16
    conv = fnn.Conv2d(in_ch, 3, 3, padding=1, padding_mode="reflect" if case == "reflect" else "zeros", rngs=0)
    pools = {"overlapping_pool": fnn.MaxPool2d(3, 2), "padded_pool": fnn.MaxPool2d(2, padding=1)}
    pool = {**pools, "remainder": fnn.MaxPool2d(3)}.get(case, fnn.MaxPool2d(2))
    seq = fnn.Sequential(conv, fnn.BatchNorm2d(3), fnn.ReLU(), pool)
    if case == "eval":
        seq.eval()
    shape = (in_ch, 8, 8) if case == "unbatched" else (4, in_ch, 8, 8)
    x = jnp.asarray(np.random.default_rng(9).standard_normal(shape), jnp.float32)
    if case == "unbatched":
        with pytest.raises(ValueError, match="expected 4D input"):  # as torch: BatchNorm2d gets a 3-D input
            seq(x)
    else:
        seq(x)
    assert block_calls[0] == 0
    assert fused_calls[0] == (0 if case in ("eval", "unbatched") else 1)
