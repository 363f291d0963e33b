"""The eleven non-CTC losses fnnet adds (fnnet.nn._losses_extra / _losses_embedding) and their nn modules
against live torch 2.13: values and gradients for every input torch differentiates, every reduction,
float64 (1e-10) and float32 (1e-5 relative), table-driven over options, shapes and kinks, plus torch's
own op_db samples and module_db inputs; errors; legacy arguments; module signatures and state_dicts;
and one case per docs/rosetta.md row (ROSETTA_CASES, rows in /work/notes/rosetta_losses.md).

``FNNET_NN_DIFFS=1 pytest -s tests/test_losses_extra.py`` prints the largest differences per loss.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import re
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _nn_compare import compare_module, module_db_inputs

import fnnet.nn as fnn
import fnnet.nn.functional as F

RTOL = {"float64": 1e-10, "float32": 1e-5}
PLAIN = ("none", "mean", "sum")
DIFFS: dict[tuple[str, str], float] = {}  # (loss, dtype) -> largest |fnnet - torch| / scale


@pytest.fixture(scope="module", autouse=True)
def _report_diffs():
    yield
    if os.environ.get("FNNET_NN_DIFFS"):
        for (name, prec), d in sorted(DIFFS.items()):
            print(f"\n{name:36s} {prec}: max diff / max|torch| {d:.3g}")


def assert_close(actual, expected, rtol: float, name: str = "", prec: str = "") -> None:
    """Same shape, same NaN/inf positions, finite entries within ``rtol`` relative to the largest
    finite |expected| entry (so near-zero gradient entries are judged on the array's scale)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(actual[~finite], expected[~finite])
    scale = np.abs(expected[finite]).max(initial=0.0)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=rtol, atol=rtol * scale)
    if name and finite.any():
        d = float(np.abs(actual[finite] - expected[finite]).max() / max(scale, 1e-300))
        DIFFS[(name, prec)] = max(DIFFS.get((name, prec), 0.0), d)


@pytest.fixture(params=["float64", "float32"])
def prec(request) -> str:
    if request.param == "float64":
        request.getfixturevalue("x64")
    return request.param


# ------------------------------------------------------------------------------------ data makers
N, C, D = 4, 5, 3
normal = lambda *s: lambda rng: rng.standard_normal(s)  # noqa: E731
positive = lambda *s: lambda rng: rng.uniform(0.2, 2.0, s)  # noqa: E731
probs = lambda *s: lambda rng: rng.uniform(0.0, 1.0, s)  # noqa: E731
signs = lambda *s: lambda rng: rng.choice([-1.0, 1.0], s)  # noqa: E731
int_signs = lambda *s: lambda rng: rng.choice([-1, 1], s)  # noqa: E731
classes = lambda *s, c=C: lambda rng: rng.integers(0, c, s)  # noqa: E731
const = lambda value: lambda rng: np.asarray(value)  # noqa: E731


def mk(**parts) -> Callable:
    return lambda rng: {k: f(rng) for k, f in parts.items()}


def counts(*s):
    def make(rng):
        t = rng.poisson(2.0, s).astype(float)
        t.flat[:4] = [0.0, 1.0, 0.5, 1.5]  # the Stirling mask boundary (t <= 1) and t = 0
        return t

    return make


def labels_with_end(*s):
    """multilabel_margin targets: a few labels, then -1, then arbitrary labels (ignored)."""

    def make(rng):
        t = np.stack([rng.permutation(C) for _ in range(int(np.prod(s[:-1], dtype=int)))]).reshape(s)
        t2 = t.reshape(-1, C)
        for row in t2:
            k = rng.integers(0, C + 1)
            row[k : k + 1] = -1  # a -1 somewhere (or none: k == C)
        t2[0, :3] = [1, 1, -1]  # a duplicate label
        if len(t2) > 1:
            t2[1, 0] = -1  # no labels at all
        return t

    return make


def multi_margin_kink(rng):
    """Rows where margin - x_y + x_d is exactly 0 for some d (margin 1)."""
    x = rng.standard_normal((N, C))
    t = rng.integers(0, C, N)
    x[0, :] = [0.5, -0.5, 0.25, 1.5, -1.0]
    t[0] = 3  # 1 - 1.5 + 0.5 = 0
    return {"input": x, "target": t}


def multilabel_kink(rng):
    x = rng.standard_normal((N, C))
    t = np.full((N, C), -1)
    t[:, 0] = rng.integers(0, C, N)
    x[0] = [1.0, 0.0, 0.5, -0.25, 2.0]
    t[0, :2] = [0, -1]  # 1 - 1 + 0 = 0 for d = 1
    return {"input": x, "target": t}


def hinge_ties(rng):
    x = rng.standard_normal((N, C))
    t = rng.choice([-1.0, 1.0, 0.0, 2.0], (N, C))  # 0 and 2: torch adds both terms / only x
    x.flat[:3], t.flat[:3] = [1.0, 1.0, -0.5], [-1.0, 1.0, -1.0]  # margin - x == 0
    return {"input": x, "target": t}


def ranking_ties(rng):
    x1, x2, t = rng.standard_normal(N * C), rng.standard_normal(N * C), rng.choice([-1.0, 1.0], N * C)
    x1[:3], x2[:3], t[:3] = [0.75, 0.25, 1.0], [0.25, 0.25, 1.0], [1.0, -1.0, 1.0]  # -t(x1-x2)+0.5 == 0
    return {"input1": x1, "input2": x2, "target": t}


def soft_overflow(rng):
    x, t = rng.standard_normal((N, C)) * 3, rng.choice([-1.0, 1.0], (N, C))
    x.flat[:4], t.flat[:4] = [800.0, -800.0, 95.0, 60.0], [-1.0, 1.0, -1.0, -1.0]  # exp overflows
    return {"input": x, "target": t}


def cosine_edges(rng):
    x1, x2, t = rng.standard_normal((N, D)), rng.standard_normal((N, D)), rng.choice([-1.0, 1.0, 0.0], N)
    x1[0], x2[0], t[0] = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], -1.0  # cos == margin (0): the kink
    x1[1], t[1] = 0.0, 1.0  # a zero vector: cos 0, huge finite gradients
    return {"input1": x1, "input2": x2, "target": t}


def triplet_edges(rng, shape=(N, D)):
    a, p, n = (rng.standard_normal(shape) for _ in range(3))
    p[0] = a[0]  # zero difference (norm 0 with eps = 0)
    a[1], p[1], n[1] = [1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [3.0, 2.0, 1.0]  # ties of |.| (inf norms)
    n[2] = p[2]  # swap: d(a, n) == d(p, n)? no: d(p, n) = 0 < d(a, n)
    return {"anchor": a, "positive": p, "negative": n}


def gaussian(var_shape, target_shape=(N, D)):
    def make(rng):
        v = rng.uniform(0.2, 2.0, var_shape)
        v.flat[:2] = [0.0, 1e-9][: v.size]  # below eps: clamped, gradient passed through
        return {"input": rng.standard_normal((N, D)), "target": rng.standard_normal(target_shape), "var": v}

    return make


# name, maker, options, arguments torch differentiates
GRADS = {
    "poisson_nll_loss": ("input", "target"),
    "gaussian_nll_loss": ("input", "target", "var"),
    "cosine_embedding_loss": ("input1", "input2"),
    "hinge_embedding_loss": ("input",),
    "margin_ranking_loss": ("input1", "input2", "target"),
    "multilabel_margin_loss": ("input",),
    "multilabel_soft_margin_loss": ("input", "target", "weight"),
    "multi_margin_loss": ("input",),
    "soft_margin_loss": ("input",),
    "triplet_margin_loss": ("anchor", "positive", "negative"),
    "triplet_margin_with_distance_loss": ("anchor", "positive", "negative"),
}
TRIPLET = mk(anchor=normal(N, D), positive=normal(N, D), negative=normal(N, D))
CASES = [
    ("poisson_nll_loss", mk(input=normal(N, C), target=counts(N, C)), {}),
    ("poisson_nll_loss", mk(input=normal(N, C), target=counts(N, C)), {"full": True}),
    ("poisson_nll_loss", mk(input=positive(N, C), target=counts(N, C)), {"log_input": False}),
    ("poisson_nll_loss", mk(input=positive(N, C), target=counts(N, C)), {"log_input": False, "full": True}),
    ("poisson_nll_loss", mk(input=const([0.0, 0.5, 2.0]), target=const([1.0, 0.0, 3.0])), {"log_input": False}),
    ("poisson_nll_loss", mk(input=positive(N, C), target=counts(N, C)), {"log_input": False, "eps": 0.1}),
    (
        "poisson_nll_loss",
        mk(input=normal(2, 3, 4), target=lambda rng: rng.poisson(3.0, (2, 3, 4)) * 1.0),
        {"full": True},
    ),
    ("gaussian_nll_loss", gaussian((N, D)), {}),
    ("gaussian_nll_loss", gaussian((N, D)), {"full": True, "eps": 1e-3}),
    ("gaussian_nll_loss", gaussian((N,)), {}),  # one variance per row (torch unsqueezes)
    ("gaussian_nll_loss", gaussian((N, 1)), {"full": True}),
    ("gaussian_nll_loss", gaussian((1, D)), {}),
    ("gaussian_nll_loss", gaussian((N, D), target_shape=(N, 1)), {}),  # target broadcast (torch documents)
    ("gaussian_nll_loss", mk(input=normal(N, D), target=normal(N, D)), {"var": 0.5}),  # a Python float
    ("gaussian_nll_loss", mk(input=normal(D), target=normal(D), var=positive(D)), {"eps": 0.5}),
    ("cosine_embedding_loss", mk(input1=normal(N, D), input2=normal(N, D), target=signs(N)), {}),
    ("cosine_embedding_loss", mk(input1=normal(N, D), input2=normal(N, D), target=int_signs(N)), {"margin": 0.3}),
    ("cosine_embedding_loss", cosine_edges, {}),
    ("cosine_embedding_loss", cosine_edges, {"margin": -0.5}),
    ("cosine_embedding_loss", mk(input1=normal(D), input2=normal(D), target=const(-1.0)), {"margin": -0.2}),
    ("hinge_embedding_loss", mk(input=normal(N, C), target=signs(N, C)), {}),
    ("hinge_embedding_loss", hinge_ties, {}),
    ("hinge_embedding_loss", mk(input=normal(N, C), target=int_signs(N, C)), {"margin": 0.25}),
    ("hinge_embedding_loss", mk(input=normal(), target=const(-1.0)), {"margin": 2.0}),
    ("margin_ranking_loss", mk(input1=normal(N), input2=normal(N), target=signs(N)), {}),
    ("margin_ranking_loss", ranking_ties, {"margin": 0.5}),
    ("margin_ranking_loss", mk(input1=normal(N, C), input2=normal(N, C), target=int_signs(N, C)), {"margin": 0.2}),
    ("margin_ranking_loss", mk(input1=normal(), input2=normal(), target=const(1.0)), {"margin": 1.0}),
    ("soft_margin_loss", mk(input=normal(N, C), target=signs(N, C)), {}),
    ("soft_margin_loss", soft_overflow, {}),
    ("soft_margin_loss", mk(input=normal(2, 3, 4), target=lambda rng: rng.choice([-1, 1], (2, 3, 4))), {}),
    ("multilabel_soft_margin_loss", mk(input=normal(N, C), target=probs(N, C)), {}),
    ("multilabel_soft_margin_loss", mk(input=normal(N, C), target=classes(N, C, c=2), weight=positive(C)), {}),
    ("multilabel_soft_margin_loss", mk(input=normal(N, C), target=probs(N, C), weight=positive(N, C)), {}),
    ("multilabel_soft_margin_loss", mk(input=normal(N, C), target=probs(N, C), weight=positive(N, 1)), {}),
    ("multilabel_soft_margin_loss", mk(input=normal(C), target=probs(C), weight=positive(C)), {}),
    ("multilabel_soft_margin_loss", mk(input=normal(2, 3, C), target=probs(2, 3, C)), {}),
    ("multi_margin_loss", mk(input=normal(N, C), target=classes(N)), {}),
    ("multi_margin_loss", mk(input=normal(N, C), target=classes(N)), {"p": 2, "margin": 0.5}),
    ("multi_margin_loss", mk(input=normal(N, C), target=classes(N), weight=positive(C)), {"margin": 2.0}),
    ("multi_margin_loss", mk(input=normal(N, C), target=classes(N), weight=positive(C)), {"p": 2, "margin": -0.5}),
    ("multi_margin_loss", multi_margin_kink, {}),
    ("multi_margin_loss", mk(input=normal(C), target=const(2)), {}),
    ("multi_margin_loss", mk(input=normal(C), target=const([4])), {"p": 2}),
    ("multi_margin_loss", mk(input=normal(1, C), target=const(0)), {}),
    ("multi_margin_loss", mk(input=normal(), target=const(0)), {}),
    ("multilabel_margin_loss", mk(input=normal(N, C), target=labels_with_end(N, C)), {}),
    ("multilabel_margin_loss", multilabel_kink, {}),
    ("multilabel_margin_loss", mk(input=normal(C), target=const([3, 0, -1, 1, 2])), {}),
    ("multilabel_margin_loss", mk(input=normal(), target=const(0)), {}),
    ("triplet_margin_loss", TRIPLET, {}),
    ("triplet_margin_loss", TRIPLET, {"margin": 0.5, "swap": True}),
    ("triplet_margin_loss", TRIPLET, {"margin": 10.0, "p": 1, "eps": 0.0}),
    *[("triplet_margin_loss", triplet_edges, {"margin": 5.0, "p": p, "eps": 0.0}) for p in (0.5, 1.5, 2, 3)],
    *[("triplet_margin_loss", triplet_edges, {"margin": 5.0, "p": p, "eps": 0.0}) for p in (math.inf, -math.inf)],
    ("triplet_margin_loss", triplet_edges, {"margin": 5.0, "p": -1.0, "eps": 0.0}),
    ("triplet_margin_loss", triplet_edges, {"margin": 5.0, "p": 0, "swap": True}),
    ("triplet_margin_loss", triplet_edges, {"margin": 2.0, "swap": True, "eps": 0.0}),
    ("triplet_margin_loss", mk(anchor=normal(D), positive=normal(D), negative=normal(D)), {"p": 3}),
    ("triplet_margin_loss", mk(anchor=normal(), positive=normal(), negative=normal()), {"margin": 2.0}),
    ("triplet_margin_loss", mk(anchor=normal(2, 3, D), positive=normal(2, 3, D), negative=normal(2, 3, D)), {}),
    ("triplet_margin_with_distance_loss", TRIPLET, {}),
    ("triplet_margin_with_distance_loss", triplet_edges, {"swap": True, "margin": 3.0}),
    ("triplet_margin_with_distance_loss", TRIPLET, {"distance_function": "squared", "margin": 2.0}),
    ("triplet_margin_with_distance_loss", TRIPLET, {"distance_function": "cosine", "swap": True, "margin": 0.5}),
]

# The same distance in both libraries (for triplet_margin_with_distance_loss's distance_function).
DISTANCES = {
    "squared": (lambda x, y: ((x - y) ** 2).sum(-1), lambda x, y: jnp.sum((x - y) ** 2, axis=-1)),
    "cosine": (
        lambda x, y: 1 - (x * y).sum(-1) / ((x * x).sum(-1) * (y * y).sum(-1)).sqrt(),
        lambda x, y: 1 - jnp.sum(x * y, axis=-1) / jnp.sqrt(jnp.sum(x * x, axis=-1) * jnp.sum(y * y, axis=-1)),
    ),
}


def _dtypes(name: str, make: Callable) -> tuple[str, ...]:
    """float64 and float32 for inputs in a loss's usual layout ((N, ·), or (N,) for margin_ranking);
    float64 only for the other layouts (0-d, 1-D, 3-D inputs): torch's shape rules do not depend on
    the dtype, and each new shape costs JAX compilations (the table's time)."""
    first = next(iter(make(np.random.default_rng(0)).values()))
    return ("float64", "float32") if np.ndim(first) == (1 if name == "margin_ranking_loss" else 2) else ("float64",)


PARAMS = [
    pytest.param(name, make, kwargs, dtype, id=f"{dtype}-{name}-{i}")
    for i, (name, make, kwargs) in enumerate(CASES)
    for dtype in _dtypes(name, make)
]


def _torch_value(torch, a, dtype: str, grad: bool):
    if isinstance(a, np.ndarray):
        t = torch.from_numpy(a.astype(np.int64 if np.issubdtype(a.dtype, np.integer) else dtype))
        return t.requires_grad_(grad and t.is_floating_point())
    return a


def _jax_value(a, dtype: str):
    if isinstance(a, np.ndarray):
        int_dtype = np.int64 if dtype == "float64" else np.int32
        return jnp.asarray(a.astype(int_dtype if np.issubdtype(a.dtype, np.integer) else dtype))
    return a


def compare(torch, name, arrays, kwargs, reductions, prec, rng):
    """Values and the gradients of sum(loss * random cotangent) w.r.t. every input torch differentiates,
    for each reduction (fnnet eagerly: JAX compiles each operation once per shape, and the cases share
    shapes, which keeps the table fast; one ``jit`` per case compiles more)."""
    arrays = {k: np.asarray(v) if isinstance(v, (np.ndarray, np.generic)) else v for k, v in arrays.items()}
    diff_names = [k for k in GRADS[name] if isinstance(arrays.get(k), np.ndarray) and arrays[k].dtype.kind == "f"]
    t_kwargs, j_kwargs = dict(kwargs), dict(kwargs)
    if isinstance(kwargs.get("distance_function"), str):
        t_kwargs["distance_function"], j_kwargs["distance_function"] = DISTANCES[kwargs["distance_function"]]
    expected, cotangents = [], []
    for reduction in reductions:
        t_args = {k: _torch_value(torch, a, prec, k in diff_names) for k, a in arrays.items()}
        t_out = getattr(torch.nn.functional, name)(**t_args, **t_kwargs, reduction=reduction)
        cot = rng.standard_normal(tuple(t_out.shape)).astype(prec)
        cotangents.append(jnp.asarray(cot))
        t_grads = torch.autograd.grad(
            (t_out * torch.from_numpy(cot)).sum(),
            [t_args[k] for k in diff_names],
            allow_unused=True,
        )
        expected.append((t_out.detach().numpy(), [None if g is None else g.numpy() for g in t_grads]))
    j_args = {k: _jax_value(a, prec) for k, a in arrays.items()}

    def values_and_grads(diff, cotangents):
        results = []
        for reduction, cot in zip(reductions, cotangents):

            def loss(*d, reduction=reduction):
                return getattr(F, name)(**{**j_args, **dict(zip(diff_names, d))}, **j_kwargs, reduction=reduction)

            out, vjp = jax.vjp(loss, *diff)
            results.append((out, vjp(cot)))
        return results

    actual = values_and_grads([j_args[k] for k in diff_names], cotangents)
    for reduction, (j_out, j_grads), (t_out, t_grads) in zip(reductions, actual, expected):
        assert j_out.dtype == jnp.dtype(prec), reduction
        assert_close(j_out, t_out, RTOL[prec], name, prec)
        for j_g, t_g in zip(j_grads, t_grads):
            assert_close(j_g, np.zeros(j_g.shape) if t_g is None else t_g, RTOL[prec], name, prec)


@pytest.mark.parametrize("name,make,kwargs,dtype", PARAMS)
def test_value_and_grads_match_torch(request, torch, rng, name, make, kwargs, dtype):
    if dtype == "float64":
        request.getfixturevalue("x64")
    compare(torch, name, make(rng), kwargs, PLAIN, dtype, rng)


def _to_numpy(v):
    return v.detach().numpy() if hasattr(v, "detach") else v


@pytest.mark.parametrize("name", sorted(GRADS))
def test_op_db_samples_match_torch(x64, torch, rng, name):
    """torch's own sample inputs (OpInfo "nn.functional.<name>") in float64 (float32 is covered by the
    table above). Samples that differ only in ``reduction`` are run once, with every reduction."""
    from torch.testing._internal.common_methods_invocations import op_db

    (op,) = [o for o in op_db if o.name == f"nn.functional.{name}"]
    params = list(inspect.signature(getattr(torch.nn.functional, name)).parameters)
    samples = list(op.sample_inputs("cpu", torch.float64, requires_grad=True))
    seen = set()
    for s in samples:
        arrays = dict(zip(params, [_to_numpy(a) for a in (s.input, *s.args)]))
        kwargs = {k: _to_numpy(v) for k, v in s.kwargs.items() if k != "reduction"}
        if isinstance(kwargs.get("distance_function"), torch.nn.PairwiseDistance):
            kwargs["distance_function"] = None  # torch's default; fnnet's default is the same function
        arrays.update({k: kwargs.pop(k) for k in list(kwargs) if isinstance(kwargs[k], np.ndarray)})
        key = (repr({k: np.shape(v) for k, v in arrays.items()}), repr(kwargs))
        if key not in seen:
            seen.add(key)
            compare(torch, name, arrays, kwargs, PLAIN, "float64", rng)
    assert seen


@pytest.mark.parametrize(
    "name,make,args",
    [
        ("poisson_nll_loss", mk(input=normal(N, C), target=counts(N, C)), {"size_average": False, "full": True}),
        ("cosine_embedding_loss", mk(input1=normal(N, D), input2=normal(N, D), target=signs(N)), {"reduce": False}),
        ("hinge_embedding_loss", mk(input=normal(N, C), target=signs(N, C)), {"size_average": False, "reduce": True}),
        ("margin_ranking_loss", mk(input1=normal(N), input2=normal(N), target=signs(N)), {"reduce": False}),
        ("multilabel_margin_loss", mk(input=normal(N, C), target=labels_with_end(N, C)), {"size_average": False}),
        ("multilabel_soft_margin_loss", mk(input=normal(N, C), target=probs(N, C)), {"reduce": False}),
        ("multi_margin_loss", mk(input=normal(N, C), target=classes(N)), {"size_average": True, "reduce": True}),
        ("soft_margin_loss", mk(input=normal(N, C), target=signs(N, C)), {"size_average": False}),
        ("triplet_margin_loss", TRIPLET, {"reduce": False, "reduction": "sum"}),
    ],
)
def test_legacy_size_average_reduce_override_reduction(x64, torch, rng, name, make, args):
    arrays = make(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = getattr(torch.nn.functional, name)(**{k: torch.from_numpy(v) for k, v in arrays.items()}, **args)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        actual = getattr(F, name)(**{k: jnp.asarray(v) for k, v in arrays.items()}, **args)
    assert_close(actual, expected.numpy(), 1e-10)


# ------------------------------------------------------------------------------------- edge facts
def test_soft_margin_overflows_like_torch(torch):
    """torch computes log1p(exp(-x·t)) and -t·z/(1 + z) literally: inf and NaN past float32's exp range."""
    x, t = np.asarray([95.0, -95.0, 3.0], np.float32), np.asarray([-1.0, 1.0, 1.0], np.float32)
    t_in = torch.from_numpy(x).requires_grad_(True)
    t_out = torch.nn.functional.soft_margin_loss(t_in, torch.from_numpy(t), reduction="none")
    t_out.sum().backward()
    out, vjp = jax.vjp(lambda a: F.soft_margin_loss(a, jnp.asarray(t), reduction="none"), jnp.asarray(x))
    (grad,) = vjp(jnp.ones(3, jnp.float32))
    np.testing.assert_array_equal(np.isinf(np.asarray(out)), [True, True, False])
    np.testing.assert_array_equal(np.isnan(np.asarray(grad)), np.isnan(t_in.grad.numpy()))
    assert np.isnan(t_in.grad.numpy()[:2]).all()
    np.testing.assert_allclose(np.asarray(grad)[2], t_in.grad.numpy()[2], rtol=1e-6)


def test_gaussian_variance_gradient_passes_the_clamp_like_torch(x64, torch):
    var = np.asarray([0.0, 1e-9, 0.5])
    x, y = np.asarray([0.3, -0.2, 1.0]), np.zeros(3)
    t_var = torch.from_numpy(var).requires_grad_(True)
    torch.nn.functional.gaussian_nll_loss(torch.from_numpy(x), torch.from_numpy(y), t_var, reduction="sum").backward()
    g = jax.grad(lambda v: F.gaussian_nll_loss(jnp.asarray(x), jnp.asarray(y), v, reduction="sum"))(jnp.asarray(var))
    np.testing.assert_allclose(np.asarray(g), t_var.grad.numpy(), rtol=1e-12)
    assert np.all(np.asarray(g)[:2] != 0)  # jnp.maximum(var, eps) would give 0 there


def test_poisson_full_target_gradient_is_nan_at_zero_like_torch(x64, torch):
    x, t = np.asarray([0.5, 1.0, 2.0]), np.asarray([0.0, 1.0, 3.0])
    t_t = torch.from_numpy(t).requires_grad_(True)
    torch.nn.functional.poisson_nll_loss(torch.from_numpy(x), t_t, full=True, reduction="sum").backward()
    g = jax.grad(lambda b: F.poisson_nll_loss(jnp.asarray(x), b, full=True, reduction="sum"))(jnp.asarray(t))
    assert np.isnan(t_t.grad.numpy()[0]) and np.isnan(np.asarray(g)[0])
    np.testing.assert_allclose(np.asarray(g)[1:], t_t.grad.numpy()[1:], rtol=1e-12)


# ------------------------------------------------------------------------------------------ errors
def _f32(*shape):
    return jnp.zeros(shape, jnp.float32)


def _i32(*values):
    return jnp.asarray(values, jnp.int32)


ERRORS = [
    (lambda: F.poisson_nll_loss(_f32(3, 4), _f32(4)), [r"\(4,\)", r"\(3, 4\)"]),
    (lambda: F.poisson_nll_loss(_f32(3), _f32(3), reduction="avg"), ["avg is not a valid value for reduction"]),
    (lambda: F.poisson_nll_loss(_f32(3), _i32(1, 2, 3)), ["target dtype float32", "int32"]),
    (lambda: F.gaussian_nll_loss(_f32(3, 4), _f32(3, 4), _f32(2, 4)), ["var is of incorrect size", r"\(2, 4\)"]),
    (lambda: F.gaussian_nll_loss(_f32(3, 4), _f32(3, 4), _f32(1, 1)), ["var is of incorrect size"]),
    (lambda: F.gaussian_nll_loss(_f32(3), _f32(3), -1.0), ["var has negative entry"]),
    (lambda: F.gaussian_nll_loss(_f32(3), _f32(3), _f32(3) - 1), ["var has negative entry"]),
    (lambda: F.gaussian_nll_loss(_f32(3), _f32(4), _f32(3)), [r"target shape \(4,\) must broadcast"]),
    (lambda: F.hinge_embedding_loss(_f32(3, 4), _f32(4)), [r"\(4,\)", r"\(3, 4\)"]),
    (lambda: F.soft_margin_loss(_f32(3, 4), _f32(3, 1)), [r"\(3, 1\)", r"\(3, 4\)"]),
    (lambda: F.margin_ranking_loss(_f32(3), _f32(1), _f32(3)), [r"input2 shape \(1,\)"]),
    (lambda: F.margin_ranking_loss(_f32(3), _f32(3), _f32(3, 1)), [r"target shape \(3, 1\)"]),
    (lambda: F.margin_ranking_loss(_f32(3), _f32(3), jnp.ones(3, bool)), ["target dtype float32", "bool"]),
    (lambda: F.cosine_embedding_loss(_f32(2, 3), _f32(2, 3), _f32(2, 1)), ["multi-target not supported"]),
    (lambda: F.cosine_embedding_loss(_f32(2, 3), _f32(3), _f32(2)), ["1D target tensor expects 2D input"]),
    (lambda: F.cosine_embedding_loss(_f32(2, 3), _f32(2, 3), _f32()), ["0D target tensor expects 1D input"]),
    (lambda: F.cosine_embedding_loss(_f32(2, 3), _f32(1, 3), _f32(2)), [r"input2 shape \(1, 3\)"]),
    (lambda: F.cosine_embedding_loss(_f32(2, 3), _f32(2, 3), _f32(3)), [r"target shape \(3,\) must be \(2,\)"]),
    (lambda: F.multilabel_soft_margin_loss(_f32(2, 3), _f32(2, 3), weight=_f32(2)), [r"weight shape \(2,\)"]),
    (lambda: F.multilabel_soft_margin_loss(_f32(), _f32()), ["class axis"]),
    (lambda: F.multi_margin_loss(_f32(2, 3), _i32(0, 1), p=3), ["only p == 1 and p == 2 supported"]),
    (lambda: F.multi_margin_loss(_f32(2, 3), _i32(0, 3)), ["target out of range"]),
    (lambda: F.multi_margin_loss(_f32(2, 3), _i32(0, 1, 2)), ["inconsistent target size, expected 2"]),
    (lambda: F.multi_margin_loss(_f32(2, 3), _f32(2)), ["integer class indices"]),
    (lambda: F.multi_margin_loss(_f32(2, 3, 4), _i32(0, 1)), ["Expected non-empty vector or matrix"]),
    (lambda: F.multi_margin_loss(_f32(2, 3), _i32(0, 1), weight=_f32(1, 3)), ["weight must be one-dimensional"]),
    (lambda: F.multi_margin_loss(_f32(2, 3), _i32(0, 1), weight=_f32(4)), ["inconsistent weight size, expected 3"]),
    (lambda: F.multilabel_margin_loss(_f32(2, 3), jnp.zeros((2, 2), jnp.int32)), ["inconsistent target size"]),
    (lambda: F.multilabel_margin_loss(_f32(3), _i32(0, -2, 1)), ["'target' is out of range"]),
    (lambda: F.multilabel_margin_loss(_f32(3), _i32(0, -1, 3)), ["'target' is out of range"]),
    (lambda: F.triplet_margin_loss(_f32(2, 3), _f32(2, 3), _f32(2, 3), margin=0.0), ["margin must be greater than 0"]),
    (lambda: F.triplet_margin_loss(_f32(2, 3), _f32(3), _f32(2, 3)), ["same number of dimensions", "positive 1D"]),
    (lambda: F.triplet_margin_loss(_f32(2, 3), _f32(1, 3), _f32(2, 3)), [r"positive shape \(1, 3\)"]),
    (lambda: F.triplet_margin_with_distance_loss(_f32(3), _f32(3), _f32(3), margin=-1), ["greater than 0, got -1"]),
    (lambda: F.triplet_margin_with_distance_loss(_f32(3), _f32(3), _f32(3), reduction="x"), ["x is not a valid"]),
]


@pytest.mark.parametrize("call,patterns", ERRORS, ids=[f"error{i}" for i in range(len(ERRORS))])
def test_invalid_arguments_raise_value_error(call, patterns):
    with pytest.raises(ValueError) as info:
        call()
    for pattern in patterns:
        assert re.search(pattern, str(info.value)), str(info.value)


def test_float_dtype_mismatch_raises_naming_both_dtypes(x64):
    x, y = jnp.zeros((2, 3), jnp.float32), jnp.zeros((2, 3), jnp.float64)
    for call in (
        lambda: F.poisson_nll_loss(x, y),
        lambda: F.gaussian_nll_loss(x, x, y),
        lambda: F.margin_ranking_loss(x, y, x),
        lambda: F.triplet_margin_loss(x, x, y),
        lambda: F.multilabel_soft_margin_loss(x, x, weight=jnp.ones(3, jnp.float64)),
    ):
        with pytest.raises(ValueError, match="float32.*float64"):
            call()


def test_out_of_range_class_under_jit_gives_nan():
    assert np.isnan(float(jax.jit(F.multi_margin_loss)(_f32(2, 3), _i32(0, 3))))


def test_jitted_losses_do_not_recompile(rng):
    losses = [
        lambda x, t: F.poisson_nll_loss(x, jnp.abs(t), full=True),
        lambda x, t: F.gaussian_nll_loss(x, t, jnp.abs(t[:, :1]) + 0.1, full=True),
        lambda x, t: F.cosine_embedding_loss(x, t, jnp.sign(t[:, 0]), margin=0.2),
        lambda x, t: F.multi_margin_loss(x, jnp.argmax(t, axis=1), p=2, weight=jnp.arange(1.0, 4.0)),
        lambda x, t: F.multilabel_margin_loss(x, jnp.argsort(t, axis=1) - 1),
        lambda x, t: F.triplet_margin_loss(x, t, -t, p=3, swap=True),
    ]
    traces: list[int] = []

    @functools.partial(jax.jit, static_argnums=0)
    def step(i, x, t):
        traces.append(i)
        return jax.value_and_grad(losses[i])(x, t)

    for _ in range(3):
        x, t = (jnp.asarray(rng.standard_normal((4, 3)), jnp.float32) for _ in range(2))
        for i in range(len(losses)):
            value, grad = step(i, x, t)
            assert np.isfinite(float(value)) and np.isfinite(np.asarray(grad)).all()
    assert sorted(traces) == list(range(len(losses)))


# ------------------------------------------------------------------------------------------ modules
MODULES = {
    "PoissonNLLLoss": ("poisson_nll_loss", mk(input=normal(N, C), target=counts(N, C))),
    "GaussianNLLLoss": ("gaussian_nll_loss", gaussian((N, 1))),
    "CosineEmbeddingLoss": ("cosine_embedding_loss", cosine_edges),
    "HingeEmbeddingLoss": ("hinge_embedding_loss", hinge_ties),
    "MarginRankingLoss": ("margin_ranking_loss", ranking_ties),
    "MultiLabelMarginLoss": ("multilabel_margin_loss", mk(input=normal(N, C), target=labels_with_end(N, C))),
    "MultiLabelSoftMarginLoss": ("multilabel_soft_margin_loss", mk(input=normal(N, C), target=probs(N, C))),
    "MultiMarginLoss": ("multi_margin_loss", multi_margin_kink),
    "SoftMarginLoss": ("soft_margin_loss", soft_overflow),
    "TripletMarginLoss": ("triplet_margin_loss", triplet_edges),
    "TripletMarginWithDistanceLoss": ("triplet_margin_with_distance_loss", triplet_edges),
}
MODULE_CONFIGS = [
    ("PoissonNLLLoss", (), {}),
    ("PoissonNLLLoss", (False, True), {"eps": 0.5, "reduction": "sum"}),
    ("PoissonNLLLoss", (), {"size_average": False, "full": True}),
    ("GaussianNLLLoss", (), {"full": True, "eps": 1e-3, "reduction": "none"}),
    ("CosineEmbeddingLoss", (0.25,), {}),
    ("CosineEmbeddingLoss", (), {"reduce": False}),
    ("HingeEmbeddingLoss", (0.5, None, None, "sum"), {}),
    ("MarginRankingLoss", (0.5,), {"reduction": "none"}),
    ("MultiLabelMarginLoss", (), {"size_average": False}),
    ("MultiLabelSoftMarginLoss", (), {"weight": "w_class", "reduction": "sum"}),
    ("MultiMarginLoss", (2, 0.5, "w_class"), {}),
    ("MultiMarginLoss", (), {"reduce": False}),
    ("SoftMarginLoss", (), {"reduction": "none"}),
    ("TripletMarginLoss", (0.5, 1.0, 0.0, True), {}),
    ("TripletMarginLoss", (), {"p": math.inf, "size_average": False}),
    ("TripletMarginWithDistanceLoss", (), {"swap": True, "margin": 2.0}),
    ("TripletMarginWithDistanceLoss", (), {"distance_function": "cosine", "reduction": "sum"}),
]


def _module_args(torch, value, rng):
    """Markers -> (torch value, fnnet value)."""
    if value == "w_class":
        w = rng.uniform(0.5, 2.0, C)
        return torch.from_numpy(w), jnp.asarray(w)
    if value in DISTANCES:
        return DISTANCES[value]
    return value, value


@pytest.mark.parametrize("cls_name,args,kwargs", MODULE_CONFIGS)
def test_modules_match_torch_modules(x64, torch, rng, cls_name, args, kwargs):
    pairs = [_module_args(torch, a, rng) for a in args]
    kw_pairs = {k: _module_args(torch, v, rng) for k, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(torch.nn, cls_name)(*[p[0] for p in pairs], **{k: p[0] for k, p in kw_pairs.items()})
        ours = getattr(fnn, cls_name)(*[p[1] for p in pairs], **{k: p[1] for k, p in kw_pairs.items()})
    assert ours.reduction == theirs.reduction
    assert sorted(fnn.state_dict(ours)) == sorted(theirs.state_dict())
    fn_name, make = MODULES[cls_name]
    arrays = make(rng)
    params = list(inspect.signature(getattr(torch.nn.functional, fn_name)).parameters)
    inputs = [arrays[p] for p in params if p in arrays]
    t_inputs = [torch.from_numpy(a) for a in inputs]
    expected = theirs(*t_inputs).detach().numpy()
    actual = ours(*[jnp.asarray(a) for a in inputs])
    assert_close(actual, expected, 1e-10)


@pytest.mark.parametrize("cls_name", sorted(MODULES) + ["CTCLoss"])
def test_module_signature_and_state_dict_match_torch(torch, cls_name):
    theirs = list(inspect.signature(getattr(torch.nn, cls_name).__init__).parameters.values())[1:]
    ours = list(inspect.signature(getattr(fnn, cls_name)).parameters.values())
    assert [(p.name, repr(p.default), p.kind) for p in ours[:-1]] == [(p.name, repr(p.default), p.kind) for p in theirs]
    assert ours[-1].name == "rngs" and ours[-1].kind == inspect.Parameter.KEYWORD_ONLY
    assert fnn.state_dict(getattr(fnn, cls_name)()) == {}
    assert not getattr(torch.nn, cls_name)().state_dict()


@pytest.mark.parametrize(
    "cls_name,kwargs,message",
    [
        ("MultiMarginLoss", {"p": 3}, "only p == 1 and p == 2 supported"),
        (
            "MultiMarginLoss",
            {"weight": np.ones((2, 2))},
            "MultiMarginLoss: expected weight to be None or 1D tensor, got 2D",
        ),
        ("TripletMarginLoss", {"margin": 0.0}, "TripletMarginLoss: expected margin to be greater than 0, got 0.0"),
        ("TripletMarginWithDistanceLoss", {"margin": -1.0}, "greater than 0, got -1.0 instead"),
    ],
)
def test_module_constructor_errors_are_torchs(torch, cls_name, kwargs, message):
    t_kwargs = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(torch.nn, cls_name)(**t_kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(fnn, cls_name)(**kwargs)


def test_module_positional_and_keyword_rules():
    with pytest.raises(TypeError, match="takes 0 positional arguments"):
        fnn.GaussianNLLLoss(True)
    with pytest.raises(TypeError, match="multiple values for argument 'margin'"):
        fnn.MarginRankingLoss(0.5, margin=0.5)
    assert fnn.TripletMarginLoss(0.5, 1).p == 1 and fnn.GaussianNLLLoss(full=True).full


@pytest.mark.parametrize("cls_name", sorted(MODULES))
def test_module_db_inputs_match_torch(x64, torch, cls_name):
    cases = module_db_inputs(cls_name, torch, torch.float64)
    if cls_name in ("TripletMarginLoss", "TripletMarginWithDistanceLoss"):
        assert not cases  # not in torch's module_db: covered by the tables above
        return
    assert cases
    for args, kwargs, forward, _ in cases:
        if cls_name == "SoftMarginLoss":  # torch refuses a target gradient; ±1 as integers asks for none
            forward = (forward[0], forward[1].long())
        theirs = getattr(torch.nn, cls_name)(
            *args, **{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        )
        ours = getattr(fnn, cls_name)(
            *args, **{k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        )
        diff = compare_module(theirs, ours, forward, torch=torch, rtol=1e-10, atol=1e-12, modes=(True,))
        key = (f"{cls_name} (module_db)", "float64")
        DIFFS[key] = max(DIFFS.get(key, 0.0), diff.rel)


# ------------------------------------------------------------------------------- rosetta cases
#: torch spelling (first cell of the row in docs/rosetta.md, backticks removed) -> case(torch, rng, prec)
ROSETTA_CASES: dict[str, Callable] = {}


def case(spelling: str):
    def register(fn: Callable) -> Callable:
        ROSETTA_CASES[spelling] = fn
        return fn

    return register


def _pair(torch, rng, prec, *shape, scale=1.0):
    a = (rng.standard_normal(shape) * scale).astype(prec)
    return torch.from_numpy(a), jnp.asarray(a)


@case("F.poisson_nll_loss(x, y, log_input=True, full=False, eps=1e-8), nn.PoissonNLLLoss(...)")
def _poisson(torch, rng, prec):
    tx, jx = _pair(torch, rng, prec, N, C)
    y = counts(N, C)(rng).astype(prec)
    for full in (False, True):
        expected = torch.nn.PoissonNLLLoss(full=full)(tx, torch.from_numpy(y)).numpy()
        assert_close(fnn.PoissonNLLLoss(full=full)(jx, jnp.asarray(y)), expected, RTOL[prec])
    plain = jnp.mean(jnp.exp(jx) - y * jx)  # the default in plain jax
    assert_close(plain, torch.nn.functional.poisson_nll_loss(tx, torch.from_numpy(y)).numpy(), RTOL[prec])
    everywhere = jnp.mean(jnp.exp(jx) - y * jx + (y * jnp.log(y) - y + 0.5 * jnp.log(2 * math.pi * y)))
    assert not np.isfinite(float(everywhere))  # Stirling's term at y = 0: torch masks it where y <= 1


@case("F.gaussian_nll_loss(x, y, var, full=False, eps=1e-6), nn.GaussianNLLLoss(full=False, eps=1e-6)")
def _gaussian(torch, rng, prec):
    arrays = gaussian((N, D))(rng)
    x, y, v = (arrays[k].astype(prec) for k in ("input", "target", "var"))
    t_v = torch.from_numpy(v).requires_grad_(True)
    expected = torch.nn.GaussianNLLLoss()(torch.from_numpy(x), torch.from_numpy(y), t_v)
    expected.backward()
    value, grad = jax.value_and_grad(lambda w: fnn.GaussianNLLLoss()(jnp.asarray(x), jnp.asarray(y), w))(jnp.asarray(v))
    assert_close(value, expected.detach().numpy(), RTOL[prec])
    assert_close(grad, t_v.grad.numpy(), RTOL[prec])

    def plain(w):
        w = jnp.maximum(w, 1e-6)
        return jnp.mean(0.5 * (jnp.log(w) + (x - y) ** 2 / w))

    assert not np.any(np.asarray(jax.grad(plain)(jnp.asarray(v))).flat[:2])  # clamped: no gradient


@case("F.cosine_embedding_loss(x1, x2, y, margin=0), nn.CosineEmbeddingLoss(margin=0.0)")
def _cosine(torch, rng, prec):
    arrays = cosine_edges(rng)
    x1, x2, y = (arrays[k].astype(prec) for k in ("input1", "input2", "target"))
    expected = torch.nn.CosineEmbeddingLoss(reduction="none")(*map(torch.from_numpy, (x1, x2, y))).numpy()
    actual = fnn.CosineEmbeddingLoss(reduction="none")(jnp.asarray(x1), jnp.asarray(x2), jnp.asarray(y))
    assert_close(actual, expected, RTOL[prec])
    cos = optax.losses.cosine_similarity(jnp.asarray(x1), jnp.asarray(x2))
    assert np.isnan(np.asarray(cos)[1])  # the zero vector: optax (epsilon=0) gives NaN, torch cos 0
    assert expected[1] == 1.0


@case("F.hinge_embedding_loss(x, y, margin=1.0), nn.HingeEmbeddingLoss(margin=1.0)")
def _hinge(torch, rng, prec):
    arrays = hinge_ties(rng)
    x, y = arrays["input"].astype(prec), np.where(arrays["target"] > 0, 1.0, -1.0).astype(prec)
    expected = torch.nn.HingeEmbeddingLoss()(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    assert_close(fnn.HingeEmbeddingLoss()(jnp.asarray(x), jnp.asarray(y)), expected, RTOL[prec])
    optax_hinge = float(jnp.mean(optax.losses.hinge_loss(jnp.asarray(x), jnp.asarray(y))))
    assert abs(optax_hinge - float(expected)) > 0.1  # max(0, 1 - x·y): another loss


@case("F.margin_ranking_loss(x1, x2, y, margin=0), nn.MarginRankingLoss(margin=0.0)")
def _ranking(torch, rng, prec):
    arrays = ranking_ties(rng)
    x1, x2, y = (arrays[k].astype(prec) for k in ("input1", "input2", "target"))
    t1 = torch.from_numpy(x1).requires_grad_(True)
    torch.nn.MarginRankingLoss(margin=0.5)(t1, torch.from_numpy(x2), torch.from_numpy(y)).backward()
    grad = jax.grad(lambda a: fnn.MarginRankingLoss(margin=0.5)(a, jnp.asarray(x2), jnp.asarray(y)))(jnp.asarray(x1))
    assert_close(grad, t1.grad.numpy(), RTOL[prec])
    plain = jax.grad(lambda a: jnp.mean(jnp.maximum(0.0, -y * (a - x2) + 0.5)))(jnp.asarray(x1))
    assert float(plain[0]) == pytest.approx(float(t1.grad[0]) / 2)  # the kink: jnp.maximum splits it


@case("F.multilabel_margin_loss(x, y), nn.MultiLabelMarginLoss()")
def _multilabel_margin(torch, rng, prec):
    x = rng.standard_normal((N, C)).astype(prec)
    y = labels_with_end(N, C)(rng)
    expected = torch.nn.MultiLabelMarginLoss(reduction="none")(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    assert_close(fnn.MultiLabelMarginLoss(reduction="none")(jnp.asarray(x), jnp.asarray(y)), expected, RTOL[prec])


@case("F.multilabel_soft_margin_loss(x, y, weight=None), nn.MultiLabelSoftMarginLoss(weight=None)")
def _multilabel_soft(torch, rng, prec):
    tx, jx = _pair(torch, rng, prec, N, C)
    y = probs(N, C)(rng).astype(prec)
    expected = torch.nn.MultiLabelSoftMarginLoss()(tx, torch.from_numpy(y)).numpy()
    assert_close(fnn.MultiLabelSoftMarginLoss()(jx, jnp.asarray(y)), expected, RTOL[prec])
    plain = jnp.mean(jnp.mean(optax.losses.sigmoid_binary_cross_entropy(jx, jnp.asarray(y)), axis=-1))
    assert_close(plain, expected, RTOL[prec])  # the same without weight


@case("F.multi_margin_loss(x, y, p=1, margin=1.0, weight=None), nn.MultiMarginLoss(...)")
def _multi_margin(torch, rng, prec):
    tx, jx = _pair(torch, rng, prec, N, C)
    y = rng.integers(0, C, N)
    expected = torch.nn.MultiMarginLoss(reduction="none")(tx, torch.from_numpy(y)).numpy()
    assert_close(fnn.MultiMarginLoss(reduction="none")(jx, jnp.asarray(y)), expected, RTOL[prec])
    optax_hinge = np.asarray(optax.losses.multiclass_hinge_loss(jx, jnp.asarray(y)))
    assert np.abs(optax_hinge - expected).max() > 0.1  # the largest violation, not the mean over classes


@case("F.soft_margin_loss(x, y), nn.SoftMarginLoss()")
def _soft_margin(torch, rng, prec):
    arrays = soft_overflow(rng)
    x, y = arrays["input"].astype(prec), arrays["target"].astype(prec)
    expected = torch.nn.SoftMarginLoss(reduction="none")(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    actual = fnn.SoftMarginLoss(reduction="none")(jnp.asarray(x), jnp.asarray(y))
    assert_close(actual, expected, RTOL[prec])
    softplus = np.asarray(jax.nn.softplus(-jnp.asarray(x) * jnp.asarray(y)))
    assert np.isinf(expected.flat[0]) and np.isfinite(softplus.flat[0])  # torch overflows, softplus not
    finite = np.isfinite(expected)
    assert_close(softplus[finite], expected[finite], RTOL[prec])


@case("F.triplet_margin_loss(a, p, n, margin=1.0, p=2, eps=1e-6, swap=False), nn.TripletMarginLoss(...)")
def _triplet(torch, rng, prec):
    arrays = {k: v.astype(prec) for k, v in TRIPLET(rng).items()}
    t_args, j_args = [torch.from_numpy(arrays[k]) for k in arrays], [jnp.asarray(arrays[k]) for k in arrays]
    for swap in (False, True):
        expected = torch.nn.TripletMarginLoss(swap=swap, reduction="none")(*t_args).numpy()
        assert_close(fnn.TripletMarginLoss(swap=swap, reduction="none")(*j_args), expected, RTOL[prec])
    expected = torch.nn.TripletMarginLoss(p=3, reduction="none")(*t_args).numpy()
    optax_triplet = np.asarray(optax.losses.triplet_margin_loss(*j_args, norm_degree=3))
    assert not np.allclose(optax_triplet, expected, rtol=1e-3)  # eps inside the root, no |.|


@case(
    "F.triplet_margin_with_distance_loss(a, p, n, distance_function=None, margin=1.0, swap=False), "
    "nn.TripletMarginWithDistanceLoss(...)"
)
def _triplet_distance(torch, rng, prec):
    arrays = {k: v.astype(prec) for k, v in TRIPLET(rng).items()}
    t_args, j_args = [torch.from_numpy(arrays[k]) for k in arrays], [jnp.asarray(arrays[k]) for k in arrays]
    t_fn, j_fn = DISTANCES["cosine"]
    expected = torch.nn.TripletMarginWithDistanceLoss(distance_function=t_fn, swap=True)(*t_args).numpy()
    assert_close(fnn.TripletMarginWithDistanceLoss(distance_function=j_fn, swap=True)(*j_args), expected, RTOL[prec])
    default = torch.nn.TripletMarginWithDistanceLoss()(*t_args).numpy()
    assert_close(fnn.TripletMarginWithDistanceLoss()(*j_args), default, RTOL[prec])
    assert_close(F.triplet_margin_loss(*j_args), default, RTOL[prec])  # default: triplet_margin_loss


def _value_and_vjp(fn: Callable, x: jax.Array, cotangent: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``fn(x)`` and its vjp, compiled as one program (eagerly, each scan would compile op by op)."""

    def both(x, cotangent):
        out, vjp = jax.vjp(fn, x)
        return out, vjp(cotangent)[0]

    return jax.jit(both)(x, cotangent)


@case(
    "F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction='mean', "
    "zero_infinity=False), nn.CTCLoss(...)"
)
def _ctc(torch, rng, prec):
    n_t, n, n_classes, s = 12, 3, 5, 4
    logits = rng.standard_normal((n, n_t, n_classes)).astype(prec)
    targets = rng.integers(1, n_classes, (n, s))
    il, tl = np.asarray([12, 10, 3]), np.asarray([4, 2, 3])  # the third cannot be aligned (needs 4 frames)
    t_logits = torch.from_numpy(logits).requires_grad_(True)
    t_lp = t_logits.log_softmax(2).transpose(0, 1)
    t_out = torch.nn.CTCLoss(reduction="none")(
        t_lp, torch.from_numpy(targets), torch.from_numpy(il), torch.from_numpy(tl)
    )
    t_out[:2].sum().backward()

    def ours(z):
        lp = jnp.swapaxes(jax.nn.log_softmax(z, axis=2), 0, 1)
        return fnn.CTCLoss(reduction="none")(lp, jnp.asarray(targets), jnp.asarray(il), jnp.asarray(tl))

    cot = jnp.asarray([1.0, 1.0, 0.0], prec)
    out, grad = _value_and_vjp(ours, jnp.asarray(logits), cot)
    assert_close(out, t_out.detach().numpy(), RTOL[prec])
    assert np.isinf(np.asarray(out)[2])
    assert_close(grad, t_logits.grad.numpy(), RTOL[prec])
    # optax: batch-first logits and padding masks; the same losses and logit gradients where an
    # alignment exists, but log(0) is -1e5, so the impossible one is finite instead of inf.
    steps, labels = np.arange(n_t), np.arange(s)
    pads = [(steps[None] >= il[:, None]).astype(prec), (labels[None] >= tl[:, None]).astype(prec)]

    def optax_ctc(z):
        return optax.ctc_loss(z, pads[0], jnp.asarray(targets), pads[1])

    o_out, o_grad = _value_and_vjp(optax_ctc, jnp.asarray(logits), cot)
    assert_close(np.asarray(o_out)[:2], t_out.detach().numpy()[:2], RTOL[prec])
    assert 1e4 < float(o_out[2]) < np.inf
    assert_close(o_grad[:2], t_logits.grad.numpy()[:2], RTOL[prec])
    assert np.isnan(t_logits.grad.numpy()[2]).any() and np.isfinite(o_grad[2]).all()  # torch: NaN·0


@pytest.mark.parametrize("spelling", sorted(ROSETTA_CASES))
def test_rosetta_row(spelling, prec, torch, rng):
    ROSETTA_CASES[spelling](torch, rng, prec)
