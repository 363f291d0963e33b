"""fnnet.nn's convolution and padding layers against torch.nn: same constructor arguments, torch's
state_dict loaded, then outputs, input and parameter gradients in train and eval mode (float64 1e-10,
float32 1e-5), over many configurations and torch's own module_db cases; default init, reprs, errors."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
from _nn_compare import compare_module, module_db_inputs

import fnnet.nn as nn

CONV2D = [
    ((3, 6, 3), {}),
    ((3, 6, (3, 5)), {"stride": 2, "padding": (1, 2)}),
    ((4, 8, 3), {"dilation": 2, "padding": 2, "groups": 2}),
    ((4, 4, 3), {"groups": 4, "bias": False}),  # depthwise
    ((3, 5, 4), {"padding": "same"}),  # even kernel: torch pads one more on the right
    ((3, 5, 3), {"padding": "same", "dilation": 2}),
    ((3, 5, 3), {"padding": "valid", "stride": (2, 1)}),
    ((2, 4, 3), {"padding": 2, "padding_mode": "reflect"}),
    ((2, 4, 3), {"padding": 1, "padding_mode": "replicate", "stride": 2}),
    ((2, 4, 3), {"padding": (1, 2), "padding_mode": "circular"}),
    ((2, 4, 4), {"padding": "same", "padding_mode": "reflect"}),
    ((1, 4, 3), {"stride": 1, "padding": 1}),  # the tutorial CNN's first layer
]
CONV1D = [
    ((3, 6, 3), {}),
    ((4, 6, 5), {"stride": 2, "padding": 2, "dilation": 1, "groups": 2}),
    ((3, 3, 4), {"padding": "same", "bias": False}),
    ((2, 4, 3), {"padding": 1, "padding_mode": "circular"}),
    ((2, 4, 3), {"padding": 2, "padding_mode": "reflect", "dilation": 2}),
]
CONV_T2D = [
    ((4, 6, 3), {}),
    ((4, 6, 3), {"stride": 2, "output_padding": 1, "groups": 2}),
    ((3, 2, (3, 2)), {"stride": (2, 3), "padding": 1, "dilation": 2, "bias": False}),
    ((2, 4, 4), {"stride": 2, "padding": 1}),
]
CONV_T1D = [((4, 6, 3), {"stride": 2, "output_padding": 1, "groups": 2}), ((3, 2, 5), {"padding": 2, "dilation": 2})]


def _input(torch, dtype, nd, channels, seed=0, batch=True):
    shape = ((2,) if batch else ()) + (channels,) + ((9, 11) if nd == 2 else (13,))
    return torch.from_numpy(np.random.default_rng(seed).normal(size=shape)).to(dtype)


def _pair(torch, name, args, kwargs, dtype):
    tdt = getattr(torch, dtype)
    return getattr(torch.nn, name)(*args, **kwargs, dtype=tdt), getattr(nn, name)(*args, **kwargs, dtype=dtype)


TOL = {"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-5)}  # float32 atol: sums of ~100 terms of size ~1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "name,args,kwargs",
    [("Conv2d", a, k) for a, k in CONV2D]
    + [("Conv1d", a, k) for a, k in CONV1D]
    + [("ConvTranspose2d", a, k) for a, k in CONV_T2D]
    + [("ConvTranspose1d", a, k) for a, k in CONV_T1D],
)
def test_conv_layers_match_torch(name, args, kwargs, dtype, torch, x64):
    t, f = _pair(torch, name, args, kwargs, dtype)
    nd = 1 if name.endswith("1d") else 2
    rtol, atol = TOL[dtype]
    for batch in (True, False):
        compare_module(t, f, [_input(torch, getattr(torch, dtype), nd, args[0], batch=batch)], torch=torch,
                       rtol=rtol, atol=atol)  # fmt: skip
    assert repr(f) == repr(t)
    assert {k: v.shape for k, v in nn.state_dict(f).items()} == {k: tuple(v.shape) for k, v in t.state_dict().items()}


@pytest.mark.parametrize("name", ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"])
def test_conv_layers_on_module_db_cases(name, torch, x64):
    cases = module_db_inputs(name, torch, torch.float64)
    assert cases
    for args, kwargs, fwd, _ in cases:
        t = getattr(torch.nn, name)(*args, **kwargs, dtype=torch.float64)
        f = getattr(nn, name)(*args, **kwargs, dtype="float64")
        compare_module(t, f, fwd, torch=torch, rtol=1e-10, atol=1e-12)


def test_conv_transpose_output_size_matches_torch(torch, x64):
    t, f = _pair(torch, "ConvTranspose2d", (3, 2, 3), {"stride": 2, "padding": 1}, "float64")
    nn.load_state_dict(f, t.state_dict())
    x = _input(torch, torch.float64, 2, 3)
    for size in [(17, 21), (18, 22), [2, 2, 18, 21]]:
        np.testing.assert_allclose(f(jnp.asarray(x.numpy()), size), t(x, size).detach().numpy(), rtol=1e-12, atol=1e-13)
    with pytest.raises(ValueError, match="valid sizes range from"):
        f(jnp.asarray(x.numpy()), (30, 30))


@pytest.mark.parametrize("shape_args", [(3, 6, 3), (8, 16, (3, 5)), (4, 8, 3, 1, 0, 1, 4)])
def test_conv_default_init_is_torchs(shape_args, torch):
    """kaiming_uniform_(a=sqrt(5)) = U(±1/sqrt(fan_in)) for the weight, the same bound for the bias."""
    f, t = nn.Conv2d(*shape_args), torch.nn.Conv2d(*shape_args)
    w, b = np.asarray(f.weight.get_value()), np.asarray(f.bias.get_value())
    assert w.shape == tuple(t.weight.shape)
    fan_in = w.shape[1] * w.shape[2] * w.shape[3]
    bound = 1 / math.sqrt(fan_in)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert float(t.weight.abs().max()) <= bound
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=5 * 0.45 / math.sqrt(w.size))


def test_conv_transpose_init_uses_torchs_fan(torch):
    """torch computes a transposed conv's fan_in from its weight (in, out/groups, k): out/groups * k*k."""
    f = nn.ConvTranspose2d(16, 6, 3, groups=2)
    bound = 1 / math.sqrt(3 * 9)
    assert np.abs(np.asarray(f.bias.get_value())).max() <= bound
    assert np.abs(np.asarray(f.weight.get_value())).max() > 0.9 * bound


@pytest.mark.parametrize(
    "args,kwargs,message",
    [
        ((3, 6, 3), {"groups": 2}, "in_channels must be divisible by groups"),
        ((4, 6, 3), {"groups": 4}, "out_channels must be divisible by groups"),
        ((4, 4, 3), {"groups": 0}, "groups must be a positive integer"),
        ((4, 4, 3), {"padding": "full"}, "Invalid padding string 'full'"),
        ((4, 4, 3), {"padding": "same", "stride": 2}, "padding='same' is not supported for strided convolutions"),
        ((4, 4, 3), {"padding_mode": "mirror"}, "padding_mode must be one of"),
    ],
)
def test_conv_argument_errors_are_torchs(args, kwargs, message, torch):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        torch.nn.Conv2d(*args, **kwargs)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        nn.Conv2d(*args, **kwargs)
    with pytest.raises(ValueError, match='Only "zeros" padding mode'):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")


PADS = [
    ("ZeroPad2d", (1,)),
    ("ZeroPad2d", ((1, 2, 0, 3),)),
    ("ConstantPad2d", ((2, 1, 1, 0), 3.5)),
    ("ReflectionPad2d", (2,)),
    ("ReflectionPad2d", ((1, 0, 2, 1),)),
    ("ReplicationPad2d", ((3, 1, 0, 2),)),
    ("CircularPad2d", (1,)),
    ("ZeroPad1d", ((2, 1),)),
    ("ConstantPad1d", (2, -1.0)),
    ("ReflectionPad1d", ((1, 3),)),
    ("ReplicationPad1d", (2,)),
    ("CircularPad1d", ((1, 2),)),
    ("ZeroPad2d", ((-1, 2, 1, -2),)),  # negative padding crops, as torch
]


@pytest.mark.parametrize("name,args", PADS)
def test_padding_layers_match_torch(name, args, torch, x64):
    nd = 1 if name.endswith("1d") else 2
    t, f = getattr(torch.nn, name)(*args), getattr(nn, name)(*args)
    for batch in (True, False):
        compare_module(t, f, [_input(torch, torch.float64, nd, 3, batch=batch)], torch=torch, rtol=1e-12, atol=0)
    assert repr(f) == repr(t)


@pytest.mark.parametrize("name", ["ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d",
                                  "ZeroPad1d", "ReflectionPad1d", "ReplicationPad1d", "CircularPad2d"])  # fmt: skip
def test_padding_layers_on_module_db_cases(name, torch, x64):
    cases = module_db_inputs(name, torch, torch.float64)
    assert cases
    for args, kwargs, fwd, _ in cases:
        compare_module(getattr(torch.nn, name)(*args, **kwargs), getattr(nn, name)(*args, **kwargs), fwd,
                       torch=torch, rtol=1e-12, atol=0)  # fmt: skip
