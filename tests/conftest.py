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
def torch():
    """The reference implementation. Imported lazily so collection stays fast."""
    import torch as _torch

    _torch.set_num_threads(1)
    return _torch


@pytest.fixture
def shared_fmnist() -> pathlib.Path:
    """The four official Fashion-MNIST files from ../shared.

    CI always has ../shared beside the clone, so there its absence is a failure; a user's clone
    without it skips only the tests that read the full official files.
    """
    if not (SHARED_FMNIST / "train-images-idx3-ubyte.gz").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED_FMNIST} is missing: CI must run with ../shared beside the clone")
        pytest.skip(f"{SHARED_FMNIST} not present")
    return SHARED_FMNIST


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
