"""fnnet's activations against live torch: every ``F.*`` activation and ``nn.*`` activation layer, values and
gradients, float64 (1e-10) and float32 (1e-5), at random points AND at every kink (torch's subgradient there),
plus torch's own ``op_db`` samples (functionals) and ``module_db`` inputs (layers); reprs and errors.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _nn_compare import Diff, compare_module, module_db_inputs, to_numpy

import fnnet.nn as nn
import fnnet.nn.functional as F

#: float64 at 1e-10 relative; float32 at 1e-5 relative. atol: values and gradients cross zero (tanhshrink
#: near 0 is ~x^3/3, a difference of float32 rounding of x there is ~1e-7 absolute).
TOL = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 1e-5, "atol": 1e-6}}

# (function name, keyword arguments, kink points where torch's subgradient is chosen)
CASES: list[tuple[str, dict, list[float]]] = [
    ("relu6", {}, [0.0, 6.0, -0.0]),
    ("leaky_relu", {}, [0.0]),
    ("leaky_relu", {"negative_slope": 0.2}, [0.0]),
    ("leaky_relu", {"negative_slope": -1.5}, [0.0]),
    ("elu", {}, [0.0]),
    ("elu", {"alpha": 2.0}, [0.0]),
    ("elu", {"alpha": 0.5}, [0.0, -30.0]),
    ("selu", {}, [0.0]),
    ("celu", {}, [0.0]),
    ("celu", {"alpha": 3.0}, [0.0]),
    ("celu", {"alpha": 0.25}, [0.0]),
    ("gelu", {}, [0.0, -6.0]),
    ("gelu", {"approximate": "tanh"}, [0.0, -6.0]),
    ("silu", {}, [0.0, -30.0, 30.0]),
    ("mish", {}, [0.0, -30.0, 30.0]),
    ("softplus", {}, [20.0, 20.5, 19.5, -30.0]),
    ("softplus", {"beta": 2.0, "threshold": 1.0}, [0.5, 0.25, 0.75]),
    ("softplus", {"beta": 0.5, "threshold": 5.0}, [10.0, 12.0]),
    ("softplus", {"beta": -1.0, "threshold": 3.0}, [-3.0, -4.0]),
    ("softsign", {}, [0.0]),
    ("hardtanh", {}, [-1.0, 1.0, 0.0]),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.0}, [-0.5, 2.0]),
    ("hardtanh", {"min_val": 0.0, "max_val": 0.0}, [0.0]),
    ("hardswish", {}, [-3.0, 3.0, 0.0]),
    ("hardsigmoid", {}, [-3.0, 3.0, 0.0]),
    ("logsigmoid", {}, [0.0, -40.0, 40.0]),
    ("tanhshrink", {}, [0.0]),
    ("softshrink", {}, [0.5, -0.5, 0.0]),
    ("softshrink", {"lambd": 1.25}, [1.25, -1.25]),
    ("softshrink", {"lambd": 0.0}, [0.0]),
    ("hardshrink", {}, [0.5, -0.5, 0.0]),
    ("hardshrink", {"lambd": 2.0}, [2.0, -2.0]),
    ("hardshrink", {"lambd": -0.5}, [0.5, -0.5]),
    ("threshold", {"threshold": 0.5, "value": -2.0}, [0.5]),
    ("threshold", {"threshold": -1.0, "value": 7.0}, [-1.0]),
    ("relu", {}, [0.0]),
]


def tol_for(name: str, kwargs: dict, prec: str) -> dict:
    """TOL, except float32 gelu(approximate="tanh"): near saturation (x ~ -4 to -6) torch's and XLA's float32 tanh
    round to different neighbours of -1, so 1 - tanh^2 differs by ~1e-7, times x * 0.5 * sqrt(2/pi) *
    (1 + 3 * 0.044715 x^2) ~ 10: gradients differ by up to 4.5e-6 absolute there (measured)."""
    if (name, prec) == ("gelu", "float32") and kwargs.get("approximate") == "tanh":
        return {"rtol": 1e-5, "atol": 1e-5}
    return TOL[prec]


def points_for(name: str, kwargs: dict, prec: str, x: np.ndarray) -> np.ndarray:
    """``x``, except for float32 gelu(approximate="none"), where +inf becomes 0: torch's vectorised float32 erf
    gives NaN at +inf (its float64 and fnnet give gelu(inf) = inf)."""
    if (name, prec) == ("gelu", "float32") and kwargs.get("approximate", "none") == "none":
        x = np.where(np.isposinf(x), 0, x).astype(x.dtype)
    return x


def _prec(request, prec: str) -> None:
    if prec == "float64":
        request.getfixturevalue("x64")


def compare_functional(
    torch, name: str, args: list, kwargs: dict, tol: dict, grad_args: tuple[int, ...] = (0,), seed: int = 0
) -> Diff:
    """``F.name(*args, **kwargs)`` in fnnet and torch: outputs, and the gradients of ``sum(out * cot)`` w.r.t.
    the positional arrays ``grad_args`` (NumPy arrays; other arguments are passed to both as they are)."""
    diff = Diff()
    t_args = [
        torch.from_numpy(a.copy()).requires_grad_(i in grad_args) if isinstance(a, np.ndarray) else a
        for i, a in enumerate(args)
    ]
    t_out = getattr(torch.nn.functional, name)(*t_args, **kwargs)
    cot = np.random.default_rng(seed).standard_normal(t_out.shape).astype(to_numpy(t_out).dtype)
    wrt = [t_args[i] for i in grad_args]
    t_grads = torch.autograd.grad(t_out, wrt, torch.from_numpy(cot), allow_unused=True) if t_out.requires_grad else ()

    def f(*diffable):
        call = [jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
        for i, v in zip(grad_args, diffable):
            call[i] = v
        return getattr(F, name)(*call, **kwargs)

    out, vjp = jax.vjp(f, *[jnp.asarray(args[i]) for i in grad_args])
    diff.check(f"{name} output", out, to_numpy(t_out), **tol)
    if t_out.requires_grad:
        for k, (g, tg) in enumerate(zip(vjp(jnp.asarray(cot)), t_grads)):
            diff.check(f"{name} grad {k}", g, np.zeros(g.shape, g.dtype) if tg is None else to_numpy(tg), **tol)
    return diff


def _points(rng: np.random.Generator, kinks: list[float], prec: str) -> np.ndarray:
    """NaN and ±inf, 125 random points and the kinks (cycled to 8 entries): one shape for every case, so that
    JAX's compiled programs are reused across cases (compiling per new shape dominates this file's time).

    NaN and inf come first: at NaN some of torch's gradients differ between its vectorised loop and its scalar
    tail (the last few elements), and fnnet follows the vectorised loop."""
    specials = [np.nan, np.inf, -np.inf]
    x = np.concatenate([specials, rng.standard_normal(62) * 3, rng.uniform(-8, 8, 63), np.resize(kinks, 8)])
    return x.astype(prec)


@pytest.mark.parametrize("prec", ["float64", "float32"])
@pytest.mark.parametrize("name,kwargs,kinks", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_functional_matches_torch_at_random_points_and_kinks(name, kwargs, kinks, prec, torch, request):
    _prec(request, prec)
    tol = tol_for(name, kwargs, prec)
    x = points_for(name, kwargs, prec, _points(np.random.default_rng(len(name)), kinks, prec))
    compare_functional(torch, name, [x.reshape(8, 17)], kwargs, tol)


@pytest.mark.parametrize("prec", ["float64", "float32"])
@pytest.mark.parametrize(
    "shape,channels", [((), 1), ((7,), 1), ((4, 3), 1), ((4, 3), 3), ((2, 3, 5), 3), ((2, 4, 3, 3), 4)]
)
def test_prelu_values_and_both_gradients(shape, channels, prec, torch, request):
    _prec(request, prec)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(prec)
    x.flat[:2] = 0.0  # the kink: gradient w.r.t. x is the weight, w.r.t. the weight 0
    w = rng.uniform(-0.5, 0.5, (channels,)).astype(prec)
    compare_functional(torch, "prelu", [x, w], {}, TOL[prec], grad_args=(0, 1))


@pytest.mark.parametrize("prec", ["float64", "float32"])
@pytest.mark.parametrize("shape,dim", [((6,), 0), ((4, 6), -1), ((4, 6), 0), ((2, 4, 3), 1), ((2, 3, 2, 4), 3)])
def test_glu(shape, dim, prec, torch, request):
    _prec(request, prec)
    x = np.random.default_rng(4).standard_normal(shape).astype(prec)
    compare_functional(torch, "glu", [x, dim], {}, TOL[prec])


@pytest.mark.parametrize("prec", ["float64", "float32"])
@pytest.mark.parametrize("shape,dim", [((6,), 0), ((4, 6), 1), ((4, 6), 0), ((2, 4, 3), -1), ((3, 4), None)])
def test_softmin(shape, dim, prec, torch, request):
    _prec(request, prec)
    x = (np.random.default_rng(5).standard_normal(shape) * 3).astype(prec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # dim=None: torch's (and fnnet's) implicit-dim warning
        compare_functional(torch, "softmin", [x, dim], {}, TOL[prec])
    if dim is None:
        with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
            F.softmin(jnp.asarray(x))


def test_softmin_dtype_casts_after_negating(torch, x64):
    x = np.random.default_rng(6).standard_normal((3, 4)).astype(np.float32)
    for dtype in (torch.float64, jnp.float64, "float64"):
        ours = F.softmin(jnp.asarray(x), 1, dtype=dtype)
        assert ours.dtype == jnp.float64
        np.testing.assert_allclose(
            ours, torch.nn.functional.softmin(torch.from_numpy(x), 1, dtype=torch.float64), rtol=1e-12
        )


# ---- torch's op_db sample inputs -----------------------------------------------------------------

OP_DB = [
    "nn.functional.relu6", "nn.functional.leaky_relu", "nn.functional.prelu", "nn.functional.elu",
    "nn.functional.selu", "nn.functional.celu", "nn.functional.gelu", "nn.functional.silu", "nn.functional.mish",
    "nn.functional.softplus", "nn.functional.softsign", "nn.functional.hardtanh", "nn.functional.hardswish",
    "nn.functional.hardsigmoid", "nn.functional.logsigmoid", "nn.functional.tanhshrink",
    "nn.functional.softshrink", "nn.functional.hardshrink", "nn.functional.threshold", "nn.functional.glu",
    "nn.functional.softmin",
]  # fmt: skip


def op_db_samples(op_name: str, torch, dtype) -> list[tuple[np.ndarray, tuple, dict]]:
    """``(input, args, kwargs)`` of torch's ``op_db`` samples for ``op_name`` (tensors as NumPy arrays)."""
    from torch.testing._internal.common_methods_invocations import op_db

    samples = []
    for op in op_db:
        if op.name == op_name and op.variant_test_name in ("", "with_dtype"):
            for s in op.sample_inputs("cpu", dtype, requires_grad=False):
                samples.append((to_numpy(s.input), tuple(to_numpy(a) for a in s.args), to_numpy(dict(s.kwargs))))
    return samples


@pytest.mark.parametrize("op_name", OP_DB)
def test_op_db_samples(op_name, torch, x64):
    """float64 only: the float32 runs above cover the same code at the same points (and each new shape
    compiles anew, which is what this file's time goes to)."""
    prec = "float64"
    name = op_name.removeprefix("nn.functional.")
    samples = op_db_samples(op_name, torch, torch.float64)
    assert samples, op_name
    for x, args, kwargs in samples[:: -(-len(samples) // 5)]:  # at most 5, spread over the list
        if name == "prelu":  # differentiate the weight (a keyword or the second argument) too
            weight = kwargs["weight"] if "weight" in kwargs else args[0]
            compare_functional(torch, name, [x, weight], {}, TOL[prec], grad_args=(0, 1))
        else:
            compare_functional(torch, name, [x, *args], kwargs, TOL[prec])


# ---- layers --------------------------------------------------------------------------------------

# (class name, constructor args, constructor kwargs, input shape): what module_db does not cover (it has no
# Hardsigmoid, no inplace, no GELU("tanh"), no PReLU init, ...); module_db's own cases run below.
LAYERS: list[tuple[str, tuple, dict, tuple[int, ...]]] = [
    ("ReLU6", (True,), {}, (8, 17)),
    ("LeakyReLU", (-0.3,), {"inplace": True}, (8, 17)),
    ("PReLU", (17, 0.1), {}, (8, 17)),
    ("PReLU", (), {"init": -0.5}, (8, 17)),
    ("PReLU", (4,), {}, (2, 4, 17)),
    ("ELU", (0.3, True), {}, (8, 17)),
    ("SELU", (True,), {}, (8, 17)),
    ("CELU", (0.3, True), {}, (8, 17)),
    ("GELU", ("tanh",), {}, (8, 17)),
    ("SiLU", (True,), {}, (8, 17)),
    ("Mish", (True,), {}, (8, 17)),
    ("Softplus", (0.5, 1.0), {}, (8, 17)),
    ("Hardtanh", (-2.0, 0.5, True), {}, (8, 17)),
    ("Hardswish", (True,), {}, (8, 17)),
    ("Hardsigmoid", (), {}, (8, 17)),
    ("Hardsigmoid", (True,), {}, (2, 4, 17)),
    ("Softshrink", (0.0,), {}, (8, 17)),
    ("Hardshrink", (0.1,), {}, (8, 17)),
    ("Threshold", (-1.0, -3.0, True), {}, (8, 17)),
    ("GLU", (0,), {}, (8, 17)),
    ("Softmin", (0,), {}, (8, 17)),
    ("Softmax2d", (), {}, (2, 4, 17)),
]

ALL_LAYERS = sorted({c[0] for c in LAYERS})


def _layers(torch, name: str, args: tuple, kwargs: dict, prec: str):
    t_layer = getattr(torch.nn, name)(*args, **kwargs)
    if getattr(t_layer, "inplace", False):  # torch cannot run in place on a leaf that requires grad
        t_layer.inplace = False
    f_kwargs = dict(kwargs)
    if name == "PReLU":
        f_kwargs["dtype"] = prec
        t_layer = t_layer.to(getattr(torch, prec))
    return t_layer, getattr(nn, name)(*args, **f_kwargs)


@pytest.mark.parametrize("prec", ["float64", "float32"])
@pytest.mark.parametrize("name,args,kwargs,shape", LAYERS, ids=[f"{c[0]}-{i}" for i, c in enumerate(LAYERS)])
def test_layer_matches_torch(name, args, kwargs, shape, prec, torch, request):
    _prec(request, prec)
    t_layer, f_layer = _layers(torch, name, args, kwargs, prec)
    x = _points(np.random.default_rng(7), [0.0, 1.0, -3.0, 3.0, 0.5, -0.5, 6.0, -1.0], prec).reshape(shape)
    tol = tol_for("gelu", {"approximate": args[0]}, prec) if name == "GELU" else TOL[prec]
    compare_module(t_layer, f_layer, [torch.from_numpy(x)], torch=torch, **tol)
    assert repr(f_layer) == repr(getattr(torch.nn, name)(*args, **kwargs))


@pytest.mark.parametrize("name", [n for n in ALL_LAYERS if n != "Hardsigmoid"])  # module_db has no Hardsigmoid
def test_layer_module_db_inputs(name, torch, x64):
    """torch's module_db cases in float64, training mode only: no activation depends on the mode (both modes
    and float32 run in test_layer_matches_torch)."""
    cases = module_db_inputs(name, torch, torch.float64)
    assert cases, name
    for args, kwargs, forward, _ in cases:
        t_layer, f_layer = _layers(torch, name, args, kwargs, "float64")
        compare_module(t_layer, f_layer, list(forward), torch=torch, modes=(True,), **TOL["float64"])


def test_prelu_parameter_state_and_init(torch):
    layer, t_layer = nn.PReLU(5, 0.1), torch.nn.PReLU(5, 0.1)
    state = nn.state_dict(layer)
    assert list(state) == list(t_layer.state_dict()) == ["weight"]
    np.testing.assert_array_equal(state["weight"], t_layer.weight.detach().numpy())
    assert state["weight"].dtype == np.float32
    assert repr(layer) == repr(t_layer) == "PReLU(num_parameters=5)"


def test_reprs_equal_torch(torch):
    pairs = [
        (nn.Hardtanh(-2, 2, True), torch.nn.Hardtanh(-2, 2, True)),
        (nn.ReLU6(True), torch.nn.ReLU6(True)),
        (nn.SiLU(True), torch.nn.SiLU(True)),
        (nn.Mish(True), torch.nn.Mish(True)),
        (nn.SELU(True), torch.nn.SELU(True)),
        (nn.Hardswish(True), torch.nn.Hardswish(True)),
        (nn.Hardsigmoid(True), torch.nn.Hardsigmoid(True)),
        (nn.ELU(2.0, True), torch.nn.ELU(2.0, True)),
        (nn.CELU(inplace=True), torch.nn.CELU(inplace=True)),
        (nn.LeakyReLU(0.2, True), torch.nn.LeakyReLU(0.2, True)),
        (nn.Threshold(0.1, 20, True), torch.nn.Threshold(0.1, 20, True)),
        (nn.GELU("tanh"), torch.nn.GELU("tanh")),
        (nn.Softmin(), torch.nn.Softmin()),
        (nn.Softmax2d(), torch.nn.Softmax2d()),
        (nn.Softsign(), torch.nn.Softsign()),
        (nn.Sequential(nn.Softplus(2, 5), nn.Hardshrink(), nn.Softshrink(0.1)),
         torch.nn.Sequential(torch.nn.Softplus(2, 5), torch.nn.Hardshrink(), torch.nn.Softshrink(0.1))),
    ]  # fmt: skip
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
    assert isinstance(nn.ReLU6(), nn.Hardtanh) and (nn.ReLU6().min_val, nn.ReLU6().max_val) == (0.0, 6.0)


def test_layer_signatures_match_torch(torch):
    import inspect

    for name in ALL_LAYERS:
        ours = inspect.signature(getattr(nn, name).__init__).parameters
        theirs = inspect.signature(getattr(torch.nn, name).__init__).parameters
        expected = [p for p in theirs if p not in ("self", "args", "kwargs")]
        assert [p for p in ours if p not in ("self", "rngs")] == expected, name
        for p in expected:
            assert ours[p].default == theirs[p].default, (name, p)
        assert ours["rngs"].kind is inspect.Parameter.KEYWORD_ONLY


def test_functional_signatures_match_torch(torch):
    import inspect

    for name in ["relu6", "leaky_relu", "elu", "selu", "celu", "silu", "mish", "hardtanh", "hardswish",
                 "hardsigmoid", "threshold", "glu", "softmin", "softsign", "tanhshrink"]:  # fmt: skip
        ours = inspect.signature(getattr(F, name)).parameters
        theirs = inspect.signature(getattr(torch.nn.functional, name)).parameters
        assert list(ours) == list(theirs), name
        assert [p.default for p in ours.values()] == [p.default for p in theirs.values()], name
    # builtins without a Python signature: torch's documented ones
    for name, expected in {
        "prelu": ["input", "weight"],
        "gelu": ["input", "approximate"],
        "softplus": ["input", "beta", "threshold"],
        "logsigmoid": ["input"],
        "softshrink": ["input", "lambd"],
        "hardshrink": ["input", "lambd"],
    }.items():
        assert list(inspect.signature(getattr(F, name)).parameters) == expected


# Each call runs twice: with (torch.nn.functional, torch.nn, torch.zeros) and with (fnnet's F, nn, jnp.zeros).
ERRORS = [
    (lambda F, nn, z: F.glu(z((3, 5))), "Halving dimension must be even, but dimension 1 is size 5"),
    (lambda F, nn, z: F.glu(z(())), "glu does not support scalars"),
    (lambda F, nn, z: F.prelu(z((3, 5)), z((3,))), "Mismatch of parameter numbers and input channel size"),
    (lambda F, nn, z: F.prelu(z(()), z((3,))), "Not allow zero-dim input tensor"),
    (lambda F, nn, z: F.prelu(z((3, 1)), z((1, 1))), "Expected `weight` to be a scalar or 1D"),
    (lambda F, nn, z: F.hardtanh(z((3,)), 1.0, 0.0), "min_val cannot be greater than max_val"),
    (lambda F, nn, z: F.gelu(z((3,)), approximate="x"), "approximate argument must be either none or tanh"),
    (lambda F, nn, z: F.celu(z((3,)), 0.0), "alpha cannot be 0 for CELU"),
    (
        lambda F, nn, z: F.softshrink(z((3,)), -1.0),
        r"lambda must be in range \[0, 3.40282e\+38\] for input dtype Float",
    ),
    (lambda F, nn, z: nn.Hardtanh(1.0, 0.0), r"max_val \(0.0\) must be greater than min_val \(1.0\)"),
    (lambda F, nn, z: nn.Softmax2d()(z((2, 2))), "Softmax2d: expected input to be 3D or 4D, got 2D instead"),
]


@pytest.mark.parametrize("call,match", ERRORS, ids=[m[:30] for _, m in ERRORS])
def test_errors_as_torch(call, match, torch):
    with pytest.raises((RuntimeError, ValueError, AssertionError), match=match):
        call(torch.nn.functional, torch.nn, lambda shape: torch.zeros(shape))
    with pytest.raises(ValueError, match=match):
        call(F, nn, jnp.zeros)


def test_integer_input_and_deprecated_hardtanh_names(torch):
    with pytest.raises(TypeError, match="floating-point"):
        F.elu(jnp.arange(3))
    with pytest.warns(FutureWarning, match="min_value"):
        layer = nn.Hardtanh(min_value=-3.0)
    assert (layer.min_val, layer.max_val) == (-3.0, 1.0)


def test_activations_jit_without_recompiling():
    calls = []

    @jax.jit
    def f(x):
        calls.append(1)
        return F.softplus(x, 2.0, 1.0) + F.hardsigmoid(x) + F.gelu(x) + nn.PReLU()(x[None])[0]

    for seed in range(3):
        f(jnp.asarray(np.random.default_rng(seed).standard_normal(5).astype(np.float32)))
    assert len(calls) == 1


# ---- rosetta rows: torch spelling -> case(torch, rng, prec) ---------------------------------------

ROSETTA_CASES: dict[str, Callable] = {}


def _row(spelling: str, fname: str, kwargs: dict, kinks: list[float], layer: tuple, plain=None, differs=None) -> None:
    """A rosetta case: ``F.fname(x, **kwargs)`` and the layer ``nn.<layer[0]>(*layer[1:])`` equal torch's at random
    points and at the kinks; ``plain`` (the plain jax spelling) differs from torch where ``differs(x, plain value,
    plain grad, torch value, torch grad)`` says so (or matches it, for ``_same``)."""

    def case(torch, rng, prec):
        tol = tol_for(fname, kwargs, prec)
        x = points_for(fname, kwargs, prec, _points(rng, kinks, prec)).reshape(8, 17)
        compare_functional(torch, fname, [x], kwargs, tol)
        name, *args = layer
        t_layer, f_layer = getattr(torch.nn, name)(*args), getattr(nn, name)(*args)
        compare_module(t_layer, f_layer, [torch.from_numpy(x)], torch=torch, modes=(True,), **tol)
        if plain is not None:
            xt = torch.from_numpy(x).requires_grad_()
            tv = getattr(torch.nn.functional, fname)(xt, **kwargs)
            (tg,) = torch.autograd.grad(tv.sum(), xt)
            pv, pg = plain(jnp.asarray(x)), jax.grad(lambda a: plain(a).sum())(jnp.asarray(x))
            assert differs(x, np.asarray(pv), np.asarray(pg), tv.detach().numpy(), tg.numpy())

    ROSETTA_CASES[spelling] = case


def _grad_differs_at(points):
    return lambda x, pv, pg, tv, tg: not np.allclose(pg[np.isin(x, points)], tg[np.isin(x, points)])


def _value_differs(x, pv, pg, tv, tg):
    return not np.allclose(pv, tv, rtol=1e-5, atol=1e-6, equal_nan=True)


def _same(x, pv, pg, tv, tg):
    finite = np.isfinite(x)  # at NaN and inf the plain and torch gradients may differ (see the kink tests)
    return np.allclose(pv, tv, rtol=1e-5, atol=1e-5, equal_nan=True) and np.allclose(
        pg[finite], tg[finite], rtol=1e-5, atol=1e-5
    )


_row("F.relu6(x), nn.ReLU6()", "relu6", {}, [0.0, 6.0], ("ReLU6",), jax.nn.relu6, _same)
_row(
    "F.leaky_relu(x, s), nn.LeakyReLU(s)",
    "leaky_relu",
    {"negative_slope": 0.1},
    [0.0],
    ("LeakyReLU", 0.1),
    lambda a: jax.nn.leaky_relu(a, 0.1),
    _grad_differs_at([0.0]),
)
_row("F.elu(x, alpha), nn.ELU(alpha)", "elu", {"alpha": 2.0}, [0.0], ("ELU", 2.0), lambda a: jax.nn.elu(a, 2.0), _same)
_row("F.selu(x), nn.SELU()", "selu", {}, [0.0], ("SELU",), jax.nn.selu, _same)
_row(
    "F.celu(x, alpha), nn.CELU(alpha)",
    "celu",
    {"alpha": 2.0},
    [0.0],
    ("CELU", 2.0),
    lambda a: jax.nn.celu(a, 2.0),
    _same,
)
_row("F.gelu(x), nn.GELU()", "gelu", {}, [0.0], ("GELU",), jax.nn.gelu, _value_differs)
_row(
    "F.gelu(x, approximate='tanh'), nn.GELU('tanh')",
    "gelu",
    {"approximate": "tanh"},
    [0.0],
    ("GELU", "tanh"),
    lambda a: jax.nn.gelu(a, approximate=True),
    _same,
)
_row("F.silu(x), nn.SiLU()", "silu", {}, [0.0], ("SiLU",), jax.nn.silu, _same)
_row("F.mish(x), nn.Mish()", "mish", {}, [0.0], ("Mish",), jax.nn.mish, _same)
_row(
    "F.softplus(x, beta, threshold), nn.Softplus(beta, threshold)",
    "softplus",
    {"beta": 2.0, "threshold": 1.0},
    [0.5, 1.0],
    ("Softplus", 2.0, 1.0),
    lambda a: jax.nn.softplus(2.0 * a) / 2.0,
    _value_differs,
)
_row("F.softsign(x), nn.Softsign()", "softsign", {}, [0.0], ("Softsign",), jax.nn.soft_sign, _same)
_row(
    "F.hardtanh(x, min_val, max_val), nn.Hardtanh(min_val, max_val)",
    "hardtanh",
    {},
    [-1.0, 1.0],
    ("Hardtanh",),
    jax.nn.hard_tanh,
    _grad_differs_at([-1.0, 1.0]),
)
_row("F.hardswish(x), nn.Hardswish()", "hardswish", {}, [-3.0, 3.0], ("Hardswish",), jax.nn.hard_swish, _same)
_row("F.hardsigmoid(x), nn.Hardsigmoid()", "hardsigmoid", {}, [-3.0, 3.0], ("Hardsigmoid",), jax.nn.hard_sigmoid, _same)
_row("F.logsigmoid(x), nn.LogSigmoid()", "logsigmoid", {}, [0.0], ("LogSigmoid",), jax.nn.log_sigmoid, _same)
_row("F.tanhshrink(x), nn.Tanhshrink()", "tanhshrink", {}, [0.0], ("Tanhshrink",))
_row("F.softshrink(x, lambd), nn.Softshrink(lambd)", "softshrink", {"lambd": 0.5}, [0.5, -0.5], ("Softshrink", 0.5))
_row("F.hardshrink(x, lambd), nn.Hardshrink(lambd)", "hardshrink", {"lambd": 0.5}, [0.5, -0.5], ("Hardshrink", 0.5))
_row(
    "F.threshold(x, threshold, value), nn.Threshold(threshold, value)",
    "threshold",
    {"threshold": 0.5, "value": -1.0},
    [0.5],
    ("Threshold", 0.5, -1.0),
)


def _prelu_case(torch, rng, prec):
    x = _points(rng, [0.0], prec).reshape(2, 4, 17)
    w = np.array([0.1, 0.2, -0.3, 1.5], prec)
    compare_functional(torch, "prelu", [x, w], {}, TOL[prec], grad_args=(0, 1))
    layer, t_layer = nn.PReLU(4, dtype=prec), torch.nn.PReLU(4).to(getattr(torch, prec))
    compare_module(t_layer, layer, [torch.from_numpy(x)], torch=torch, modes=(True,), **TOL[prec])


def _glu_case(torch, rng, prec):
    x = _points(rng, [0.0], prec).reshape(8, 17)
    compare_functional(torch, "glu", [x, 0], {}, TOL[prec])
    compare_module(torch.nn.GLU(0), nn.GLU(0), [torch.from_numpy(x)], torch=torch, modes=(True,), **TOL[prec])
    np.testing.assert_allclose(jax.nn.glu(jnp.asarray(x), axis=0), F.glu(jnp.asarray(x), 0), **TOL[prec])


def _softmin_case(torch, rng, prec):
    x = _points(rng, [0.0], prec).reshape(8, 17)
    compare_functional(torch, "softmin", [x, 1], {}, TOL[prec])
    compare_module(torch.nn.Softmin(1), nn.Softmin(1), [torch.from_numpy(x)], torch=torch, modes=(True,), **TOL[prec])
    np.testing.assert_allclose(jax.nn.softmax(-jnp.asarray(x), axis=1), F.softmin(jnp.asarray(x), 1), **TOL[prec])


def _softmax2d_case(torch, rng, prec):
    x = _points(rng, [0.0], prec).reshape(2, 4, 17)
    compare_module(torch.nn.Softmax2d(), nn.Softmax2d(), [torch.from_numpy(x)], torch=torch, modes=(True,), **TOL[prec])
    np.testing.assert_allclose(jax.nn.softmax(jnp.asarray(x), axis=-3), nn.Softmax2d()(jnp.asarray(x)), **TOL[prec])


ROSETTA_CASES["F.prelu(x, weight), nn.PReLU(num_parameters)"] = _prelu_case
ROSETTA_CASES["F.glu(x, dim), nn.GLU(dim)"] = _glu_case
ROSETTA_CASES["F.softmin(x, dim), nn.Softmin(dim)"] = _softmin_case
ROSETTA_CASES["nn.Softmax2d()"] = _softmax2d_case


@pytest.mark.parametrize("prec", ["float64", "float32"])
@pytest.mark.parametrize("spelling", sorted(ROSETTA_CASES))
def test_rosetta_row(spelling, prec, torch, request):
    _prec(request, prec)
    ROSETTA_CASES[spelling](torch, np.random.default_rng(11), prec)
