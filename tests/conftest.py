"""Strict test configuration shared by every test module.

* ``jax_numpy_rank_promotion="raise"`` turns silent broadcasting between arrays of different rank
  into an error, so library code must broadcast explicitly.
* float64 is *not* on for the whole suite: tests that compare with torch in float64 request the
  ``x64`` fixture, which turns ``jax_enable_x64`` on for that test only.
"""

from __future__ import annotations

import os
import pathlib

import jax
import numpy as np
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_platforms", "cpu")

REPO = pathlib.Path(__file__).resolve().parent.parent
SHARED_FMNIST = REPO.parent / "shared" / "data" / "fashion-mnist"


@pytest.fixture
def x64():
    """Enable float64 in JAX for the duration of one test."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def compile_count():
    """A function returning how many XLA compilations this test has run so far.

    Counted from JAX's own compile event rather than ``jitted._cache_size()``: that private count is 0
    once JAX's process-wide table of jitted functions (8,192) is full, as it is late in this suite.
    """
    events: list[str] = []

    def listener(event: str, duration: float, **kwargs) -> None:
        if event == "/jax/core/compile/backend_compile_duration":  # jax._src.dispatch
            events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield lambda: len(events)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


@pytest.fixture
def torch():
    """The reference implementation. Imported lazily so collection stays fast."""
    import torch as _torch

    _torch.set_num_threads(1)
    return _torch


@pytest.fixture(scope="session")
def shared_fmnist() -> pathlib.Path:
    """A folder with the four official Fashion-MNIST files (MD5s checked).

    ``../shared/data/fashion-mnist`` when it is there (CI always has it, and there its absence is
    a failure); otherwise fnnet's own checksummed download into the user cache, as a new user's
    clone gets it. No network and no ../shared: the tests that read the full files fail, naming
    both places.
    """
    if (SHARED_FMNIST / "train-images-idx3-ubyte.gz").exists():
        return SHARED_FMNIST
    if os.environ.get("CI"):
        pytest.fail(f"{SHARED_FMNIST} is missing: CI must run with ../shared beside the clone")
    from fnnet._download import download_fashion_mnist

    try:
        return download_fashion_mnist(verbose=False)
    except (OSError, ValueError) as e:  # no network, or a download with the wrong MD5 (DataError)
        pytest.fail(f"the official Fashion-MNIST files are neither in {SHARED_FMNIST} nor downloadable ({e})")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ------------------------------------------------------------------ --diff-report: measured differences
def pytest_addoption(parser):
    parser.addoption(
        "--diff-report",
        metavar="FILE",
        default=None,
        help="write, per test, the largest |actual - expected| (and relative) that numpy.testing."
        "assert_allclose saw, by dtype, as JSON lines to FILE (the figures in the issues' closing notes)",
    )


def pytest_configure(config):
    path = config.getoption("--diff-report")
    if path:
        config.pluginmanager.register(_DiffReport(pathlib.Path(path)), "fnnet-diff-report")


class _DiffReport:
    """Wraps ``numpy.testing.assert_allclose`` (tests that import it later get the wrapper) to record
    the largest absolute and relative difference of every passing comparison, keyed by test id."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path, self.current, self.worst = path, None, {}
        original = np.testing.assert_allclose

        def assert_allclose(actual, desired, *args, **kwargs):
            original(actual, desired, *args, **kwargs)
            self._record(actual, desired)

        np.testing.assert_allclose = assert_allclose

    def _record(self, actual, desired) -> None:
        a, e = np.asarray(actual), np.asarray(desired)
        if self.current is None or not (np.issubdtype(a.dtype, np.floating) and a.size):
            return
        a64, e64 = np.broadcast_arrays(a.astype(np.float64), e.astype(np.float64))
        finite = np.isfinite(a64) & np.isfinite(e64)
        if not finite.any():
            return
        d = np.abs(a64[finite] - e64[finite])
        rel = d / np.maximum(np.abs(e64[finite]), np.finfo(np.float64).tiny)
        key = (self.current, str(a.dtype))
        old = self.worst.get(key, (0.0, 0.0))
        self.worst[key] = (max(old[0], float(d.max())), max(old[1], float(rel[d > 0].max()) if (d > 0).any() else 0.0))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        self.current = item.nodeid
        yield
        self.current = None

    def pytest_sessionfinish(self, session):
        import json

        lines = [
            json.dumps({"test": test, "dtype": dtype, "max_abs": worst[0], "max_rel": worst[1]})
            for (test, dtype), worst in sorted(self.worst.items())
        ]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.path)
