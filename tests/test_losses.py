"""fnnet.losses against live torch.nn.functional: values and input gradients, every loss x reduction
x option, float64 (1e-10) and float32 (1e-5), edge inputs included; errors; no recompiles."""

from __future__ import annotations

import inspect
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnnet import losses

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

    fn, j_args = getattr(losses, name), _jax_args(arrays, dtype)
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
    j_out, j_grad = jax.jit(jax.value_and_grad(lambda a: losses.cross_entropy(a, jnp.asarray(t), label_smoothing=0.1)))(
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
        lambda a, b: losses.binary_cross_entropy(a, b, weight=w, reduction=reduction),
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
        actual = getattr(losses, name)(jnp.asarray(x), jnp.asarray(target), **args)
    assert_close(actual, expected.numpy(), 1e-10)


@pytest.mark.parametrize("module", ["torch", "fnnet"])
def test_kl_div_warns_for_mean_only(torch, module):
    x = torch.zeros((2, 3)) if module == "torch" else jnp.zeros((2, 3))
    kl_div = torch.nn.functional.kl_div if module == "torch" else losses.kl_div
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
    (lambda: losses.mse_loss(_f32(3, 4), _f32(4)), [r"\(4,\)", r"\(3, 4\)"]),
    (lambda: losses.l1_loss(_f32(3, 4), _f32(3, 1)), [r"\(3, 1\)", r"\(3, 4\)"]),
    (lambda: losses.smooth_l1_loss(_f32(3), _f32(1)), [r"\(1,\)", r"\(3,\)"]),
    (lambda: losses.huber_loss(_f32(3), _f32(3), weight=_f32(1)), [r"\(1,\)", r"\(3,\)"]),
    (lambda: losses.kl_div(_f32(2, 3), _f32(3), reduction="sum"), [r"\(3,\)", r"\(2, 3\)"]),
    (lambda: losses.binary_cross_entropy(_f32(2, 3), _f32(3)), [r"\(3,\)", r"\(2, 3\)"]),
    (lambda: losses.binary_cross_entropy(_f32(2, 3), _f32(2, 3), weight=_f32(2)), [r"\(2,\)", r"\(2, 3\)"]),
    (lambda: losses.binary_cross_entropy_with_logits(_f32(3, 4), _f32(4)), [r"\(4,\)", r"\(3, 4\)"]),
    (
        lambda: losses.binary_cross_entropy_with_logits(_f32(3, 4), _f32(3, 4), weight=_f32(2, 3, 4)),
        [r"\(2, 3, 4\)", r"\(3, 4\)"],
    ),
    (
        lambda: losses.binary_cross_entropy_with_logits(_f32(3, 4), _f32(3, 4), pos_weight=_f32(3)),
        [r"\(3,\)", r"\(3, 4\)"],
    ),
    (lambda: losses.cross_entropy(_f32(3, 4), _i32(0, 1)), [r"\(2,\)", r"\(3, 4\)"]),
    (
        lambda: losses.cross_entropy(_f32(2, 3, 4), jnp.zeros((2, 5), jnp.int32)),
        [r"\(2, 5\)", r"\(2, 3, 4\)", r"\(2, 4\)"],
    ),
    (lambda: losses.nll_loss(_f32(3, 4), _i32(0, 1, 2, 3)), [r"\(4,\)", r"\(3, 4\)"]),
    (lambda: losses.cross_entropy(_f32(3, 4), _f32(3)), ["integer class indices", "float32"]),
    (lambda: losses.cross_entropy(_f32(3, 4), jnp.zeros((3, 4), jnp.int32)), ["Expected floating point type", "int32"]),
    (lambda: losses.cross_entropy(_f32(3, 4), _f32(3, 4), ignore_index=0), ["ignore_index"]),
    (lambda: losses.cross_entropy(_f32(3, 4), _i32(0, 1, 2), weight=_f32(3)), [r"\(3,\)", r"\(4,\)", r"\(3, 4\)"]),
    (lambda: losses.cross_entropy(_f32(3, 4), _i32(0, 1, 5)), ["target 5 is out of bounds"]),
    (lambda: losses.nll_loss(_f32(3, 4), _i32(0, -1, 2)), ["target -1 is out of bounds"]),
    (
        lambda: losses.cross_entropy(_f32(3, 4), _i32(0, 1, 2), label_smoothing=1.5),
        ["label_smoothing must be between 0.0 and 1.0"],
    ),
    (lambda: losses.cross_entropy(_f32(), _i32()), [r"got shape \(\)"]),
    (lambda: losses.binary_cross_entropy(_f32(3) + 1.5, _f32(3)), ["input should be between 0"]),
    (lambda: losses.binary_cross_entropy(_f32(3), _f32(3) - 0.5), ["target should be between 0"]),
    (lambda: losses.smooth_l1_loss(_f32(3), _f32(3), beta=-1.0), ["negative values for beta"]),
    (lambda: losses.huber_loss(_f32(3), _f32(3), delta=0.0), ["non-positive values for delta"]),
    (
        lambda: losses.mse_loss(_f32(3), _f32(3), reduction="batchmean"),
        ["batchmean is not a valid value for reduction"],
    ),
    (lambda: losses.kl_div(_f32(3), _f32(3), reduction="avg"), ["avg is not a valid value"]),
    (lambda: losses.mse_loss(_i32(1, 2), _i32(1, 2)), ["floating-point", "int32"]),
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
        getattr(losses, name)(x, jnp.zeros((2, 3), jnp.float64), reduction="sum")
    with pytest.raises(ValueError, match="float32.*float64"):
        losses.cross_entropy(x, jnp.zeros(2, jnp.int64), weight=jnp.ones(3, jnp.float64))


def test_out_of_range_class_under_jit_gives_nan():
    out = jax.jit(losses.cross_entropy)(_f32(2, 3), _i32(0, 3))
    assert np.isnan(float(out))


# ------------------------------------------------------------------------------------- compilation
JITTED = [
    ("mse_loss", lambda x, t: losses.mse_loss(x, t)),
    ("bce", lambda x, t: losses.binary_cross_entropy(jax.nn.sigmoid(x), jax.nn.sigmoid(t))),
    (
        "cross_entropy",
        lambda x, t: losses.cross_entropy(x, jnp.argmax(t, axis=1), weight=jnp.arange(1.0, 4.0), label_smoothing=0.1),
    ),
    ("kl_div", lambda x, t: losses.kl_div(x, t, reduction="batchmean", log_target=True)),
]


@pytest.mark.parametrize("name,loss", JITTED)
def test_jitted_loss_does_not_recompile(rng, name, loss):
    traces: list[int] = []

    @jax.jit
    def step(x, t):
        traces.append(1)  # runs only while tracing
        return jax.value_and_grad(loss)(x, t)

    for _ in range(3):
        step(
            jnp.asarray(rng.standard_normal((4, 3)), jnp.float32), jnp.asarray(rng.standard_normal((4, 3)), jnp.float32)
        )
    assert len(traces) == 1
    assert step._cache_size() == 1


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
def test_nn_callables_match_torch_modules(x64, torch, rng, cls_name, fn_name, config):
    torch_params = list(inspect.signature(getattr(torch.nn, cls_name).__init__).parameters.values())
    ours = list(inspect.signature(getattr(losses, cls_name)).parameters.values())
    assert [(p.name, p.default) for p in ours] == [(p.name, p.default) for p in torch_params[1:]]

    x = rng.uniform(0.05, 0.95, (N, C))
    target = rng.integers(0, C, N) if fn_name in ("cross_entropy", "nll_loss") else rng.random((N, C))
    arrays = {"w_elem": rng.uniform(0.5, 2.0, (N, C)), "w_class": rng.uniform(0.5, 2.0, C)}
    kwargs = {k: arrays.get(v, v) if isinstance(v, str) and v.startswith("w_") else v for k, v in config.items()}
    t_kwargs = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    expected = getattr(torch.nn, cls_name)(**t_kwargs)(torch.from_numpy(x), torch.from_numpy(target))
    module = getattr(losses, cls_name)(
        **{k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    )
    actual = module(jnp.asarray(x), jnp.asarray(target))
    assert_close(actual, expected.numpy(), 1e-10)
