"""jax.grad against torch's backward(): one case per row of the "Autograd" section of docs/rosetta.md,
run on random inputs in float32 (1e-6 relative) and float64 with jax_enable_x64 (1e-12), using the
functions of experiments/autograd_basics.py; then the experiment's printed lines and figure.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
RTOL = {"float32": 1e-6, "float64": 1e-12}


def _load_experiment():
    path = REPO / "experiments" / "autograd_basics.py"
    spec = importlib.util.spec_from_file_location("_experiment_autograd_basics", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # its sibling ``reports``, as when run from experiments/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


ex = _load_experiment()

#: torch spelling (first column of docs/rosetta.md, backticks removed) -> case(torch, rng, prec)
ROSETTA_CASES: dict[str, Callable] = {}


def case(spelling: str):
    def register(fn: Callable) -> Callable:
        ROSETTA_CASES[spelling] = fn
        return fn

    return register


def assert_same(ours, theirs, prec: str) -> None:
    a = np.asarray(ours)
    b = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    scale = max(1.0, float(np.max(np.abs(b))))
    np.testing.assert_allclose(a, b, rtol=RTOL[prec], atol=RTOL[prec] * scale)


def leaf(torch, a: np.ndarray):
    return torch.from_numpy(a.copy()).requires_grad_()


@case("c = (a + 5).mean(); c.backward(); a.grad")
def _mean(torch, rng, prec):
    for shape in ((2, 2), (3, 5)):
        a = rng.standard_normal(shape).astype(prec)
        ta = leaf(torch, a)
        (ta + 5).mean().backward()
        assert_same(jax.grad(ex.mean_plus_5)(jnp.asarray(a)), ta.grad, prec)


@case("y = x**3 - 7*x**2 + 11*x; y.backward(); x.grad")
def _cubic(torch, rng, prec):
    for x in (rng.standard_normal(4) * 3).astype(prec):
        tx = leaf(torch, np.asarray(x))
        y = tx**3 - 7 * tx**2 + 11 * tx
        y.backward()
        assert_same(jax.grad(ex.cubic)(jnp.asarray(x)), tx.grad, prec)


@case("f = 3*u**2*v - 4*v**3; f.backward(); u.grad, v.grad")
def _partials(torch, rng, prec):
    for u, v in (rng.standard_normal((4, 2)) * 2).astype(prec):
        tu, tv = leaf(torch, np.asarray(u)), leaf(torch, np.asarray(v))
        (3 * tu**2 * tv - 4 * tv**3).backward()
        du, dv = jax.grad(ex.two_variables, argnums=(0, 1))(jnp.asarray(u), jnp.asarray(v))
        assert_same(du, tu.grad, prec)
        assert_same(dv, tv.grad, prec)


@case("y = torch.sum(x**2); y.backward(); x.grad")
def _elementwise(torch, rng, prec):
    x = (rng.standard_normal(10) * 10).astype(prec)
    tx = leaf(torch, x)
    torch.sum(tx**2).backward()
    assert_same(ex.elementwise_derivative(jnp.asarray(x)), tx.grad, prec)
    assert_same(jax.grad(lambda z: jnp.sum(ex.square(z)))(jnp.asarray(x)), tx.grad, prec)


def _loss(w, batch):
    """A small least-squares loss, written once for both libraries (works on tensors and arrays)."""
    return ((batch @ w - 1.0) ** 2).mean()


@case("loss.backward() twice without zero_grad()")
def _accumulate(torch, rng, prec):
    w = rng.standard_normal(3).astype(prec)
    b1, b2 = rng.standard_normal((2, 4, 3)).astype(prec)
    tw = leaf(torch, w)
    for b in (b1, b2):
        _loss(tw, torch.from_numpy(b)).backward()  # no zero_grad: .grad holds g1 + g2
    grad = jax.grad(_loss)
    assert_same(grad(jnp.asarray(w), jnp.asarray(b1)) + grad(jnp.asarray(w), jnp.asarray(b2)), tw.grad, prec)


@case("x.grad.zero_()")
def _zero(torch, rng, prec):
    w = rng.standard_normal(3).astype(prec)
    b = rng.standard_normal((4, 3)).astype(prec)
    tw = leaf(torch, w)
    _loss(tw, torch.from_numpy(b)).backward()
    tw.grad.zero_()
    _loss(tw, torch.from_numpy(b)).backward()
    assert_same(jax.grad(_loss)(jnp.asarray(w), jnp.asarray(b)), tw.grad, prec)


@case("x.detach()")
def _detach(torch, rng, prec):
    x = rng.standard_normal(5).astype(prec)
    tx = leaf(torch, x)
    (tx * tx.detach() ** 2).sum().backward()  # d/dx = x**2: the detached factor is a constant
    ours = jax.grad(lambda z: jnp.sum(z * jax.lax.stop_gradient(z) ** 2))(jnp.asarray(x))
    assert_same(ours, tx.grad, prec)


@case("x.detach().numpy()")
def _detach_numpy(torch, rng, prec):
    x = rng.standard_normal((2, 3)).astype(prec)
    tx = leaf(torch, x)
    y = tx * 2
    assert_same(np.asarray(jnp.asarray(x) * 2), y.detach().numpy(), prec)


@case("Variable(t)")
def _variable(torch, rng, prec):
    from torch.autograd import Variable

    x = rng.standard_normal(4).astype(prec)
    t = torch.from_numpy(x.copy())
    wrapped = Variable(t)
    assert isinstance(wrapped, torch.Tensor) and not wrapped.requires_grad
    assert_same(jnp.asarray(x), wrapped, prec)


@pytest.mark.parametrize("prec", ["float32", "float64"])
@pytest.mark.parametrize("spelling", sorted(ROSETTA_CASES))
def test_rosetta_row(spelling, prec, torch, rng, request):
    if prec == "float64":
        request.getfixturevalue("x64")
    assert jax.config.jax_enable_x64 == (prec == "float64")
    ROSETTA_CASES[spelling](torch, rng, prec)


EXPECTED_LINES = [
    "grad of mean(a + 5): [[0.25, 0.25], [0.25, 0.25]]",
    "d/dx (x**3 - 7*x**2 + 11*x) at x=2: -5.0",
    "d/dx (x**3 - 7*x**2 + 11*x) at x=3: -4.0",
    "partials of 3*u**2*v - 4*v**3 at (u, v) = (2, 1): du=12.0 dv=0.0",
    "elementwise d/dx x**2 at x = [-10.0, -5.0, 0.0, 5.0, 10.0]: [-20.0, -10.0, 0.0, 10.0, 20.0]",
]


def test_experiment_values_match_torch(torch):
    """The printed numbers are torch's: the seed-001 examples evaluated by backward() in float64."""
    x = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    (x**3 - 7 * x**2 + 11 * x).backward()
    u = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    v = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    (3 * u**2 * v - 4 * v**3).backward()
    a = torch.randn(2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    (a + 5).mean().backward()
    assert f"d/dx (x**3 - 7*x**2 + 11*x) at x=2: {x.grad.item()}" == EXPECTED_LINES[1]
    assert f"du={u.grad.item()} dv={v.grad.item()}" in EXPECTED_LINES[3]
    assert f"grad of mean(a + 5): {a.grad.tolist()}" == EXPECTED_LINES[0]


def test_autograd_basics_experiment(tmp_path, capsys):
    assert ex.main(["--out", str(tmp_path), "--seed", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[: len(EXPECTED_LINES)] == EXPECTED_LINES
    figure = tmp_path / "derivative.png"
    assert lines[-1] == f"wrote {figure}"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["derivative.png"]  # no temp files left


def test_autograd_basics_plot_data(torch):
    """The plotted derivative over linspace(-10, 10) (50 points) is torch's backward() of sum(x**2)."""
    x = torch.linspace(-10, 10, 50, requires_grad=True)
    torch.sum(x**2).backward()
    ours = ex.elementwise_derivative(jnp.linspace(-10.0, 10.0))
    np.testing.assert_allclose(np.asarray(ours), x.grad.numpy(), rtol=1e-6, atol=1e-5)


def test_autograd_basics_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    assert ex.main(["--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "figures skipped: matplotlib is not installed"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv, culprit",
    [(["--seed", "-3"], "--seed"), (["--seed", "two"], "--seed"), (["--bogus"], "--bogus")],
)
def test_autograd_basics_bad_arguments(argv, culprit, capsys):
    assert ex.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and culprit in err[0]


def test_autograd_basics_out_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert ex.main(["--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(blocker) in err[0]
