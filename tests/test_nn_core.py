"""fnnet.nn's core against torch.nn: the tutorials' networks, Linear/Sequential/activations/Dropout/Flatten,
the loss modules, state_dict / load_state_dict, rngs and train/eval."""

from __future__ import annotations

import inspect
import math
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _nn_compare import compare_module, module_db_inputs
from flax import nnx

import fnnet
import fnnet.nn as nn
import fnnet.nn.functional as F


def _tutorial_twins(torch):
    """(torch module, fnnet module, input width) of the three tutorials' networks, named as their authors did."""
    tnn = torch.nn

    class Net(tnn.Module):  # hello world
        def __init__(self):
            super().__init__()
            self.hidden_layer = tnn.Linear(1, 1)
            self.output_layer = tnn.Linear(1, 1)

        def forward(self, x):
            return torch.sigmoid(self.output_layer(torch.sigmoid(self.hidden_layer(x))))

    class Network(tnn.Module):  # fundamentals
        def __init__(self):
            super().__init__()
            self.hidden1 = tnn.Linear(5, 8)
            self.hidden2 = tnn.Linear(8, 4)
            self.relu = tnn.ReLU()
            self.output = tnn.Linear(4, 1)
            self.sigmoid = tnn.Sigmoid()

        def forward(self, x):
            return self.sigmoid(self.output(self.relu(self.hidden2(self.relu(self.hidden1(x))))))

    f64 = jnp.float64
    return {
        "hello": (Net(), fnnet.models.HelloNet(f64), 1),
        "binary": (Network(), fnnet.models.BinaryClassifier(dtype=f64), 5),
        "apparel": (
            tnn.Sequential(tnn.Linear(784, 500), tnn.ReLU(), tnn.Linear(500, 10)),
            fnnet.models.mlp((784, 500, 10), dtype=f64),
            784,
        ),
        "apparel-dropout": (
            tnn.Sequential(tnn.Linear(784, 500), tnn.ReLU(), tnn.Dropout(0.3), tnn.Linear(500, 10)),
            fnnet.models.mlp((784, 500, 10), dropout=0.3, dtype=f64),
            784,
        ),
    }


@pytest.mark.parametrize("name", ["hello", "binary", "apparel", "apparel-dropout"])
def test_tutorial_networks_have_torch_keys_and_compute_torch_outputs(name, torch, x64):
    """Same keys, order and shapes as the torch twin; torch's weights give torch's outputs and
    gradients (float64, 1e-12), in eval mode (and train mode without dropout)."""
    t_net, f_net, width = _tutorial_twins(torch)[name]
    t_net = t_net.double()
    t_sd = t_net.state_dict()
    f_sd = nn.state_dict(f_net)
    assert list(f_sd) == list(t_sd)
    assert {k: v.shape for k, v in f_sd.items()} == {k: tuple(v.shape) for k, v in t_sd.items()}
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(7, width)))
    modes = (False,) if "dropout" in name else (True, False)
    diff = compare_module(t_net, f_net, [x], torch=torch, rtol=1e-12, atol=1e-14, modes=modes)
    assert diff.abs < 1e-12
    # and back: fnnet's state_dict loads into torch bit for bit
    t_net.load_state_dict({k: torch.from_numpy(v) for k, v in nn.state_dict(f_net).items()})
    for key, value in t_net.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), nn.state_dict(f_net)[key])


def test_hello_net_published_weights():
    net = fnnet.models.HelloNet.published()
    sd = nn.state_dict(net)
    assert {k: float(v.item()) for k, v in sd.items()} == pytest.approx(
        {
            "hidden_layer.weight": 1.58,
            "hidden_layer.bias": -0.14,
            "output_layer.weight": 2.45,
            "output_layer.bias": -0.11,
        }
    )


# ------------------------------------------------------------------------------------------- Linear
@pytest.mark.parametrize("in_f,out_f", [(784, 500), (5, 8), (3, 4000)])
def test_linear_init_matches_torch_bounds(in_f, out_f, torch):
    """U(±1/sqrt(in_features)) for weight and bias, torch's reset_parameters (statistics over the draw)."""
    layer = nn.Linear(in_f, out_f, rngs=nnx.Rngs(3))
    w, b = np.asarray(layer.weight.get_value()), np.asarray(layer.bias.get_value())
    bound = 1 / math.sqrt(in_f)
    t = torch.nn.Linear(in_f, out_f)
    tb = float(t.weight.detach().abs().max())
    assert w.shape == tuple(t.weight.shape) and b.shape == tuple(t.bias.shape)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound and tb <= bound
    # U(-a, a) has std a/sqrt(3); the sample std's relative error is ~0.45/sqrt(n): allow 5 of those.
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=5 * 0.45 / math.sqrt(w.size))
    assert w.dtype == np.float32


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linear_module_db_cases(dtype, torch, x64):
    tdt = getattr(torch, dtype)
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (1e-5, 1e-6)
    cases = module_db_inputs("Linear", torch, tdt)
    assert cases
    for args, kwargs, fwd, _ in cases:
        t = torch.nn.Linear(*args, **kwargs, dtype=tdt)
        f = nn.Linear(*args, **kwargs, dtype=dtype)
        compare_module(t, f, fwd, torch=torch, rtol=rtol, atol=atol)
        assert repr(f) == repr(t)


def test_linear_without_bias_and_shapes(torch, x64):
    t = torch.nn.Linear(6, 3, bias=False).double()
    f = nn.Linear(6, 3, bias=False, dtype=jnp.float64)
    assert f.bias is None and list(nn.state_dict(f)) == ["weight"]
    x = torch.randn(2, 4, 6, dtype=torch.float64)  # extra leading dims, as torch allows
    compare_module(t, f, [x], torch=torch, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="in_features=6"):
        f(jnp.ones((2, 5)))


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(-1, 3)
    with pytest.raises(ValueError, match="device="):
        nn.Linear(2, 3, device="cuda")
    with pytest.raises(TypeError, match="floating dtype"):
        nn.Linear(2, 3, dtype="int32")
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(TypeError, match="rngs"):
        nn.Linear(2, 3, rngs="seed")


def test_float64_needs_x64():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(ValueError, match="jax_enable_x64"):
            nn.Linear(2, 3, dtype=jnp.float64)
    finally:
        jax.config.update("jax_enable_x64", previous)


# --------------------------------------------------------------------------------------- rngs
LAYERS = {
    "Linear": lambda **k: nn.Linear(3, 2, **k),
    "Identity": lambda **k: nn.Identity(**k),
    "ReLU": lambda **k: nn.ReLU(**k),
    "Sigmoid": lambda **k: nn.Sigmoid(**k),
    "Tanh": lambda **k: nn.Tanh(**k),
    "Softmax": lambda **k: nn.Softmax(1, **k),
    "LogSoftmax": lambda **k: nn.LogSoftmax(1, **k),
    "Dropout": lambda **k: nn.Dropout(0.5, **k),
    "Flatten": lambda **k: nn.Flatten(**k),
    "Sequential": lambda **k: nn.Sequential(nn.Linear(3, 2), **k),
    "MSELoss": lambda **k: nn.MSELoss(**k),
    "CrossEntropyLoss": lambda **k: nn.CrossEntropyLoss(**k),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_accepts_rngs(name):
    """Generic code builds any layer with rngs=; the default (no rngs) is nnx.Rngs(0), so it is
    reproducible, and an explicit seed changes what parametrised/random layers draw."""
    make = LAYERS[name]
    a, b, c = make(rngs=nnx.Rngs(1)), make(), make(rngs=None)
    for m in (a, b, c):
        assert isinstance(m, nn.Module)
    sd_default, sd_none = nn.state_dict(b), nn.state_dict(c)
    assert sd_default.keys() == sd_none.keys()
    for k in sd_default:
        np.testing.assert_array_equal(sd_default[k], sd_none[k])
    if sd_default and name != "Sequential":  # a container's children were built (and drew) before it
        assert any(not np.array_equal(nn.state_dict(a)[k], sd_default[k]) for k in sd_default)


def test_default_rngs_are_documented_seed_zero():
    np.testing.assert_array_equal(
        nn.state_dict(nn.Linear(4, 3))["weight"], nn.state_dict(nn.Linear(4, 3, rngs=nnx.Rngs(0)))["weight"]
    )


# ---------------------------------------------------------------------------------- train / eval
def test_train_eval_switch_dropout_like_torch():
    model = fnnet.models.mlp((20, 30, 4), dropout=0.5)
    assert model.training and model[2].training  # torch: modules start in training mode
    x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 20)), jnp.float32)
    a, b = model(x), model(x)
    assert not np.allclose(a, b)  # fresh masks each call (the layer's own key and count)
    assert model.eval() is model and not model[2].training
    np.testing.assert_array_equal(model(x), model(x))
    assert model.train() is model and model[2].training
    model.train(False)
    assert not model[2].training
    with pytest.raises(ValueError, match="boolean"):
        model.train("yes")


def test_nnx_train_eval_reach_fnnet_layers():
    """A plain nnx.Module holding fnnet layers: NNX's own train()/eval() switch them too."""

    class Holder(nnx.Module):
        def __init__(self):
            self.drop = nn.Dropout(0.5)

    holder = Holder()
    holder.eval()
    assert not holder.drop.training
    holder.train()
    assert holder.drop.training


def test_dropout_scaling_and_statistics():
    """Kept units are scaled by 1/(1-p) and about p of them are zeroed (n = 200,000)."""
    drop = nn.Dropout(0.3, rngs=nnx.Rngs(5))
    y = np.asarray(drop(jnp.ones((400, 500))))
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.7)}
    assert abs(np.mean(y == 0) - 0.3) < 0.005  # 5 sigma of a binomial proportion at n = 200,000
    assert np.array_equal(np.asarray(nn.Dropout(1.0)(jnp.ones(5))), np.zeros(5))
    x = jnp.arange(6.0)
    assert np.array_equal(np.asarray(nn.Dropout(0.0)(x)), np.asarray(x))


def test_dropout_per_example_keys_do_not_depend_on_the_batch():
    """One key per example: splitting a batch gives the same masks (what makes N devices equal 1)."""
    keys = jax.random.split(jax.random.key(9), 8)
    x = jnp.ones((8, 16))
    whole = F.dropout(x, 0.5, key=keys)
    halves = [F.dropout(x[s], 0.5, key=keys[s]) for s in (slice(0, 4), slice(4, 8))]
    np.testing.assert_array_equal(whole, np.concatenate(halves))
    model = fnnet.models.mlp((16, 16, 2), dropout=0.5)
    g, state = nnx.split(model)

    def forward(x, keys):
        m = nnx.merge(g, state, copy=True)
        nn.module.bind_example_keys(m, keys)
        return m(x)

    x = jnp.asarray(np.random.default_rng(1).normal(size=(8, 16)), jnp.float32)
    raw = jax.random.key_data(keys)
    np.testing.assert_allclose(
        forward(x, raw), np.concatenate([forward(x[:4], raw[:4]), forward(x[4:], raw[4:])]), rtol=1e-6
    )


# ------------------------------------------------------------------------------ activations, misc
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_elementwise_activations_match_torch(name, torch, x64):
    x = np.concatenate([np.random.default_rng(0).normal(size=20) * 3, [0.0, -0.0]])
    out, vjp = jax.vjp(getattr(F, name), jnp.asarray(x))
    t = torch.from_numpy(x).requires_grad_()
    t_out = getattr(torch.nn.functional, name)(t)
    t_out.backward(torch.ones_like(t_out))
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(vjp(jnp.ones_like(out))[0], t.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize(
    "shape,dim", [((5,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -1), ((2, 3, 4), 1), ((3, 4), None)]
)
def test_softmax_dim_matches_torch(name, shape, dim, torch, x64):
    x = np.random.default_rng(2).normal(size=shape)
    t = getattr(torch.nn.functional, name)
    with pytest.warns(UserWarning, match="Implicit dimension") if dim is None else _no_warning():
        ours = getattr(F, name)(jnp.asarray(x), dim)
    with pytest.warns(UserWarning) if dim is None else _no_warning():
        theirs = t(torch.from_numpy(x), dim).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    module = {"softmax": nn.Softmax, "log_softmax": nn.LogSoftmax}[name]
    t_module = {"softmax": torch.nn.Softmax, "log_softmax": torch.nn.LogSoftmax}[name]
    if dim is not None:
        compare_module(t_module(dim), module(dim), [torch.from_numpy(x)], torch=torch, rtol=1e-12, atol=1e-15)
        assert repr(module(dim)) == repr(t_module(dim))


class _no_warning:  # noqa: N801 - a context manager used like pytest.warns
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("start,end", [(1, -1), (0, -1), (1, 2), (2, 3), (-2, -1)])
def test_flatten_unflatten_match_torch(start, end, torch):
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(
        nn.Flatten(start, end)(jnp.asarray(x)), torch.nn.Flatten(start, end)(torch.from_numpy(x)).numpy()
    )
    y = np.arange(2 * 12 * 5, dtype=np.float32).reshape(2, 12, 5)
    for sizes in [(3, 4), (2, -1), (12,)]:
        np.testing.assert_array_equal(
            nn.Unflatten(1, sizes)(jnp.asarray(y)), torch.nn.Unflatten(1, sizes)(torch.from_numpy(y)).numpy()
        )
    with pytest.raises(ValueError):
        nn.Unflatten(1, (5, 5))(jnp.asarray(y))
    assert repr(nn.Flatten(start, end)) == repr(torch.nn.Flatten(start, end))


def test_identity_and_sequential_containers(torch):
    assert nn.Identity(3, foo=1)(jnp.ones(2)).shape == (2,)
    seq = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert len(seq) == 3 and isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.Linear)
    t_seq = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    assert list(nn.state_dict(seq[1:])) == list(t_seq[1:].state_dict()) == ["2.weight", "2.bias"]  # names kept
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and float(seq(jnp.ones((1, 4))).max()) < 1.0
    named = nn.Sequential(OrderedDict([("fc1", nn.Linear(4, 3)), ("act", nn.ReLU()), ("fc2", nn.Linear(3, 2))]))
    t_named = torch.nn.Sequential(
        OrderedDict([("fc1", torch.nn.Linear(4, 3)), ("act", torch.nn.ReLU()), ("fc2", torch.nn.Linear(3, 2))])
    )
    assert (
        list(nn.state_dict(named)) == list(t_named.state_dict()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    )
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(lambda x: x)
    with pytest.raises(IndexError):
        seq[4]
    assert repr(seq.eval()) == repr(
        torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2), torch.nn.Sigmoid())
    )


# ------------------------------------------------------------------------------- state dicts
def test_user_module_subclass_with_torch_attribute_names(torch, x64):
    """A user's own nnx.Module subclass (torch style, nested, with a list of layers) has torch's keys."""
    tnn = torch.nn

    class TBlock(tnn.Module):
        def __init__(self):
            super().__init__()
            self.fc = tnn.Linear(4, 4)
            self.layers = tnn.ModuleList([tnn.Linear(4, 4), tnn.Linear(4, 2)])

        def forward(self, x):
            x = torch.relu(self.fc(x)) + x
            for layer in self.layers:
                x = layer(x)
            return x

    class Block(nn.Module):
        def __init__(self, rngs=None):
            self.fc = nn.Linear(4, 4, dtype=jnp.float64, rngs=rngs)
            self.layers = nnx.List(
                [nn.Linear(4, 4, dtype=jnp.float64, rngs=rngs), nn.Linear(4, 2, dtype=jnp.float64, rngs=rngs)]
            )

        def forward(self, x):
            x = F.relu(self.fc(x)) + x
            for layer in self.layers:
                x = layer(x)
            return x

    t, f = TBlock().double(), Block(nnx.Rngs(0))
    assert list(nn.state_dict(f)) == list(t.state_dict())
    compare_module(t, f, [torch.randn(3, 4, dtype=torch.float64)], torch=torch, rtol=1e-12, atol=1e-14)


def test_load_state_dict_errors_are_torch_like():
    model = fnnet.models.mlp((6, 5, 3))
    sd = nn.state_dict(model)
    bad = dict(sd, **{"0.weight": np.zeros((5, 7), np.float32)})
    with pytest.raises(ValueError, match=r"size mismatch for 0\.weight: .*\(5, 7\).*\(5, 6\)"):
        nn.load_state_dict(model, bad)
    with pytest.raises(RuntimeError, match=r"dtype mismatch for 0\.bias: .*float64.*float32"):
        nn.load_state_dict(model, dict(sd, **{"0.bias": sd["0.bias"].astype(np.float64)}))
    missing = {k: v for k, v in sd.items() if k != "2.bias"}
    with pytest.raises(ValueError, match='Missing key\\(s\\) in state_dict: "2.bias"'):
        nn.load_state_dict(model, missing)
    extra = dict(sd, **{"fc9.weight": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match='Unexpected key\\(s\\) in state_dict: "fc9.weight"'):
        nn.load_state_dict(model, extra)
    result = nn.load_state_dict(model, {**missing, "fc9.weight": np.zeros(3, np.float32)}, strict=False)
    assert result == nn.IncompatibleKeys(missing_keys=["2.bias"], unexpected_keys=["fc9.weight"])
    # nothing was changed by the failed loads above
    for k, v in nn.state_dict(model).items():
        np.testing.assert_array_equal(v, sd[k])


def test_load_state_dict_torch_message_text_matches(torch):
    """The missing/unexpected lines read exactly as torch's own."""
    t = torch.nn.Sequential(torch.nn.Linear(3, 2))
    f = nn.Sequential(nn.Linear(3, 2))
    sd = {"0.weight": t.state_dict()["0.weight"], "9.bias": t.state_dict()["0.bias"]}
    with pytest.raises(RuntimeError) as theirs:
        t.load_state_dict(sd)
    with pytest.raises(RuntimeError) as ours:
        nn.load_state_dict(f, sd)
    assert str(ours.value) == str(theirs.value)


def test_to_double_float_cast_params(x64):
    model = fnnet.models.mlp((3, 4, 2))
    model.double()
    assert all(v.dtype == np.float64 for v in nn.state_dict(model).values())
    model.float()
    assert all(v.dtype == np.float32 for v in nn.state_dict(model).values())


# -------------------------------------------------------------------------------- loss modules
@pytest.mark.parametrize(
    "name,args,kwargs",
    [
        ("MSELoss", (), {}),
        ("MSELoss", (), {"reduction": "sum"}),
        ("L1Loss", (None, False), {}),  # legacy reduce=False -> reduction "none", as torch maps it
        ("SmoothL1Loss", (), {"beta": 0.5}),
        ("HuberLoss", ("sum", 2.0), {}),
        ("KLDivLoss", (), {"reduction": "batchmean", "log_target": True}),
    ],
)
def test_pointwise_loss_modules_match_torch(name, args, kwargs, torch, x64):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    with pytest.warns(UserWarning) if any(a is not None for a in args[:2]) and name != "HuberLoss" else _no_warning():
        ours = getattr(nn, name)(*args, **kwargs)
    with pytest.warns(UserWarning) if any(a is not None for a in args[:2]) and name != "HuberLoss" else _no_warning():
        theirs = getattr(torch.nn, name)(*args, **kwargs)
    np.testing.assert_allclose(
        ours(jnp.asarray(x), jnp.asarray(y)), theirs(torch.from_numpy(x), torch.from_numpy(y)).numpy(), rtol=1e-12
    )


def test_weighted_loss_modules_keep_weight_as_buffer(torch, x64):
    rng = np.random.default_rng(1)
    w = rng.random(5)
    logits, target = rng.normal(size=(6, 5)), rng.integers(0, 5, 6)
    ours = nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)
    theirs = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(w), label_smoothing=0.1)
    assert list(nn.state_dict(ours)) == list(theirs.state_dict()) == ["weight"]
    assert list(nn.state_dict(nn.CrossEntropyLoss())) == list(torch.nn.CrossEntropyLoss().state_dict()) == []
    np.testing.assert_allclose(
        ours(jnp.asarray(logits), jnp.asarray(target)),
        theirs(torch.from_numpy(logits), torch.from_numpy(target)).numpy(),
        rtol=1e-12,
    )
    pw = rng.random(5)
    bce = nn.BCEWithLogitsLoss(pos_weight=pw)
    assert list(nn.state_dict(bce)) == list(torch.nn.BCEWithLogitsLoss(pos_weight=torch.from_numpy(pw)).state_dict())


@pytest.mark.parametrize(
    "name",
    [
        "MSELoss",
        "L1Loss",
        "SmoothL1Loss",
        "HuberLoss",
        "BCELoss",
        "BCEWithLogitsLoss",
        "CrossEntropyLoss",
        "NLLLoss",
        "KLDivLoss",
    ],
)
def test_loss_module_signatures_are_torch(name, torch):
    """Constructor arguments in torch's order with torch's defaults (positional use works the same)."""
    theirs = inspect.signature(getattr(torch.nn, name).__init__).parameters
    module = getattr(nn, name)
    expected = [p for p in theirs if p != "self"]
    made = module(*[theirs[p].default for p in expected if theirs[p].kind == inspect.Parameter.POSITIONAL_OR_KEYWORD])
    for p in expected:
        if p in ("size_average", "reduce"):
            continue
        value = getattr(made, p)
        assert (value is None) if theirs[p].default is None else value == theirs[p].default, p


def test_functional_namespace_has_torch_names():
    for name in [
        "linear",
        "relu",
        "sigmoid",
        "tanh",
        "softmax",
        "log_softmax",
        "dropout",
        "cross_entropy",
        "mse_loss",
        "nll_loss",
        "kl_div",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "l1_loss",
        "smooth_l1_loss",
        "huber_loss",
    ]:
        assert callable(getattr(F, name)), name
    assert not hasattr(fnnet, "losses")  # one way to spell each thing before 1.0


def test_load_state_dict_copies_the_torch_tensors(torch, x64):
    """The loaded arrays are copies: torch's in-place updates afterwards (a training forward, an optimizer
    step) leave them unchanged. JAX on a CPU can adopt a NumPy buffer (here a view of torch's memory)
    without copying it; it did now and then under the full test suite (tests/test_fused.py's torch
    comparisons saw num_batches_tracked at 1 before fnnet's forward in about 1 run of 4), never in this
    test alone: the 200 layers give it the chance."""
    for _ in range(200):
        t_bn = torch.nn.BatchNorm2d(3).double()
        f_bn = nn.BatchNorm2d(3, dtype=jnp.float64)
        nn.load_state_dict(f_bn, t_bn.state_dict())
        t_bn(torch.randn(4, 3, 5, 5, dtype=torch.float64))  # in place: running stats, num_batches_tracked
        with torch.no_grad():
            t_bn.weight.add_(1.0)
        assert int(f_bn.num_batches_tracked.get_value()) == 0
        np.testing.assert_array_equal(np.asarray(f_bn.running_mean.get_value()), np.zeros(3))
        np.testing.assert_array_equal(np.asarray(f_bn.weight.get_value()), np.ones(3))
