"""fnnet.nn.functional's losses and the fnnet.nn loss modules against live torch: values and input
gradients, every loss x reduction x option, float64 (1e-10) and float32 (1e-5), edge inputs included;
errors; no recompiles; and one case per row of docs/rosetta.md's "Losses" section (``ROSETTA_CASES``),
each also checking the row's "plain optax would give" column."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnnet.nn
import fnnet.nn.functional as F

RTOL = {"float64": 1e-10, "float32": 1e-5}
KL_MEAN_WARNING = "ignore:reduction. 'mean' divides"


def assert_close(actual, expected, rtol: float) -> None:
    """Same shape, same NaN/inf positions, finite entries within ``rtol`` relative to the largest
    finite |expected| entry (so near-zero gradient entries are judged on the array's scale)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(actual[~finite], expected[~finite])
    scale = np.abs(expected[finite]).max(initial=0.0)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=rtol, atol=rtol * scale)


# ------------------------------------------------------------------------------------ data makers
def _log_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    a = a - a.max(axis=axis, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=axis, keepdims=True))


def _labels(rng, n_classes: int, shape: tuple[int, ...], ignore: float = 0.0, ignore_index: int = -100) -> np.ndarray:
    t = rng.integers(0, n_classes, shape)
    t[rng.random(shape) < ignore] = ignore_index
    return t


# All cases share the shapes (N, C), (N2, C, D) and (C,): JAX's eager op cache is then reused
# across cases, which keeps the whole table to a few seconds (one jit per case would compile ~90x).
N, C, N2, D = 5, 4, 2, 3
PLAIN = ("none", "mean", "sum")


def _ties(gap: float):
    """Errors include exactly 0 and exactly +-gap (the branch boundaries of l1/smooth_l1/huber)."""

    def make(rng) -> dict:
        x, t = rng.standard_normal((N, C)) * 2, rng.standard_normal((N, C))
        x.flat[:3], t.flat[:3] = [0.25, 0.25 + gap, -gap], [0.25, 0.25, 0.0]
        return {"input": x, "target": t}

    return make


def _bce_edges(rng) -> dict:
    """Probabilities of exactly 0 and 1 (and 1e-13, inside the 1e-12 gradient clamp)."""
    p, t = rng.uniform(0.01, 0.99, (N, C)), rng.uniform(0.0, 1.0, (N, C))
    p.flat[:10] = [0.0, 1.0, 0.0, 1.0, 0.5, 1e-13, 0.0, 1.0, 0.999, 0.0]
    t.flat[:10] = [0.0, 1.0, 1.0, 0.0, 0.3, 0.0, 0.3, 0.6, 1.0, 0.5]
    return {"input": p, "target": t}


def _mk(**parts):
    """A maker: each keyword is a function of rng giving that array."""
    return lambda rng: {k: f(rng) for k, f in parts.items()}


def _with(make, **parts):
    return lambda rng: {**make(rng), **{k: f(rng) for k, f in parts.items()}}


def _extremes(rng) -> np.ndarray:
    x = rng.standard_normal((N, C))
    x[0] = [-40.0, 40.0, 30.0, -30.0]
    return x


normal = lambda *s: lambda rng: rng.standard_normal(s)  # noqa: E731
positive = lambda *s: lambda rng: rng.uniform(0.2, 2.0, s)  # noqa: E731
probs = lambda *s: lambda rng: rng.uniform(0.01, 0.99, s)  # noqa: E731
softmax = lambda axis, *s: lambda rng: np.exp(_log_softmax(rng.standard_normal(s), axis))  # noqa: E731
log_probs = lambda axis, *s: lambda rng: _log_softmax(rng.standard_normal(s), axis)  # noqa: E731
labels = lambda *shape, **kw: lambda rng: _labels(rng, C, shape, **kw)  # noqa: E731


def _sparse_probs(rng) -> np.ndarray:
    return softmax(1, N, C)(rng) * (rng.random((N, C)) > 0.3)  # exact zeros: xlogy(0, 0) = 0


REG = _mk(input=normal(N, C), target=normal(N, C))
CLS = _mk(input=normal(N, C), target=labels(N))
KCLS = _mk(input=normal(N2, C, D), target=labels(N2, D, ignore=0.3))
CASES = [
    ("mse_loss", REG, {}),
    ("mse_loss", _with(REG, weight=positive(N, C)), {}),
    ("l1_loss", _ties(0.5), {}),
    ("l1_loss", _with(REG, weight=positive(N, C)), {}),
    ("smooth_l1_loss", _ties(1.0), {}),
    ("smooth_l1_loss", _ties(0.5), {"beta": 0.5}),
    ("smooth_l1_loss", _ties(0.5), {"beta": 0.0}),
    ("huber_loss", _ties(1.0), {}),
    ("huber_loss", _ties(0.5), {"delta": 0.5}),
    ("huber_loss", _with(REG, weight=positive(N, C)), {"delta": 2.0}),
    ("binary_cross_entropy", _mk(input=probs(N, C), target=probs(N, C)), {}),
    ("binary_cross_entropy", _bce_edges, {}),
    ("binary_cross_entropy", _with(_bce_edges, weight=positive(C)), {}),
    ("binary_cross_entropy", _with(_bce_edges, weight=positive(N, C)), {}),
    ("binary_cross_entropy_with_logits", _mk(input=_extremes, target=probs(N, C)), {}),
    ("binary_cross_entropy_with_logits", _mk(input=normal(N, C), target=probs(N, C), weight=positive(C)), {}),
    ("binary_cross_entropy_with_logits", _mk(input=_extremes, target=probs(N, C), pos_weight=positive(C)), {}),
    (
        "binary_cross_entropy_with_logits",
        _mk(input=normal(N, C), target=probs(N, C), weight=positive(N, 1), pos_weight=positive(N, C)),
        {},
    ),
    # class indices
    ("cross_entropy", _mk(input=_extremes, target=labels(N)), {}),
    ("cross_entropy", _with(CLS, weight=positive(C)), {}),
    ("cross_entropy", _mk(input=normal(N, C), target=labels(N, ignore=0.4)), {}),
    ("cross_entropy", _with(CLS, weight=positive(C)), {"ignore_index": 1}),
    ("cross_entropy", _mk(input=normal(N, C), target=labels(N, ignore=0.3)), {"label_smoothing": 0.2}),
    (
        "cross_entropy",
        _mk(input=normal(N, C), target=labels(N, ignore=0.3), weight=positive(C)),
        {"label_smoothing": 0.2},
    ),
    ("cross_entropy", _mk(input=normal(C), target=labels()), {"label_smoothing": 0.1}),
    ("cross_entropy", _with(KCLS, weight=positive(C)), {}),
    ("cross_entropy", _with(KCLS, weight=positive(C)), {"label_smoothing": 0.3}),
    ("cross_entropy", _mk(input=normal(N, C), target=labels(N, ignore=1.0)), {}),  # all ignored
    (
        "cross_entropy",
        _mk(input=normal(N, C), target=labels(N, ignore=1.0), weight=positive(C)),
        {"label_smoothing": 0.1},
    ),
    # class probabilities
    ("cross_entropy", _mk(input=normal(N, C), target=softmax(1, N, C)), {}),
    ("cross_entropy", _mk(input=normal(N, C), target=softmax(1, N, C), weight=positive(C)), {"label_smoothing": 0.25}),
    ("cross_entropy", _mk(input=normal(C), target=softmax(0, C)), {"label_smoothing": 0.1}),
    ("cross_entropy", _mk(input=normal(N2, C, D), target=softmax(1, N2, C, D)), {}),
    (
        "cross_entropy",
        _mk(input=normal(N2, C, D), target=softmax(1, N2, C, D), weight=positive(C)),
        {"label_smoothing": 0.2},
    ),
    ("nll_loss", _mk(input=log_probs(1, N, C), target=labels(N)), {}),
    ("nll_loss", _mk(input=log_probs(1, N, C), target=labels(N, ignore=0.4), weight=positive(C)), {}),
    ("nll_loss", _mk(input=log_probs(1, N, C), target=labels(N), weight=positive(C)), {"ignore_index": 2}),
    ("nll_loss", _mk(input=log_probs(1, N2, C, D), target=labels(N2, D, ignore=0.3), weight=positive(C)), {}),
    ("nll_loss", _mk(input=log_probs(0, C), target=labels()), {}),
    ("nll_loss", _mk(input=log_probs(1, N, C), target=labels(N, ignore=1.0), weight=positive(C)), {}),  # all ignored
    ("kl_div", _mk(input=log_probs(1, N, C), target=_sparse_probs), {"log_target": False}),
    ("kl_div", _mk(input=log_probs(1, N, C), target=log_probs(1, N, C)), {"log_target": True}),
    ("kl_div", _mk(input=log_probs(1, N2, C, D), target=softmax(1, N2, C, D)), {}),
]
PARAMS = [
    pytest.param(name, make, kwargs, dtype, id=f"{name}-{i}-{dtype}")
    for i, (name, make, kwargs) in enumerate(CASES)
    for dtype in ("float64", "float32")
]


def _torch_args(torch, arrays: dict, dtype: str) -> dict:
    return {
        k: torch.from_numpy(a.astype(np.int64 if np.issubdtype(a.dtype, np.integer) else dtype))
        for k, a in arrays.items()
    }


def _jax_args(arrays: dict, dtype: str) -> dict:
    # Integer targets: int32 in float32 runs (torch would insist on int64), int64 under x64.
    int_dtype = np.int64 if dtype == "float64" else np.int32
    return {
        k: jnp.asarray(a.astype(int_dtype if np.issubdtype(a.dtype, np.integer) else dtype)) for k, a in arrays.items()
    }


@pytest.mark.filterwarnings(KL_MEAN_WARNING)
@pytest.mark.parametrize("name,make,kwargs,dtype", PARAMS)
def test_value_and_input_grad_match_torch(request, torch, rng, name, make, kwargs, dtype):
    """Every reduction; for ``none`` the gradient is that of sum(loss * random cotangent)."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    reductions = PLAIN + ("batchmean",) if name == "kl_div" else PLAIN
    arrays = {k: np.asarray(v) for k, v in make(rng).items()}
    expected, cotangents = [], []
    for reduction in reductions:
        t_args = _torch_args(torch, arrays, dtype)
        t_in = t_args.pop("input").requires_grad_(True)
        t_out = getattr(torch.nn.functional, name)(t_in, **t_args, reduction=reduction, **kwargs)
        cotangents.append(rng.standard_normal(tuple(t_out.shape)).astype(dtype))
        (t_out * torch.from_numpy(cotangents[-1])).sum().backward()
        expected.append((t_out.detach().numpy(), t_in.grad.numpy()))

    fn, j_args = getattr(F, name), _jax_args(arrays, dtype)
    j_in = j_args.pop("input")
    actual = []
    for reduction, ct in zip(reductions, cotangents):
        out, vjp = jax.vjp(lambda a: fn(a, **j_args, reduction=reduction, **kwargs), j_in)
        actual.append((out, vjp(jnp.asarray(ct))[0]))
    for reduction, (j_out, j_grad), (t_out, t_grad) in zip(reductions, actual, expected):
        assert j_out.dtype == jnp.dtype(dtype), reduction
        assert_close(j_out, t_out, RTOL[dtype])
        assert_close(j_grad, t_grad, RTOL[dtype])


def test_all_ignored_mean_is_nan_with_zero_grad_like_torch(x64, torch, rng):
    x = rng.standard_normal((N, C))
    t = np.full(N, -100)
    t_in = torch.from_numpy(x).requires_grad_(True)
    t_out = torch.nn.functional.cross_entropy(t_in, torch.from_numpy(t), label_smoothing=0.1)
    t_out.backward()
    j_out, j_grad = jax.jit(jax.value_and_grad(lambda a: F.cross_entropy(a, jnp.asarray(t), label_smoothing=0.1)))(
        jnp.asarray(x)
    )
    assert np.isnan(t_out.item()) and np.isnan(float(j_out))
    np.testing.assert_array_equal(np.asarray(j_grad), t_in.grad.numpy())
    assert not np.any(np.asarray(j_grad))


@pytest.mark.parametrize("reduction", PLAIN)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_target_grad_matches_torch(x64, torch, rng, reduction, weighted):
    arrays = _bce_edges(rng)
    p, t = (torch.from_numpy(arrays[k]).requires_grad_(True) for k in ("input", "target"))
    w = rng.uniform(0.5, 2.0, C) if weighted else None
    t_out = torch.nn.functional.binary_cross_entropy(
        p, t, weight=None if w is None else torch.from_numpy(w), reduction=reduction
    )
    cotangent = rng.standard_normal(tuple(t_out.shape))
    (t_out * torch.from_numpy(cotangent)).sum().backward()
    _, vjp = jax.vjp(
        lambda a, b: F.binary_cross_entropy(a, b, weight=w, reduction=reduction),
        jnp.asarray(arrays["input"]),
        jnp.asarray(arrays["target"]),
    )
    g_p, g_t = vjp(jnp.asarray(cotangent))
    assert_close(g_p, p.grad.numpy(), 1e-10)
    assert_close(g_t, t.grad.numpy(), 1e-10)
    assert np.isinf(np.asarray(g_t)).any()  # p of exactly 0 or 1: torch's target grad is +-inf


@pytest.mark.parametrize(
    "name,args",
    [
        ("mse_loss", {"size_average": False}),
        ("l1_loss", {"reduce": False}),
        ("smooth_l1_loss", {"size_average": True, "reduce": True}),
        ("cross_entropy", {"size_average": False, "reduction": "none"}),
        ("nll_loss", {"reduce": False, "reduction": "sum"}),
        ("kl_div", {"size_average": False}),
    ],
)
def test_legacy_size_average_reduce_override_reduction(x64, torch, rng, name, args):
    x = rng.standard_normal((N, C))
    target = rng.integers(0, C, N) if name in ("cross_entropy", "nll_loss") else rng.random((N, C))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = getattr(torch.nn.functional, name)(torch.from_numpy(x), torch.from_numpy(target), **args)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        actual = getattr(F, name)(jnp.asarray(x), jnp.asarray(target), **args)
    assert_close(actual, expected.numpy(), 1e-10)


@pytest.mark.parametrize("module", ["torch", "fnnet"])
def test_kl_div_warns_for_mean_only(torch, module):
    x = torch.zeros((2, 3)) if module == "torch" else jnp.zeros((2, 3))
    kl_div = torch.nn.functional.kl_div if module == "torch" else F.kl_div
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        kl_div(x, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kl_div(x, x, reduction="batchmean")


# ------------------------------------------------------------------------------------------ errors
def _f32(*shape):
    return jnp.zeros(shape, jnp.float32)


def _i32(*values):
    return jnp.asarray(values, jnp.int32)


ERRORS = [
    (lambda: F.mse_loss(_f32(3, 4), _f32(4)), [r"\(4,\)", r"\(3, 4\)"]),
    (lambda: F.l1_loss(_f32(3, 4), _f32(3, 1)), [r"\(3, 1\)", r"\(3, 4\)"]),
    (lambda: F.smooth_l1_loss(_f32(3), _f32(1)), [r"\(1,\)", r"\(3,\)"]),
    (lambda: F.huber_loss(_f32(3), _f32(3), weight=_f32(1)), [r"\(1,\)", r"\(3,\)"]),
    (lambda: F.kl_div(_f32(2, 3), _f32(3), reduction="sum"), [r"\(3,\)", r"\(2, 3\)"]),
    (lambda: F.binary_cross_entropy(_f32(2, 3), _f32(3)), [r"\(3,\)", r"\(2, 3\)"]),
    (lambda: F.binary_cross_entropy(_f32(2, 3), _f32(2, 3), weight=_f32(2)), [r"\(2,\)", r"\(2, 3\)"]),
    (lambda: F.binary_cross_entropy_with_logits(_f32(3, 4), _f32(4)), [r"\(4,\)", r"\(3, 4\)"]),
    (
        lambda: F.binary_cross_entropy_with_logits(_f32(3, 4), _f32(3, 4), weight=_f32(2, 3, 4)),
        [r"\(2, 3, 4\)", r"\(3, 4\)"],
    ),
    (
        lambda: F.binary_cross_entropy_with_logits(_f32(3, 4), _f32(3, 4), pos_weight=_f32(3)),
        [r"\(3,\)", r"\(3, 4\)"],
    ),
    (lambda: F.cross_entropy(_f32(3, 4), _i32(0, 1)), [r"\(2,\)", r"\(3, 4\)"]),
    (
        lambda: F.cross_entropy(_f32(2, 3, 4), jnp.zeros((2, 5), jnp.int32)),
        [r"\(2, 5\)", r"\(2, 3, 4\)", r"\(2, 4\)"],
    ),
    (lambda: F.nll_loss(_f32(3, 4), _i32(0, 1, 2, 3)), [r"\(4,\)", r"\(3, 4\)"]),
    (lambda: F.cross_entropy(_f32(3, 4), _f32(3)), ["integer class indices", "float32"]),
    (lambda: F.cross_entropy(_f32(3, 4), jnp.zeros((3, 4), jnp.int32)), ["Expected floating point type", "int32"]),
    (lambda: F.cross_entropy(_f32(3, 4), _f32(3, 4), ignore_index=0), ["ignore_index"]),
    (lambda: F.cross_entropy(_f32(3, 4), _i32(0, 1, 2), weight=_f32(3)), [r"\(3,\)", r"\(4,\)", r"\(3, 4\)"]),
    (lambda: F.cross_entropy(_f32(3, 4), _i32(0, 1, 5)), ["target 5 is out of bounds"]),
    (lambda: F.nll_loss(_f32(3, 4), _i32(0, -1, 2)), ["target -1 is out of bounds"]),
    (
        lambda: F.cross_entropy(_f32(3, 4), _i32(0, 1, 2), label_smoothing=1.5),
        ["label_smoothing must be between 0.0 and 1.0"],
    ),
    (lambda: F.cross_entropy(_f32(), _i32()), [r"got shape \(\)"]),
    (lambda: F.binary_cross_entropy(_f32(3) + 1.5, _f32(3)), ["input should be between 0"]),
    (lambda: F.binary_cross_entropy(_f32(3), _f32(3) - 0.5), ["target should be between 0"]),
    (lambda: F.smooth_l1_loss(_f32(3), _f32(3), beta=-1.0), ["negative values for beta"]),
    (lambda: F.huber_loss(_f32(3), _f32(3), delta=0.0), ["non-positive values for delta"]),
    (
        lambda: F.mse_loss(_f32(3), _f32(3), reduction="batchmean"),
        ["batchmean is not a valid value for reduction"],
    ),
    (lambda: F.kl_div(_f32(3), _f32(3), reduction="avg"), ["avg is not a valid value"]),
    (lambda: F.mse_loss(_i32(1, 2), _i32(1, 2)), ["floating-point", "int32"]),
]


@pytest.mark.parametrize("call,patterns", ERRORS, ids=[f"error{i}" for i in range(len(ERRORS))])
def test_invalid_arguments_raise_value_error(call, patterns):
    with pytest.raises(ValueError) as info:
        call()
    for pattern in patterns:
        assert re.search(pattern, str(info.value)), str(info.value)


@pytest.mark.parametrize("name", ["mse_loss", "binary_cross_entropy_with_logits", "kl_div", "cross_entropy"])
def test_float_dtype_mismatch_raises_naming_both_dtypes(x64, name):
    x = jnp.zeros((2, 3), jnp.float32)
    with pytest.raises(ValueError, match="float32.*float64"):
        getattr(F, name)(x, jnp.zeros((2, 3), jnp.float64), reduction="sum")
    with pytest.raises(ValueError, match="float32.*float64"):
        F.cross_entropy(x, jnp.zeros(2, jnp.int64), weight=jnp.ones(3, jnp.float64))


def test_out_of_range_class_under_jit_gives_nan():
    out = jax.jit(F.cross_entropy)(_f32(2, 3), _i32(0, 3))
    assert np.isnan(float(out))


# ------------------------------------------------------------------------------------- compilation
JITTED = [
    ("mse_loss", lambda x, t: F.mse_loss(x, t)),
    ("bce", lambda x, t: F.binary_cross_entropy(jax.nn.sigmoid(x), jax.nn.sigmoid(t))),
    (
        "cross_entropy",
        lambda x, t: F.cross_entropy(x, jnp.argmax(t, axis=1), weight=jnp.arange(1.0, 4.0), label_smoothing=0.1),
    ),
    ("kl_div", lambda x, t: F.kl_div(x, t, reduction="batchmean", log_target=True)),
]


@pytest.mark.parametrize("name,loss", JITTED)
def test_jitted_loss_does_not_recompile(rng, name, loss, compile_count):
    traces: list[int] = []

    @jax.jit
    def step(x, t):
        traces.append(1)  # runs only while tracing
        return jax.value_and_grad(loss)(x, t)

    compiled = []
    for _ in range(3):
        step(
            jnp.asarray(rng.standard_normal((4, 3)), jnp.float32), jnp.asarray(rng.standard_normal((4, 3)), jnp.float32)
        )
        compiled.append(compile_count())
    assert len(traces) == 1
    assert compiled[0] >= 1 and compiled[1:] == [compiled[0]] * 2  # compiled by the first call only


# ------------------------------------------------------------------------------ nn-style callables
MODULES = [
    ("MSELoss", "mse_loss", {"reduction": "sum"}),
    ("L1Loss", "l1_loss", {}),
    ("SmoothL1Loss", "smooth_l1_loss", {"beta": 0.5}),
    ("HuberLoss", "huber_loss", {"delta": 0.5, "reduction": "none"}),
    ("BCELoss", "binary_cross_entropy", {"weight": "w_elem"}),
    ("BCEWithLogitsLoss", "binary_cross_entropy_with_logits", {"weight": "w_elem", "pos_weight": "w_class"}),
    ("CrossEntropyLoss", "cross_entropy", {"weight": "w_class", "ignore_index": 1, "label_smoothing": 0.1}),
    ("NLLLoss", "nll_loss", {"weight": "w_class", "reduction": "sum"}),
    ("KLDivLoss", "kl_div", {"reduction": "batchmean", "log_target": True}),
]


@pytest.mark.parametrize("cls_name,fn_name,config", MODULES)
def test_nn_modules_match_torch_modules(x64, torch, rng, cls_name, fn_name, config):
    """``fnnet.nn.<Loss>(**options)(x, t)`` equals ``torch.nn.<Loss>(**options)(x, t)`` and
    ``F.<loss>(x, t, **options)`` (the constructors' signatures are checked in tests/test_nn_core.py)."""
    x = rng.uniform(0.05, 0.95, (N, C))
    target = rng.integers(0, C, N) if fn_name in ("cross_entropy", "nll_loss") else rng.random((N, C))
    arrays = {"w_elem": rng.uniform(0.5, 2.0, (N, C)), "w_class": rng.uniform(0.5, 2.0, C)}
    kwargs = {k: arrays.get(v, v) if isinstance(v, str) and v.startswith("w_") else v for k, v in config.items()}
    t_kwargs = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    expected = getattr(torch.nn, cls_name)(**t_kwargs)(torch.from_numpy(x), torch.from_numpy(target))
    j_kwargs = {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    module = getattr(fnnet.nn, cls_name)(**j_kwargs)
    actual = module(jnp.asarray(x), jnp.asarray(target))
    assert_close(actual, expected.numpy(), 1e-10)
    assert_close(actual, getattr(F, fn_name)(jnp.asarray(x), jnp.asarray(target), **j_kwargs), 0.0)


# -------------------------------------------------------------------------- docs/rosetta.md "Losses"
#: torch spelling (first column of docs/rosetta.md, backticks removed) -> case(torch, rng, prec).
#: Each case runs both torch spellings and both fnnet spellings (values and input gradients) and
#: then checks the row's "plain optax would give" column: optax's spelling gives torch's number where
#: the row says so (within the precision's tolerance), and visibly another (> 1e-3 relative) where it
#: says it differs.
ROSETTA_CASES: dict[str, Callable] = {}


def case(spelling: str):
    def register(fn: Callable) -> Callable:
        ROSETTA_CASES[spelling] = fn
        return fn

    return register


def _as(a: np.ndarray, prec: str) -> np.ndarray:
    return (
        a.astype(np.int64 if prec == "float64" else np.int32) if np.issubdtype(a.dtype, np.integer) else a.astype(prec)
    )


def torch_vg(torch, fn, first, *rest):
    """(value, d value / d first) of a torch loss; integer arrays become int64 tensors."""
    t_first = torch.from_numpy(first.copy()).requires_grad_(True)
    t_rest = [torch.from_numpy(a.astype(np.int64) if np.issubdtype(a.dtype, np.integer) else a) for a in rest]
    out = fn(t_first, *t_rest)
    out.backward()
    return out.detach().numpy(), t_first.grad.numpy()


def jax_vg(fn, first, *rest):
    """(value, d value / d first) of a JAX loss."""
    value, grad = jax.value_and_grad(lambda a: fn(a, *[jnp.asarray(r) for r in rest]))(jnp.asarray(first))
    return np.asarray(value), np.asarray(grad)


def assert_pairs(ours, theirs, prec: str) -> None:
    for a, b in zip(ours, theirs):
        assert a.dtype == np.dtype(prec) and a.shape == b.shape
        assert_close(a, b, RTOL[prec])


def assert_differs(ours, theirs) -> None:
    """The plain spelling gives another number: more than 1e-3 relative apart (or non-finite)."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert not np.allclose(ours, theirs, rtol=1e-3, atol=0, equal_nan=False), (ours, theirs)


@case("F.mse_loss(x, y), nn.MSELoss()(x, y)")
def _mse(torch, rng, prec):
    x, y = rng.standard_normal((N, C)).astype(prec), rng.standard_normal((N, C)).astype(prec)
    w = rng.uniform(0.2, 3.0, (N, C)).astype(prec)
    expected = torch_vg(torch, torch.nn.functional.mse_loss, x, y)
    assert_pairs(jax_vg(F.mse_loss, x, y), expected, prec)
    assert_pairs(jax_vg(fnnet.nn.MSELoss(), x, y), torch_vg(torch, torch.nn.MSELoss(), x, y), prec)
    # optax: squared_error(...).mean() is torch's value; l2_loss is half of it
    assert_pairs(jax_vg(lambda a, b: optax.losses.squared_error(a, b).mean(), x, y), expected, prec)
    half = jax_vg(lambda a, b: optax.losses.l2_loss(a, b).mean(), x, y)
    assert_pairs(tuple(2 * v for v in half), expected, prec)
    # torch's weight: the weighted mean sum(w * se) / sum(w), which optax has no spelling for
    weighted = torch_vg(torch, lambda a, b, c: torch.nn.functional.mse_loss(a, b, weight=c), x, y, w)
    assert_pairs(jax_vg(lambda a, b, c: F.mse_loss(a, b, weight=c), x, y, w), weighted, prec)
    assert_close(weighted[0], np.sum(w.astype(np.float64) * (x - y).astype(np.float64) ** 2) / w.sum(), RTOL[prec])
    assert_differs(jnp.mean(jnp.asarray(w) * optax.losses.squared_error(x, y)), weighted[0])


@case("F.l1_loss(x, y), nn.L1Loss()")
def _l1(torch, rng, prec):
    x, y = (rng.standard_normal((N, C)) * 2).astype(prec), rng.standard_normal((N, C)).astype(prec)
    x.flat[:3] = y.flat[:3]  # ties: torch's gradient there is 0
    expected = torch_vg(torch, torch.nn.functional.l1_loss, x, y)
    assert_pairs(jax_vg(F.l1_loss, x, y), expected, prec)
    assert_pairs(jax_vg(fnnet.nn.L1Loss(), x, y), torch_vg(torch, torch.nn.L1Loss(), x, y), prec)
    assert not [n for n in dir(optax.losses) if "l1" in n.lower() or "absolute" in n.lower()]  # no optax loss
    value, grad = jax_vg(lambda a, b: jnp.abs(a - b).mean(), x, y)
    assert_close(value, expected[0], RTOL[prec])  # the same value ...
    assert np.all(expected[1].flat[:3] == 0)  # torch: slope 0 where x == y ...
    np.testing.assert_allclose(grad.flat[:3], 1 / (N * C), rtol=RTOL[prec])  # ... jnp.abs: slope 1 (of the mean)
    assert_close(np.delete(grad, [0, 1, 2]), np.delete(expected[1], [0, 1, 2]), RTOL[prec])


@case("F.smooth_l1_loss(x, y, beta=b), nn.SmoothL1Loss(beta=b)")
def _smooth_l1(torch, rng, prec):
    x, y = (rng.standard_normal((N, C)) * 2).astype(prec), rng.standard_normal((N, C)).astype(prec)
    for b in (1.0, 0.5, 0.0):
        expected = torch_vg(torch, lambda a, t, b=b: torch.nn.functional.smooth_l1_loss(a, t, beta=b), x, y)
        assert_pairs(jax_vg(lambda a, t, b=b: F.smooth_l1_loss(a, t, beta=b), x, y), expected, prec)
        module = torch_vg(torch, torch.nn.SmoothL1Loss(beta=b), x, y)
        assert_pairs(jax_vg(fnnet.nn.SmoothL1Loss(beta=b), x, y), module, prec)
        plain = jax_vg(lambda a, t, b=b: (optax.losses.huber_loss(a, t, delta=b) / b).mean(), x, y)
        if b > 0:
            assert_pairs(plain, expected, prec)
        else:  # b = 0 must be special-cased as L1: the plain spelling divides 0 by 0
            assert np.isnan(plain[0])
            assert_close(np.abs(x - y).mean(), expected[0], RTOL[prec])


@case("F.huber_loss(x, y, delta=d), nn.HuberLoss(delta=d)")
def _huber(torch, rng, prec):
    x, y = (rng.standard_normal((N, C)) * 2).astype(prec), rng.standard_normal((N, C)).astype(prec)
    w = rng.uniform(0.2, 3.0, (N, C)).astype(prec)
    for d in (1.0, 0.5):
        expected = torch_vg(torch, lambda a, t, d=d: torch.nn.functional.huber_loss(a, t, delta=d), x, y)
        assert_pairs(jax_vg(lambda a, t, d=d: F.huber_loss(a, t, delta=d), x, y), expected, prec)
        assert_pairs(
            jax_vg(fnnet.nn.HuberLoss(delta=d), x, y), torch_vg(torch, torch.nn.HuberLoss(delta=d), x, y), prec
        )
        assert_pairs(jax_vg(lambda a, t, d=d: optax.losses.huber_loss(a, t, delta=d).mean(), x, y), expected, prec)
    # torch's weight gives mean(w * l) (not a weighted mean)
    weighted = torch_vg(torch, lambda a, t, c: torch.nn.functional.huber_loss(a, t, delta=0.5, weight=c), x, y, w)
    assert_pairs(jax_vg(lambda a, t, c: F.huber_loss(a, t, delta=0.5, weight=c), x, y, w), weighted, prec)
    mean_wl = jax_vg(lambda a, t: jnp.mean(jnp.asarray(w) * optax.losses.huber_loss(a, t, delta=0.5)), x, y)
    assert_pairs(mean_wl, weighted, prec)


@case("F.binary_cross_entropy(p, y, weight=w), nn.BCELoss(weight=w)")
def _bce(torch, rng, prec):
    arrays = _bce_edges(rng)
    p, y = arrays["input"].astype(prec), arrays["target"].astype(prec)
    w = rng.uniform(0.2, 3.0, C).astype(prec)
    expected = torch_vg(torch, lambda a, t, c: torch.nn.functional.binary_cross_entropy(a, t, weight=c), p, y, w)
    assert_pairs(jax_vg(lambda a, t, c: F.binary_cross_entropy(a, t, weight=c), p, y, w), expected, prec)
    module = torch_vg(torch, torch.nn.BCELoss(weight=torch.from_numpy(w)), p, y)
    assert_pairs(jax_vg(fnnet.nn.BCELoss(weight=jnp.asarray(w)), p, y), module, prec)
    # no optax loss on probabilities; the hand-written formula is not finite at p = 0 or 1, where
    # torch clamps the log at -100 (loss 100) and the gradient's denominator at 1e-12
    assert "sigmoid_binary_cross_entropy" in dir(optax.losses) and "binary_cross_entropy" not in dir(optax.losses)
    per = torch_vg(torch, lambda a, t: torch.nn.functional.binary_cross_entropy(a, t, reduction="sum"), p[:1], y[:1])
    assert per[0] >= 100  # p[0, 0] = 0 with target 0 ... and p[0, 2] = 0 with target 1: 100
    hand = jax_vg(lambda a, t: jnp.sum(-(t * jnp.log(a) + (1 - t) * jnp.log(1 - a))), p[:1], y[:1])
    assert not np.isfinite(hand[0]) and not np.all(np.isfinite(hand[1]))
    assert np.all(np.isfinite(per[1])) and np.abs(per[1]).max() >= 1e11  # 1 / 1e-12, finite


@case("F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw), nn.BCEWithLogitsLoss(...)")
def _bce_logits(torch, rng, prec):
    x, y = _extremes(rng).astype(prec), rng.uniform(0.0, 1.0, (N, C)).astype(prec)
    w, pw = rng.uniform(0.2, 3.0, (N, C)).astype(prec), rng.uniform(0.2, 3.0, C).astype(prec)
    call = torch.nn.functional.binary_cross_entropy_with_logits
    expected = torch_vg(torch, lambda a, t, c, d: call(a, t, weight=c, pos_weight=d), x, y, w, pw)
    ours = jax_vg(lambda a, t, c, d: F.binary_cross_entropy_with_logits(a, t, weight=c, pos_weight=d), x, y, w, pw)
    assert_pairs(ours, expected, prec)
    module = torch_vg(
        torch, torch.nn.BCEWithLogitsLoss(weight=torch.from_numpy(w), pos_weight=torch.from_numpy(pw)), x, y
    )
    assert_pairs(
        jax_vg(fnnet.nn.BCEWithLogitsLoss(weight=jnp.asarray(w), pos_weight=jnp.asarray(pw)), x, y), module, prec
    )
    plain = jax_vg(lambda a, t: optax.losses.sigmoid_binary_cross_entropy(a, t).mean(), x, y)
    assert_pairs(plain, torch_vg(torch, call, x, y), prec)  # the same without weights ...
    assert_differs(plain[0], expected[0])  # ... and no weight or pos_weight


@case("F.cross_entropy(x, t) (class indices), nn.CrossEntropyLoss()")
def _cross_entropy(torch, rng, prec):
    x, t = _extremes(rng).astype(prec), _as(_labels(rng, C, (N,)), prec)
    expected = torch_vg(torch, torch.nn.functional.cross_entropy, x, t)
    assert_pairs(jax_vg(F.cross_entropy, x, t), expected, prec)
    assert_pairs(jax_vg(fnnet.nn.CrossEntropyLoss(), x, t), torch_vg(torch, torch.nn.CrossEntropyLoss(), x, t), prec)
    plain = optax.losses.softmax_cross_entropy_with_integer_labels
    assert_pairs(jax_vg(lambda a, b: plain(a, b).mean(), x, t), expected, prec)
    # (N, C, d1): torch's classes are on axis 1; optax's default is the last axis, so axis=1 is needed
    x3, t3 = rng.standard_normal((N2, C, D)).astype(prec), _as(_labels(rng, C, (N2, D)), prec)
    expected3 = torch_vg(torch, torch.nn.functional.cross_entropy, x3, t3)
    assert_pairs(jax_vg(F.cross_entropy, x3, t3), expected3, prec)
    assert_pairs(jax_vg(lambda a, b: plain(a, b, axis=1).mean(), x3, t3), expected3, prec)
    with pytest.raises(ValueError, match="Incompatible shapes"):
        plain(jnp.asarray(x3), jnp.asarray(t3))
    # torch's weight: the weighted mean sum(w[t] * l) / sum(w[t]); optax has no weight
    w = np.array([0.2, 3.0, 1.0, 0.5], prec)
    weighted = torch_vg(torch, lambda a, b, c: torch.nn.functional.cross_entropy(a, b, weight=c), x, t, w)
    assert_pairs(jax_vg(lambda a, b, c: F.cross_entropy(a, b, weight=c), x, t, w), weighted, prec)
    per_row = plain(jnp.asarray(x), jnp.asarray(t))
    assert_close(jnp.sum(w[t] * per_row) / jnp.sum(w[t]), weighted[0], RTOL[prec])
    assert_differs(per_row.mean(), weighted[0])


@case("F.cross_entropy(x, t, weight=w, ignore_index=i, label_smoothing=s)")
def _cross_entropy_options(torch, rng, prec):
    x = rng.standard_normal((N, C)).astype(prec)
    t = _as(np.array([0, -100, 2, 3, 1]), prec)
    w = np.array([0.2, 3.0, 1.0, 0.5], prec)
    call = torch.nn.functional.cross_entropy
    options = {"ignore_index": -100, "label_smoothing": 0.3}
    expected = torch_vg(torch, lambda a, b, c: call(a, b, weight=c, **options), x, t, w)
    assert_pairs(jax_vg(lambda a, b, c: F.cross_entropy(a, b, weight=c, **options), x, t, w), expected, prec)
    module = torch_vg(torch, torch.nn.CrossEntropyLoss(weight=torch.from_numpy(w), **options), x, t)
    assert_pairs(jax_vg(fnnet.nn.CrossEntropyLoss(weight=jnp.asarray(w), **options), x, t), module, prec)
    # the nearest optax spelling: drop the ignored rows, smooth the one-hot labels, weight each row by
    # w[t] and average over those weights; torch weights the smoothing term by w as well: another number
    keep = t != -100
    labels = optax.smooth_labels(jax.nn.one_hot(t[keep], C, dtype=prec), 0.3)
    per_row = optax.losses.softmax_cross_entropy(jnp.asarray(x[keep]), labels)
    assert_differs(jnp.sum(w[t[keep]] * per_row) / jnp.sum(w[t[keep]]), expected[0])
    # every target ignored: torch's mean is NaN (0 / 0), and fnnet's too
    ignored = _as(np.full(N, -100), prec)
    all_ignored = torch_vg(torch, lambda a, b: call(a, b, label_smoothing=0.1), x, ignored)
    ours = jax_vg(lambda a, b: F.cross_entropy(a, b, label_smoothing=0.1), x, ignored)
    assert np.isnan(all_ignored[0]) and np.isnan(ours[0])
    np.testing.assert_array_equal(ours[1], all_ignored[1])


@case("F.cross_entropy(x, p) (class probabilities, same shape as x)")
def _cross_entropy_probabilities(torch, rng, prec):
    x, p = rng.standard_normal((N, C)).astype(prec), softmax(1, N, C)(rng).astype(prec)
    w = np.array([0.2, 3.0, 1.0, 0.5], prec)
    expected = torch_vg(torch, torch.nn.functional.cross_entropy, x, p)
    assert_pairs(jax_vg(F.cross_entropy, x, p), expected, prec)
    assert_pairs(jax_vg(fnnet.nn.CrossEntropyLoss(), x, p), torch_vg(torch, torch.nn.CrossEntropyLoss(), x, p), prec)
    plain = jax_vg(lambda a, b: optax.losses.softmax_cross_entropy(a, b, axis=1).mean(), x, p)
    assert_pairs(plain, expected, prec)
    # with weight, torch's mean still divides by the number of positions (N), not by a sum of weights
    weighted = torch_vg(torch, lambda a, b, c: torch.nn.functional.cross_entropy(a, b, weight=c), x, p, w)
    assert_pairs(jax_vg(lambda a, b, c: F.cross_entropy(a, b, weight=c), x, p, w), weighted, prec)
    log_q = np.asarray(jax.nn.log_softmax(jnp.asarray(x, jnp.float64 if prec == "float64" else jnp.float32), axis=1))
    assert_close(-np.sum(w * p * log_q) / N, weighted[0], RTOL[prec])


@case("F.nll_loss(logp, t, weight=w, ignore_index=i), nn.NLLLoss(...)")
def _nll(torch, rng, prec):
    logp, t = log_probs(1, N, C)(rng).astype(prec), _as(np.array([0, 3, 2, 3, 1]), prec)
    expected = torch_vg(torch, torch.nn.functional.nll_loss, logp, t)
    assert_pairs(jax_vg(F.nll_loss, logp, t), expected, prec)
    plain = jax_vg(lambda a, b: -jnp.take_along_axis(a, b[:, None], 1).mean(), logp, t)
    assert_pairs(plain, expected, prec)  # the same without weights or ignored targets
    w, ti = np.array([0.2, 3.0, 1.0, 0.5], prec), _as(np.array([0, -100, 2, 3, 1]), prec)
    call = torch.nn.functional.nll_loss
    weighted = torch_vg(torch, lambda a, b, c: call(a, b, weight=c, ignore_index=-100), logp, ti, w)
    assert_pairs(jax_vg(lambda a, b, c: F.nll_loss(a, b, weight=c, ignore_index=-100), logp, ti, w), weighted, prec)
    module = torch_vg(torch, torch.nn.NLLLoss(weight=torch.from_numpy(w)), logp, ti)
    assert_pairs(jax_vg(fnnet.nn.NLLLoss(weight=jnp.asarray(w)), logp, ti), module, prec)
    rows = np.where(ti == -100, 0, ti)
    assert_differs(-jnp.take_along_axis(jnp.asarray(logp), jnp.asarray(rows)[:, None], 1).mean(), weighted[0])


@case('F.kl_div(logq, p, reduction="batchmean", log_target=False), nn.KLDivLoss(...)')
def _kl_div(torch, rng, prec):
    logq, p = log_probs(1, N, C)(rng).astype(prec), _sparse_probs(rng).astype(prec)
    call = torch.nn.functional.kl_div
    expected = torch_vg(torch, lambda a, b: call(a, b, reduction="batchmean", log_target=False), logq, p)
    assert_pairs(jax_vg(lambda a, b: F.kl_div(a, b, reduction="batchmean"), logq, p), expected, prec)
    module = torch_vg(torch, torch.nn.KLDivLoss(reduction="batchmean"), logq, p)
    assert_pairs(jax_vg(fnnet.nn.KLDivLoss(reduction="batchmean"), logq, p), module, prec)
    assert_pairs(jax_vg(lambda a, b: optax.losses.kl_divergence(a, b).sum() / N, logq, p), expected, prec)
    logp = log_probs(1, N, C)(rng).astype(prec)
    with_log = torch_vg(torch, lambda a, b: call(a, b, reduction="batchmean", log_target=True), logq, logp)
    assert_pairs(
        jax_vg(lambda a, b: F.kl_div(a, b, reduction="batchmean", log_target=True), logq, logp), with_log, prec
    )
    plain_log = jax_vg(lambda a, b: optax.losses.kl_divergence_with_log_targets(a, b).sum() / N, logq, logp)
    assert_pairs(plain_log, with_log, prec)
    # torch's default reduction "mean" divides by every element (N * C), not by the batch (with a warning)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        mean = torch_vg(torch, call, logq, p)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        assert_pairs(jax_vg(F.kl_div, logq, p), mean, prec)
    assert_close(mean[0] * C, expected[0], RTOL[prec])
    assert_differs(mean[0], expected[0])


@pytest.mark.parametrize("prec", ["float32", "float64"])
@pytest.mark.parametrize("spelling", sorted(ROSETTA_CASES))
def test_rosetta_row(request, torch, rng, spelling, prec):
    if prec == "float64":
        request.getfixturevalue("x64")
    ROSETTA_CASES[spelling](torch, rng, prec)
