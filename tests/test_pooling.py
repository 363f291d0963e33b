"""fnnet's pooling against live torch: max/avg/adaptive pooling functionals and layers, values, indices (exact)
and gradients, float64 (1e-10) and float32 (1e-5), many configurations (ceil_mode, padding, dilation,
count_include_pad, divisor_override, None in output_size, unbatched inputs), tied inputs (the gradient goes to
torch's one position), NaN and -inf; torch's op_db and module_db cases; torch's errors; jit and lax.scan.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _nn_compare import Diff, compare_module, module_db_inputs, to_numpy

import fnnet.nn as nn
import fnnet.nn.functional as F

#: float64 at 1e-10 relative; float32 at 1e-5 relative; atol for entries near 0 (sums of a few terms).
TOL = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 1e-5, "atol": 1e-6}}


def _prec(request, prec: str) -> None:
    if prec == "float64":
        request.getfixturevalue("x64")


def _cases(table: list, float32_every: int = 2) -> list:
    """``(prec, *case)`` for every case in float64 and every ``float32_every``-th in float32: max pooling selects
    (exact in any precision), so float32 adds the dtype plumbing, not new numerics; each configuration compiles
    anew, which is what this file's time goes to."""

    def name(i: int, case: tuple, prec: str) -> str:
        return f"{case[0]}-{i}-{prec}" if isinstance(case[0], str) else f"{i}-{prec}"

    return [pytest.param("float64", *c, id=name(i, c, "float64")) for i, c in enumerate(table)] + [
        pytest.param("float32", *c, id=name(i, c, "float32")) for i, c in enumerate(table) if i % float32_every == 0
    ]


def data(shape: tuple[int, ...], prec: str, kind: str, seed: int = 0) -> np.ndarray:
    """``"normal"``: distinct values; ``"mixed"``: small integers (many equal maxima per window) in the even
    planes, distinct values in the odd ones; ``"special"``: small integers plus NaN, -inf and +inf entries."""
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal(shape).astype(prec)
    x = rng.integers(-2, 2, shape).astype(prec)
    if kind == "mixed" and x.ndim > 1:
        planes = x.reshape(-1, x.shape[-1]) if x.ndim == 2 else x.reshape(-1, *x.shape[-2:])
        planes[1::2] = rng.standard_normal(planes[1::2].shape)
    if kind == "special":
        flat = x.reshape(-1)
        flat[rng.choice(flat.size, 3, replace=False)] = np.nan
        flat[rng.choice(flat.size, 4, replace=False)] = -np.inf
        flat[rng.choice(flat.size, 1, replace=False)] = np.inf
    return x


def compare_pool(torch, name: str, x: np.ndarray, kwargs: dict, tol: dict, seed: int = 1) -> Diff:
    """``F.name(x, **kwargs)`` in fnnet and torch: output, indices (exactly) and the input gradient of
    ``sum(output * cot)``."""
    diff = Diff()
    xt = torch.from_numpy(x.copy()).requires_grad_()
    t_res = getattr(torch.nn.functional, name)(xt, **kwargs)
    t_out, t_idx = t_res if isinstance(t_res, tuple) else (t_res, None)
    cot = np.random.default_rng(seed).standard_normal(t_out.shape).astype(x.dtype)
    (t_grad,) = torch.autograd.grad(t_out, xt, torch.from_numpy(cot))

    def f(a):
        res = getattr(F, name)(a, **kwargs)
        return res if isinstance(res, tuple) else (res, None)

    @jax.jit  # one compiled program per configuration (op by op, eager differentiation compiles several)
    def run(a, c):
        (out, idx), vjp = jax.vjp(f, a)
        return out, idx, vjp((c, None if idx is None else np.zeros(idx.shape, jax.dtypes.float0)))[0]

    out, idx, grad = run(jnp.asarray(x), jnp.asarray(cot))
    diff.check(f"{name} output", out, to_numpy(t_out), **tol)
    if t_idx is not None:
        assert idx.dtype == (jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
        np.testing.assert_array_equal(idx, t_idx.numpy(), err_msg=f"{name} indices")
    diff.check(f"{name} grad", grad, t_grad.numpy(), **tol)
    return diff


# ---- max pooling -------------------------------------------------------------------------------------

MAX2D = [
    ((2, 3, 8, 8), {"kernel_size": 2}),
    ((2, 3, 8, 8), {"kernel_size": 2, "stride": 2, "return_indices": True}),
    ((2, 3, 9, 7), {"kernel_size": 2}),  # odd sizes: the last row/column is dropped
    ((2, 3, 9, 7), {"kernel_size": 2, "ceil_mode": True, "return_indices": True}),
    ((1, 2, 7, 7), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((1, 2, 7, 7), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "return_indices": True}),
    ((1, 2, 6, 6), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),  # a window dropped
    ((1, 2, 8, 9), {"kernel_size": 3, "stride": 1, "return_indices": True}),  # overlapping windows
    ((1, 2, 9, 10), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1), "dilation": (2, 3)}),
    ((1, 2, 9, 10), {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True,
                     "return_indices": True}),
    ((1, 2, 5, 11), {"kernel_size": (1, 4), "stride": (1, 3), "padding": (0, 2), "ceil_mode": True}),
    ((3, 8, 8), {"kernel_size": 2, "return_indices": True}),  # unbatched (C, H, W)
    ((3, 7, 5), {"kernel_size": (2, 3), "stride": [1, 2], "padding": [1, 1]}),
    ((2, 2, 4, 4), {"kernel_size": 4}),  # one window per plane
    ((2, 2, 5, 5), {"kernel_size": 5, "padding": 2, "stride": 1}),
    ((0, 2, 4, 4), {"kernel_size": 2}),  # empty batch
]  # fmt: skip

MAX1D = [
    ((2, 3, 10), {"kernel_size": 2}),
    ((2, 3, 11), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "return_indices": True}),
    ((2, 3, 12), {"kernel_size": 3, "stride": 1, "dilation": 3, "padding": 1, "return_indices": True}),
    ((3, 9), {"kernel_size": 4, "stride": 3, "ceil_mode": True, "padding": 2}),  # unbatched (C, L)
    ((3, 9), {"kernel_size": [2], "stride": (2,), "return_indices": True}),
]


@pytest.mark.parametrize("prec,shape,kwargs", _cases(MAX2D))
def test_max_pool2d(shape, kwargs, prec, torch, request):
    _prec(request, prec)
    compare_pool(torch, "max_pool2d", data(shape, prec, "mixed"), kwargs, TOL[prec])


@pytest.mark.parametrize("prec,shape,kwargs", _cases(MAX1D))
def test_max_pool1d(shape, kwargs, prec, torch, request):
    _prec(request, prec)
    compare_pool(torch, "max_pool1d", data(shape, prec, "mixed"), kwargs, TOL[prec])


@pytest.mark.parametrize("case", [0, 4, 5, 8, 9, 10, 12])
def test_max_pool2d_nan_and_infinities(case, torch, x64):
    """A NaN wins its window (torch: the last NaN in scan order) and takes the gradient; windows of -inf next
    to the padding keep torch's index (the first in-range element) and gradient."""
    shape, kwargs = MAX2D[case]
    compare_pool(torch, "max_pool2d", data(shape, "float64", "special", seed=case), {**kwargs, "return_indices": True},
                 TOL["float64"])  # fmt: skip


def test_max_pool_all_minus_infinity_windows(torch, x64):
    x = np.full((1, 1, 5, 6), -np.inf)
    x[0, 0, 2, 3] = 1.0
    for kwargs in ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, {"kernel_size": 2, "dilation": 2}):
        compare_pool(torch, "max_pool2d", x, {**kwargs, "return_indices": True}, TOL["float64"])
    compare_pool(torch, "max_pool1d", x[0], {"kernel_size": 3, "padding": 1, "return_indices": True}, TOL["float64"])


def test_max_pool2d_ties_send_the_gradient_to_one_position(torch):
    """All-equal windows: torch's (and fnnet's) gradient is 1 at each window's first element, 0 elsewhere
    (jnp.max's gradient would split it among the ties)."""
    x = jnp.ones((1, 1, 4, 6), jnp.float32)
    grad = jax.grad(lambda a: F.max_pool2d(a, 2).sum())(x)
    expected = np.zeros((4, 6), np.float32)
    expected[::2, ::2] = 1.0
    np.testing.assert_array_equal(grad[0, 0], expected)
    overlapping = jax.grad(lambda a: F.max_pool2d(a, 3, 1).sum())(x)[0, 0]
    xt = torch.ones(1, 1, 4, 6, requires_grad=True)
    torch.nn.functional.max_pool2d(xt, 3, 1).sum().backward()
    np.testing.assert_array_equal(overlapping, xt.grad[0, 0].numpy())
    assert float(overlapping.sum()) == 2 * 4  # 8 windows, one position each


# ---- average pooling ---------------------------------------------------------------------------------

AVG2D = [
    ((2, 3, 8, 8), {"kernel_size": 2}),
    ((2, 3, 9, 7), {"kernel_size": 2, "ceil_mode": True}),
    ((1, 2, 7, 7), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((1, 2, 7, 7), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ((1, 2, 7, 7), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    ((1, 2, 8, 8), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),  # window past the padding
    ((1, 2, 8, 8), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}),
    ((1, 2, 6, 6), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),  # a window dropped
    ((1, 2, 9, 10), {"kernel_size": (3, 2), "stride": (2, 3), "padding": (1, 1), "ceil_mode": True}),
    ((1, 2, 9, 10), {"kernel_size": (4, 4), "stride": (3, 2), "padding": (2, 1), "divisor_override": 3}),
    ((1, 2, 9, 10), {"kernel_size": 3, "padding": 1, "ceil_mode": True, "count_include_pad": False,
                     "divisor_override": 2}),
    ((3, 8, 8), {"kernel_size": 2, "stride": 1}),  # unbatched
    ((3, 7, 5), {"kernel_size": (2, 3), "stride": [1, 2], "padding": [1, 1], "count_include_pad": False}),
]  # fmt: skip

AVG1D = [
    ((2, 3, 10), {"kernel_size": 2}),
    ((2, 3, 11), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    ((2, 3, 12), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}),
    ((3, 9), {"kernel_size": 4, "stride": 3, "ceil_mode": True, "padding": 2}),  # unbatched (C, L)
    ((3, 9), {"kernel_size": [5], "stride": (1,), "padding": (2,)}),
]


@pytest.mark.parametrize("prec", ["float64", "float32"])
@pytest.mark.parametrize("shape,kwargs", AVG2D, ids=[str(i) for i in range(len(AVG2D))])
def test_avg_pool2d(shape, kwargs, prec, torch, request):
    _prec(request, prec)
    compare_pool(torch, "avg_pool2d", data(shape, prec, "normal"), kwargs, TOL[prec])


@pytest.mark.parametrize("prec", ["float64", "float32"])
@pytest.mark.parametrize("shape,kwargs", AVG1D, ids=[str(i) for i in range(len(AVG1D))])
def test_avg_pool1d(shape, kwargs, prec, torch, request):
    _prec(request, prec)
    compare_pool(torch, "avg_pool1d", data(shape, prec, "normal"), kwargs, TOL[prec])


def test_avg_pool2d_divisor_of_the_ceil_mode_window(torch, x64):
    """The last window of ceil_mode reaches past the padded input: count_include_pad counts the padding but not
    that part (ones in, ones out only where no padding is counted)."""
    x = np.ones((1, 1, 8, 8))
    out = F.avg_pool2d(jnp.asarray(x), 3, 2, 1, ceil_mode=True)
    theirs = torch.nn.functional.avg_pool2d(torch.from_numpy(x), 3, 2, 1, ceil_mode=True).numpy()
    np.testing.assert_array_equal(out, theirs)
    # first row of windows: rows -1..1 (one padding row). Columns -1..1: 2x2 ones over 3x3; inner columns: 2x3 ones
    # over 3x3; the last, columns 7..9: column 7 is input, 8 padding, 9 past the padded input (not counted): 2x1
    # ones over 3x2.
    np.testing.assert_allclose(out[0, 0, 0], [4 / 9, 6 / 9, 6 / 9, 6 / 9, 2 / 6], rtol=1e-15)


# ---- adaptive pooling --------------------------------------------------------------------------------

ADAPTIVE2D = [
    ((2, 3, 8, 8), 1),
    ((2, 3, 8, 8), (2, 4)),
    ((2, 3, 9, 7), 4),  # uneven windows
    ((2, 3, 9, 7), (5, None)),
    ((2, 3, 9, 7), (None, 3)),
    ((1, 2, 5, 6), (7, 9)),  # larger than the input: overlapping windows
    ((3, 10, 9), (3, 4)),  # unbatched
    ((3, 10, 9), [4, 5]),
]
ADAPTIVE1D = [((2, 3, 10), 1), ((2, 3, 10), 3), ((3, 7), 4), ((3, 7), (9,)), ((2, 3, 9), [9])]


@pytest.mark.parametrize("prec,shape,size", _cases(ADAPTIVE2D))
def test_adaptive_pool2d(shape, size, prec, torch, request):
    _prec(request, prec)
    x = data(shape, prec, "mixed")
    compare_pool(torch, "adaptive_max_pool2d", x, {"output_size": size, "return_indices": True}, TOL[prec])
    compare_pool(torch, "adaptive_avg_pool2d", x, {"output_size": size}, TOL[prec])


@pytest.mark.parametrize("prec,shape,size", _cases(ADAPTIVE1D))
def test_adaptive_pool1d(shape, size, prec, torch, request):
    _prec(request, prec)
    x = data(shape, prec, "mixed")
    compare_pool(torch, "adaptive_max_pool1d", x, {"output_size": size, "return_indices": True}, TOL[prec])
    compare_pool(torch, "adaptive_avg_pool1d", x, {"output_size": size}, TOL[prec])


def test_adaptive_max_pool_nan_and_infinities(torch, x64):
    x = data((2, 3, 9, 7), "float64", "special", seed=3)
    compare_pool(torch, "adaptive_max_pool2d", x, {"output_size": (4, 3), "return_indices": True}, TOL["float64"])
    compare_pool(torch, "adaptive_max_pool1d", x[0], {"output_size": 5, "return_indices": True}, TOL["float64"])


def test_infinities_stay_in_their_windows(torch, x64):
    """An inf (or NaN) reaches only the windows that hold it, in every pooling (no 0 * inf)."""
    x = data((1, 2, 9, 7), "float64", "normal", seed=5)
    x[0, 0, 4, 3], x[0, 1, 0, 0], x[0, 1, 8, 6] = np.inf, -np.inf, np.nan
    for name, kwargs in [
        ("adaptive_avg_pool2d", {"output_size": (4, 3)}),
        ("adaptive_avg_pool2d", {"output_size": (3, 7)}),
        ("avg_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        ("adaptive_max_pool2d", {"output_size": (4, 3), "return_indices": True}),
    ]:
        t_out = getattr(torch.nn.functional, name)(torch.from_numpy(x), **kwargs)
        t_out = t_out[0] if isinstance(t_out, tuple) else t_out
        ours = getattr(F, name)(jnp.asarray(x), **kwargs)
        ours = ours[0] if isinstance(ours, tuple) else ours
        np.testing.assert_allclose(ours, t_out.numpy(), rtol=1e-12, err_msg=name)  # NaN and inf where torch has them


def test_adaptive_output_size_zero(torch):
    x = np.ones((2, 3, 4, 4), np.float32)
    for name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        ours = getattr(F, name)(jnp.asarray(x), 0)
        assert ours.shape == tuple(getattr(torch.nn.functional, name)(torch.from_numpy(x), 0).shape) == (2, 3, 0, 0)


# ---- torch's op_db sample inputs ---------------------------------------------------------------------

OP_DB = ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
         "adaptive_max_pool1d", "adaptive_max_pool2d"]  # fmt: skip
OP_DB_SAMPLES = 4  # at most, spread over the list (max_pool2d has 1440; each new configuration compiles anew)


@pytest.mark.parametrize("name", OP_DB)
def test_op_db_samples(name, torch, x64):
    """torch's op_db samples in float64 (spread over the whole list where it is long)."""
    from torch.testing._internal.common_methods_invocations import op_db

    (op,) = [o for o in op_db if o.name == f"nn.functional.{name}"]
    samples = list(op.sample_inputs("cpu", torch.float64, requires_grad=False))
    step = -(-len(samples) // OP_DB_SAMPLES)
    for s in samples[::step]:
        args = list(inspect.signature(getattr(F, name)).parameters)[1:]
        kwargs = {**dict(zip(args, to_numpy(s.args))), **s.kwargs}
        compare_pool(torch, name, to_numpy(s.input), kwargs, TOL["float64"])


# ---- layers ------------------------------------------------------------------------------------------

# (class name, (input shape, constructor keywords)): configurations of the functional tables above, so that the
# layers reuse their compiled programs (compiling is what this file's time goes to).
LAYERS: list[tuple[str, tuple]] = [
    ("MaxPool2d", MAX2D[0]),
    ("MaxPool2d", MAX2D[5]),
    ("MaxPool2d", MAX2D[8]),
    ("MaxPool2d", MAX2D[11]),
    ("MaxPool1d", MAX1D[1]),
    ("MaxPool1d", MAX1D[4]),
    ("AvgPool2d", AVG2D[0]),
    ("AvgPool2d", AVG2D[6]),
    ("AvgPool2d", AVG2D[9]),
    ("AvgPool2d", AVG2D[11]),
    ("AvgPool1d", AVG1D[1]),
    ("AvgPool1d", AVG1D[3]),
    ("AdaptiveAvgPool2d", (ADAPTIVE2D[0][0], {"output_size": ADAPTIVE2D[0][1]})),
    ("AdaptiveAvgPool2d", (ADAPTIVE2D[3][0], {"output_size": ADAPTIVE2D[3][1]})),
    ("AdaptiveAvgPool1d", (ADAPTIVE1D[1][0], {"output_size": ADAPTIVE1D[1][1]})),
    ("AdaptiveMaxPool2d", (ADAPTIVE2D[2][0], {"output_size": ADAPTIVE2D[2][1], "return_indices": True})),
    ("AdaptiveMaxPool2d", (ADAPTIVE2D[6][0], {"output_size": ADAPTIVE2D[6][1]})),
    ("AdaptiveMaxPool1d", (ADAPTIVE1D[1][0], {"output_size": ADAPTIVE1D[1][1], "return_indices": True})),
]
ALL_LAYERS = sorted({c[0] for c in LAYERS})


@pytest.mark.parametrize("prec,name,case", _cases(LAYERS))
def test_layer_matches_torch(prec, name, case, torch, request):
    _prec(request, prec)
    shape, kwargs = case
    t_layer, f_layer = getattr(torch.nn, name)(**kwargs), getattr(nn, name)(**kwargs)
    x = data(shape, prec, "mixed")
    compare_module(t_layer, f_layer, [torch.from_numpy(x)], torch=torch, **TOL[prec])
    assert repr(f_layer) == repr(t_layer)
    assert nn.state_dict(f_layer) == {} == t_layer.state_dict()
    names = list(inspect.signature(getattr(torch.nn, name).__init__).parameters)[1 : 1 + len(kwargs)]
    if set(names) == set(kwargs):  # the same layer built positionally
        positional = [kwargs[n] for n in names]
        assert repr(getattr(nn, name)(*positional)) == repr(getattr(torch.nn, name)(*positional))


@pytest.mark.parametrize("name", ALL_LAYERS)
def test_layer_module_db_inputs(name, torch, x64):
    """torch's module_db cases in float64, training mode only (no pooling layer depends on the mode; both modes
    and float32 run in test_layer_matches_torch)."""
    cases = module_db_inputs(name, torch, torch.float64)
    assert cases, name
    for args, kwargs, forward, _ in cases:
        t_layer, f_layer = getattr(torch.nn, name)(*args, **kwargs), getattr(nn, name)(*args, **kwargs)
        compare_module(t_layer, f_layer, list(forward), torch=torch, modes=(True,), **TOL["float64"])
        assert repr(f_layer) == repr(t_layer)


def test_layer_signatures_match_torch(torch):
    for name in ALL_LAYERS:
        ours = inspect.signature(getattr(nn, name).__init__).parameters
        theirs = inspect.signature(getattr(torch.nn, name).__init__).parameters
        assert [p for p in ours if p not in ("self", "rngs")] == [p for p in theirs if p != "self"], name
        for p in theirs:
            if p != "self":
                assert ours[p].default == theirs[p].default, (name, p)
        assert ours["rngs"].kind is inspect.Parameter.KEYWORD_ONLY


def test_functional_signatures_match_torch(torch):
    expected = {
        "max_pool1d": ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"],
        "max_pool2d": ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"],
        "avg_pool1d": ["input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"],
        "avg_pool2d": ["input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                       "divisor_override"],
        "adaptive_avg_pool1d": ["input", "output_size"],
        "adaptive_avg_pool2d": ["input", "output_size"],
        "adaptive_max_pool1d": ["input", "output_size", "return_indices"],
        "adaptive_max_pool2d": ["input", "output_size", "return_indices"],
    }  # fmt: skip
    for name, params in expected.items():
        assert list(inspect.signature(getattr(F, name)).parameters) == params, name
    for name in ("max_pool1d_with_indices", "max_pool2d_with_indices", "adaptive_max_pool2d_with_indices"):
        ours = inspect.signature(getattr(F, name)).parameters
        theirs = inspect.signature(getattr(torch.nn.functional, name)).parameters
        assert list(ours) == list(theirs), name
        assert [p.default for p in ours.values()] == [p.default for p in theirs.values()], name


# ---- errors ------------------------------------------------------------------------------------------

# Each call runs with (torch.nn.functional, torch.zeros) and with (fnnet's F, jnp.zeros).
ERRORS = [
    (lambda F, z: F.max_pool2d(z((1, 2, 7, 7)), 3, padding=2), "pad should be at most half of effective kernel size"),
    (lambda F, z: F.max_pool2d(z((1, 2, 7, 7)), 3, padding=2, dilation=2),
     "pad should be smaller than or equal to half of kernel size"),
    (lambda F, z: F.max_pool2d(z((1, 2, 7, 7)), 0), "stride should not be zero"),
    (lambda F, z: F.max_pool2d(z((1, 2, 7, 7)), 0, 1), "kernel size should be greater than zero"),
    (lambda F, z: F.max_pool2d(z((1, 2, 7, 7)), 2, dilation=0), "dilation should be greater than zero"),
    (lambda F, z: F.max_pool2d(z((1, 2, 7, 7)), 9), r"Given input size: \(2x7x7\). Calculated output size: \(2x0x0\)"),
    (lambda F, z: F.max_pool2d(z((1, 2, 7, 7)), (2, 2, 2)), "kernel_size must either be a single int, or a tuple of"),
    (lambda F, z: F.max_pool2d(z((1, 2, 7, 7)), 2, (2, 2, 2)), "stride must either be omitted, a single int"),
    (lambda F, z: F.max_pool2d(z((1, 2, 7, 7)), 2, 2, -1), "pad must be non-negative"),
    (lambda F, z: F.max_pool2d(z((7, 7)), 2), "non-empty 3D or 4D"),
    (lambda F, z: F.max_pool2d(z((2, 0, 4, 4)), 2), "Expected 3D or 4D"),
    (lambda F, z: F.max_pool1d(z((2, 7)), 3, padding=2), "max_pool1d\\(\\) padding should be at most half of kernel"),
    (lambda F, z: F.max_pool1d(z((2, 7)), 9), r"max_pool1d\(\) Invalid computed output size: 0"),
    (lambda F, z: F.max_pool1d(z((7,)), 2), "max_pool1d: Expected 2D or 3D"),
    (lambda F, z: F.max_pool1d(z((2, 7)), (2, 2)), "kernel_size must be an int, list of ints or tuple of ints of"),
    (lambda F, z: F.max_pool1d(z((2, 7)), 2, 0), r"max_pool1d\(\) stride must be greater than zero, but got 0"),
    (lambda F, z: F.avg_pool2d(z((1, 2, 6, 6)), 2, divisor_override=0), "divisor must be not zero"),
    (lambda F, z: F.avg_pool2d(z((1, 2, 6, 6)), 3, padding=2), "pad should be at most half of effective kernel"),
    (lambda F, z: F.avg_pool1d(z((2, 7)), 9), r"Given input size: \(2x1x7\)"),
    (lambda F, z: F.avg_pool1d(z((2, 7)), 2, (2, 2)), r"avg_pool1d\(\) argument 'stride' should contain one int"),
    (lambda F, z: F.avg_pool1d(z((7,)), 2), "Expected 2 to 3 dimensions, but got 1-dimensional tensor"),
    (lambda F, z: F.adaptive_avg_pool2d(z((7, 7)), 2), "Expected 3D or 4D tensor"),
    (lambda F, z: F.adaptive_avg_pool2d(z((1, 2, 7, 7)), (2, 3, 4)), "adaptive_avg_pool2d: output_size must be 2"),
    (lambda F, z: F.adaptive_avg_pool2d(z((2, 7, 7)), (1, -1)), "elements of output_size must be greater than or"),
    (lambda F, z: F.adaptive_max_pool2d(z((7, 7)), 2), r"adaptive_max_pool2d\(\): Expected 3D or 4D tensor"),
    (lambda F, z: F.adaptive_max_pool2d(z((2, 0, 3, 3)), 2), "Expected input to have non-zero size for non-batch"),
    (lambda F, z: F.adaptive_avg_pool1d(z((2, 7)), (2, 2)), "argument 'output_size' should contain one int"),
]  # fmt: skip


@pytest.mark.parametrize("call,match", ERRORS, ids=[m[:40] for _, m in ERRORS])
def test_errors_as_torch(call, match, torch):
    with pytest.raises(RuntimeError, match=match):
        call(torch.nn.functional, lambda shape: torch.zeros(shape))
    with pytest.raises(ValueError, match=match):
        call(F, jnp.zeros)


def test_type_errors_as_torch(torch):
    with pytest.raises(TypeError, match="must be tuple of ints, not float"):
        torch.nn.functional.max_pool2d(torch.zeros(1, 4, 4), 2.0)
    with pytest.raises(TypeError, match="must be tuple of ints, not float"):
        F.max_pool2d(jnp.zeros((1, 4, 4)), 2.0)
    with pytest.raises(TypeError, match="floating-point"):
        F.avg_pool2d(jnp.zeros((1, 4, 4), jnp.int32), 2)


# ---- compiled use ------------------------------------------------------------------------------------


def test_jit_and_scan_do_not_recompile(torch):
    """The pooling layers inside jit and lax.scan (the CNN training loop's shape): one trace, torch's values."""
    traces = []
    model = nn.Sequential(nn.MaxPool2d(2, 2), nn.AvgPool2d(3, 1, 1), nn.AdaptiveAvgPool2d((2, 3)))

    @jax.jit
    def run(xs):
        traces.append(1)

        def step(carry, x):
            loss, grad = jax.value_and_grad(lambda a: (model(a) ** 2).sum())(x)
            return carry + loss, grad.sum()

        return jax.lax.scan(step, jnp.float32(0.0), xs)

    xs = data((3, 2, 4, 8, 8), "float32", "normal")
    for _ in range(2):
        total, _ = run(jnp.asarray(xs))
    assert len(traces) == 1
    t_model = torch.nn.Sequential(
        torch.nn.MaxPool2d(2, 2), torch.nn.AvgPool2d(3, 1, 1), torch.nn.AdaptiveAvgPool2d((2, 3))
    )
    expected = sum(float((t_model(torch.from_numpy(x)) ** 2).sum()) for x in xs)
    np.testing.assert_allclose(float(total), expected, rtol=1e-5)


# ---- rosetta rows: torch spelling -> case(torch, rng, prec) -------------------------------------------

ROSETTA_CASES: dict[str, Callable] = {}


def _row(spelling: str, fname: str, case: tuple, layer: str, plain=None) -> None:
    """``F.fname(x, **kwargs)`` and ``nn.<layer>(**kwargs)`` equal torch's for the table ``case`` (``(shape,
    kwargs)``); ``plain(x, torch value, torch grad)`` checks the row's claim about the plain jax spelling."""

    def run(torch, rng, prec):
        shape, kwargs = case
        x = data(shape, prec, "mixed", seed=int(rng.integers(1000)))
        compare_pool(torch, fname, x, kwargs, TOL[prec])
        t_layer, f_layer = getattr(torch.nn, layer)(**kwargs), getattr(nn, layer)(**kwargs)
        compare_module(t_layer, f_layer, [torch.from_numpy(x)], torch=torch, modes=(True,), **TOL[prec])
        if plain is not None:
            xt = torch.from_numpy(x).requires_grad_()
            out = getattr(torch.nn.functional, fname)(xt, **kwargs)
            out = out[0] if isinstance(out, tuple) else out
            (g,) = torch.autograd.grad(out.sum(), xt)
            plain(jnp.asarray(x), out.detach().numpy(), g.numpy())

    ROSETTA_CASES[spelling] = run


def _reduce_window_max(x, out, grad):
    """Plain lax.reduce_window: torch's values and tie rule for floor mode without padding."""
    f = lambda a: jax.lax.reduce_window(a, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")  # noqa: E731
    np.testing.assert_array_equal(f(x), out)
    np.testing.assert_array_equal(jax.grad(lambda a: f(a).sum())(x), grad)
    # ... but its gradient under a NaN goes to the largest number, not to the NaN (torch's and fnnet's choice)
    nan = x.at[0, 0, 0, 0].set(jnp.nan).at[0, 0, 0, 1].set(5.0)
    assert jax.grad(lambda a: f(a).sum())(nan)[0, 0, 0, 0] == 0
    assert jax.grad(lambda a: F.max_pool2d(a, 2).sum())(nan)[0, 0, 0, 0] == 1


def _reduce_window_avg(x, out, grad):
    """Plain reduce_window sum / k^2 is count_include_pad=True; torch's count_include_pad=False differs."""
    s = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 1, 3, 3), (1, 1, 2, 2), ((0, 0), (0, 0), (1, 1), (1, 1))) / 9
    assert not np.allclose(s, out)


def _mean_over_hw(x, out, grad):
    np.testing.assert_allclose(x.mean((-2, -1), keepdims=True), out, rtol=1e-5)


_row("F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode), nn.MaxPool2d(...)", "max_pool2d",
     MAX2D[0], "MaxPool2d", _reduce_window_max)  # fmt: skip
_row("F.max_pool2d(x, k, ceil_mode=True, padding=p, dilation=d)", "max_pool2d", MAX2D[9], "MaxPool2d")
_row("F.max_pool2d(x, k, return_indices=True), nn.MaxPool2d(k, return_indices=True)", "max_pool2d", MAX2D[5],
     "MaxPool2d")  # fmt: skip
_row("F.max_pool1d(x, k), nn.MaxPool1d(k)", "max_pool1d", MAX1D[1], "MaxPool1d")
_row("F.avg_pool2d(x, k, stride, padding, ceil_mode, count_include_pad, divisor_override), nn.AvgPool2d(...)",
     "avg_pool2d", AVG2D[3], "AvgPool2d", _reduce_window_avg)  # fmt: skip
_row("F.avg_pool1d(x, k), nn.AvgPool1d(k)", "avg_pool1d", AVG1D[1], "AvgPool1d")
_row("F.adaptive_avg_pool2d(x, output_size), nn.AdaptiveAvgPool2d(output_size)", "adaptive_avg_pool2d",
     (ADAPTIVE2D[0][0], {"output_size": ADAPTIVE2D[0][1]}), "AdaptiveAvgPool2d", _mean_over_hw)  # fmt: skip
_row("F.adaptive_avg_pool1d(x, output_size), nn.AdaptiveAvgPool1d(output_size)", "adaptive_avg_pool1d",
     (ADAPTIVE1D[1][0], {"output_size": ADAPTIVE1D[1][1]}), "AdaptiveAvgPool1d")  # fmt: skip
_row("F.adaptive_max_pool2d(x, output_size), nn.AdaptiveMaxPool2d(output_size)", "adaptive_max_pool2d",
     (ADAPTIVE2D[3][0], {"output_size": ADAPTIVE2D[3][1], "return_indices": True}), "AdaptiveMaxPool2d")  # fmt: skip
_row("F.adaptive_max_pool1d(x, output_size), nn.AdaptiveMaxPool1d(output_size)", "adaptive_max_pool1d",
     (ADAPTIVE1D[1][0], {"output_size": ADAPTIVE1D[1][1], "return_indices": True}), "AdaptiveMaxPool1d")  # fmt: skip


@pytest.mark.parametrize("prec", ["float64", "float32"])
@pytest.mark.parametrize("spelling", sorted(ROSETTA_CASES))
def test_rosetta_row(spelling, prec, torch, request):
    _prec(request, prec)
    ROSETTA_CASES[spelling](torch, np.random.default_rng(11), prec)
