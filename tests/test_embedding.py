"""fnnet.nn.Embedding and F.embedding against torch 2.13.

``compare_module`` loads torch's weight and compares outputs and weight gradients in train and eval
mode for many configurations (padding_idx incl. negative, max_norm with several norm types,
scale_grad_by_freq, sparse, frozen weights). Tolerances: float64 rtol 1e-10 / atol 1e-12, float32
rtol 1e-5 / atol 1e-6 (a lookup is exact; the gradient sums a few O(1) values, the renormalisation
divides once). torch writes ``max_norm``-renormalised rows back into its weight in place; the layer
does the same (checked over several forwards, eagerly and inside jit).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import _nn_compare
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _nn_compare import compare_module, module_db_inputs
from flax import nnx

import fnnet.nn as fnn
import fnnet.nn.functional as F
from fnnet.optim import sparse_adam

TOL = {"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-6)}
DIFFS: dict[tuple[str, str], list[float]] = {}  # (name, prec) -> [max abs, max rel]


@pytest.fixture(scope="module", autouse=True)
def _report_diffs():
    yield
    if os.environ.get("FNNET_NN_DIFFS"):
        for (name, prec), (a, r) in sorted(DIFFS.items()):
            print(f"\n{name:12s} {prec}: max abs {a:.3g}, max rel {r:.3g}")


def check(name: str, prec: str, actual, expected) -> None:
    """assert_allclose at the precision's tolerance, recording the differences under ``name``."""
    diff = _nn_compare.Diff()
    diff.check(name, np.asarray(actual), np.asarray(expected), *TOL[prec])
    record(prec, diff, name)


def record(prec: str, diff, name: str = "Embedding") -> None:
    old = DIFFS.setdefault((name, prec), [0.0, 0.0])
    old[0], old[1] = max(old[0], diff.abs), max(old[1], diff.rel)


@pytest.fixture(params=["float64", "float32"])
def prec(request) -> str:
    if request.param == "float64":
        request.getfixturevalue("x64")
    return request.param


def indices(torch, rng, shape, num, padding_idx=None):
    """Indices with repeats (scale_grad_by_freq matters) and the padding row among them."""
    idx = rng.integers(0, num, shape)
    if padding_idx is not None and idx.size:
        idx.reshape(-1)[0] = padding_idx % num
    return torch.from_numpy(np.asarray(idx, np.int64))


EMB_CONFIGS = [  # padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse
    (None, None, 2.0, False, False),
    (0, None, 2.0, False, False),
    (3, None, 2.0, True, False),
    (-1, None, 2.0, True, False),
    (None, 1.0, 2.0, False, False),
    (2, 0.5, 1.0, True, False),
    (None, 1.5, float("inf"), False, True),
    (-2, 2.0, 3.0, False, True),
    (None, None, 2.0, False, True),
    (1, 0.8, 0.5, False, False),
]
SHAPES = [(12,), (3, 5), (2, 2, 3)]


@pytest.mark.parametrize("freeze", [False, True])
@pytest.mark.parametrize("config", EMB_CONFIGS, ids=str)
def test_embedding_matches_torch(config, freeze, prec, torch, rng):
    padding_idx, max_norm, norm_type, scale, sparse = config
    rtol, atol = TOL[prec]
    kwargs = dict(
        padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type, scale_grad_by_freq=scale, sparse=sparse
    )
    weight = rng.standard_normal((7, 4)) * 1.5
    theirs = torch.nn.Embedding.from_pretrained(torch.from_numpy(weight.astype(prec)), freeze=freeze, **kwargs)
    ours = fnn.Embedding.from_pretrained(weight.astype(prec), freeze=freeze, **kwargs)
    assert isinstance(ours.weight, fnn.Buffer if freeze else nnx.Param)
    assert repr(ours) == repr(theirs)
    x = indices(torch, rng, SHAPES[(EMB_CONFIGS.index(config) + freeze) % 3], 7, padding_idx)
    diff = compare_module(theirs, ours, [x], torch=torch, rtol=rtol, atol=atol, grads=not sparse)
    record(prec, diff)
    if sparse and not freeze:  # torch's gradient is a sparse tensor: compare it densified
        theirs.load_state_dict({"weight": torch.from_numpy(weight.astype(prec))})
        fnn.load_state_dict(ours, {"weight": weight.astype(prec)})
        cot = rng.standard_normal((*x.shape, 4)).astype(prec)
        (theirs(x) * torch.from_numpy(cot)).sum().backward()
        assert theirs.weight.grad.is_sparse
        w = jnp.asarray(weight.astype(prec))
        grad = jax.grad(lambda w: jnp.sum(F.embedding(x.numpy(), w, **kwargs) * cot))(w)
        check("F.embedding", prec, grad, theirs.weight.grad.to_dense().numpy())


def test_sparse_with_scale_grad_by_freq_has_no_gradient_as_in_torch(torch):
    kwargs = dict(scale_grad_by_freq=True, sparse=True)
    w = torch.randn(5, 3, requires_grad=True)
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.functional.embedding(torch.tensor([1, 1]), w, **kwargs).sum().backward()
    weight = jnp.asarray(w.detach().numpy())
    np.testing.assert_array_equal(F.embedding(np.array([1, 1]), weight, **kwargs), weight[np.array([1, 1])])
    with pytest.raises(ValueError) as ours:
        jax.grad(lambda w: jnp.sum(F.embedding(np.array([1, 1]), w, **kwargs)))(weight)
    assert str(ours.value) == str(theirs.value)


def test_embedding_module_db(x64, torch):
    cases = module_db_inputs("Embedding", torch, torch.float64)
    assert len(cases) == 2
    for args, kwargs, inputs, _desc in cases:
        theirs = torch.nn.Embedding(*args, **kwargs, dtype=torch.float64)
        ours = fnn.Embedding(*args, **kwargs, dtype="float64")
        record("float64", compare_module(theirs, ours, inputs, torch=torch, rtol=1e-10, atol=1e-12))


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("freeze", [False, True])
def test_max_norm_writes_renormalised_rows_back_like_torch(freeze, compiled, prec, torch, rng):
    """After each forward (train or eval) the weight holds what torch's embedding_renorm_ left in place."""
    weight = (rng.standard_normal((9, 3)) * 2).astype(prec)
    theirs = torch.nn.Embedding.from_pretrained(torch.from_numpy(weight.copy()), freeze=freeze, max_norm=1.2)
    ours = fnn.Embedding.from_pretrained(weight, freeze=freeze, max_norm=1.2)
    graphdef, state = nnx.split(ours)

    @jax.jit
    def run(state, x):
        model = nnx.merge(graphdef, state)
        return model(x), nnx.state(model)

    for mode in [True, True, False, True]:
        x = indices(torch, rng, (2, 3), 9)
        theirs.train(mode)
        expected = theirs(x).detach().numpy()
        if compiled:
            out, state = run(state, jnp.asarray(x.numpy()))
            nnx.update(ours, state)
        else:
            out = ours.train(mode)(x.numpy())
        check("Embedding", prec, out, expected)
        check("Embedding", prec, fnn.state_dict(ours)["weight"], theirs.weight.detach().numpy())
    assert not np.allclose(fnn.state_dict(ours)["weight"], weight)  # rows were renormalised


@pytest.mark.parametrize("padding_idx", [0, 4, -1])
def test_padding_row_gets_no_gradient(padding_idx, torch):
    weight = np.random.default_rng(0).standard_normal((5, 3))
    idx = np.array([[padding_idx % 5, 1, padding_idx % 5], [2, padding_idx % 5, 1]])
    cot = np.random.default_rng(1).standard_normal((2, 3, 3)).astype(np.float32)
    grad = jax.grad(lambda w: jnp.sum(F.embedding(idx, w, padding_idx=padding_idx) * cot))(
        jnp.asarray(weight, jnp.float32)
    )
    np.testing.assert_array_equal(grad[padding_idx % 5], np.zeros(3))
    assert np.all(grad[1] != 0) and np.all(grad[2] != 0)
    w = torch.from_numpy(weight.astype(np.float32)).requires_grad_(True)
    (
        torch.nn.functional.embedding(torch.from_numpy(idx), w, padding_idx=padding_idx) * torch.from_numpy(cot)
    ).sum().backward()
    np.testing.assert_allclose(grad, w.grad.numpy(), rtol=1e-6)
    # the row is still looked up (not zeroed) by the functional form, as in torch
    np.testing.assert_array_equal(
        F.embedding(idx, weight.astype(np.float32), padding_idx=padding_idx)[0, 0],
        weight[padding_idx % 5].astype(np.float32),
    )


def test_init_is_standard_normal_with_a_zero_padding_row(torch):
    layer = fnn.Embedding(400, 50, padding_idx=-3, rngs=nnx.Rngs(params=1))
    theirs = torch.nn.Embedding(400, 50, padding_idx=-3)
    assert layer.padding_idx == theirs.padding_idx == 397
    w = np.asarray(layer.weight.get_value())
    assert w.dtype == np.float32 and w.shape == (400, 50)
    np.testing.assert_array_equal(w[397], np.zeros(50))
    rest = np.delete(w, 397, axis=0)
    assert abs(rest.mean()) < 5 / np.sqrt(rest.size)
    assert abs(rest.std() - 1) < 0.02
    assert not np.array_equal(w, fnn.Embedding(400, 50, padding_idx=-3, rngs=nnx.Rngs(params=2)).weight.get_value())
    assert repr(layer) == repr(theirs)
    assert list(fnn.state_dict(layer)) == list(theirs.state_dict()) == ["weight"]


@pytest.mark.parametrize("freeze", [True, False])
def test_from_pretrained_freeze_and_state(freeze, torch):
    """freeze: weight is a Buffer, out of nnx.state(model, nnx.Param) (what an optimizer trains), still
    "weight" in state_dict as torch lists it; the padding row is not zeroed."""
    weight = np.arange(12, dtype=np.float32).reshape(4, 3)
    ours = fnn.Embedding.from_pretrained(weight, freeze=freeze, padding_idx=1)
    theirs = torch.nn.Embedding.from_pretrained(torch.from_numpy(weight), freeze=freeze, padding_idx=1)
    assert theirs.weight.requires_grad is not freeze
    trained = [path for path, _ in nnx.state(ours, nnx.Param).flat_state()]
    assert trained == ([] if freeze else [("weight",)])
    np.testing.assert_array_equal(fnn.state_dict(ours)["weight"], theirs.state_dict()["weight"].numpy())
    assert sorted(fnn.named_parameters(ours)) == ([] if freeze else ["weight"])
    idx = np.array([1, 3])
    np.testing.assert_array_equal(ours(idx), theirs(torch.from_numpy(idx)).detach().numpy())
    fnn.load_state_dict(ours, {"weight": weight + 1})
    np.testing.assert_array_equal(ours(idx), weight[idx] + 1)


def test_sparse_embedding_trains_with_sparse_adam_like_torch(x64, torch):
    """nn.Embedding(sparse=True) + torch.optim.SparseAdam == fnnet.nn.Embedding(sparse=True) +
    fnnet.optim.sparse_adam over 4 steps (rows never used stay put), float64."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((10, 3))
    theirs = torch.nn.Embedding.from_pretrained(
        torch.from_numpy(weight.copy()), freeze=False, sparse=True, padding_idx=0
    )
    opt = torch.optim.SparseAdam(theirs.parameters(), lr=0.1)
    ours = fnn.Embedding.from_pretrained(weight, freeze=False, sparse=True, padding_idx=0)
    graphdef, params, rest = nnx.split(ours, nnx.Param, ...)
    tx = sparse_adam(lr=0.1)
    state = tx.init(params)
    batches = [rng.integers(0, 6, (4, 2)) for _ in range(4)]
    for idx in batches:
        opt.zero_grad()
        (theirs(torch.from_numpy(idx)) ** 2).sum().backward()
        opt.step()
        grads = jax.grad(lambda p: jnp.sum(nnx.merge(graphdef, p, rest, copy=True)(idx) ** 2))(params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    nnx.update(ours, params)
    got = fnn.state_dict(ours)["weight"]
    np.testing.assert_allclose(got, theirs.weight.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(got[6:], weight[6:])  # never looked up
    np.testing.assert_array_equal(got[0], weight[0])  # padding row: no gradient


def test_out_of_range_indices(torch):
    weight = np.ones((4, 2), np.float32)
    for bad in ([4], [-1]):
        with pytest.raises(IndexError) as theirs:
            torch.nn.functional.embedding(torch.tensor(bad), torch.from_numpy(weight))
        with pytest.raises(IndexError) as ours:
            F.embedding(np.array(bad), weight)
        assert str(ours.value) == str(theirs.value)
    out, grad = jax.jit(
        lambda i, w: (F.embedding(i, w), jax.grad(lambda w: jnp.sum(jnp.nan_to_num(F.embedding(i, w))))(w))
    )(jnp.array([1, 4, -1]), jnp.asarray(weight))
    np.testing.assert_array_equal(out[0], [1, 1])
    assert np.isnan(out[1:]).all()  # under jit: NaN rows, never a wrapped or clipped row
    np.testing.assert_array_equal(grad, [[0, 0], [1, 1], [0, 0], [0, 0]])


def _embedding_errors(torch):
    w = torch.randn(5, 3)
    n = w.numpy()
    return {
        "ctor_padding": (lambda: torch.nn.Embedding(5, 3, padding_idx=7), lambda: fnn.Embedding(5, 3, padding_idx=7)),
        "ctor_padding_negative": (
            lambda: torch.nn.Embedding(5, 3, padding_idx=-6),
            lambda: fnn.Embedding(5, 3, padding_idx=-6),
        ),
        "functional_padding": (
            lambda: torch.nn.functional.embedding(torch.tensor([1]), w, padding_idx=5),
            lambda: F.embedding(np.array([1]), n, padding_idx=5),
        ),
        "weight_shape": (
            lambda: torch.nn.Embedding(5, 3, _weight=torch.randn(4, 3)),
            lambda: fnn.Embedding(5, 3, _weight=np.zeros((4, 3), np.float32)),
        ),
        "pretrained_rank": (
            lambda: torch.nn.Embedding.from_pretrained(torch.randn(4)),
            lambda: fnn.Embedding.from_pretrained(np.zeros(4, np.float32)),
        ),
        "weight_rank": (
            lambda: torch.nn.functional.embedding(torch.tensor([1]), torch.randn(5)),
            lambda: F.embedding(np.array([1]), np.zeros(5, np.float32)),
        ),
    }


@pytest.mark.parametrize(
    "case",
    ["ctor_padding", "ctor_padding_negative", "functional_padding", "weight_shape", "pretrained_rank", "weight_rank"],
)
def test_embedding_errors_are_torchs(case, torch):
    torch_call, fnnet_call = _embedding_errors(torch)[case]
    with pytest.raises(Exception) as theirs:
        torch_call()
    with pytest.raises((ValueError, TypeError)) as ours:
        fnnet_call()
    assert str(ours.value) == str(theirs.value)


def test_embedding_index_dtype_errors(torch):
    prefix = "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; but got"
    with pytest.raises(RuntimeError, match=prefix):
        torch.nn.functional.embedding(torch.tensor([1.0]), torch.randn(5, 3))
    for bad in (np.array([1.0]), np.array([1], np.int16), np.array([1], np.uint32)):
        with pytest.raises(TypeError, match=prefix):
            F.embedding(bad, np.zeros((5, 3), np.float32))
    with pytest.raises(ValueError, match="num_embeddings must be an int >= 0, got -1"):
        fnn.Embedding(-1, 3)
    with pytest.raises(ValueError, match="needs 64-bit JAX"):
        fnn.Embedding.from_pretrained(np.zeros((2, 2)))  # float64 weights without x64: never downcast


def test_embedding_shapes_and_dtypes(torch):
    """Any index shape (0-d included), int32 or int64 indices; empty tables and inputs."""
    weight = np.random.default_rng(0).standard_normal((6, 2)).astype(np.float32)
    for idx in (np.array(3), np.array([[0, 5], [2, 2]], np.int32), np.zeros((0, 3), np.int32)):
        theirs = torch.nn.functional.embedding(torch.from_numpy(idx.astype(np.int64)), torch.from_numpy(weight))
        np.testing.assert_array_equal(F.embedding(idx, weight), theirs.numpy())
    empty = fnn.Embedding(0, 3)
    assert empty(np.zeros((0,), np.int32)).shape == (0, 3)


# ---------------------------------------------------------------------------------------------- rosetta

ROSETTA_CASES: dict[str, Callable] = {}


def _rosetta_layer(torch, rng, prec):
    rtol, atol = TOL[prec]
    theirs = torch.nn.Embedding(8, 3, padding_idx=2, dtype=getattr(torch, prec))
    ours = fnn.Embedding(8, 3, padding_idx=2, dtype=prec)
    record(prec, compare_module(theirs, ours, [indices(torch, rng, (4, 5), 8, 2)], torch=torch, rtol=rtol, atol=atol))


def _rosetta_functional(torch, rng, prec):
    weight = rng.standard_normal((8, 3)).astype(prec)
    idx = indices(torch, rng, (3, 4), 8, 2)
    cot = rng.standard_normal((3, 4, 3)).astype(prec)
    w = torch.from_numpy(weight).requires_grad_(True)
    out = torch.nn.functional.embedding(idx, w, padding_idx=2)
    (out * torch.from_numpy(cot)).sum().backward()
    grad = jax.grad(lambda w: jnp.sum(F.embedding(idx.numpy(), w, padding_idx=2) * cot))(jnp.asarray(weight))
    check("F.embedding", prec, F.embedding(idx.numpy(), weight, padding_idx=2), out.detach().numpy())
    check("F.embedding", prec, grad, w.grad.numpy())


def _rosetta_pretrained(torch, rng, prec):
    weight = rng.standard_normal((5, 4)).astype(prec)
    ours = fnn.Embedding.from_pretrained(weight, freeze=True)
    theirs = torch.nn.Embedding.from_pretrained(torch.from_numpy(weight), freeze=True)
    idx = indices(torch, rng, (6,), 5)
    np.testing.assert_array_equal(ours(idx.numpy()), theirs(idx).numpy())
    assert not dict(nnx.state(ours, nnx.Param).flat_state()) and not theirs.weight.requires_grad


ROSETTA_CASES["nn.Embedding(num_embeddings, embedding_dim, padding_idx=i)"] = _rosetta_layer
ROSETTA_CASES["F.embedding(input, weight, padding_idx=i)"] = _rosetta_functional
ROSETTA_CASES["nn.Embedding.from_pretrained(embeddings, freeze=True)"] = _rosetta_pretrained


@pytest.mark.parametrize("spelling", sorted(ROSETTA_CASES))
def test_rosetta_row(spelling, prec, torch, rng):
    ROSETTA_CASES[spelling](torch, rng, prec)
