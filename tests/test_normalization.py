"""fnnet.nn BatchNorm1d/2d, LayerNorm, GroupNorm and their functional forms against torch 2.13.

Each layer is built in torch and in fnnet with the same constructor arguments; ``compare_module``
loads torch's state_dict (random affine parameters, running statistics after a few torch forwards) and
compares outputs, input and parameter gradients and buffers in train and eval mode. Tolerances:
float64 rtol 1e-10 / atol 1e-12; float32 rtol 1e-5 / atol 1e-5 (outputs and gradients are O(1) and
cross zero; torch's CPU kernels accumulate float32 sums in float64, XLA in float32, which leaves
~1e-6 absolute on values near zero). Data-parallel BatchNorm (``axis_name``) is checked under
``jax.vmap`` with a named axis against the one-batch computation in float64 at 1e-13.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import _nn_compare
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _nn_compare import compare_module, module_db_inputs
from flax import nnx

import fnnet.nn as fnn
import fnnet.nn.functional as F

TOL = {"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-5)}
DIFFS: dict[tuple[str, str], list[float]] = {}  # (layer, prec) -> [max abs, max rel]


@pytest.fixture(scope="module", autouse=True)
def _report_diffs():
    """``FNNET_NN_DIFFS=1 pytest -s ...`` prints the largest differences per layer (the closing note's table)."""
    yield
    if os.environ.get("FNNET_NN_DIFFS"):
        for (name, prec), (a, r) in sorted(DIFFS.items()):
            print(f"\n{name:28s} {prec}: max abs {a:.3g}, max rel {r:.3g}")


def check(name: str, prec: str, actual, expected, tol=None) -> None:
    """assert_allclose at the precision's tolerance, recording the differences under ``name``."""
    diff = _nn_compare.Diff()
    diff.check(name, np.asarray(actual), np.asarray(expected), *(tol or TOL[prec]))
    record(name, prec, diff)


def record(name: str, prec: str, diff) -> None:
    old = DIFFS.setdefault((name, prec), [0.0, 0.0])
    old[0], old[1] = max(old[0], diff.abs), max(old[1], diff.rel)


@pytest.fixture(params=["float64", "float32"])
def prec(request) -> str:
    if request.param == "float64":
        request.getfixturevalue("x64")
    return request.param


def tdtype(torch, prec):
    return getattr(torch, prec)


def randn(torch, rng, shape, prec, scale=1.0, shift=0.0):
    return torch.from_numpy((rng.standard_normal(shape) * scale + shift).astype(prec))


def randomise_affine(torch, layer, rng):
    """Random weight/bias (torch's init is ones/zeros, which would hide a transposed or missing factor)."""
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, tuple(p.shape)).astype(str(p.dtype)[6:])))


def check_error(torch_call: Callable, fnnet_call: Callable) -> None:
    """Both raise, with the same message (fnnet raises ValueError/TypeError/IndexError where torch may
    raise RuntimeError or AssertionError)."""
    with pytest.raises(Exception) as theirs:
        torch_call()
    with pytest.raises((ValueError, TypeError, IndexError)) as ours:
        fnnet_call()
    assert str(ours.value) == str(theirs.value)


# ---------------------------------------------------------------------------------------------- BatchNorm

BN_LAYOUTS = [("BatchNorm1d", (6, 4)), ("BatchNorm1d", (5, 4, 3)), ("BatchNorm2d", (3, 4, 5, 2))]
BN_CONFIGS = [  # momentum, affine, bias, track_running_stats
    (0.1, True, True, True),
    (None, True, True, True),
    (0.5, True, True, True),
    (0.1, True, False, True),
    (None, False, True, True),
    (0.5, True, True, False),
    (0.1, False, True, False),
]


@pytest.mark.parametrize("config", BN_CONFIGS, ids=lambda c: "momentum{}-affine{:d}-bias{:d}-track{:d}".format(*c))
@pytest.mark.parametrize("name, shape", BN_LAYOUTS, ids=str)
def test_batchnorm_matches_torch(name, shape, config, prec, torch, rng):
    momentum, affine, bias, track = config
    kwargs = dict(eps=1e-5, momentum=momentum, affine=affine, track_running_stats=track, bias=bias)
    theirs = getattr(torch.nn, name)(4, **kwargs, dtype=tdtype(torch, prec))
    ours = getattr(fnn, name)(4, **kwargs, dtype=prec)
    randomise_affine(torch, theirs, rng)
    for _ in range(2):  # non-trivial running statistics and num_batches_tracked before the comparison
        theirs(randn(torch, rng, shape, prec, 3.0, 2.0))
    x = randn(torch, rng, shape, prec, 2.0, -1.0)
    diff = compare_module(theirs, ours, [x], torch=torch, rtol=TOL[prec][0], atol=TOL[prec][1])
    record(name, prec, diff)


@pytest.mark.parametrize("momentum, compiled", [(0.1, True), (None, False), (None, True), (0.5, False)])
def test_batchnorm_statistics_accumulate_over_forwards(momentum, compiled, prec, torch, rng):
    """Several training forwards (batch sizes vary), then eval, then training again: outputs, running
    statistics and num_batches_tracked equal torch's after every call, eagerly and through nnx.split/merge
    inside jit."""
    rtol, atol = TOL[prec]
    theirs = torch.nn.BatchNorm2d(3, momentum=momentum, dtype=tdtype(torch, prec))
    ours = fnn.BatchNorm2d(3, momentum=momentum, dtype=prec)
    randomise_affine(torch, theirs, rng)
    fnn.load_state_dict(ours, theirs.state_dict())
    graphdef, state = nnx.split(ours)

    @jax.jit
    def run(state, x):
        model = nnx.merge(graphdef, state)
        return model(x), nnx.state(model)

    modes = [True, True, True, False, True, True, False]
    for step, mode in enumerate(modes):
        x = randn(torch, rng, (2 + step, 3, 4, 4), prec, 1.0 + step, step - 2.0)
        theirs.train(mode)
        expected = theirs(x).detach().numpy()
        if compiled:
            graphdef, state = nnx.split(nnx.merge(graphdef, state).train(mode))
            out, state = run(state, jnp.asarray(x.numpy()))
            nnx.update(ours, state)
        else:
            out = ours.train(mode)(x.numpy())
        check("BatchNorm2d", prec, out, expected)
        got = fnn.state_dict(ours)
        for key, value in theirs.state_dict().items():
            check("BatchNorm2d", prec, got[key], value.numpy())
    assert int(got["num_batches_tracked"]) == 5
    assert got["num_batches_tracked"].dtype == (np.int64 if prec == "float64" else np.int32)


@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d"])
def test_batchnorm_module_db(name, x64, torch):
    """torch's own module_db cases (simple average, no affine, no tracking, zero batch, bias=False), in
    float64 (the float32 bound is exercised by the configurations above; each new shape costs compiles)."""
    prec = "float64"
    cases = module_db_inputs(name, torch, tdtype(torch, prec))
    assert len(cases) >= 7
    for args, kwargs, inputs, _desc in cases:
        theirs = getattr(torch.nn, name)(*args, **kwargs, dtype=tdtype(torch, prec))
        ours = getattr(fnn, name)(*args, **kwargs, dtype=prec)
        diff = compare_module(theirs, ours, inputs, torch=torch, rtol=TOL[prec][0], atol=TOL[prec][1])
        record(name, prec, diff)
        assert int(fnn.state_dict(ours).get("num_batches_tracked", 0)) == 0  # the harness left it alone


def test_batchnorm_zero_batch_counts_the_forward(torch):
    """An empty batch leaves the running statistics alone but still counts (torch's num_batches_tracked)."""
    theirs, ours = torch.nn.BatchNorm1d(5, momentum=None), fnn.BatchNorm1d(5, momentum=None)
    theirs(torch.zeros(0, 5, 9))
    out = ours(np.zeros((0, 5, 9), np.float32))
    assert out.shape == (0, 5, 9)
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(fnn.state_dict(ours)[key], value.numpy())


@pytest.mark.parametrize(
    "shape, training",
    [
        ((7, 3), True),
        ((7, 3), False),
        ((4, 3, 5), True),
        ((2, 3, 4, 3), False),
        ((2, 3, 4, 3), True),
        ((3, 3, 2, 2, 2), True),
    ],
    ids=str,
)
def test_batch_norm_functional(shape, training, prec, torch, rng):
    """F.batch_norm's values and input/weight/bias gradients, and batch_norm_stats' statistics equal to
    what torch leaves in the buffers it updates in place (with and without weight and bias)."""
    affine = (len(shape) % 2 == 0) != training
    x = randn(torch, rng, shape, prec, 2.0, 1.0)
    mean, var = randn(torch, rng, (3,), prec), torch.from_numpy(rng.uniform(0.5, 2.0, 3).astype(prec))
    w, b = (randn(torch, rng, (3,), prec), randn(torch, rng, (3,), prec)) if affine else (None, None)
    cot = rng.standard_normal(shape).astype(prec)
    leaves = [t.clone().requires_grad_(True) for t in (x, w, b) if t is not None]
    tm, tv = mean.clone(), var.clone()
    t_out = torch.nn.functional.batch_norm(leaves[0], tm, tv, *leaves[1:], training=training, momentum=0.3, eps=1e-4)
    (t_out * torch.from_numpy(cot)).sum().backward()

    def loss(*args):
        out, new_mean, new_var = F.batch_norm_stats(
            args[0], mean.numpy(), var.numpy(), *args[1:], training=training, momentum=0.3, eps=1e-4
        )
        return jnp.sum(out * cot), (out, new_mean, new_var)

    j_args = [jnp.asarray(t.detach().numpy()) for t in leaves]
    (_, (out, new_mean, new_var)), grads = jax.value_and_grad(loss, argnums=tuple(range(len(j_args))), has_aux=True)(
        *j_args
    )
    check("F.batch_norm", prec, out, t_out.detach().numpy())
    plain = F.batch_norm(j_args[0], mean.numpy(), var.numpy(), *j_args[1:], training=training, momentum=0.3, eps=1e-4)
    np.testing.assert_array_equal(plain, out)
    check("F.batch_norm", prec, new_mean, tm.numpy())
    check("F.batch_norm", prec, new_var, tv.numpy())
    for g, t in zip(grads, leaves):
        check("F.batch_norm", prec, g, t.grad.numpy())


def test_batch_norm_without_running_statistics(torch, rng):
    """running_mean/var None in training: batch statistics, nothing returned for the buffers."""
    x = randn(torch, rng, (5, 2, 3), "float32")
    out, m, v = F.batch_norm_stats(x.numpy(), None, None, training=True)
    assert m is None and v is None
    expected = torch.nn.functional.batch_norm(x, None, None, training=True)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_higher_order_derivatives_match_torch(affine, x64, torch, rng):
    """Training-mode batch norm has a hand-written derivative (a custom JVP): forward mode, double
    backward, and the gradient through the returned batch statistics all equal torch's (float64)."""
    x, r, t = (rng.standard_normal((6, 3, 4, 4)) for _ in range(3))
    x = 3 * x + 2  # a mean far from zero and a spread far from one
    w, b = (rng.standard_normal(3), rng.standard_normal(3)) if affine else (None, None)
    tt = {k: None if v is None else torch.tensor(v, requires_grad=True) for k, v in dict(x=x, w=w, b=b).items()}

    def ours(x, w):
        return F.batch_norm(x, None, None, w, b, training=True)

    def theirs(x, w):
        return torch.nn.functional.batch_norm(x, None, None, w, tt["b"], training=True)

    # forward mode: jax.jvp against torch.func.jvp
    _, tangent = jax.jvp(lambda x: ours(x, w), (x,), (t,))
    expected = torch.func.jvp(lambda x: theirs(x, tt["w"]), (torch.tensor(x),), (torch.tensor(t),))[1]
    np.testing.assert_allclose(tangent, expected.detach().numpy(), rtol=1e-10, atol=1e-12)

    # double backward: the gradient of the squared input gradient
    def loss(x, w):
        return jnp.sum(jnp.sin(ours(x, w)) * r)

    wrt = (0, 1) if affine else (0,)
    grads = jax.grad(lambda x, w: jnp.sum(jax.grad(loss)(x, w) ** 2), wrt)(x, w)
    y = torch.sum(torch.sin(theirs(tt["x"], tt["w"])) * torch.tensor(r))
    (dx,) = torch.autograd.grad(y, tt["x"], create_graph=True)
    (dx**2).sum().backward()
    for ours_g, leaf in zip(grads, [tt["x"], tt["w"]]):
        np.testing.assert_allclose(ours_g, leaf.grad.numpy(), rtol=1e-10, atol=1e-12)

    # the batch statistics are outputs too (they feed the running statistics): their gradients flow
    def stats_loss(x):
        out, mean, var = F.batch_norm_stats(x, np.zeros(3), np.ones(3), w, b, training=True)
        return jnp.sum(out * r) + 0.3 * jnp.sum(mean) + 0.7 * jnp.sum(var)

    xt = torch.tensor(x, requires_grad=True)
    out = theirs(xt, tt["w"])
    mean, var = xt.mean((0, 2, 3)), xt.var((0, 2, 3), unbiased=False)
    running_var = 0.1 * var * (xt[:, 0].numel() / (xt[:, 0].numel() - 1)) + 0.9
    (torch.sum(out * torch.tensor(r)) + 0.3 * (0.1 * mean).sum() + 0.7 * running_var.sum()).backward()
    np.testing.assert_allclose(jax.grad(stats_loss)(x), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def _bn_errors(torch):
    t, f = torch.nn.functional, F
    z3, o3, x = torch.zeros(3), torch.ones(3), torch.randn(4, 3)
    n = np.asarray
    return {
        "1d_rank": (lambda: torch.nn.BatchNorm1d(3)(torch.randn(4)), lambda: fnn.BatchNorm1d(3)(np.zeros(4))),
        "1d_4d": (
            lambda: torch.nn.BatchNorm1d(3)(torch.randn(2, 3, 2, 2)),
            lambda: fnn.BatchNorm1d(3)(np.zeros((2, 3, 2, 2))),
        ),
        "2d_rank": (
            lambda: torch.nn.BatchNorm2d(3)(torch.randn(2, 3, 2)),
            lambda: fnn.BatchNorm2d(3)(np.zeros((2, 3, 2))),
        ),
        "one_value": (
            lambda: torch.nn.BatchNorm2d(3)(torch.randn(1, 3, 1, 1)),
            lambda: fnn.BatchNorm2d(3)(np.zeros((1, 3, 1, 1))),
        ),
        "one_value_1d": (
            lambda: torch.nn.BatchNorm1d(3, track_running_stats=False)(torch.randn(1, 3)),
            lambda: fnn.BatchNorm1d(3, track_running_stats=False)(np.zeros((1, 3))),
        ),
        "channels": (
            lambda: torch.nn.BatchNorm2d(3)(torch.randn(2, 4, 1, 1)),
            lambda: fnn.BatchNorm2d(3)(np.zeros((2, 4, 1, 1))),
        ),
        "weight": (
            lambda: t.batch_norm(x, z3, o3, weight=torch.ones(2)),
            lambda: f.batch_norm(n(x), n(z3), n(o3), weight=np.ones(2)),
        ),
        "eval_mean": (lambda: t.batch_norm(x, None, None), lambda: f.batch_norm(n(x), None, None)),
        "eval_var": (lambda: t.batch_norm(x, z3, None), lambda: f.batch_norm(n(x), n(z3), None)),
        "eps_train": (
            lambda: t.batch_norm(x, z3, o3, training=True, eps=0),
            lambda: f.batch_norm(n(x), n(z3), n(o3), training=True, eps=0),
        ),
        "eps_eval": (lambda: t.batch_norm(x, z3, o3, eps=-1), lambda: f.batch_norm(n(x), n(z3), n(o3), eps=-1)),
        "momentum_none": (
            lambda: t.batch_norm(x, z3, o3, training=True, momentum=None),
            lambda: f.batch_norm(n(x), n(z3), n(o3), training=True, momentum=None),
        ),
    }


BN_ERROR_CASES = [
    "1d_rank",
    "1d_4d",
    "2d_rank",
    "one_value",
    "one_value_1d",
    "channels",
    "weight",
    "eval_mean",
    "eval_var",
    "eps_train",
    "eps_eval",
    "momentum_none",
]


@pytest.mark.parametrize("case", BN_ERROR_CASES)
def test_batchnorm_errors_are_torchs(case, torch):
    torch_call, fnnet_call = _bn_errors(torch)[case]
    check_error(torch_call, fnnet_call)


@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d"])
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"momentum": None, "affine": False}, {"track_running_stats": False}, {"bias": False, "eps": 0.001}],
)
def test_batchnorm_state_dict_repr_and_init(name, kwargs, torch):
    theirs, ours = getattr(torch.nn, name)(5, **kwargs), getattr(fnn, name)(5, **kwargs)
    assert repr(ours) == repr(theirs)
    mine = fnn.state_dict(ours)
    assert list(mine) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(mine[key], value.numpy())  # ones, zeros, 0
    assert sorted(fnn.named_parameters(ours)) == sorted(k for k, _ in theirs.named_parameters())
    assert ours.axis_name is None


def test_batchnorm_constructor_errors():
    with pytest.raises(ValueError, match="num_features must be an int >= 0, got -1"):
        fnn.BatchNorm2d(-1)
    with pytest.raises(ValueError, match="num_features must be an int >= 0, got 2.5"):
        fnn.BatchNorm1d(2.5)
    with pytest.raises(ValueError, match="needs 64-bit JAX"):
        fnn.BatchNorm1d(2, dtype="float64")


# ---------------------------------------------------------------------- data-parallel BatchNorm (SyncBatchNorm)


@pytest.mark.parametrize("devices", [2, 8])
@pytest.mark.parametrize("shape", [(8, 3), (8, 3, 5), (8, 3, 4, 2)])
def test_batch_norm_stats_over_a_named_axis_equal_one_batch(shape, devices, x64, rng):
    """``axis_name``: global statistics (mean, two-pass variance, unbiased count) across vmapped
    devices equal the one-batch computation, outputs and gradients, in float64 at 1e-13. With 8 devices
    and (8, 3) inputs each device holds one value per channel, which only the global batch allows."""
    x = rng.standard_normal(shape) * 3 + 2
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    cot = rng.standard_normal(shape)

    def one(x, w, b):
        out, m, v = F.batch_norm_stats(x, mean, var, w, b, True, 0.3, 1e-5)
        return jnp.sum(out * cot), (out, m, v)

    def split(x, w, b):
        def local(xs, cs):
            out, m, v = F.batch_norm_stats(xs, mean, var, w, b, True, 0.3, 1e-5, axis_name="batch")
            return jnp.sum(out * cs), (out, m, v)

        xs = x.reshape(devices, shape[0] // devices, *shape[1:])
        cs = cot.reshape(xs.shape)
        total, (out, m, v) = jax.vmap(local, axis_name="batch")(xs, cs)
        return jnp.sum(total), (out.reshape(shape), m, v)

    (_, (out1, m1, v1)), g1 = jax.value_and_grad(one, (0, 1, 2), has_aux=True)(x, w, b)
    (_, (outn, mn, vn)), gn = jax.value_and_grad(split, (0, 1, 2), has_aux=True)(x, w, b)
    np.testing.assert_allclose(outn, out1, rtol=1e-13, atol=1e-13)
    for m in mn:  # every device holds the same statistics
        np.testing.assert_allclose(m, m1, rtol=1e-13, atol=1e-13)
    for v in vn:
        np.testing.assert_allclose(v, v1, rtol=1e-13, atol=1e-13)
    for a, e in zip(gn, g1):
        np.testing.assert_allclose(a, e, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_layer_with_axis_name_trains_like_one_device(momentum, x64, rng, torch):
    """BatchNorm2d with ``axis_name`` set, run per device under vmap for three training steps and one
    eval step: outputs, buffers and parameter gradients equal one device's (float64, 1e-13), and the
    one-device run equals torch's."""
    shape, devices = (8, 3, 4, 4), 4
    single = fnn.BatchNorm2d(3, momentum=momentum, dtype="float64")
    theirs = torch.nn.BatchNorm2d(3, momentum=momentum, dtype=torch.float64)
    randomise_affine(torch, theirs, rng)
    fnn.load_state_dict(single, theirs.state_dict())
    parallel = fnn.BatchNorm2d(3, momentum=momentum, dtype="float64")
    fnn.load_state_dict(parallel, theirs.state_dict())
    parallel.axis_name = "batch"
    g1, p1, r1 = nnx.split(single, nnx.Param, ...)
    gn, pn, rn = nnx.split(parallel, nnx.Param, ...)

    def run_one(params, rest, x, cot):
        model = nnx.merge(g1, params, rest, copy=True)
        out = model(x)
        return jnp.sum(out * cot), (out, nnx.state(model, fnn.Buffer))

    def run_split(params, rest, x, cot):
        def local(xs, cs):
            model = nnx.merge(gn, params, rest, copy=True)
            out = model(xs)
            return jnp.sum(out * cs), (out, nnx.state(model, fnn.Buffer))

        xs, cs = x.reshape(devices, -1, *shape[1:]), cot.reshape(devices, -1, *shape[1:])
        total, (out, buffers) = jax.vmap(local, axis_name="batch", out_axes=(0, (0, None)))(xs, cs)
        return jnp.sum(total), (out.reshape(shape), buffers)

    for step, mode in enumerate([True, True, True, False]):
        single.train(mode)
        parallel.train(mode)
        g1, p1, r1 = nnx.split(single, nnx.Param, ...)
        gn, pn, rn = nnx.split(parallel, nnx.Param, ...)
        x, cot = rng.standard_normal(shape) * (step + 1) + step, rng.standard_normal(shape)
        (_, (o1, b1)), d1 = jax.value_and_grad(run_one, has_aux=True)(p1, r1, x, cot)
        (_, (on, bn)), dn = jax.value_and_grad(run_split, has_aux=True)(pn, rn, x, cot)
        np.testing.assert_allclose(on, o1, rtol=1e-13, atol=1e-13)
        for (k, a), (_, e) in zip(bn.flat_state(), b1.flat_state()):
            np.testing.assert_allclose(a.get_value(), e.get_value(), rtol=1e-13, atol=1e-13, err_msg=str(k))
        for (k, a), (_, e) in zip(dn.flat_state(), d1.flat_state()):
            np.testing.assert_allclose(a.get_value(), e.get_value(), rtol=1e-13, atol=1e-13, err_msg=str(k))
        nnx.update(single, b1)
        nnx.update(parallel, bn)
        theirs.train(mode)
        np.testing.assert_allclose(o1, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(fnn.state_dict(parallel)[key], value.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------- LayerNorm

LN_CASES = [  # normalized_shape, input shape
    (5, (4, 5)),
    ((5,), (4, 5)),
    (5, (2, 3, 5)),
    ((3, 5), (2, 4, 3, 5)),
    ([2, 3, 4], (3, 2, 3, 4)),
    ((6,), (6,)),
]


AFFINE_FLAGS = [(True, True), (True, False), (False, True)]


@pytest.mark.parametrize("index", range(len(LN_CASES)), ids=lambda i: str(LN_CASES[i]))
def test_layernorm_matches_torch(index, prec, torch, rng):
    """Each shape with one of the affine/bias combinations and eps (module_db adds more below)."""
    (normalized_shape, shape), (affine, bias) = LN_CASES[index], AFFINE_FLAGS[index % 3]
    eps = (1e-5, 0.1)[index % 2]
    kwargs = dict(eps=eps, elementwise_affine=affine, bias=bias)
    theirs = torch.nn.LayerNorm(normalized_shape, **kwargs, dtype=tdtype(torch, prec))
    ours = fnn.LayerNorm(normalized_shape, **kwargs, dtype=prec)
    randomise_affine(torch, theirs, rng)
    assert repr(ours) == repr(theirs)
    x = randn(torch, rng, shape, prec, 3.0, 5.0)
    diff = compare_module(theirs, ours, [x], torch=torch, rtol=TOL[prec][0], atol=TOL[prec][1])
    record("LayerNorm", prec, diff)


@pytest.mark.parametrize("name", ["LayerNorm", "GroupNorm"])
def test_norm_module_db(name, x64, torch):
    """torch's own module_db cases, in float64 (as for BatchNorm)."""
    prec = "float64"
    cases = module_db_inputs(name, torch, tdtype(torch, prec))
    assert len(cases) >= 7
    for args, kwargs, inputs, desc in cases:
        theirs = getattr(torch.nn, name)(*args, **kwargs, dtype=tdtype(torch, prec))
        ours = getattr(fnn, name)(*args, **kwargs, dtype=prec)
        assert repr(ours) == repr(theirs), desc
        diff = compare_module(theirs, ours, inputs, torch=torch, rtol=TOL[prec][0], atol=TOL[prec][1])
        record(name, prec, diff)


@pytest.mark.parametrize("with_weight, with_bias", [(True, True), (True, False), (False, True), (False, False)])
def test_layer_norm_functional(with_weight, with_bias, prec, torch, rng):
    shape, norm = (3, 4, 5), (4, 5)
    x = randn(torch, rng, shape, prec, 2.0, -3.0)
    w = randn(torch, rng, norm, prec) if with_weight else None
    b = randn(torch, rng, norm, prec) if with_bias else None
    _compare_functional(
        torch,
        lambda x, w, b: torch.nn.functional.layer_norm(x, norm, w, b, 1e-3),
        lambda x, w, b: F.layer_norm(x, norm, w, b, 1e-3),
        [x, w, b],
        rng,
        "F.layer_norm",
        prec,
    )


def _compare_functional(torch, t_fn, j_fn, args, rng, name, prec):
    """Values and gradients w.r.t. every floating tensor argument (None stays None)."""
    leaves = [None if a is None else a.clone().requires_grad_(True) for a in args]
    t_out = t_fn(*leaves)
    cot = rng.standard_normal(tuple(t_out.shape)).astype(str(t_out.dtype)[6:])
    (t_out * torch.from_numpy(cot)).sum().backward()
    pos = [i for i, a in enumerate(args) if a is not None]

    def loss(*present):
        full = [None] * len(args)
        for i, v in zip(pos, present):
            full[i] = v
        out = j_fn(*full)
        return jnp.sum(out * cot), out

    (_, out), grads = jax.value_and_grad(loss, argnums=tuple(range(len(pos))), has_aux=True)(
        *[jnp.asarray(args[i].numpy()) for i in pos]
    )
    check(name, prec, out, t_out.detach().numpy())
    for i, g in zip(pos, grads):
        check(name, prec, g, leaves[i].grad.numpy())


# ---------------------------------------------------------------------------------------------- GroupNorm

GN_CASES = [  # num_groups, num_channels, input shape
    (3, 6, (4, 6, 5)),
    (1, 6, (4, 6)),
    (6, 6, (2, 6, 3, 3)),
    (2, 4, (3, 4, 2, 3)),
    (2, 4, (2, 4, 2, 2, 2)),
]


@pytest.mark.parametrize("groups, channels, shape", GN_CASES, ids=str)
def test_groupnorm_matches_torch(groups, channels, shape, prec, torch, rng):
    """Each layout with one of the affine/bias combinations (module_db adds more below)."""
    affine, bias = AFFINE_FLAGS[GN_CASES.index((groups, channels, shape)) % 3]
    theirs = torch.nn.GroupNorm(groups, channels, 1e-5, affine, bias=bias, dtype=tdtype(torch, prec))
    ours = fnn.GroupNorm(groups, channels, 1e-5, affine, bias=bias, dtype=prec)
    randomise_affine(torch, theirs, rng)
    assert repr(ours) == repr(theirs)
    assert list(fnn.state_dict(ours)) == list(theirs.state_dict())
    x = randn(torch, rng, shape, prec, 2.0, 4.0)
    diff = compare_module(theirs, ours, [x], torch=torch, rtol=TOL[prec][0], atol=TOL[prec][1])
    record("GroupNorm", prec, diff)


# (weight None, bias given) is left out: torch 2.13's backward raises "tensor does not have a device" there.
@pytest.mark.parametrize("with_weight, with_bias", [(True, True), (True, False), (False, False)])
def test_group_norm_functional(with_weight, with_bias, prec, torch, rng):
    x = randn(torch, rng, (3, 6, 4), prec, 2.0, 1.0)
    w = randn(torch, rng, (6,), prec) if with_weight else None
    b = randn(torch, rng, (6,), prec) if with_bias else None
    _compare_functional(
        torch,
        lambda x, w, b: torch.nn.functional.group_norm(x, 2, w, b, 1e-5),
        lambda x, w, b: F.group_norm(x, 2, w, b, 1e-5),
        [x, w, b],
        rng,
        "F.group_norm",
        prec,
    )


def _norm_errors(torch):
    t, x = torch.nn.functional, torch.randn(4, 3, 5)
    n = x.numpy()
    return {
        "ln_shape": (lambda: t.layer_norm(x, (4,)), lambda: F.layer_norm(n, (4,))),
        "ln_shape_2": (lambda: t.layer_norm(x, (2, 3, 5)), lambda: F.layer_norm(n, (2, 3, 5))),
        "ln_empty": (lambda: t.layer_norm(x, ()), lambda: F.layer_norm(n, ())),
        "ln_int": (lambda: t.layer_norm(x, 5), lambda: F.layer_norm(n, 5)),
        "ln_weight": (
            lambda: t.layer_norm(x, (5,), weight=torch.ones(4)),
            lambda: F.layer_norm(n, (5,), weight=np.ones(4)),
        ),
        "ln_bias": (lambda: t.layer_norm(x, (5,), bias=torch.ones(4)), lambda: F.layer_norm(n, (5,), bias=np.ones(4))),
        "ln_module": (
            lambda: torch.nn.LayerNorm(5)(torch.randn(3, 4)),
            lambda: fnn.LayerNorm(5)(np.zeros((3, 4), np.float32)),
        ),
        "gn_divisible": (lambda: t.group_norm(x, 2), lambda: F.group_norm(n, 2)),
        "gn_weight": (
            lambda: t.group_norm(x, 3, weight=torch.ones(2)),
            lambda: F.group_norm(n, 3, weight=np.ones(2)),
        ),
        "gn_rank": (lambda: t.group_norm(torch.randn(3), 1), lambda: F.group_norm(np.zeros(3), 1)),
        "gn_one_value": (lambda: t.group_norm(torch.randn(1, 2), 2), lambda: F.group_norm(np.zeros((1, 2)), 2)),
        "gn_one_value_3d": (
            lambda: t.group_norm(torch.randn(1, 4, 1), 4),
            lambda: F.group_norm(np.zeros((1, 4, 1)), 4),
        ),
        "gn_ctor": (lambda: torch.nn.GroupNorm(2, 3), lambda: fnn.GroupNorm(2, 3)),
        "gn_module": (
            lambda: torch.nn.GroupNorm(2, 4)(torch.randn(3, 6, 2)),
            lambda: fnn.GroupNorm(2, 4)(np.zeros((3, 6, 2), np.float32)),
        ),
    }


NORM_ERROR_CASES = [
    "ln_shape",
    "ln_shape_2",
    "ln_empty",
    "ln_int",
    "ln_weight",
    "ln_bias",
    "ln_module",
    "gn_divisible",
    "gn_weight",
    "gn_rank",
    "gn_one_value",
    "gn_one_value_3d",
    "gn_ctor",
    "gn_module",
]


@pytest.mark.parametrize("case", NORM_ERROR_CASES)
def test_norm_errors_are_torchs(case, torch):
    torch_call, fnnet_call = _norm_errors(torch)[case]
    check_error(torch_call, fnnet_call)


def test_norm_constructor_errors_and_defaults(torch):
    with pytest.raises(ValueError, match="num_groups must be an int >= 1, got 0"):
        fnn.GroupNorm(0, 3)
    with pytest.raises(ValueError, match="num_groups must be a positive int, got 0"):
        F.group_norm(np.zeros((2, 3)), 0)
    with pytest.raises(ValueError, match="normalized_shape must be an int >= 0, got -2"):
        fnn.LayerNorm((3, -2))
    for ours, theirs in (
        (fnn.LayerNorm([2, 3]), torch.nn.LayerNorm([2, 3])),
        (fnn.GroupNorm(2, 4, affine=False), torch.nn.GroupNorm(2, 4, affine=False)),
        (fnn.LayerNorm(4, bias=False), torch.nn.LayerNorm(4, bias=False)),
    ):
        assert repr(ours) == repr(theirs)
        mine = fnn.state_dict(ours)
        assert list(mine) == list(theirs.state_dict())
        for key, value in theirs.state_dict().items():
            np.testing.assert_array_equal(mine[key], value.numpy())


# ---------------------------------------------------------------------------------------------- rosetta

ROSETTA_CASES: dict[str, Callable] = {}


def case(spelling: str):
    def register(fn: Callable) -> Callable:
        ROSETTA_CASES[spelling] = fn
        return fn

    return register


def _rosetta_layer(torch, rng, prec, theirs, ours, shape, name):
    rtol, atol = TOL[prec]
    randomise_affine(torch, theirs.to(tdtype(torch, prec)), rng)
    record(
        name,
        prec,
        compare_module(theirs, ours, [randn(torch, rng, shape, prec, 2.0, 1.0)], torch=torch, rtol=rtol, atol=atol),
    )


@case("nn.BatchNorm1d(C)")
def _bn1d(torch, rng, prec):
    _rosetta_layer(torch, rng, prec, torch.nn.BatchNorm1d(4), fnn.BatchNorm1d(4, dtype=prec), (5, 4, 3), "BatchNorm1d")


@case("nn.BatchNorm2d(C)")
def _bn2d(torch, rng, prec):
    _rosetta_layer(
        torch, rng, prec, torch.nn.BatchNorm2d(4), fnn.BatchNorm2d(4, dtype=prec), (3, 4, 5, 2), "BatchNorm2d"
    )


@case("F.batch_norm(x, running_mean, running_var, weight, bias, training=True, momentum=0.1)")
def _f_batch_norm(torch, rng, prec):
    rtol, atol = TOL[prec]
    x = randn(torch, rng, (6, 3, 4), prec, 2.0, 1.0)
    m, v, w, b = (randn(torch, rng, (3,), prec, 0.2, s) for s in (0.0, 1.0, 1.0, 0.0))
    out, new_m, new_v = F.batch_norm_stats(x.numpy(), m.numpy(), v.numpy(), w.numpy(), b.numpy(), True, 0.1)
    expected = torch.nn.functional.batch_norm(x, m, v, w, b, training=True, momentum=0.1)
    for ours, theirs in ((out, expected), (new_m, m), (new_v, v)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=rtol, atol=atol)


@case("nn.SyncBatchNorm.convert_sync_batchnorm(model)")
def _sync(torch, rng, prec):
    """Under a vmapped (or pmapped) axis, a layer with axis_name set normalises like one big batch."""
    rtol = TOL[prec][0]
    x = rng.standard_normal((8, 3, 2, 2)).astype(prec) * 2 + 1
    layer = fnn.BatchNorm2d(3, dtype=prec)
    layer.axis_name = "batch"
    graphdef, state = nnx.split(layer)

    def local(xs):
        model = nnx.merge(graphdef, state, copy=True)
        return model(xs), nnx.state(model, fnn.Buffer)

    out, buffers = jax.vmap(local, axis_name="batch", out_axes=(0, None))(x.reshape(4, 2, 3, 2, 2))
    theirs = torch.nn.BatchNorm2d(3, dtype=tdtype(torch, prec))
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(out.reshape(x.shape), expected, rtol=rtol, atol=TOL[prec][1])
    np.testing.assert_allclose(buffers["running_var"].get_value(), theirs.running_var.numpy(), rtol=rtol)


@case("nn.LayerNorm(normalized_shape)")
def _ln(torch, rng, prec):
    _rosetta_layer(torch, rng, prec, torch.nn.LayerNorm(5), fnn.LayerNorm(5, dtype=prec), (4, 5), "LayerNorm")


@case("F.layer_norm(x, normalized_shape, weight, bias, eps)")
def _f_ln(torch, rng, prec):
    x, w, b = randn(torch, rng, (2, 3, 4), prec), randn(torch, rng, (4,), prec), randn(torch, rng, (4,), prec)
    expected = torch.nn.functional.layer_norm(x, (4,), w, b, 1e-5).numpy()
    np.testing.assert_allclose(
        F.layer_norm(x.numpy(), (4,), w.numpy(), b.numpy(), 1e-5), expected, rtol=TOL[prec][0], atol=TOL[prec][1]
    )


@case("nn.GroupNorm(num_groups, num_channels)")
def _gn(torch, rng, prec):
    _rosetta_layer(torch, rng, prec, torch.nn.GroupNorm(3, 6), fnn.GroupNorm(3, 6, dtype=prec), (4, 6, 5), "GroupNorm")


@case("F.group_norm(x, num_groups, weight, bias, eps)")
def _f_gn(torch, rng, prec):
    x, w, b = randn(torch, rng, (2, 6, 5), prec), randn(torch, rng, (6,), prec), randn(torch, rng, (6,), prec)
    expected = torch.nn.functional.group_norm(x, 3, w, b, 1e-5).numpy()
    np.testing.assert_allclose(
        F.group_norm(x.numpy(), 3, w.numpy(), b.numpy(), 1e-5), expected, rtol=TOL[prec][0], atol=TOL[prec][1]
    )


@pytest.mark.parametrize("spelling", sorted(ROSETTA_CASES))
def test_rosetta_row(spelling, prec, torch, rng):
    ROSETTA_CASES[spelling](torch, rng, prec)


def test_flax_batchnorm_is_not_torchs(torch, rng):
    """The rosetta row's third column, measured: nnx.BatchNorm with the "same" momentum keeps 0.1 of the
    old statistics instead of 0.9, stores the biased variance and has no num_batches_tracked."""
    x = rng.standard_normal((4, 3)).astype(np.float32) * 2 + 1
    flax_bn = nnx.BatchNorm(3, momentum=0.1, epsilon=1e-5, rngs=nnx.Rngs(0))
    flax_bn(jnp.asarray(x))
    theirs = torch.nn.BatchNorm1d(3, momentum=0.1)
    theirs(torch.from_numpy(x))
    np.testing.assert_allclose(flax_bn.mean.get_value(), 0.9 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(flax_bn.var.get_value(), 0.1 + 0.9 * x.var(0), rtol=1e-5)
    np.testing.assert_allclose(theirs.running_var.numpy(), 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-5)
    assert not hasattr(flax_bn, "num_batches_tracked")
    ours = fnn.BatchNorm1d(3)
    ours(x)
    np.testing.assert_allclose(ours.running_var.get_value(), theirs.running_var.numpy(), rtol=1e-6)
