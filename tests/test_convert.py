"""``fnnet.nn.from_torch`` against live torch: a zoo of models (forward, gradients, 5 SGD steps), the
torch ops a traced forward may use, Sequential conversion, the errors, state_dict round trips, modes,
jit/fit, and ``experiments/port_torch_model.py``.

Everything in float64 (``x64``, torch ``.double()``) at 1e-10 relative unless a test says otherwise.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import fnnet.nn as fnn
import fnnet.nn.functional as F
from fnnet import optim
from fnnet.nn.convert import FxModule, supported_layers, supported_ops
from fnnet.nn.module import RandomModule
from fnnet.train import Batch, TrainState, fit, make_train_step

REPO = pathlib.Path(__file__).resolve().parent.parent
RTOL, ATOL = 1e-10, 1e-12


# ---- the zoo (torch models written the torch way) -----------------------------------------------------


def zoo(torch, name: str, p: float = 0.5):
    """Zoo model ``name`` and an example input batch (float64, seeded)."""
    nn, TF = torch.nn, torch.nn.functional
    torch.manual_seed(0)

    if name == "lenet5":
        spec = importlib.util.spec_from_file_location("_lenet", REPO / "experiments" / "models" / "lenet.py")
        lenet = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(lenet)
        return lenet.LeNet5().double(), torch.randn(3, 1, 28, 28, dtype=torch.float64)

    if name == "resnet_block":

        class BasicBlock(nn.Module):
            def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
                super().__init__()
                self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(planes)
                self.relu = nn.ReLU(inplace=True)
                self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(planes)
                self.downsample = None
                if stride != 1 or inplanes != planes:
                    self.downsample = nn.Sequential(
                        nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
                    )

            def forward(self, x):
                identity = x
                out = self.relu(self.bn1(self.conv1(x)))
                out = self.bn2(self.conv2(out))
                if self.downsample is not None:
                    identity = self.downsample(x)
                out += identity
                return self.relu(out)

        class TinyResNet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.layer1 = nn.Sequential(BasicBlock(2, 4, stride=2), BasicBlock(4, 4))  # downsample, identity
                self.pool = nn.AdaptiveAvgPool2d((1, 1))
                self.fc = nn.Linear(4, 3)

            def forward(self, x):
                x = self.pool(self.layer1(x))
                return self.fc(torch.flatten(x, 1))

        return TinyResNet().double(), torch.randn(4, 2, 8, 8, dtype=torch.float64)

    if name == "conv1d":

        class Conv1dNet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv1d(3, 8, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(8, 8, 3), nn.ReLU()
                )
                self.pool = nn.AdaptiveAvgPool1d(1)
                self.head = nn.Linear(16, 4)

            def forward(self, x):
                h = self.features(x)
                pooled = self.pool(h).squeeze(-1)  # AdaptiveAvgPool1d
                peak = h.mean(dim=-1)  # and the mean over time
                return self.head(torch.cat([pooled, peak], dim=1))

        return Conv1dNet().double(), torch.randn(4, 3, 20, dtype=torch.float64)

    if name == "embedding":

        class MeanPoolClassifier(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embed = nn.Embedding(12, 6, padding_idx=0)
                self.fc = nn.Linear(6, 3)

            def forward(self, tokens):
                return self.fc(self.embed(tokens).mean(dim=1))

        tokens = torch.randint(0, 12, (5, 7))
        tokens[:, -2:] = 0  # padding at the end of each row
        return MeanPoolClassifier().double(), tokens

    if name == "mlp_residual":

        class ResidualMLP(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inp = nn.Linear(5, 16)
                self.blocks = nn.ModuleList([nn.Linear(16, 16) for _ in range(2)])
                self.norm = nn.LayerNorm(16)
                self.out = nn.Linear(16, 2)

            def forward(self, x):
                h = torch.tanh(self.inp(x))
                for block in self.blocks:
                    h = h + F_relu(block(h))
                return self.out(self.norm(h))

        F_relu = TF.relu
        return ResidualMLP().double(), torch.randn(6, 5, dtype=torch.float64)

    if name == "functional":

        class FunctionalNet(nn.Module):
            def __init__(self, p: float) -> None:
                super().__init__()
                self.p = p
                self.conv1 = nn.Conv2d(1, 4, 3)
                self.conv2 = nn.Conv2d(4, 8, 3)
                self.fc1 = nn.Linear(8 * 2 * 2, 16)
                self.fc2 = nn.Linear(16, 5)

            def forward(self, x):
                x = TF.relu(TF.max_pool2d(self.conv1(x), 2))
                x = TF.relu(TF.max_pool2d(self.conv2(x), 2))
                x = TF.dropout(x, p=self.p, training=self.training)
                x = torch.flatten(x, 1)
                x = TF.relu(self.fc1(x))
                x = TF.dropout(x, p=self.p, training=self.training)
                return TF.log_softmax(self.fc2(x), dim=1)

        return FunctionalNet(p).double(), torch.randn(4, 1, 14, 14, dtype=torch.float64)

    raise KeyError(name)


ZOO = ["lenet5", "resnet_block", "conv1d", "embedding", "mlp_residual", "functional"]


class Diff:
    """Largest absolute difference, and largest one relative to the largest magnitude of torch's array."""

    def __init__(self) -> None:
        self.abs = self.rel = 0.0

    def check(self, what: str, got, want, rtol: float = RTOL, atol: float = ATOL) -> None:
        got, want = np.asarray(got), np.asarray(want)
        assert got.shape == want.shape, f"{what}: shape {got.shape} != torch's {want.shape}"
        assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != torch's {want.dtype}"
        if not np.issubdtype(want.dtype, np.floating):
            np.testing.assert_array_equal(got, want, err_msg=what)
            return
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)
        if want.size:
            d = float(np.max(np.abs(got.astype(np.float64) - want)))
            self.abs = max(self.abs, d)
            self.rel = max(self.rel, d / max(float(np.max(np.abs(want))), 1e-300))


def _numpy(t):
    return t.detach().numpy()


def check_against_torch(torch, t_model, model, inputs, *, modes=(True, False), rtol=RTOL, atol=ATOL) -> Diff:
    """In each mode, from the same state: outputs, gradients of ``sum(output * c)`` (``c`` fixed random)
    w.r.t. every floating input and every parameter, and every parameter and buffer after the forward
    (BatchNorm's running statistics), torch vs the converted model run under ``jax.jit``."""
    diff, rng = Diff(), np.random.default_rng(0)
    initial = {k: v.clone() for k, v in t_model.state_dict().items()}
    for mode in modes:
        t_model.load_state_dict(initial)
        t_model.zero_grad(set_to_none=True)
        t_model.train(mode)
        model.train(mode)
        t_inputs = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
        t_out = t_model(*t_inputs)
        t_outs = list(t_out) if isinstance(t_out, (tuple, list)) else [t_out]
        cots = [rng.standard_normal(tuple(o.shape)) if o.is_floating_point() else None for o in t_outs]
        pairs = [(o, c) for o, c in zip(t_outs, cots) if c is not None and o.requires_grad]
        if pairs:
            sum((o * torch.from_numpy(c)).sum() for o, c in pairs).backward()
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        values = [jnp.asarray(_numpy(x)) for x in inputs]
        floats = [i for i, x in enumerate(inputs) if x.is_floating_point()]

        @jax.jit
        def objective(params, xs, values, rest=rest, floats=floats, cots=cots):
            args = list(values)  # every input a jit argument (integer ones too: not constants of the trace)
            for i, x in zip(floats, xs):
                args[i] = x
            m = nnx.merge(graphdef, params, rest, copy=True)
            out = m(*args)
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            total = sum(jnp.sum(o * c) for o, c in zip(outs, cots) if c is not None)
            return total, (outs, nnx.split(m, nnx.Param, ...)[2])

        grad_fn = jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)
        (_, (outs, new_rest)), (p_grads, x_grads) = grad_fn(params, [values[i] for i in floats], values)
        label = "train" if mode else "eval"
        for k, (got, want) in enumerate(zip(outs, t_outs)):
            diff.check(f"{label} output {k}", got, _numpy(want), rtol, atol)
        after = nnx.merge(graphdef, params, new_rest)
        t_state = t_model.state_dict()
        for key, value in fnn.state_dict(after).items():
            diff.check(f"{label} state {key}", value, _numpy(t_state[key]), rtol, atol)
        t_params = dict(t_model.named_parameters())
        for path, g in nnx.to_flat_state(p_grads):
            key = ".".join(map(str, path))
            want = np.zeros(g.get_value().shape) if t_params[key].grad is None else _numpy(t_params[key].grad)
            diff.check(f"{label} grad {key}", g.get_value(), want, rtol, atol)
        for i, g in zip(floats, x_grads):
            want = t_inputs[i].grad
            diff.check(f"{label} grad input {i}", g, np.zeros(g.shape) if want is None else _numpy(want), rtol, atol)
    return diff


def _record(name: str, diff: Diff) -> None:
    print(f"{name}: forward/gradients, largest difference abs {diff.abs:.2e} rel {diff.rel:.2e}")


# Modes compared per model: both where the mode matters (BatchNorm; dropout, at p=0 in training mode, where
# torch's masks cannot be reproduced), else training mode (eval mode computes the same graph).
ZOO_MODES = {"resnet_block": (True, False), "functional": (False,)}


@pytest.mark.parametrize("name", ZOO)
def test_zoo_forward_and_gradients(name, torch, x64):
    """Outputs, gradients w.r.t. the input and every parameter, and parameters and buffers after the forward."""
    t_model, x = zoo(torch, name)
    model = fnn.from_torch(t_model)
    _record(name, check_against_torch(torch, t_model, model, [x], modes=ZOO_MODES.get(name, (True,))))
    if name == "functional":  # the dropout model in training mode at p=0
        t_model, x = zoo(torch, name, p=0.0)
        _record(name, check_against_torch(torch, t_model, fnn.from_torch(t_model), [x], modes=(True,)))


def _torch_sgd_steps(torch, t_model, x, y, loss, steps: int, lr: float, momentum: float) -> list[dict]:
    t_opt = torch.optim.SGD(t_model.parameters(), lr=lr, momentum=momentum)
    states = []
    for _ in range(steps):
        t_opt.zero_grad()
        loss(t_model(x), y).backward()
        t_opt.step()
        states.append({k: v.detach().clone().numpy() for k, v in t_model.state_dict().items()})
    return states


@pytest.mark.parametrize("name", ZOO)
def test_zoo_sgd_steps(name, torch, x64):
    """5 steps of fnnet.optim.sgd (momentum 0.9) in fnnet's jitted train step against torch.optim.SGD on one
    fixed batch, training mode (the dropout model at p=0): every parameter and buffer after each step."""
    t_model, x = zoo(torch, name, p=0.0)
    with torch.no_grad():
        out_shape = tuple(t_model.eval()(x).shape)  # eval: BatchNorm's buffers stay as they are
    model = fnn.from_torch(t_model.train())
    rng = np.random.default_rng(1)
    if name in ("lenet5", "embedding", "functional"):
        y = rng.integers(0, out_shape[1], out_shape[0])
        f_loss, t_loss = F.cross_entropy, torch.nn.functional.cross_entropy
    else:
        y = rng.standard_normal(out_shape)
        f_loss, t_loss = F.mse_loss, torch.nn.functional.mse_loss
    expected = _torch_sgd_steps(torch, t_model, x, torch.from_numpy(y), t_loss, 5, lr=0.05, momentum=0.9)

    state = TrainState.create(model, optim.sgd(lr=0.05, momentum=0.9), key=0)
    step = jax.jit(make_train_step(f_loss))
    batch = Batch(jnp.asarray(x.numpy()), jnp.asarray(y), jnp.arange(x.shape[0]))
    diff = Diff()
    for want in expected:
        state, _ = step(state, batch)
        got = fnn.state_dict(state.model())
        assert list(got) == list(want)
        for key, value in want.items():
            diff.check(key, got[key], value)
    print(f"{name}: 5 SGD steps, largest difference abs {diff.abs:.2e} rel {diff.rel:.2e}")


# ---- the ops a traced forward may use -------------------------------------------------------------------


def _xy(torch):
    g = torch.Generator().manual_seed(3)
    return torch.randn(3, 4, dtype=torch.float64, generator=g), torch.randn(3, 4, dtype=torch.float64, generator=g)


def _image(torch):
    g = torch.Generator().manual_seed(4)
    return torch.randn(2, 2, 6, 6, dtype=torch.float64, generator=g), torch.randn(
        2, 2, 6, dtype=torch.float64, generator=g
    )


def _tokens(torch):
    g = torch.Generator().manual_seed(5)
    idx = torch.randint(0, 4, (3, 5), generator=g)
    idx[0, :2] = 0
    return idx, torch.randn(3, 4, dtype=torch.float64, generator=g)


def _at_bounds(torch):
    x, y = _xy(torch)
    x[0, :3] = torch.tensor([-0.5, 0.5, 0.0], dtype=torch.float64)  # clamp's gradient exactly at its bounds
    return x, y


def _inplace_fresh(T, s, x, y):
    h = (x * 2).add_(y)  # nothing reads x * 2 afterwards: the same as h = x * 2 + y
    h = T.nn.functional.relu(h - 1, inplace=True)
    return h * 3, (y + 1).sigmoid_()


def _chunks(T, x, y):
    a, b = x.chunk(2, dim=1)  # fx unpacks a known number of values
    c, d = T.split(y, [1, 2], dim=0)
    return a, b, c, d, x.split(3, 1)[1], T.chunk(y, 3, 0)[2]


def _shapes(T, s, x, y):
    v = x.view(x.shape[0], x.size(1) // 2, -1) * x.dim() + x.numel()
    return v, x.reshape(x.size()[1], -1), torch_reshape(T, y)


def torch_reshape(T, y):
    return T.reshape(y, (y.size(0) * y.size(1),))


# (id, forward(torch, self, x, y), inputs(torch)): self has a parameter w (4, 4) and a buffer b (4,).
OP_CASES: list[tuple[str, Callable, Callable]] = [
    ("arithmetic + - * / with broadcasting", lambda T, s, x, y: (x + y[0], 2 - x * y / 3, x / (y.abs() + 1), -x), _xy),
    ("pow, floordiv and mod of Python ints", lambda T, s, x, y: x**2 + x**3 * (x.size(1) // 3 + x.size(0) % 2), _xy),
    (
        "@, torch.matmul (batched), mm",
        lambda T, s, x, y: (x @ s.w, T.matmul(x.view(3, 2, 2), s.w[:2, :2]), x.mm(s.w)),
        _xy,
    ),
    (
        "torch.add/sub alpha, Tensor.mul/div",
        lambda T, s, x, y: (T.add(x, y, alpha=2), T.sub(x, y, alpha=0.5), x.mul(y).div(2)),
        _xy,
    ),
    ("parameter and buffer attributes", lambda T, s, x, y: x @ s.w + s.b, _xy),
    ("x.view(x.size(0), -1), shape access", _shapes, _xy),
    (
        "flatten, reshape",
        lambda T, s, x, y: (T.flatten(x.reshape(2, 6)), x.flatten(), x.view(2, 2, 3).flatten(1), T.flatten(x, 0, 1)),
        _xy,
    ),
    (
        "permute, transpose, t, T",
        lambda T, s, x, y: (
            x.view(3, 2, 2).permute(2, 0, 1),
            x.transpose(0, 1),
            x.t(),
            x.T,
            T.permute(x, (1, 0)),
            T.transpose(x, 1, 0),
        ),
        _xy,
    ),
    (
        "unsqueeze, squeeze",
        lambda T, s, x, y: (
            x.unsqueeze(1).squeeze(1),
            T.unsqueeze(x, -1),
            T.squeeze(x.unsqueeze(0), 0),
            x.unsqueeze(0).squeeze(),
            x.squeeze(1),
        ),
        _xy,
    ),
    (
        "torch.cat, stack, concat",
        lambda T, s, x, y: (T.cat([x, y], dim=1), T.cat((x, y)), T.stack([x, y], -1), T.concat([x, y], 0)),
        _xy,
    ),
    ("chunk, split", lambda T, s, x, y: _chunks(T, x, y), _xy),
    (
        "mean, sum over dims",
        lambda T, s, x, y: (
            x.mean(),
            x.mean(dim=1),
            x.mean(1, keepdim=True),
            T.mean(x, (0, 1)),
            x.sum(0),
            T.sum(x, dim=-1, keepdim=True),
            x.mean([0]),
            x.sum(),
        ),
        _xy,
    ),
    (
        "max, min, amax, argmax",
        lambda T, s, x, y: (
            x.max(dim=1)[0],
            x.max(1).indices,
            T.max(x),
            T.max(x, y),
            x.min(0, keepdim=True).values,
            T.amax(x, 1),
            x.argmax(1),
            T.argmin(x),
        ),
        _xy,
    ),
    (
        "softmax, log_softmax, softmin",
        lambda T, s, x, y: (
            T.softmax(x, 1),
            T.log_softmax(x, dim=0),
            x.softmax(-1),
            x.log_softmax(1),
            T.nn.functional.softmax(x, dim=1),
            T.nn.functional.log_softmax(x, 1),
            T.nn.functional.softmin(x, 1),
        ),
        _xy,
    ),
    (
        "torch.relu/sigmoid/tanh and methods",
        lambda T, s, x, y: (T.relu(x), T.sigmoid(x), T.tanh(x), x.relu(), x.sigmoid(), x.tanh()),
        _xy,
    ),
    (
        "exp, log, sqrt, rsqrt, abs, square",
        lambda T, s, x, y: (
            T.exp(x),
            T.log(x.abs() + 1),
            T.sqrt(x * x + 1),
            x.exp(),
            y.abs().log(),
            T.rsqrt(x * x + 1),
            T.square(x),
            T.abs(x),
            x.pow(2),
        ),
        _xy,
    ),
    (
        "clamp at its bounds",
        lambda T, s, x, y: (x.clamp(-0.5, 0.5), T.clamp(x, min=-0.5), x.clip(max=0.5), T.clip(x, 0.0, None)),
        _at_bounds,
    ),
    (
        "where, maximum, minimum, comparisons",
        lambda T, s, x, y: (T.where(x > 0, x, y * 2), T.maximum(x, y), T.minimum(x, y[0]), x > y, x <= 0.5, x != y),
        _xy,
    ),
    (
        "getitem: slices, ints, None, Ellipsis, lists",
        lambda T, s, x, y: (x[:, 1:3], x[0], x[..., -1], x[None, :, ::2], x[[0, 2]]),
        _xy,
    ),
    (
        "expand, expand_as, repeat",
        lambda T, s, x, y: (
            y[:1].expand(3, 4),
            x[:, :1].expand_as(x),
            x.repeat(2, 1),
            s.b.expand(2, 4),
            x.repeat(1, 2, 1),
        ),
        _xy,
    ),
    (
        "dtype: to, double, type_as, long, zeros_like",
        lambda T, s, x, y: (
            x.to(T.float64),
            x.double(),
            x.type_as(y),
            (x > 0).long().sum(1),
            x.to("cpu"),
            T.zeros_like(x) + x,
            T.ones_like(x, dtype=T.float64) * y,
            x.contiguous(),
            x.detach() * y,
        ),
        _xy,
    ),
    ("math.sqrt of a size", lambda T, s, x, y: x / math.sqrt(x.size(-1)), _xy),
    (
        "tensor attributes and constants",
        lambda T, s, x, y: x * s.k + T.tensor(1.5, dtype=T.float64) - T.tensor([1.0, 2.0, 3.0, 4.0], dtype=T.float64),
        _xy,
    ),
    (
        "integer tensors with floats (torch's default float32)",
        lambda T, s, x, y: (x * 0.5, x / 2, (x > 1) * 1.5, x // 2, x % 3, x + 1, x * y[:, :1, None]),
        _tokens,
    ),
    ("in-place ops on fresh values", _inplace_fresh, _xy),
    (
        "F activations",
        lambda T, s, x, y: (
            T.nn.functional.relu(x),
            T.nn.functional.relu6(x * 4),
            T.nn.functional.leaky_relu(x, 0.2),
            T.nn.functional.elu(x, alpha=0.7),
            T.nn.functional.selu(x),
            T.nn.functional.celu(x, 1.5),
            T.nn.functional.gelu(x),
            T.nn.functional.gelu(x, approximate="tanh"),
            T.nn.functional.silu(x),
            T.nn.functional.mish(x),
            T.nn.functional.softplus(x, beta=2, threshold=1),
            T.nn.functional.softsign(x),
            T.nn.functional.hardtanh(x, -0.5, 0.5),
            T.nn.functional.hardswish(x * 3),
            T.nn.functional.hardsigmoid(x * 3),
            T.nn.functional.logsigmoid(x),
            T.nn.functional.tanhshrink(x),
            T.nn.functional.softshrink(x, 0.3),
            T.nn.functional.hardshrink(x, 0.3),
            T.nn.functional.threshold(x, 0.1, -1.0),
            T.nn.functional.glu(x, -1),
            T.nn.functional.sigmoid(x),
            T.nn.functional.tanh(x),
            T.nn.functional.prelu(x, s.b[:1]),
        ),
        _xy,
    ),
    (
        "F.linear, F.layer_norm",
        lambda T, s, x, y: (
            T.nn.functional.linear(x, s.w, s.b),
            T.nn.functional.linear(x, s.w),
            T.nn.functional.layer_norm(x, (4,), s.b, None),
        ),
        _xy,
    ),
    (
        "F.dropout in eval / at p=0, F.batch_norm in eval",
        lambda T, s, x, y: (
            T.nn.functional.dropout(x, 0.5, training=False),
            T.nn.functional.dropout(x, p=0.0),
            T.nn.functional.batch_norm(x, s.b, s.b * s.b + 1, training=False),
        ),
        _xy,
    ),
    (
        "F.conv2d, pooling 2-d, F.pad, F.group_norm",
        lambda T, s, x, y: (
            T.nn.functional.max_pool2d(T.nn.functional.conv2d(x, s.w.view(2, 2, 2, 2), s.b[:2], padding=1), 2),
            T.nn.functional.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False),
            T.nn.functional.adaptive_avg_pool2d(x, (2, 1)),
            T.nn.functional.adaptive_max_pool2d(x, 2),
            T.nn.functional.max_pool2d(x, 3, 2, 1, return_indices=True)[1],
            T.nn.functional.pad(x, (1, 1, 2, 0), mode="reflect"),
            T.nn.functional.group_norm(x, 2),
            T.nn.functional.dropout2d(x, 0.3, False),
        ),
        _image,
    ),
    (
        "F.conv1d, pooling 1-d, F.pad",
        lambda T, s, x, y: (
            T.nn.functional.conv1d(y, s.w.view(4, 2, 2), stride=2),
            T.nn.functional.max_pool1d(y, 2),
            T.nn.functional.avg_pool1d(y, 3, 1, 1),
            T.nn.functional.adaptive_avg_pool1d(y, 4),
            T.nn.functional.adaptive_max_pool1d(y, 3),
            T.nn.functional.pad(y, (1, 2)),
            T.nn.functional.pad(y, (1, 1), value=3.0),
        ),
        _image,
    ),
    (
        "F.embedding (padding_idx)",
        lambda T, s, x, y: (
            T.nn.functional.embedding(x, s.w),
            T.nn.functional.embedding(x, s.w, padding_idx=0) * y[:, :1, None],
        ),
        _tokens,
    ),
]


def _op_module(torch, fn):
    class OpModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            g = torch.Generator().manual_seed(6)
            self.w = torch.nn.Parameter(torch.randn(4, 4, dtype=torch.float64, generator=g))
            self.register_buffer("b", torch.randn(4, dtype=torch.float64, generator=g))
            self.k = torch.tensor([0.5, -2.0, 1.0, 3.0], dtype=torch.float64)  # a plain tensor attribute

        def forward(self, x, y):
            return fn(torch, self, x, y)

    return OpModule()


@pytest.mark.parametrize("case", OP_CASES, ids=[c[0] for c in OP_CASES])
def test_ops(case, torch, x64):
    """Each op in a traced forward: values and gradients (input and parameter) equal torch's."""
    _, fn, inputs = case
    t_model = _op_module(torch, fn)
    check_against_torch(torch, t_model, fnn.from_torch(t_model), list(inputs(torch)), modes=(True,))


# ---- Sequential and containers --------------------------------------------------------------------------


def test_sequential_converted_directly(torch, x64):
    """An nn.Sequential becomes fnnet.nn.Sequential, children under their (OrderedDict) names, nested too."""
    nn = torch.nn
    torch.manual_seed(0)
    t_model = nn.Sequential(
        OrderedDict(
            fc1=nn.Linear(6, 8),
            bn=nn.BatchNorm1d(8, momentum=0.3),
            act=nn.LeakyReLU(0.2),
            drop=nn.Dropout(0.0),
            head=nn.Sequential(nn.Linear(8, 3), nn.LogSoftmax(dim=1)),
        )
    ).double()
    model = fnn.from_torch(t_model)
    assert type(model) is fnn.Sequential and type(model.head) is fnn.Sequential
    assert [type(c).__name__ for c in model] == ["Linear", "BatchNorm1d", "LeakyReLU", "Dropout", "Sequential"]
    assert not any(isinstance(m, FxModule) for _, m in nnx.iter_modules(model))
    assert repr(model) == repr(t_model)
    assert list(fnn.state_dict(model)) == list(t_model.state_dict())
    x = torch.randn(5, 6, dtype=torch.float64)
    check_against_torch(torch, t_model, model, [x])


def test_module_list_and_dict(torch, x64):
    """ModuleList and ModuleDict inside a traced module keep torch's keys and indexing."""
    nn = torch.nn

    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk = nn.ModuleList([nn.Linear(4, 4), nn.Tanh()])
            self.heads = nn.ModuleDict({"a": nn.Linear(4, 2), "b": nn.Linear(4, 2)})

        def forward(self, x):
            for layer in self.trunk:
                x = layer(x)
            return self.heads["a"](x) - self.heads["b"](x)

    torch.manual_seed(0)
    t_model = Heads().double()
    model = fnn.from_torch(t_model)
    assert len(model.trunk) == 2 and list(model.heads.keys()) == ["a", "b"]
    assert list(fnn.state_dict(model)) == list(t_model.state_dict())
    assert repr(model) == repr(t_model)
    check_against_torch(torch, t_model, model, [torch.randn(3, 4, dtype=torch.float64)], modes=(True,))


@pytest.mark.parametrize(
    "layer",
    [
        "Identity()", "Linear(3, 4, bias=False)", "Conv1d(2, 4, 3, stride=2, padding=1, dilation=2, groups=2)",
        "Conv2d(2, 4, (3, 2), padding='same', padding_mode='reflect', bias=False)",
        "Conv2d(2, 2, 3, padding=1, padding_mode='circular')",
        "ConvTranspose1d(2, 4, 3, stride=2, padding=1, output_padding=1)",
        "ConvTranspose2d(4, 2, 3, stride=2, groups=2, dilation=2)",
        "BatchNorm1d(4, eps=1e-3, momentum=None)", "BatchNorm2d(4, affine=False, track_running_stats=False)",
        "BatchNorm2d(4, bias=False)", "LayerNorm((2, 3), eps=1e-4, bias=False)",
        "LayerNorm(3, elementwise_affine=False)",
        "GroupNorm(2, 4, eps=1e-3, affine=False)", "Embedding(10, 3, padding_idx=-2, max_norm=1.5, norm_type=1.0)",
        "Embedding(5, 2, scale_grad_by_freq=True)", "Dropout(0.3)", "Dropout2d(0.1)", "Flatten(0, 2)",
        "Unflatten(1, (2, 3))", "MaxPool1d(3, 2, 1, ceil_mode=True)",
        "MaxPool2d((2, 3), dilation=2, return_indices=True)",
        "AvgPool1d(3, 2, 1, count_include_pad=False)", "AvgPool2d(3, 1, 1, ceil_mode=True, divisor_override=2)",
        "AdaptiveAvgPool1d(3)", "AdaptiveAvgPool2d((None, 2))", "AdaptiveMaxPool1d(2, return_indices=True)",
        "AdaptiveMaxPool2d(3)", "ZeroPad1d((1, 2))", "ZeroPad2d(1)", "ConstantPad1d(2, 3.5)",
        "ConstantPad2d((1, 0, 2, 1), -1.0)", "ReflectionPad1d(1)", "ReflectionPad2d((1, 1, 0, 2))",
        "ReplicationPad1d(2)", "ReplicationPad2d(1)", "CircularPad1d(1)", "CircularPad2d((1, 0, 1, 0))",
        "ReLU()", "ReLU6()", "LeakyReLU(0.3)", "PReLU(3, 0.1)", "ELU(0.5)", "CELU(2.0)", "SELU()",
        "GELU('tanh')", "SiLU()", "Mish()", "Sigmoid()", "Tanh()", "Softplus(2.0, 10.0)", "Softsign()",
        "Hardtanh(-2.0, 3.0)", "Hardswish()", "Hardsigmoid()", "LogSigmoid()", "Tanhshrink()", "Softshrink(0.2)",
        "Hardshrink(0.7)", "Threshold(0.1, 20.0)", "GLU(1)", "Softmax(dim=0)", "LogSoftmax(1)", "Softmin(-1)",
        "Softmax2d()",
    ],
)  # fmt: skip
def test_layer_table(layer, torch, x64):
    """Every supported layer: the fnnet twin of the same class, built from the torch layer's attributes
    (its repr, which lists them, equals torch's), with torch's state_dict keys and dtype."""
    t_layer = eval(f"torch.nn.{layer}").double()
    converted = fnn.from_torch(t_layer)
    assert type(converted).__name__ == type(t_layer).__name__
    assert isinstance(converted, getattr(fnn, type(t_layer).__name__))
    assert repr(converted) == repr(t_layer)
    got, want = fnn.state_dict(converted), t_layer.state_dict()
    assert list(got) == list(want)
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value.numpy(), err_msg=key)
        assert got[key].dtype == value.numpy().dtype, key


def test_subclass_of_a_layer_is_traced_and_graph_modules_convert(torch, x64):
    """A subclass of a supported layer with its own forward is traced, never taken for its parent; an
    fx.GraphModule (torch.fx.symbolic_trace's result) converts like the module it came from."""

    class Scaled(torch.nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    torch.manual_seed(0)
    t_layer = Scaled(3, 2).double()
    converted = fnn.from_torch(t_layer)
    assert isinstance(converted, FxModule) and not isinstance(converted, fnn.Linear)
    check_against_torch(torch, t_layer, converted, [torch.randn(4, 3, dtype=torch.float64)], modes=(True,))

    t_model, x = zoo(torch, "mlp_residual")
    graph_module = torch.fx.symbolic_trace(t_model)
    converted = fnn.from_torch(graph_module)
    assert list(fnn.state_dict(converted)) == list(t_model.state_dict())
    check_against_torch(torch, graph_module, converted, [x], modes=(True,))


def test_supported_lists(torch):
    """supported_layers() are torch.nn classes with fnnet.nn twins; supported_ops() name what tests cover."""
    for name in supported_layers():
        assert isinstance(getattr(torch.nn, name), type) and isinstance(getattr(fnn, name), type)
    ops = supported_ops()
    for name in ("F.relu", "F.max_pool2d", "F.dropout", "torch.flatten", "torch.cat", "Tensor.view", "Tensor.mean",
                 "torch.sigmoid", "@", "Tensor.permute", "torch.log_softmax", "Tensor.relu_"):  # fmt: skip
        assert name in ops, name


# ---- errors: never a silently different module ------------------------------------------------------------


def _raises(torch, module, *patterns: str) -> str:
    with pytest.raises(NotImplementedError) as info:
        fnn.from_torch(module)
    text = str(info.value)
    for p in patterns:
        assert p in text, f"{p!r} not in {text!r}"
    return text


def test_unsupported_layer(torch):
    nn = torch.nn

    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(4, 8)
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.rnn(x)[0])

    _raises(torch, Tagger(), "unsupported layer torch.nn.modules.rnn.LSTM", "'rnn'", "supported layers: ")
    _raises(torch, nn.Sequential(nn.Linear(2, 2), nn.Bilinear(2, 2, 2)), "Bilinear", "'1'")


def test_unsupported_ops_name_node_and_source_line(torch):
    nn = torch.nn

    class Spectrum(nn.Module):
        def forward(self, x):
            y = x * 2
            return torch.fft.fft(y).abs()

    class Sorted(nn.Module):
        def forward(self, x):
            return x.sort()[0]

    text = _raises(torch, Spectrum(), "unsupported op torch.fft.fft", "fx node 'fft_fft'", "Spectrum.forward")
    assert "test_convert.py:" in text and "return torch.fft.fft(y).abs()" in text
    _raises(torch, Sorted(), "unsupported op Tensor.sort", "fx node 'sort'", "return x.sort()[0]")


def test_data_dependent_control_flow(torch):
    class Branchy(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x
            return -x

    _raises(torch, Branchy(), "torch.fx cannot trace", "Branchy.forward", "control flow", "if x.sum() > 0:")


def test_unsupported_arguments(torch):
    """Keywords fnnet does not implement raise, never are dropped."""
    TF = torch.nn.functional

    class Floor(torch.nn.Module):
        def forward(self, x):
            return torch.div(x, 2, rounding_mode="floor")

    class Renorm(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(4, 2))

        def forward(self, idx):
            return TF.embedding(idx, self.w, max_norm=1.0)

    class Device(torch.nn.Module):
        def forward(self, x):
            return x + x.device.index

    _raises(torch, Floor(), "torch.div: rounding_mode is not supported", "fx node 'div'")
    _raises(torch, Renorm(), "F.embedding: max_norm renormalises the weight in place")
    _raises(torch, Device(), "getattr: attribute 'device' is not supported")


def test_inplace_writes_raise(torch):
    """In-place ops on inputs, parameters or values read afterwards change what the model computes: raise."""
    nn, TF = torch.nn, torch.nn.functional

    class OnInput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.act(x)

    class ReadAfter(nn.Module):
        def forward(self, x):
            h = x * 2
            h.add_(1)
            return h + x  # reads h (the mul node) after add_ changed it

    class AliasRead(nn.Module):
        def forward(self, x):
            h = x * 2
            v = h.view(-1)
            TF.relu(v, inplace=True)
            return h

    class OnParameter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x + self.w.mul_(2)

    _raises(torch, OnInput(), "ReLU(inplace=True) writes into the input 'x'")
    _raises(torch, ReadAfter(), "in-place Tensor.add_ overwrites 'mul', which add read(s) afterwards")
    _raises(torch, AliasRead(), "in-place F.relu overwrites", "output")
    _raises(torch, OnParameter(), "writes into the parameter/buffer 'w'")
    _raises(torch, nn.Sequential(nn.ReLU(inplace=True), nn.Linear(2, 2)), "writes into its input in place")


def test_hooks_and_variadic_forward_raise(torch):
    nn = torch.nn
    layer = nn.Linear(2, 2)
    layer.register_forward_hook(lambda m, i, o: o * 2)
    _raises(torch, nn.Sequential(layer), "'0' (Linear) has hooks")

    class Variadic(nn.Module):
        def forward(self, *xs):
            return xs[0]

    _raises(torch, Variadic(), "forward's variadic argument *xs is not supported")


def test_float64_needs_x64(torch):
    assert not jax.config.jax_enable_x64
    with pytest.raises(ValueError, match="jax_enable_x64"):
        fnn.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2)).double())


# ---- state, modes, jit, training --------------------------------------------------------------------------


def test_modes_carried_over(torch, x64):
    """Each module's training flag is torch's; the traced forward follows the converted module's mode
    (F.dropout(training=self.training) and a Python branch on self.training)."""
    nn, TF = torch.nn, torch.nn.functional

    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.bn = nn.BatchNorm1d(4)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            h = self.drop(self.bn(self.fc(x)))
            if self.training:
                return TF.dropout(h, 0.5, training=self.training) + 1
            return h - 1

    torch.manual_seed(0)
    t_model = Mixed().double()
    t_model.bn.eval()  # a BatchNorm frozen inside a training model
    t_model.drop.eval()
    model = fnn.from_torch(t_model)
    flags = {name: m.training for name, m in t_model.named_modules()}
    assert flags == {"": True, "fc": True, "bn": False, "drop": False}
    assert (model.training, model.fc.training, model.bn.training, model.drop.training) == (True, True, False, False)
    assert isinstance(model, RandomModule)  # it calls F.dropout: its own key draws the mask

    x = torch.randn(64, 4, dtype=torch.float64)
    h = t_model.drop(t_model.bn(t_model.fc(x))).detach().numpy()  # eval-mode bn, identity dropout
    out = np.asarray(model(jnp.asarray(x.numpy())))
    kept = out != 1.0
    np.testing.assert_allclose(out[kept], 2 * h[kept] + 1, rtol=RTOL)  # inverted dropout at p=0.5
    assert 0.3 < kept.mean() < 0.7
    model.eval()
    np.testing.assert_allclose(model(jnp.asarray(x.numpy())), t_model.eval()(x).detach().numpy(), rtol=RTOL)


def test_state_dict_round_trip_after_fit(torch, x64):
    """fnnet.train.fit trains the converted model as torch.optim.SGD does (3 full-batch steps, BatchNorm in
    training mode); its state_dict then loads into the torch model exactly (strict, every key, bitwise)."""
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(5, 8)
            self.bn = nn.BatchNorm1d(8)
            self.fc2 = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc2(torch.relu(self.bn(self.fc1(x))))

    torch.manual_seed(0)
    t_model = Net().double()
    model = fnn.from_torch(t_model)
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randint(0, 3, (16,))
    expected = _torch_sgd_steps(torch, t_model, x, y, torch.nn.functional.cross_entropy, 3, lr=0.1, momentum=0.9)
    fit(model, optim.sgd(lr=0.1, momentum=0.9), (jnp.asarray(x.numpy()), jnp.asarray(y.numpy())),
        loss_fn=F.cross_entropy, epochs=3)  # fmt: skip
    sd = fnn.state_dict(model)
    assert list(sd) == list(expected[-1])
    for key, value in expected[-1].items():
        np.testing.assert_allclose(sd[key], value, rtol=RTOL, atol=ATOL, err_msg=key)

    fresh = Net().double()
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    for key, value in fresh.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), sd[key], err_msg=key)
        assert value.dtype == t_model.state_dict()[key].dtype
    x2 = torch.randn(4, 5, dtype=torch.float64)
    np.testing.assert_allclose(
        fresh.eval()(x2).detach().numpy(), np.asarray(model.eval()(jnp.asarray(x2.numpy()))), rtol=RTOL
    )


def test_jit_does_not_recompile(torch, x64, compile_count):
    """nnx.split / merge under jax.jit and jax.grad: one compilation for new values of the same shapes."""
    t_model, x = zoo(torch, "mlp_residual")
    model = fnn.from_torch(t_model)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def loss_and_grad(params, x):
        return jax.value_and_grad(lambda p: jnp.sum(nnx.merge(graphdef, p, rest, copy=True)(x) ** 2))(params)

    compiled = []
    for seed in range(3):
        xs = jnp.asarray(np.random.default_rng(seed).standard_normal((6, 5)))
        value, _ = loss_and_grad(params, xs)
        compiled.append(compile_count())
        t_value = (t_model(torch.from_numpy(np.array(xs))) ** 2).sum().item()
        np.testing.assert_allclose(float(value), t_value, rtol=RTOL)
    assert compiled[0] >= 1 and compiled[1:] == [compiled[0]] * 2  # compiled by the first call only


def test_tied_and_frozen_parameters(torch, x64):
    """A weight tied to another stays one shared variable (its gradient sums both uses, as torch's);
    a parameter with requires_grad=False is a Buffer (saved, never trained)."""
    nn = torch.nn

    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(6, 4)
            self.proj = nn.Linear(4, 4)
            self.decoder = nn.Linear(4, 6, bias=False)
            self.decoder.weight = self.embed.weight
            self.proj.bias.requires_grad_(False)

        def forward(self, tokens):
            return self.decoder(self.proj(self.embed(tokens)).mean(1))

    torch.manual_seed(0)
    t_model = Tied().double()
    model = fnn.from_torch(t_model)
    assert model.decoder.weight is model.embed.weight
    assert isinstance(model.proj.bias, fnn.Buffer)
    assert list(fnn.state_dict(model)) == list(t_model.state_dict())  # both keys, as torch lists them

    tokens = torch.randint(0, 6, (3, 5))
    t_model(tokens).pow(2).sum().backward()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    grads = jax.grad(lambda p: jnp.sum(nnx.merge(graphdef, p, rest)(jnp.asarray(tokens.numpy())) ** 2))(params)
    flat = {".".join(map(str, k)): v.get_value() for k, v in nnx.to_flat_state(grads)}
    assert "proj.bias" not in flat and t_model.proj.bias.grad is None
    shared = flat.get("embed.weight", flat.get("decoder.weight"))
    np.testing.assert_allclose(shared, t_model.embed.weight.grad.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(flat["proj.weight"], t_model.proj.weight.grad.numpy(), rtol=RTOL, atol=ATOL)


def test_float32_model(torch):
    """A float32 model (torch's default) converts without x64; 1e-5 relative, float32 rounding."""
    torch.manual_seed(0)
    t_model, x = zoo(torch, "conv1d")
    t_model = t_model.float()
    model = fnn.from_torch(t_model)
    assert fnn.state_dict(model)["head.weight"].dtype == np.float32
    check_against_torch(torch, t_model, model, [x.float()], modes=(True,), rtol=1e-5, atol=1e-6)


# ---- experiments/port_torch_model.py --------------------------------------------------------------------

EXPERIMENTS = REPO / "experiments"
PORT = EXPERIMENTS / "port_torch_model.py"


def test_port_script_lenet():
    """The README's command: exit 0; every printed difference < 1e-10 (float64); the losses agree."""
    run = subprocess.run(
        [sys.executable, str(PORT), "--model", "experiments/models/lenet.py:LeNet5", "--input-shape", "1,28,28"],
        capture_output=True, text=True, cwd=REPO, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "LeNet5: 61706 parameters, float64, input [4, 1, 28, 28], train mode"
    diffs = {line.split(":")[0].strip(): line.split(":")[-1].split() for line in lines if line.startswith("  ")}
    for name in ("output", "input gradient", "parameter gradients (largest"):
        (key,) = [k for k in diffs if k.startswith(name)]
        assert all(float(v) < 1e-10 for v in diffs[key]), (key, diffs[key])
    steps = [line.split() for line in lines if line.startswith("  step ")]
    assert len(steps) == 5
    for fields in steps:  # "step i: loss torch A  fnnet B  max |param diff| D"
        torch_loss, fnnet_loss, diff = float(fields[4]), float(fields[6]), float(fields[-1])
        assert abs(torch_loss - fnnet_loss) <= 1e-10 * abs(torch_loss) and diff < 1e-10
    assert lines[-1].startswith("largest parameter difference after 5 steps: ")
    assert float(lines[-1].split()[-1]) < 1e-10


def test_port_script_unsupported_layer_one_line(tmp_path):
    """An unsupported layer: one ``error:`` line naming it, exit 2, no traceback."""
    model_file = tmp_path / "rnn.py"
    model_file.write_text(
        "import torch\n\n"
        "class Tagger(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.rnn = torch.nn.GRU(3, 4)\n\n"
        "    def forward(self, x):\n"
        "        return self.rnn(x)[0]\n"
    )
    run = subprocess.run(
        [sys.executable, str(PORT), "--model", f"{model_file}:Tagger", "--input-shape", "2,3"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.startswith("error: from_torch: unsupported layer torch.nn.modules.rnn.GRU at 'rnn'")
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


@pytest.fixture
def port():
    spec = importlib.util.spec_from_file_location("_experiment_port_torch_model", PORT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.path.insert(0, str(EXPERIMENTS))  # its sibling ``cli``, as when run from experiments/
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(EXPERIMENTS))
        sys.modules.pop(spec.name, None)


def test_port_script_factory_with_batchnorm(port, tmp_path, capsys, x64):
    """A factory function returning a Sequential with BatchNorm (running statistics compared through the steps)."""
    (tmp_path / "bn.py").write_text(
        "from torch import nn\n\n"
        "def make():\n"
        "    return nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 1))\n"
    )
    assert port.main(["--model", f"{tmp_path}/bn.py:make", "--input-shape", "6", "--steps", "3", "--seed", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Sequential: 51 parameters, float64, input [4, 6], train mode"
    assert "mse loss" in lines[6]
    numbers = [float(f) for line in lines[3:6] for f in line.split(":")[-1].split()]
    numbers += [float(line.split()[-1]) for line in lines[7:]]
    assert len(numbers) == 6 + 4 and max(numbers) < 1e-10


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("missing.py:Net", "error: --model: no such file: missing.py"),
        ("{lenet}:LeNet6", "error: --model: {lenet} defines no 'LeNet6'"),
        ("{lenet}", "error: --model must be FILE:NAME"),
        ("{tmp}/bad.py:make", "error: --model: make() failed: ZeroDivisionError: division by zero"),
        ("{tmp}/bad.py:NotAModel", "error: --model: NotAModel() returned a int, not a torch.nn.Module"),
        ("{tmp}/bad.py:Sorter", "error: from_torch: unsupported op Tensor.sort"),
        ("{tmp}/bad.py:Wide", "error: the torch model fails on an input of shape [4, 1, 28, 28]"),
    ],
)
def test_port_script_errors(port, model, message, tmp_path, capsys, x64):
    (tmp_path / "bad.py").write_text(
        "import torch\n\n"
        "def make():\n    return 1 / 0\n\n"
        "def NotAModel():\n    return 3\n\n"
        "class Sorter(torch.nn.Module):\n    def forward(self, x):\n        return x.sort()[0]\n\n"
        "def Wide():\n    return torch.nn.Linear(3, 2)\n"
    )
    lenet = "experiments/models/lenet.py"
    spec = model.format(lenet=lenet, tmp=tmp_path)
    assert port.main(["--model", spec, "--input-shape", "1,28,28", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message.format(lenet=lenet, tmp=tmp_path)), err
    assert len(err.strip().splitlines()) == 1


# ---- rosetta rows: torch spelling -> case(torch, rng, prec) ------------------------------------------------

ROSETTA_CASES: dict[str, Callable] = {}
TOL = {"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-6)}


def _rosetta(spelling: str):
    def register(fn: Callable) -> Callable:
        ROSETTA_CASES[spelling] = fn
        return fn

    return register


@_rosetta("fnnet.nn.from_torch(nn.Sequential(...))")
def _row_sequential(torch, rng, prec):
    nn = torch.nn
    t_model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).to(getattr(torch, prec))
    model = fnn.from_torch(t_model)
    assert type(model) is fnn.Sequential and list(fnn.state_dict(model)) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = rng.standard_normal((3, 4)).astype(prec)
    rtol, atol = TOL[prec]
    np.testing.assert_allclose(
        model(jnp.asarray(x)), t_model(torch.from_numpy(x)).detach().numpy(), rtol=rtol, atol=atol
    )
    flax_linear = nnx.Linear(4, 8, rngs=nnx.Rngs(0))  # plain flax: the kernel is torch's weight transposed
    assert flax_linear.kernel.shape == (4, 8) and tuple(t_model[0].weight.shape) == (8, 4)


@_rosetta("fnnet.nn.from_torch(Net()) for a custom nn.Module with a forward")
def _row_custom(torch, rng, prec):
    nn, TF = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 3, 3)
            self.fc = nn.Linear(3 * 3 * 3, 2)

        def forward(self, x):
            h = TF.max_pool2d(TF.relu(self.conv(x)), 2)
            return self.fc(h.view(h.size(0), -1))

    torch.manual_seed(0)
    t_model = Net().to(getattr(torch, prec))
    model = fnn.from_torch(t_model)
    x = rng.standard_normal((2, 1, 8, 8)).astype(prec)
    rtol, atol = TOL[prec]
    np.testing.assert_allclose(
        model(jnp.asarray(x)), t_model(torch.from_numpy(x)).detach().numpy(), rtol=rtol, atol=atol
    )
    # plain flax is NHWC: flattening its feature map orders the features otherwise, so fc's weight would not fit
    h = t_model.conv(torch.from_numpy(x)).detach().numpy()
    assert not np.array_equal(h.reshape(2, -1), h.transpose(0, 2, 3, 1).reshape(2, -1))


@_rosetta("model.load_state_dict(converted_state) (fnnet.nn.state_dict of the converted model)")
def _row_state_dict(torch, rng, prec):
    torch.manual_seed(0)
    nn = torch.nn
    t_model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)).to(getattr(torch, prec))
    model = fnn.from_torch(t_model)
    model(jnp.asarray(rng.standard_normal((5, 3)).astype(prec)))  # a training forward: new running statistics
    sd = fnn.state_dict(model)
    t_model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    for key, value in t_model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), sd[key], err_msg=key)
    # plain flax names the same state otherwise (kernel/scale/mean/var) and keeps no num_batches_tracked
    flax_keys = {".".join(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(nnx.BatchNorm(4, rngs=nnx.Rngs(0))))}
    assert flax_keys == {"scale", "bias", "mean", "var"}


@_rosetta("model.train() / model.eval() (and self.training in forward)")
def _row_modes(torch, rng, prec):
    nn, TF = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.bn = nn.BatchNorm1d(4)

        def forward(self, x):
            return TF.dropout(self.bn(self.fc(x)), 0.5, training=self.training)

    torch.manual_seed(0)
    t_model = Net().to(getattr(torch, prec)).eval()
    model = fnn.from_torch(t_model)
    assert not model.training and not model.bn.training
    x = rng.standard_normal((6, 4)).astype(prec)
    rtol, atol = TOL[prec]
    np.testing.assert_allclose(
        model(jnp.asarray(x)), t_model(torch.from_numpy(x)).detach().numpy(), rtol=rtol, atol=atol
    )
    model.train()
    out = np.asarray(model(jnp.asarray(x)))
    assert model.bn.training and (out == 0).any()  # batch statistics and dropout now


@pytest.mark.parametrize("prec", ["float64", "float32"])
@pytest.mark.parametrize("spelling", sorted(ROSETTA_CASES))
def test_rosetta_row(spelling, prec, torch, request):
    if prec == "float64":
        request.getfixturevalue("x64")
    ROSETTA_CASES[spelling](torch, np.random.default_rng(11), prec)
