"""fnnet.models against torch: the tutorials' networks built from fnnet.nn, nn.Linear's initialisation,
forward passes with torch's weights, and per-example dropout in the apparel MLP."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import fnnet
from fnnet import nn
from fnnet.models import BinaryClassifier, HelloNet, mlp


def _torch_modules(torch):
    """The tutorials' torch modules, named as their authors named them, with fnnet's twin builders."""
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
            x = self.relu(self.hidden2(self.relu(self.hidden1(x))))
            return self.sigmoid(self.output(x))

    return {
        "hello": (Net, lambda dt: HelloNet(dt), 1),
        "binary": (Network, lambda dt: BinaryClassifier(dtype=dt), 5),
        "mlp": (
            lambda: tnn.Sequential(tnn.Linear(6, 7), tnn.ReLU(), tnn.Linear(7, 5), tnn.ReLU(), tnn.Linear(5, 3)),
            lambda dt: mlp((6, 7, 5, 3), dtype=dt),
            6,
        ),
    }


def _linears(model):
    return [m for _, m in nnx.iter_modules(model) if isinstance(m, nn.Linear)]


# ------------------------------------------------------------------------------ structure
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_mlp_defaults_are_the_apparel_network(torch, dropout):
    """``mlp()`` is the tutorial's ``Sequential(Linear(784, 500), ReLU(), Linear(500, 10))`` (with a
    ``Dropout`` after the ReLU when asked): torch's repr, keys and shapes."""
    tnn = torch.nn
    layers = [tnn.Linear(784, 500), tnn.ReLU()] + ([tnn.Dropout(dropout)] if dropout else []) + [tnn.Linear(500, 10)]
    twin = tnn.Sequential(*layers)
    model = mlp(dropout=dropout)
    assert isinstance(model, nn.Sequential)
    assert repr(model) == repr(twin)
    sd = nn.state_dict(model)
    assert {k: v.shape for k, v in sd.items()} == {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert list(sd) == (
        ["0.weight", "0.bias", "3.weight", "3.bias"] if dropout else ["0.weight", "0.bias", "2.weight", "2.bias"]
    )


# ------------------------------------------------------------------------------ initialisation
@pytest.mark.parametrize("fan_in,features", [(784, 500), (5, 8), (5, 4000)])
def test_init_bounds_and_statistics_match_nn_linear(torch, fan_in, features):
    (layer,) = _linears(mlp((fan_in, features), rngs=nnx.Rngs(0)))
    kernel, bias = np.asarray(layer.weight.get_value()), np.asarray(layer.bias.get_value())
    assert kernel.shape == (features, fan_in) and bias.shape == (features,)  # torch's layout
    torch.manual_seed(0)
    lin = torch.nn.Linear(fan_in, features)
    bound = 1.0 / np.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) and the bias both use 1/sqrt(fan_in)
    for sample in (kernel, bias, lin.weight.detach().numpy(), lin.bias.detach().numpy()):
        assert np.abs(sample).max() <= bound
        if sample.size >= 500:
            # n >= 500 draws of U(-b, b): the max exceeds 0.95 b except with probability 0.95**500;
            # the std is b/sqrt(3), and a sample std of n uniform draws has a relative standard
            # error of about sqrt(0.8 / n) / 2, so 6 standard errors cannot fail by chance.
            assert np.abs(sample).max() > 0.95 * bound
            tol = 6 * np.sqrt(0.8 / sample.size) / 2
            np.testing.assert_allclose(sample.std(), bound / np.sqrt(3), rtol=tol)
            assert abs(sample.mean()) < 6 * bound / np.sqrt(3 * sample.size)


@pytest.mark.parametrize(
    "build", [lambda r: HelloNet(rngs=r), lambda r: BinaryClassifier(rngs=r), lambda r: mlp((300, 7, 3), rngs=r)]
)
def test_every_layer_uses_nn_linears_init(build):
    """Every Linear of every tutorial network: U(+-1/sqrt(fan_in)) weights and (nonzero) biases."""
    for layer in _linears(build(nnx.Rngs(0))):
        bound = 1 / np.sqrt(layer.in_features)
        weight, bias = np.asarray(layer.weight.get_value()), np.asarray(layer.bias.get_value())
        assert np.abs(weight).max() <= bound and np.abs(bias).max() <= bound
        assert np.any(bias != 0)


def test_init_is_a_function_of_the_rngs():
    a, b, c = (nn.state_dict(mlp((3, 4, 2), rngs=nnx.Rngs(s))) for s in (1, 1, 2))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], c["0.weight"])
    d = nn.state_dict(mlp((3, 4, 2), rngs=1))  # an int seed is nnx.Rngs(seed)
    assert all(np.array_equal(a[k], d[k]) for k in a)


def test_models_take_a_dtype(x64):
    for model in (HelloNet(jnp.float64), BinaryClassifier(dtype=jnp.float64), mlp((3, 2), dtype=jnp.float64)):
        assert {v.dtype for v in nn.state_dict(model).values()} == {np.dtype(np.float64)}


def test_published_hello_weights_are_rounded_in_the_models_dtype(x64):
    """float64 holds float64(1.58), not float32(1.58) widened (the torch test runs ``fill_`` in float64)."""
    sd = nn.state_dict(HelloNet.published(jnp.float64))
    assert [float(v.item()) for v in sd.values()] == [1.58, -0.14, 2.45, -0.11]
    sd32 = nn.state_dict(HelloNet.published())
    assert [v.item() for v in sd32.values()] == [float(np.float32(v)) for v in (1.58, -0.14, 2.45, -0.11)]


@pytest.mark.parametrize(
    "build,error,message",
    [
        (lambda: mlp(widths=(784,)), ValueError, "widths must be at least two positive ints (input first), got (784,)"),
        (
            lambda: mlp(widths=(10, 0)),
            ValueError,
            "widths must be at least two positive ints (input first), got (10, 0)",
        ),
        (lambda: mlp(widths=(10, 2.0)), ValueError, "widths must be at least two positive ints"),
        (lambda: mlp(dropout=1.5), ValueError, "dropout probability has to be between 0 and 1, but got 1.5"),
        (lambda: mlp(dropout=-0.1), ValueError, "dropout probability has to be between 0 and 1, but got -0.1"),
        (lambda: mlp(dtype=jnp.int32), TypeError, "dtype must be a floating dtype, got int32"),
        (lambda: mlp(rngs="seed"), TypeError, "rngs must be an nnx.Rngs, an int seed or None, got str"),
    ],
)
def test_invalid_arguments_raise(build, error, message):
    with pytest.raises(error) as info:
        build()
    assert message in str(info.value)


def test_float64_model_without_x64_raises():
    with pytest.raises(ValueError, match="jax_enable_x64"):
        mlp((3, 2), dtype=jnp.float64)


# ------------------------------------------------------------------------------ forward vs torch
@pytest.mark.parametrize("name", ["hello", "binary", "mlp"])
@pytest.mark.parametrize("dtype,tol", [("float32", 1e-6), ("float64", 1e-12)])
def test_forward_equals_torch_with_the_same_weights(torch, request, name, dtype, tol):
    if dtype == "float64":
        request.getfixturevalue("x64")
    torch.manual_seed(3)
    build_torch, build, n_in = _torch_modules(torch)[name]
    net = build_torch().to(getattr(torch, dtype))
    model = build(dtype)
    fnnet.nn.load_state_dict(model, net.state_dict())
    x = np.random.default_rng(0).normal(size=(9, n_in)).astype(dtype)
    graphdef, state = nnx.split(model)
    ours = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, jnp.asarray(x))
    assert ours.dtype == np.dtype(dtype)
    expected = net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(np.asarray(model(jnp.asarray(x))), expected, rtol=tol, atol=tol)  # eagerly too


# ------------------------------------------------------------------------------ dropout
def _keys(n: int, typed: bool = True) -> jax.Array:
    keys = jax.random.split(jax.random.key(42), n)
    return keys if typed else jax.random.key_data(keys)


def _forward_with_keys(model):
    """``(x, keys) -> output`` in training mode with one dropout key per example, as the training
    core runs the model (``fnnet.nn.module.bind_example_keys`` on a merged copy, inside ``jit``)."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(x, keys):
        m = nnx.merge(graphdef, state, copy=True)
        nn.module.bind_example_keys(m, keys)
        return m(x)

    return forward


def test_dropout_masks_depend_only_on_each_examples_key():
    apply = _forward_with_keys(mlp((6, 32, 16, 3), dropout=0.5, rngs=nnx.Rngs(1)))
    x = jax.random.normal(jax.random.key(0), (10, 6))
    keys = _keys(10)
    whole = np.asarray(apply(x, keys))
    split = np.concatenate([apply(x[:3], keys[:3]), apply(x[3:], keys[3:])])
    # Same masks, but XLA's matmul may round differently for another batch size, hence 1e-6 (a
    # different mask changes an output by ~0.1).
    np.testing.assert_allclose(split, whole, rtol=1e-6, atol=1e-6)
    perm = np.array([7, 2, 9, 0, 1, 3, 8, 4, 6, 5])  # order within a batch does not matter either
    np.testing.assert_allclose(np.asarray(apply(x[perm], keys[perm])), whole[perm], rtol=1e-6, atol=1e-6)
    raw = apply(x, _keys(10, typed=False))  # (batch, 2) uint32 keys
    np.testing.assert_array_equal(np.asarray(raw), whole)
    other = apply(x, jax.random.split(jax.random.key(43), 10))
    assert not np.allclose(np.asarray(other), whole)


def test_dropout_is_torchs_inverted_dropout_with_fold_in_masks(torch):
    """Same masks applied by hand in torch: ``h * mask / (1 - p)`` after each hidden ReLU. Random
    layer ``i`` (in graph order) draws example ``b``'s mask from ``fold_in(fold_in(keys[b], i), 0)``."""
    rate = 0.3
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 40), torch.nn.ReLU(), torch.nn.Linear(40, 30), torch.nn.ReLU(), torch.nn.Linear(30, 4)
    )
    model = mlp((6, 40, 30, 4), dropout=rate)
    fnnet.nn.load_state_dict(model, {k.replace("2.", "3.").replace("4.", "6."): v for k, v in net.state_dict().items()})
    x = np.random.default_rng(1).normal(size=(64, 6)).astype(np.float32)
    keys = _keys(64)

    def mask(i, width):
        draw = jax.vmap(
            lambda k: jax.random.bernoulli(jax.random.fold_in(jax.random.fold_in(k, i), 0), 1 - rate, (width,))
        )
        return np.asarray(jax.jit(draw)(keys))

    masks = [mask(0, 40), mask(1, 30)]
    for m in masks:  # the masks really drop about `rate` of the units
        assert abs(1 - m.mean() - rate) < 0.05
    h = torch.from_numpy(x)
    for i in range(2):
        h = torch.relu(net[2 * i](h)) * (torch.from_numpy(masks[i].astype(np.float32)) / (1 - rate))
    expected = net[4](h).detach().numpy()
    ours = _forward_with_keys(model)(jnp.asarray(x), keys)
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-6, atol=1e-6)


def test_dropout_off_in_eval_mode_or_at_rate_zero():
    x = jax.random.normal(jax.random.key(0), (5, 4))
    plain_model = mlp((4, 8, 2), rngs=nnx.Rngs(1))
    plain = np.asarray(plain_model(x))
    dropped = mlp((4, 8, 2), dropout=0.5)
    fnnet.nn.load_state_dict(dropped, {k.replace("2.", "3."): v for k, v in nn.state_dict(plain_model).items()})
    assert not np.allclose(np.asarray(dropped(x)), plain)  # training mode: masks
    np.testing.assert_array_equal(np.asarray(dropped.eval()(x)), plain)
    at_zero = _forward_with_keys(mlp((4, 8, 2), dropout=0.0, rngs=nnx.Rngs(1)))(x, _keys(5))
    np.testing.assert_array_equal(np.asarray(at_zero), plain)


def test_dropout_keys_must_match_the_batch():
    apply = _forward_with_keys(mlp((4, 8, 2), dropout=0.5))
    with pytest.raises(ValueError, match=r"4 per-example keys given for an input of shape \(5, 8\)"):
        apply(jnp.ones((5, 4)), _keys(4))
