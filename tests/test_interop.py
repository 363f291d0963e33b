"""fnnet.interop: torch state_dict <-> Flax params, bit-exact, with named errors."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnnet.interop import flax_layers, flax_to_torch, torch_to_flax
from fnnet.models import MLP, BinaryClassifier


def _template(model, n_in: int) -> dict:
    """Shapes only: no weights are computed."""
    return jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, n_in)))


def _sequential(torch, widths, dtype="float32"):
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(widths) - 2 else [])
    return torch.nn.Sequential(*layers).to(getattr(torch, dtype))


def _assert_same_bits(state: dict, torch_state) -> None:
    assert list(state) == list(torch_state)
    for k, v in torch_state.items():
        ours = np.asarray(state[k])
        assert ours.dtype == v.detach().numpy().dtype, k
        np.testing.assert_array_equal(ours.view(np.uint8), v.detach().numpy().view(np.uint8), err_msg=k)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sequential_round_trip_is_bit_exact_and_keeps_dtype(torch, request, dtype):
    if dtype == "float64":
        request.getfixturevalue("x64")
    torch.manual_seed(0)
    net = _sequential(torch, (6, 7, 5, 3), dtype)
    params = torch_to_flax(net.state_dict(), _template(MLP((7, 5, 3)), 6))
    kernel = params["params"]["Dense_1"]["kernel"]
    assert kernel.dtype == np.dtype(dtype) and kernel.shape == (7, 5)
    np.testing.assert_array_equal(np.asarray(kernel), net[2].weight.detach().numpy().T)
    back = flax_to_torch(params, prefixes=["0", "2", "4"])
    _assert_same_bits(back, net.state_dict())
    fresh = _sequential(torch, (6, 7, 5, 3), dtype)
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})
    _assert_same_bits(fresh.state_dict(), net.state_dict())


def test_named_layers_pair_by_name_whatever_the_order(torch):
    class Network(torch.nn.Module):  # attributes declared in another order than they are called
        def __init__(self):
            super().__init__()
            self.output = torch.nn.Linear(4, 1)
            self.hidden2 = torch.nn.Linear(8, 4)
            self.hidden1 = torch.nn.Linear(5, 8)

    torch.manual_seed(1)
    net = Network()
    params = torch_to_flax(net.state_dict(), _template(BinaryClassifier(), 5))
    assert list(params["params"]) == ["hidden1", "hidden2", "output"]
    for name in ("hidden1", "hidden2", "output"):
        np.testing.assert_array_equal(
            np.asarray(params["params"][name]["kernel"]), getattr(net, name).weight.detach().numpy().T
        )
    _assert_same_bits({k: flax_to_torch(params)[k] for k in net.state_dict()}, net.state_dict())


def test_sorted_templates_keep_dense_n_in_numeric_order(torch):
    """jax tree functions sort dict keys (Dense_10 before Dense_2); auto names still pair by n."""
    widths = (3,) + tuple(range(4, 16))  # 12 Linear layers
    torch.manual_seed(2)
    net = _sequential(torch, widths)
    template = jax.tree.map(lambda a: a, _template(MLP(widths[1:]), 3))
    assert list(template["params"])[2] == "Dense_10"
    params = torch_to_flax(net.state_dict(), template)
    for i in range(12):
        np.testing.assert_array_equal(
            np.asarray(params["params"][f"Dense_{i}"]["bias"]), net[2 * i].bias.detach().numpy()
        )
    prefixes = [str(2 * i) for i in range(12)]
    _assert_same_bits(flax_to_torch(params, prefixes=prefixes), net.state_dict())


def test_explicit_layer_order_and_unwrapped_params(torch):
    class Reversed(nn.Module):  # called b then a; the torch module has them as a then b
        @nn.compact
        def __call__(self, x):
            return nn.Dense(2, name="a")(nn.Dense(3, name="b")(x))

    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    template = _template(Reversed(), 4)["params"]  # no {"params": ...} wrapper
    params = torch_to_flax(net.state_dict(), template, layers=["b", "a"])
    assert set(params) == {"a", "b"}
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    expected = net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(np.asarray(Reversed().apply({"params": params}, x)), expected, rtol=1e-6, atol=1e-6)
    _assert_same_bits(flax_to_torch(params, prefixes=["0", "1"], layers=["b", "a"]), net.state_dict())


def test_numpy_arrays_and_layers_without_bias(torch):
    class NoBias(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(2, use_bias=False, name="proj")(x)

    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    params = torch_to_flax({"proj.weight": weight}, _template(NoBias(), 3))
    np.testing.assert_array_equal(np.asarray(params["params"]["proj"]["kernel"]), weight.T)
    assert flax_to_torch(params).keys() == {"proj.weight"}
    lin = torch.nn.Linear(3, 2, bias=False)  # a bare Linear: keys "weight" (and "bias"), prefix ""
    bare = flax_to_torch(params, prefixes=[""])
    assert list(bare) == ["weight"]
    lin.load_state_dict({k: torch.from_numpy(v) for k, v in bare.items()})
    np.testing.assert_array_equal(lin.weight.detach().numpy(), weight)
    again = torch_to_flax(lin.state_dict(), _template(NoBias(), 3))
    np.testing.assert_array_equal(np.asarray(again["params"]["proj"]["kernel"]), weight.T)


def _linear_sd(torch, *shapes, bias=True, dtype="float32"):
    sd = {}
    for i, (out, inp) in enumerate(shapes):
        lin = torch.nn.Linear(inp, out, bias=bias).to(getattr(torch, dtype))
        sd.update({f"{2 * i}.{k}": v for k, v in lin.state_dict().items()})
    return sd


@pytest.mark.parametrize(
    "make_sd,message",
    [
        (
            lambda t: _linear_sd(t, (7, 6), (3, 7)),
            "state_dict has 2 Linear layers ['0', '2'] but the Flax template has 3 Dense layers",
        ),
        (
            lambda t: _linear_sd(t, (7, 4), (5, 7), (3, 5)),
            "state_dict['0.weight'] has shape (7, 4) but Flax layer 'Dense_0' has kernel shape (6, 7), "
            "so it needs a torch weight of shape (7, 6) (out, in)",
        ),
        (
            lambda t: _linear_sd(t, (7, 6), (5, 7), (3, 4)),
            "state_dict['4.weight'] has shape (3, 4) but Flax layer 'Dense_2' has kernel shape (5, 3)",
        ),
        (
            lambda t: {**_linear_sd(t, (7, 6), (5, 7), (3, 5)), "2.bias": t.zeros(6)},
            "state_dict['2.bias'] has shape (6,) but Flax layer 'Dense_1' has bias shape (5,)",
        ),
        (
            lambda t: _linear_sd(t, (7, 6), (5, 7), (3, 5), bias=False),
            "Flax layer 'Dense_0' has bias but state_dict has no '0.bias'",
        ),
        (
            lambda t: {k: v for k, v in _linear_sd(t, (7, 6), (5, 7), (3, 5)).items() if k != "2.weight"},
            "state_dict has '2.bias' but no '2.weight'",
        ),
        (
            lambda t: {**_linear_sd(t, (7, 6), (5, 7), (3, 5)), "1.running_mean": t.zeros(7)},
            "state_dict key '1.running_mean' is not '<prefix>.weight' or '<prefix>.bias' of an nn.Linear",
        ),
        (
            lambda t: _linear_sd(t, (7, 6), (5, 7), (3, 5), dtype="float64"),
            "state_dict['0.weight'] is float64 but jax_enable_x64 is off",
        ),
    ],
)
def test_mismatches_raise_value_error_naming_key_and_shapes(torch, make_sd, message):
    with pytest.raises(ValueError) as info:
        torch_to_flax(make_sd(torch), _template(MLP((7, 5, 3)), 6))
    assert message in str(info.value)


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda p: flax_to_torch(p, prefixes=["0", "2"]),
            "prefixes ['0', '2'] name 2 layers but the Flax params have 3 Dense layers",
        ),
        (lambda p: flax_to_torch(p, prefixes=["0", "0", "4"]), "prefixes must be distinct"),
        (
            lambda p: flax_to_torch(p, layers=["Dense_0", "Dense_9", "Dense_1"]),
            "layers ['Dense_9'] are not Dense layers of the template",
        ),
        (lambda p: flax_to_torch({"params": {"scale": jnp.ones(3)}}), "Flax param 'scale' is not inside a Dense layer"),
        (
            lambda p: flax_to_torch({"params": {"norm": {"kernel": jnp.ones((2, 2)), "scale": jnp.ones(2)}}}),
            "Flax layer 'norm' has params ['scale'] besides kernel/bias",
        ),
    ],
)
def test_flax_to_torch_errors(call, message):
    params = _template(MLP((7, 5, 3)), 6)
    with pytest.raises(ValueError) as info:
        call(params)
    assert message in str(info.value)


def test_flax_layers_lists_paths_in_call_order():
    class Nested(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(2, name="z")(MLP((3,), init="flax")(x))

    template = _template(Nested(), 4)
    assert flax_layers(template) == [("MLPModule_0", "Dense_0"), ("z",)]
    assert list(flax_to_torch(jax.tree.map(jnp.zeros_like, template))) == [
        "MLPModule_0.Dense_0.weight",
        "MLPModule_0.Dense_0.bias",
        "z.weight",
        "z.bias",
    ]
