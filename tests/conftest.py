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
