"""docs/rosetta.md's core layer and state-dict rows: each case runs the torch spelling and the fnnet
spelling on the same weights and inputs (float64), and checks the third column's claim about plain Flax."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _nn_compare import compare_module
from flax import nnx

import fnnet
import fnnet.nn as nn

ROSETTA_CASES: dict[str, Callable] = {}


def case(spelling: str):
    def register(fn: Callable) -> Callable:
        ROSETTA_CASES[spelling] = fn
        return fn

    return register


def _x(torch, *shape, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=shape))


@case("nn.Linear(in_features, out_features, bias=True)")
def _linear(torch):
    t, f = torch.nn.Linear(5, 3).double(), nn.Linear(5, 3, dtype="float64")
    compare_module(t, f, [_x(torch, 4, 5)], torch=torch, rtol=1e-12, atol=1e-14)
    flax = nnx.Linear(5, 3, rngs=nnx.Rngs(0))
    assert flax.kernel.get_value().shape == (5, 3)  # Flax: (in, out), the transpose of torch's weight
    assert f.weight.get_value().shape == tuple(t.weight.shape) == (3, 5)
    assert np.all(np.asarray(flax.bias.get_value()) == 0)  # Flax: zero bias; torch: U(±1/sqrt(in))


@case("nn.Sequential(*modules), model[i], len(model)")
def _sequential(torch):
    t = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)).double()
    f = nn.Sequential(nn.Linear(4, 3, dtype="float64"), nn.Tanh(), nn.Linear(3, 2, dtype="float64"))
    compare_module(t, f, [_x(torch, 6, 4)], torch=torch, rtol=1e-12, atol=1e-14)
    assert len(f) == len(t) and isinstance(f[2], nn.Linear)
    flax = nnx.Sequential(nnx.Linear(4, 3, rngs=nnx.Rngs(0)), nnx.tanh)
    paths = [".".join(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(flax))]
    assert paths[0].startswith("layers.0")  # Flax's keys: "layers.0.kernel", not torch's "0.weight"


@case("nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.Softmax(dim), nn.LogSoftmax(dim)")
def _activations(torch):
    x = _x(torch, 3, 4)
    for t, f in [(torch.nn.ReLU(), nn.ReLU()), (torch.nn.Sigmoid(), nn.Sigmoid()), (torch.nn.Tanh(), nn.Tanh()),
                 (torch.nn.Softmax(0), nn.Softmax(0)), (torch.nn.LogSoftmax(1), nn.LogSoftmax(1))]:  # fmt: skip
        compare_module(t, f, [x], torch=torch, rtol=1e-12, atol=1e-15)
    # jax.nn.softmax's default axis is the last one; torch's Softmax(dim=0) needs axis=0
    assert not np.allclose(jax.nn.softmax(jnp.asarray(x.numpy())), torch.softmax(x, 0).numpy())
    np.testing.assert_allclose(jax.nn.softmax(jnp.asarray(x.numpy()), axis=0), torch.softmax(x, 0).numpy(), rtol=1e-12)


@case("nn.Dropout(p=0.5), model.train(), model.eval()")
def _dropout(torch):
    f = nn.Dropout(0.5, rngs=nnx.Rngs(1))
    y = np.asarray(f(jnp.ones((200, 50))))
    assert set(np.unique(y)) == {0.0, 2.0} and abs((y == 0).mean() - 0.5) < 0.02  # torch's scaling
    f.eval()
    np.testing.assert_array_equal(f(jnp.ones((3, 3))), np.ones((3, 3)))
    flax = nnx.Dropout(0.5, rngs=nnx.Rngs(1))  # Flax: deterministic flag and an rng stream, no per-example keys
    assert hasattr(flax, "deterministic") and not hasattr(flax, "training")


@case("nn.Flatten(start_dim=1, end_dim=-1), nn.Unflatten(dim, sizes), nn.Identity()")
def _flatten(torch):
    x = _x(torch, 2, 3, 4)
    compare_module(torch.nn.Flatten(), nn.Flatten(), [x], torch=torch, rtol=0, atol=0)
    compare_module(torch.nn.Unflatten(2, (2, 2)), nn.Unflatten(2, (2, 2)), [x], torch=torch, rtol=0, atol=0)
    compare_module(torch.nn.Identity(), nn.Identity(), [x], torch=torch, rtol=0, atol=0)
    assert not hasattr(nnx, "Flatten")  # Flax has no Flatten layer: x.reshape(x.shape[0], -1) by hand


@case("model.state_dict()")
def _state_dict(torch):
    t = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                            torch.nn.Linear(8, 3)).double()  # fmt: skip
    f = nn.Sequential(nn.Conv2d(1, 2, 3, dtype="float64"), nn.BatchNorm2d(2, dtype="float64"), nn.Flatten(),
                      nn.Linear(8, 3, dtype="float64"))  # fmt: skip
    nn.load_state_dict(f, t.state_dict())
    ours = nn.state_dict(f)
    assert list(ours) == list(t.state_dict())  # parameters and buffers, torch's order and names
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(ours[k], v.numpy())
    flat = [".".join(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(f))]
    assert flat != list(ours)  # nnx.state: sorted by name, and it holds the layers' own PRNG state too


@case("model.load_state_dict(state_dict, strict=True)")
def _load_state_dict(torch):
    t = torch.nn.Linear(3, 2)
    f = nn.Linear(3, 2)
    assert nn.load_state_dict(f, t.state_dict()) == (([], []))
    np.testing.assert_array_equal(nn.state_dict(f)["weight"], t.weight.detach().numpy())
    bad = {"weight": torch.zeros(2, 4), "bias": t.bias}
    with pytest.raises(RuntimeError) as theirs:
        t.load_state_dict(bad)
    with pytest.raises(ValueError) as ours:
        nn.load_state_dict(f, bad)
    assert "size mismatch for weight" in str(theirs.value) and "size mismatch for weight" in str(ours.value)


@case("nn.Conv1d(in, out, kernel_size, stride, padding, dilation, groups, bias, padding_mode)")
def _conv1d(torch):
    t = torch.nn.Conv1d(3, 4, 3, padding=1, padding_mode="circular").double()
    f = nn.Conv1d(3, 4, 3, padding=1, padding_mode="circular", dtype="float64")
    compare_module(t, f, [_x(torch, 2, 3, 9)], torch=torch, rtol=1e-12, atol=1e-14)
    assert nnx.Conv(3, 4, (3,), rngs=nnx.Rngs(0)).kernel.get_value().shape == (3, 3, 4)  # Flax: (k, in, out), NLC


@case("nn.Conv2d(in, out, kernel_size, stride, padding, dilation, groups, bias, padding_mode)")
def _conv2d(torch):
    t = torch.nn.Conv2d(4, 6, 3, stride=2, padding="valid", groups=2).double()
    f = nn.Conv2d(4, 6, 3, stride=2, padding="valid", groups=2, dtype="float64")
    compare_module(t, f, [_x(torch, 2, 4, 9, 8)], torch=torch, rtol=1e-12, atol=1e-14)
    flax = nnx.Conv(4, 6, (3, 3), feature_group_count=2, rngs=nnx.Rngs(0))
    assert flax.kernel.get_value().shape == (3, 3, 2, 6)  # Flax: HWIO kernels on NHWC inputs, padding "SAME"
    assert flax.padding == "SAME"


@case("nn.ConvTranspose1d(...), nn.ConvTranspose2d(in, out, kernel_size, stride, padding, output_padding, groups)")
def _conv_transpose(torch):
    t = torch.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1).double()
    f = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, dtype="float64")
    compare_module(t, f, [_x(torch, 2, 4, 5, 5)], torch=torch, rtol=1e-12, atol=1e-14)
    t1 = torch.nn.ConvTranspose1d(3, 2, 4, stride=3).double()
    f1 = nn.ConvTranspose1d(3, 2, 4, stride=3, dtype="float64")
    compare_module(t1, f1, [_x(torch, 2, 3, 7)], torch=torch, rtol=1e-12, atol=1e-14)
    flax = nnx.ConvTranspose(4, 2, (3, 3), strides=(2, 2), rngs=nnx.Rngs(0))
    assert flax.kernel.get_value().shape == (3, 3, 4, 2)  # no output_padding; torch's is (in, out, kH, kW)


@case("nn.ZeroPad2d(p), nn.ConstantPad2d(p, v), nn.ReflectionPad2d(p), nn.ReplicationPad2d(p), nn.CircularPad2d(p)")
def _padding(torch):
    x = _x(torch, 2, 3, 5, 6)
    for name, args in [("ZeroPad2d", (1,)), ("ConstantPad2d", ((1, 2, 0, 1), 2.5)), ("ReflectionPad2d", (2,)),
                       ("ReplicationPad2d", ((1, 0, 2, 1),)), ("CircularPad2d", (1,))]:  # fmt: skip
        compare_module(getattr(torch.nn, name)(*args), getattr(nn, name)(*args), [x], torch=torch, rtol=1e-12, atol=0)
    # jnp.pad's "reflect" is torch's reflect, jnp.pad's "edge" is replicate, "wrap" circular; its pad
    # widths run first dim first, torch's last dim first: (1, 2, 0, 1) is W (1, 2), H (0, 1)
    ours = nn.ConstantPad2d((1, 2, 0, 1), 0.0)(jnp.asarray(x.numpy()))
    assert ours.shape == jnp.pad(x.numpy(), ((0, 0), (0, 0), (0, 1), (1, 2))).shape


@case("fnnet.nn.functional.linear(input, weight, bias)")
def _functional_linear(torch):
    x, w, b = _x(torch, 4, 5), _x(torch, 3, 5, seed=1), _x(torch, 3, seed=2)
    np.testing.assert_allclose(
        fnnet.nn.functional.linear(x.numpy(), w.numpy(), b.numpy()),
        torch.nn.functional.linear(x, w, b).numpy(),
        rtol=1e-12,
    )


@pytest.mark.parametrize("spelling", sorted(ROSETTA_CASES))
def test_rosetta_layer_rows(spelling, torch, x64):
    ROSETTA_CASES[spelling](torch)
