"""fnnet.models against torch: nn.Linear's initialisation, forward passes, per-example dropout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnnet.interop import torch_to_flax
from fnnet.models import (
    MLP,
    BinaryClassifier,
    HelloNet,
    MLPModule,
    dense,
    torch_bias_init,
    torch_kernel_init,
)


def _torch_modules(torch):
    """The tutorials' torch modules, named as their authors named them."""
    nn = torch.nn

    class Net(nn.Module):  # hello world
        def __init__(self):
            super().__init__()
            self.hidden_layer = nn.Linear(1, 1)
            self.output_layer = nn.Linear(1, 1)

        def forward(self, x):
            return torch.sigmoid(self.output_layer(torch.sigmoid(self.hidden_layer(x))))

    class Network(nn.Module):  # fundamentals
        def __init__(self):
            super().__init__()
            self.hidden1 = nn.Linear(5, 8)
            self.hidden2 = nn.Linear(8, 4)
            self.relu = nn.ReLU()
            self.output = nn.Linear(4, 1)
            self.sigmoid = nn.Sigmoid()

        def forward(self, x):
            x = self.relu(self.hidden2(self.relu(self.hidden1(x))))
            return self.sigmoid(self.output(x))

    return {
        "hello": (Net, HelloNet(), 1),
        "binary": (Network, BinaryClassifier(), 5),
        "mlp": (
            lambda: nn.Sequential(nn.Linear(6, 7), nn.ReLU(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3)),
            MLP((7, 5, 3)),
            6,
        ),
    }


# ------------------------------------------------------------------------------ initialisation
@pytest.mark.parametrize("fan_in,features", [(784, 500), (5, 8), (5, 4000)])
def test_torch_init_bounds_and_statistics_match_nn_linear(torch, fan_in, features):
    k_kernel, k_bias = jax.random.split(jax.random.key(0))
    kernel = np.asarray(torch_kernel_init(k_kernel, (fan_in, features)))
    bias = np.asarray(torch_bias_init(fan_in)(k_bias, (features,)))
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


@pytest.mark.parametrize("init", ["torch", "flax"])
@pytest.mark.parametrize("name", ["hello", "binary", "mlp"])
def test_modules_use_the_chosen_init(init, name):
    """Every Dense layer: torch's U(+-1/sqrt(fan_in)) with a nonzero bias, or Flax's zero bias."""
    model, n_in = {
        "hello": (HelloNet(init_scheme=init), 1),
        "binary": (BinaryClassifier(init_scheme=init), 5),
        "mlp": (MLP((300, 7), init=init), 400),
    }[name]
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, n_in)))["params"]
    for layer_name, layer in params.items():
        bound = 1 / np.sqrt(layer["kernel"].shape[0])
        kernel, bias = np.asarray(layer["kernel"]), np.asarray(layer["bias"])
        if init == "torch":
            assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound, layer_name
            assert np.any(bias != 0), layer_name
        else:
            np.testing.assert_array_equal(bias, 0.0)  # Flax's zeros
    if name == "mlp" and init == "flax":
        # lecun_normal: std 1/sqrt(fan_in); 120,000 draws, so 2% is more than 10 standard errors
        np.testing.assert_allclose(np.asarray(params["Dense_0"]["kernel"]).std(), 1 / np.sqrt(400), rtol=0.02)


def test_init_is_a_function_of_the_key():
    model = MLP((4, 2))
    init_fn = jax.jit(model.init)
    x = jnp.zeros((1, 3))
    a, b, c = (init_fn(k, x) for k in (jax.random.key(1), jax.random.key(1), jax.random.key(2)))
    assert jax.tree.all(jax.tree.map(lambda u, v: bool(jnp.array_equal(u, v)), a, b))
    assert not jnp.array_equal(a["params"]["Dense_0"]["kernel"], c["params"]["Dense_0"]["kernel"])


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: MLP(init="kaiming"), "init must be one of ('torch', 'flax'), got 'kaiming'"),
        (lambda: HelloNet(init_scheme="xavier"), "init must be one of ('torch', 'flax'), got 'xavier'"),
        (lambda: BinaryClassifier(init_scheme=""), "init must be one of"),
        (lambda: MLP(features=()), "features must name at least one layer width"),
        (lambda: MLP(features=(10, 0)), "features must be positive ints, got (10, 0)"),
        (lambda: MLP(dropout_rate=1.0), "dropout_rate must be in [0, 1), got 1.0"),
        (lambda: MLP(dropout_rate=-0.1), "dropout_rate must be in [0, 1), got -0.1"),
        (lambda: torch_bias_init(0), "fan_in must be a positive int, got 0"),
        (lambda: dense(3, 4, init="he"), "init must be one of"),
    ],
)
def test_invalid_arguments_raise_value_error(build, message):
    with pytest.raises(ValueError, match=None) as info:
        build()
    assert message in str(info.value)


def test_mlp_factory_builds_the_module_with_the_apparel_defaults():
    model = MLP()
    assert isinstance(model, MLPModule)
    assert (model.features, model.init_scheme, model.dropout_rate) == ((500, 10), "torch", 0.0)
    params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((2, 784)))["params"]
    assert list(params) == ["Dense_0", "Dense_1"]
    assert params["Dense_0"]["kernel"].shape == (784, 500) and params["Dense_1"]["kernel"].shape == (500, 10)


# ------------------------------------------------------------------------------ forward vs torch
@pytest.mark.parametrize("name", ["hello", "binary", "mlp"])
@pytest.mark.parametrize("dtype,tol", [("float32", 1e-6), ("float64", 1e-12)])
def test_forward_equals_torch_with_the_same_weights(torch, request, name, dtype, tol):
    if dtype == "float64":
        request.getfixturevalue("x64")
    torch.manual_seed(3)
    build_torch, model, n_in = _torch_modules(torch)[name]
    net = build_torch().to(getattr(torch, dtype))
    x = np.random.default_rng(0).normal(size=(9, n_in)).astype(dtype)
    template = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, n_in)))
    params = torch_to_flax(net.state_dict(), template)
    ours = jax.jit(model.apply)(params, jnp.asarray(x))
    assert ours.dtype == np.dtype(dtype)
    expected = net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=tol, atol=tol)


# ------------------------------------------------------------------------------ dropout
def _keys(n: int, typed: bool = True) -> jax.Array:
    keys = jax.random.split(jax.random.key(42), n)
    return keys if typed else jax.random.key_data(keys)


def test_dropout_masks_depend_only_on_each_examples_key():
    model = MLP((32, 16, 3), dropout_rate=0.5)
    apply = jax.jit(model.apply)
    x = jax.random.normal(jax.random.key(0), (10, 6))
    params = jax.jit(model.init)(jax.random.key(1), x[:1])
    keys = _keys(10)
    whole = np.asarray(apply(params, x, dropout_keys=keys))
    split = np.concatenate([apply(params, x[:3], dropout_keys=keys[:3]), apply(params, x[3:], dropout_keys=keys[3:])])
    # Same masks, but XLA's matmul may round differently for another batch size, hence 1e-6 (a
    # different mask changes an output by ~0.1).
    np.testing.assert_allclose(split, whole, rtol=1e-6, atol=1e-6)
    perm = np.array([7, 2, 9, 0, 1, 3, 8, 4, 6, 5])  # order within a batch does not matter either
    np.testing.assert_allclose(
        np.asarray(apply(params, x[perm], dropout_keys=keys[perm])), whole[perm], rtol=1e-6, atol=1e-6
    )
    raw = apply(params, x, dropout_keys=_keys(10, typed=False))  # (batch, 2) uint32 keys
    np.testing.assert_array_equal(np.asarray(raw), whole)
    assert not np.allclose(np.asarray(apply(params, x)), whole)
    other = apply(params, x, dropout_keys=jax.random.split(jax.random.key(43), 10))
    assert not np.allclose(np.asarray(other), whole)


def test_dropout_is_torchs_inverted_dropout_with_fold_in_masks(torch):
    """Same masks applied by hand in torch: ``h * mask / (1 - p)`` after each hidden ReLU."""
    rate = 0.3
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 40), torch.nn.ReLU(), torch.nn.Linear(40, 30), torch.nn.ReLU(), torch.nn.Linear(30, 4)
    )
    model = MLP((40, 30, 4), dropout_rate=rate)
    params = torch_to_flax(net.state_dict(), jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 6))))
    x = np.random.default_rng(1).normal(size=(64, 6)).astype(np.float32)
    keys = _keys(64)
    masks = [
        np.asarray(
            jax.jit(jax.vmap(lambda k, i=i, w=w: jax.random.bernoulli(jax.random.fold_in(k, i), 1 - rate, (w,))))(keys)
        )
        for i, w in enumerate((40, 30))
    ]
    for m in masks:  # the masks really drop about `rate` of the units
        assert abs(1 - m.mean() - rate) < 0.05
    h = torch.from_numpy(x)
    for i in range(2):
        h = torch.relu(net[2 * i](h)) * (torch.from_numpy(masks[i].astype(np.float32)) / (1 - rate))
    expected = net[4](h).detach().numpy()
    ours = jax.jit(model.apply)(params, jnp.asarray(x), dropout_keys=keys)
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-6, atol=1e-6)


def test_dropout_off_without_keys_or_at_rate_zero():
    x = jax.random.normal(jax.random.key(0), (5, 4))
    params = jax.jit(MLP((8, 2)).init)(jax.random.key(1), x)
    plain = np.asarray(jax.jit(MLP((8, 2)).apply)(params, x))
    np.testing.assert_array_equal(np.asarray(jax.jit(MLP((8, 2), dropout_rate=0.5).apply)(params, x)), plain)
    at_zero = jax.jit(MLP((8, 2), dropout_rate=0.0).apply)(params, x, dropout_keys=_keys(5))
    np.testing.assert_array_equal(np.asarray(at_zero), plain)


@pytest.mark.parametrize(
    "keys,expected",
    [
        (lambda: _keys(4), "dropout_keys must have shape (5,) (one key per example), got (4,)"),
        (lambda: _keys(5, typed=False)[:, :1], "dropout_keys must have shape (5, 2)"),
    ],
)
def test_dropout_keys_must_match_the_batch(keys, expected):
    model, x = MLP((8, 2), dropout_rate=0.5), jnp.ones((5, 4))
    params = jax.eval_shape(model.init, jax.random.key(0), x)
    with pytest.raises(ValueError) as info:
        model.apply(params, x, dropout_keys=keys())
    assert expected in str(info.value)


def test_mlp_rejects_inputs_that_are_not_a_batch_of_vectors():
    model = MLP((8, 2))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, in_features\), got shape \(4,\)"):
        model.init(jax.random.key(0), jnp.ones((4,)))
