"""fnnet.tensor against live torch: one case per row of the "Tensors" section of docs/rosetta.md.

Every case runs twice: "float32" with jax_enable_x64 off (1e-6 relative) and "float64" with it on
(1e-12). Rows whose torch result is 64-bit check in the float32 run that fnnet raises the x64
ValueError instead of downcasting.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from fnnet.tensor import (
    DTYPES,
    cat,
    det,
    from_numpy,
    from_pandas,
    inverse,
    jax_dtype,
    manual_seed,
    mm,
    randn,
    t,
    tensor,
    to_pandas,
    transpose,
    x64_enabled,
    zeros,
)

#: relative tolerance by the dtype of the result (the issue's float32 1e-6 / float64 1e-12; float16
#: keeps 11 significant bits, so 1e-3).
RTOL = {np.dtype(np.float16): 1e-3, np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}
REPO = pathlib.Path(__file__).resolve().parent.parent

#: torch spelling (first column of docs/rosetta.md, backticks removed) -> case(torch, rng, prec)
ROSETTA_CASES: dict[str, Callable] = {}


def case(*spellings: str):
    def register(fn: Callable) -> Callable:
        for s in spellings:
            ROSETTA_CASES[s] = fn
        return fn

    return register


def assert_same(ours, theirs) -> None:
    """Same shape, same dtype, values within the dtype's tolerance (exact for ints/bools)."""
    a = np.asarray(ours)
    b = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    if a.dtype.kind == "f":
        rtol = RTOL[a.dtype]
        scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)
    else:
        np.testing.assert_array_equal(a, b)


def rand(rng: np.random.Generator, shape: tuple[int, ...], prec: str) -> np.ndarray:
    return rng.standard_normal(shape).astype(prec)


def pair(torch, rng, shape, prec):
    """The same random array as a torch tensor and a JAX array."""
    a = rand(rng, shape, prec)
    return torch.from_numpy(a.copy()), jnp.asarray(a)


def raises_x64(fn: Callable) -> None:
    with pytest.raises(ValueError, match="jax_enable_x64"):
        fn()


# ---- creation and dtypes ------------------------------------------------------------------------


@case("torch.tensor(data)")
def _tensor_infer(torch, rng, prec):
    floats = rand(rng, (2, 3), "float64").tolist()  # Python floats: torch gives float32 either way
    assert_same(tensor(floats), torch.tensor(floats))
    bools = [[True, False], [False, True]]
    assert_same(tensor(bools), torch.tensor(bools))
    ints = rng.integers(-100, 100, size=(3, 2)).tolist()
    arr64 = rand(rng, (4,), "float64")  # NumPy input keeps float64
    if prec == "float32":
        raises_x64(lambda: tensor(ints))
        raises_x64(lambda: tensor(arr64))
        arr32 = arr64.astype(np.float32)
        assert_same(tensor(arr32), torch.tensor(arr32))
    else:
        assert_same(tensor(ints), torch.tensor(ints))
        assert_same(tensor(arr64), torch.tensor(arr64))
        assert_same(tensor(jnp.asarray(arr64)), torch.tensor(arr64))


@case("torch.tensor(range(5))")
def _tensor_range(torch, rng, prec):
    if prec == "float32":
        raises_x64(lambda: tensor(range(5)))
        assert_same(tensor(range(5), dtype="int32"), torch.tensor(range(5), dtype=torch.int32))
    else:
        assert_same(tensor(range(5)), torch.tensor(range(5)))


@case("torch.tensor(data, dtype=torch.float64)")
def _tensor_dtype(torch, rng, prec):
    data = rand(rng, (3,), "float64").tolist()
    for name in sorted(DTYPES):
        torch_dtype = getattr(torch, name) if hasattr(torch, name) and not name[0].isupper() else None
        if torch_dtype is None:
            continue
        wide = np.dtype(DTYPES[name]).itemsize == 8
        for spelling in (name, torch_dtype, f"torch.{name}"):
            if wide and prec == "float32":
                raises_x64(lambda: tensor(data, dtype=spelling))
            else:
                assert_same(tensor(data, dtype=spelling), torch.tensor(data, dtype=torch_dtype))


@case("torch.Tensor(data)")
def _legacy_tensor(torch, rng, prec):
    data = rng.integers(-5, 5, size=(2, 2)).tolist()  # ints become float32 too
    assert_same(tensor(data, dtype="float32"), torch.Tensor(data))


def _typed_constructor(type_name: str):
    def run(torch, rng, prec):
        data = rng.integers(-50, 50, size=(2, 3)).tolist()
        ctor = getattr(torch, type_name)
        if DTYPES[type_name].itemsize == 8 and prec == "float32":
            raises_x64(lambda: tensor(data, dtype=type_name))
            raises_x64(lambda: jax_dtype(ctor))
        else:
            assert_same(tensor(data, dtype=type_name), ctor(data))
            assert_same(tensor(data, dtype=ctor), ctor(data))

    return run


for _name in ("FloatTensor", "DoubleTensor", "HalfTensor", "IntTensor", "LongTensor"):
    case(f"torch.{_name}(data)")(_typed_constructor(_name))


@case("x.type(torch.FloatTensor)")
def _type_cast(torch, rng, prec):
    tx, x = pair(torch, rng, (3, 2), prec)
    assert_same(x.astype(jax_dtype("FloatTensor")), tx.type(torch.FloatTensor))
    assert_same(x.astype(jax_dtype("IntTensor")), tx.type(torch.IntTensor))
    if prec == "float64":
        assert_same(x.astype(jax_dtype("LongTensor")), tx.type(torch.LongTensor))


@case("x.dtype")
def _dtype_attr(torch, rng, prec):
    tx, x = pair(torch, rng, (2,), prec)
    assert str(x.dtype) == str(tx.dtype).removeprefix("torch.")
    assert jax_dtype(tx.dtype) == x.dtype


@case("x.size()")
def _size(torch, rng, prec):
    tx, x = pair(torch, rng, (2, 3, 4), prec)
    assert x.shape == tuple(tx.size())


@case("x.ndimension()")
def _ndim(torch, rng, prec):
    tx, x = pair(torch, rng, (2, 3, 4), prec)
    assert x.ndim == tx.ndimension()


# ---- indexing and reshaping ---------------------------------------------------------------------


@case("x[i]")
def _index(torch, rng, prec):
    tx, x = pair(torch, rng, (6,), prec)
    for i in (0, 3, -1):
        assert_same(x[i], tx[i])
    assert_same(x[5], x[99])  # the documented difference: JAX clamps ...
    with pytest.raises(IndexError):  # ... where torch raises
        tx[99]


@case("x[i:j]")
def _slice(torch, rng, prec):
    tx, x = pair(torch, rng, (6,), prec)
    assert_same(x[1:4], tx[1:4])
    assert_same(x[-3:], tx[-3:])


@case("m[i, j]")
def _index_2d(torch, rng, prec):
    tm, m = pair(torch, rng, (3, 4), prec)
    assert_same(m[1, 2], tm[1, 2])
    assert_same(m[-1, 0], tm[-1, 0])


@case("m[:, j]")
def _slice_2d(torch, rng, prec):
    tm, m = pair(torch, rng, (3, 4), prec)
    assert_same(m[:, 2], tm[:, 2])
    assert_same(m[1, :], tm[1, :])
    assert_same(m[0:2, 1:3], tm[0:2, 1:3])


@case("x.view(5, 1)")
def _view(torch, rng, prec):
    tx, x = pair(torch, rng, (5,), prec)
    assert_same(x.reshape(5, 1), tx.view(5, 1))


@case("x.view(-1, 3)")
def _view_infer(torch, rng, prec):
    tx, x = pair(torch, rng, (2, 6), prec)
    assert_same(x.reshape(-1, 3), tx.view(-1, 3))
    assert_same(x.reshape(3, -1), tx.view(3, -1))


@case("x.reshape(1, 8)")
def _reshape(torch, rng, prec):
    tx, x = pair(torch, rng, (2, 4), prec)
    assert_same(x.reshape(1, 8), tx.reshape(1, 8))


# ---- NumPy, pandas, Python ----------------------------------------------------------------------


@case("torch.from_numpy(a)")
def _from_numpy(torch, rng, prec):
    a = rand(rng, (3, 2), prec)
    assert_same(from_numpy(a), torch.from_numpy(a))
    ints = rng.integers(0, 9, size=(4,)).astype(np.int32)
    assert_same(from_numpy(ints), torch.from_numpy(ints))
    if prec == "float32":
        raises_x64(lambda: from_numpy(a.astype(np.float64)))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        from_numpy([1.0, 2.0])


@case("x.numpy()")
def _to_numpy(torch, rng, prec):
    tx, x = pair(torch, rng, (2, 3), prec)
    np.testing.assert_array_equal(np.asarray(x), tx.numpy())
    assert np.asarray(x).dtype == tx.numpy().dtype


@case("torch.from_numpy(series.values)")
def _from_series(torch, rng, prec):
    series = pd.Series(rand(rng, (5,), "float64"))  # pandas floats are float64
    if prec == "float32":
        raises_x64(lambda: from_pandas(series))
        assert_same(from_pandas(series, dtype="float32"), torch.tensor(series.values, dtype=torch.float32))
    else:
        assert_same(from_pandas(series), torch.from_numpy(series.values.copy()))
        assert_same(tensor(series), torch.from_numpy(series.values.copy()))


@case("torch.from_numpy(df.values)")
def _from_frame(torch, rng, prec):
    df = pd.DataFrame(rand(rng, (4, 3), prec), columns=["a", "b", "c"])
    assert_same(from_pandas(df), torch.from_numpy(df.values.copy()))
    with pytest.raises(TypeError, match=r"\['name'\]"):
        from_pandas(df.assign(name=["w", "x", "y", "z"]))


@case("pd.Series(x.numpy())")
def _to_pandas(torch, rng, prec):
    tx, x = pair(torch, rng, (4,), prec)
    pd.testing.assert_series_equal(to_pandas(x), pd.Series(tx.numpy()))
    tm, m = pair(torch, rng, (3, 2), prec)
    pd.testing.assert_frame_equal(to_pandas(m, columns=["p", "q"]), pd.DataFrame(tm.numpy(), columns=["p", "q"]))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        to_pandas(jnp.zeros((2, 2, 2)))


@case("x.tolist()")
def _tolist(torch, rng, prec):
    tx, x = pair(torch, rng, (2, 3), prec)
    assert x.tolist() == tx.tolist()
    assert jnp.arange(4, dtype=jnp.int32).tolist() == torch.arange(4, dtype=torch.int32).tolist()


@case("x.item()")
def _item(torch, rng, prec):
    tx, x = pair(torch, rng, (1,), prec)
    assert x[0].item() == tx[0].item()
    assert type(x[0].item()) is type(tx[0].item()) is float


# ---- initialisation -----------------------------------------------------------------------------


@case("torch.zeros(3, 3)")
def _zeros(torch, rng, prec):
    assert_same(zeros(3, 3), torch.zeros(3, 3))  # float32 even under x64, like torch
    assert_same(zeros((2, 4)), torch.zeros((2, 4)))
    assert_same(zeros(2, dtype="int32"), torch.zeros(2, dtype=torch.int32))
    with pytest.raises(ValueError, match="size"):
        zeros(2, -1)


@case("torch.manual_seed(n)")
def _manual_seed(torch, rng, prec):
    # Both: the same seed replays the same draws, another seed gives others.
    torch.manual_seed(7)
    t1 = torch.randn(8)
    torch.manual_seed(7)
    t2 = torch.randn(8)
    torch.manual_seed(8)
    t3 = torch.randn(8)
    j1, j2, j3 = (randn(8, key=manual_seed(s)) for s in (7, 7, 8))
    assert torch.equal(t1, t2) and not torch.equal(t1, t3)
    np.testing.assert_array_equal(j1, j2)
    assert not np.array_equal(j1, j3)
    assert jax.random.key_data(manual_seed(7)).tolist() == jax.random.key_data(jax.random.key(7)).tolist()
    with pytest.raises(TypeError, match="seed"):
        manual_seed(1.5)


@case("torch.randn(3, 3)")
def _randn(torch, rng, prec):
    """Different generators, same law: compare shape, dtype and moments of 20,000 draws with torch's."""
    torch.manual_seed(0)
    theirs = torch.randn(100, 200)
    ours = randn(100, 200, key=manual_seed(0))
    assert ours.shape == tuple(theirs.shape) and ours.dtype == jnp.float32
    # Standard errors at n=20,000: mean 0.007, std 0.005; 5 sigma bounds on the difference.
    assert abs(float(ours.mean()) - theirs.mean().item()) < 0.05
    assert abs(float(ours.std()) - theirs.std().item()) < 0.035
    if prec == "float64":
        assert randn(2, key=manual_seed(0), dtype="float64").dtype == jnp.float64
    else:
        raises_x64(lambda: randn(2, key=manual_seed(0), dtype="float64"))


# ---- elementwise math and broadcasting ----------------------------------------------------------


def _binary(op: Callable):
    def run(torch, rng, prec):
        (ta, a), (tb, b) = pair(torch, rng, (3, 4), prec), pair(torch, rng, (3, 4), prec)
        assert_same(op(a, b), op(ta, tb))

    return run


case("a + b")(_binary(lambda a, b: a + b))
case("a - b")(_binary(lambda a, b: a - b))
case("a * b")(_binary(lambda a, b: a * b))
case("a @ b")(_binary(lambda a, b: a @ b.T))


@case("a / b")
def _div(torch, rng, prec):
    _binary(lambda a, b: a / b)(torch, rng, prec)
    ints_a, ints_b = rng.integers(1, 9, size=4), rng.integers(1, 9, size=4)
    quotient = np.asarray(jnp.asarray(ints_a) / jnp.asarray(ints_b))
    reference = torch.tensor(ints_a) / torch.tensor(ints_b)  # float32 in torch
    np.testing.assert_allclose(quotient, reference.numpy(), rtol=1e-6)


@case("c * u")
def _scalar_mul(torch, rng, prec):
    tu, u = pair(torch, rng, (5,), prec)
    c = float(rng.standard_normal())
    assert_same(c * u, c * tu)


@case("2 * u + 3 * v")
def _linear_combination(torch, rng, prec):
    (tu, u), (tv, v) = pair(torch, rng, (5,), prec), pair(torch, rng, (5,), prec)
    assert_same(2 * u + 3 * v, 2 * tu + 3 * tv)


@case("u + 10")
def _broadcast(torch, rng, prec):
    tu, u = pair(torch, rng, (2, 3), prec)
    assert_same(u + 10, tu + 10)
    with pytest.raises(ValueError):  # conftest's rank_promotion="raise": explicit reshape needed
        u + jnp.ones(3, dtype=u.dtype)
    assert_same(u + jnp.ones(3, dtype=u.dtype).reshape(1, 3), tu + torch.ones(3, dtype=tu.dtype))


@case("torch.exp(x)")
def _exp(torch, rng, prec):
    tx, x = pair(torch, rng, (3, 3), prec)
    assert_same(jnp.exp(x), torch.exp(tx))


@case("torch.dot(u, v)")
def _dot(torch, rng, prec):
    (tu, u), (tv, v) = pair(torch, rng, (7,), prec), pair(torch, rng, (7,), prec)
    assert_same(jnp.dot(u, v), torch.dot(tu, tv))


# ---- matrices -----------------------------------------------------------------------------------


@case("torch.mm(a, b)")
def _mm(torch, rng, prec):
    (ta, a), (tb, b) = pair(torch, rng, (3, 4), prec), pair(torch, rng, (4, 2), prec)
    assert_same(mm(a, b), torch.mm(ta, tb))
    with pytest.raises(ValueError, match="input must be a 2-D"):
        mm(a[0], b)
    with pytest.raises(ValueError, match="cannot be multiplied"):
        mm(a, a)
    with pytest.raises(TypeError, match="same dtype"):
        mm(a, b.astype(jnp.float16))


@case("torch.matmul(a, b)")
def _matmul(torch, rng, prec):
    (ta, a), (tb, b) = pair(torch, rng, (2, 3, 4), prec), pair(torch, rng, (4, 5), prec)
    assert_same(jnp.matmul(a, b), torch.matmul(ta, tb))


@case("x.t()")
def _t(torch, rng, prec):
    tm, m = pair(torch, rng, (3, 4), prec)
    assert_same(t(m), tm.t())
    tv, v = pair(torch, rng, (4,), prec)
    assert_same(t(v), tv.t())
    with pytest.raises(ValueError, match="<= 2 dimensions"):
        t(jnp.zeros((2, 2, 2)))


@case("torch.transpose(x, 0, 1)")
def _transpose(torch, rng, prec):
    tx, x = pair(torch, rng, (2, 3, 4), prec)
    for d0, d1 in ((0, 1), (0, 2), (1, -1)):
        assert_same(transpose(x, d0, d1), torch.transpose(tx, d0, d1))


@case("torch.cat((a, b))")
def _cat0(torch, rng, prec):
    (ta, a), (tb, b) = pair(torch, rng, (2, 3), prec), pair(torch, rng, (4, 3), prec)
    assert_same(cat((a, b)), torch.cat((ta, tb)))
    assert_same(cat([a, b, a]), torch.cat([ta, tb, ta]))
    with pytest.raises(TypeError, match="list or tuple"):
        cat(a)


@case("torch.cat((a, b), dim=1)")
def _cat1(torch, rng, prec):
    (ta, a), (tb, b) = pair(torch, rng, (2, 3), prec), pair(torch, rng, (2, 5), prec)
    assert_same(cat((a, b), dim=1), torch.cat((ta, tb), dim=1))
    assert_same(cat((a, b), dim=-1), torch.cat((ta, tb), dim=-1))


def _well_conditioned(torch, rng, prec, n=3):
    a = rand(rng, (n, n), prec) + np.eye(n, dtype=prec) * n  # diagonally dominant: condition ~ 1
    return torch.from_numpy(a.copy()), jnp.asarray(a)


@case("torch.inverse(W)")
def _inverse(torch, rng, prec):
    tw, w = _well_conditioned(torch, rng, prec)
    assert_same(inverse(w), torch.inverse(tw))
    assert_same(inverse(w), torch.linalg.inv(tw))


@case("torch.det(W)")
def _det(torch, rng, prec):
    tw, w = _well_conditioned(torch, rng, prec)
    assert_same(det(w), torch.det(tw))


# ---- reductions and ranges ----------------------------------------------------------------------


@case("x.sum()")
def _sum(torch, rng, prec):
    tx, x = pair(torch, rng, (3, 4), prec)
    assert_same(x.sum(), tx.sum())


@case("x.sum(dim=0, keepdim=True)")
def _sum_dim(torch, rng, prec):
    tx, x = pair(torch, rng, (3, 4), prec)
    assert_same(x.sum(axis=0, keepdims=True), tx.sum(dim=0, keepdim=True))
    assert_same(x.sum(axis=1), tx.sum(dim=1))


@case("x.mean()")
def _mean(torch, rng, prec):
    tx, x = pair(torch, rng, (3, 4), prec)
    assert_same(x.mean(), tx.mean())


@case("torch.linspace(-10, 10, steps)")
def _linspace(torch, rng, prec):
    # float32 results agree to 1e-6 relative in both modes (under x64 JAX computes in float64 and
    # rounds once, torch in float32: they differ by up to 1 ulp).
    for steps in (5, 10, 50):
        assert_same(jnp.linspace(-10, 10, steps, dtype=jnp.float32), torch.linspace(-10, 10, steps))
        if prec == "float64":  # the documented x64 difference: JAX's default becomes float64
            assert_same(jnp.linspace(-10, 10, steps), torch.linspace(-10, 10, steps, dtype=torch.float64))


# ---- the parametrized runner --------------------------------------------------------------------


@pytest.mark.parametrize("prec", ["float32", "float64"])
@pytest.mark.parametrize("spelling", sorted(ROSETTA_CASES))
def test_rosetta_row(spelling, prec, torch, rng, request):
    if prec == "float64":
        request.getfixturevalue("x64")
    assert x64_enabled() == (prec == "float64")
    ROSETTA_CASES[spelling](torch, rng, prec)


# ---- the dtype table and error messages ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_dtype_table_matches_torch(name, torch, x64):
    """Every name in DTYPES denotes the dtype torch gives it (torch.float is float32, torch.long int64 ...)."""
    obj = getattr(torch, name)
    # FloatTensor & co are classes: take the dtype of a tensor their legacy constructor builds.
    reference = obj([1]).dtype if isinstance(obj, type) else obj
    assert jax_dtype(name) == np.dtype(str(reference).removeprefix("torch."))
    assert jax_dtype(obj) == jax_dtype(name)


@pytest.mark.parametrize("name", ["DoubleTensor", "LongTensor", "float64", "int64", "double", "long"])
def test_64_bit_without_x64_names_the_fix(name):
    with pytest.raises(ValueError) as err:
        jax_dtype(name)
    assert 'jax.config.update("jax_enable_x64", True)' in str(err.value)
    assert "JAX_ENABLE_X64=1" in str(err.value)
    with pytest.raises(ValueError, match="jax_enable_x64"):
        zeros(2, dtype=name)


@pytest.mark.parametrize(
    "bad, error, match",
    [
        ("FloatTensr", ValueError, "unknown torch dtype name 'FloatTensr'"),
        (object(), TypeError, "expected a torch dtype"),
    ],
)
def test_jax_dtype_rejects_unknown(bad, error, match):
    with pytest.raises(error, match=match):
        jax_dtype(bad)


def test_tensor_rejects_ragged_and_strings():
    with pytest.raises(ValueError, match="rectangular"):
        tensor([[1.0, 2.0], [3.0]])
    with pytest.raises(TypeError, match="numbers or bools"):
        tensor(["a", "b"])


def test_fnnet_tensor_functions_jit():
    """The wrappers are plain jnp code: they trace under jit without recompiling for new values."""
    traces = []

    @jax.jit
    def f(a, b):
        traces.append(1)
        return det(inverse(mm(a, t(b)))) + cat((a, b), dim=1).sum() + transpose(a, 0, 1).sum()

    a, b = jnp.eye(2) * 2.0, jnp.eye(2) + 1.0
    f(a, b)
    f(a + 1.0, b)
    assert len(traces) == 1


# ---- experiments/tensor_basics.py ---------------------------------------------------------------


def _load_experiment(name: str):
    folder = REPO / "experiments"
    spec = importlib.util.spec_from_file_location(f"_experiment_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))  # its sibling ``reports``, as when run from experiments/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return module


def test_tensor_basics_experiment(tmp_path, capsys):
    module = _load_experiment("tensor_basics")
    assert module.main(["--out", str(tmp_path), "--seed", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for expected in [
        "tensor(range(5)) = [0, 1, 2, 3, 4] (int64)",
        "2*u + 3*v = [11.0, 1.0]",
        "dot([1, 2], [3, 1]) = 5.0",
        "[1, 2, 3, 4] + 10 = [11, 12, 13, 14]",
        "W = X @ Y = [[5.4, 1.1], [7.6, 3.0]]",
        "det(W) = 7.84",
        "inverse(W) = [[0.3827, -0.1403], [-0.9694, 0.6888]]",
    ]:
        assert expected in lines, expected
    assert not x64_enabled()  # the experiment turned x64 on only while it ran


def test_tensor_basics_experiment_bad_seed(capsys):
    module = _load_experiment("tensor_basics")
    assert module.main(["--seed", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--seed" in err[0]
