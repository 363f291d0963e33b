"""1 device, 4 pmap devices, 4 sharded devices and 2 processes x 2 devices train the same model.

Each layout runs in its own subprocess (tests/parallel_worker.py) because the number of forced CPU
devices must be set before JAX starts. The recipe has dropout: the training core binds one key per
example to every Dropout, so every layout draws the same masks. float64: the per-step losses of a
whole epoch agree within 1e-13 relative (measured <= 4.3e-16) and the test accuracies are identical.
float32: the first 50 per-step losses agree within 1e-5 relative (partial sums are added in another
order per layout; Adam amplifies it over hundreds of steps) and the accuracies within 0.5 points.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKER = pathlib.Path(__file__).resolve().parent / "parallel_worker.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _one(mode, dtype, devices):
    out = subprocess.run(
        [sys.executable, str(WORKER), mode, dtype, str(devices)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _two_processes(dtype):
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "sharding", dtype, "2", "2", str(pid), str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for pid in (0, 1)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return json.loads(outs[0][0].strip().splitlines()[-1])


@pytest.fixture(scope="module", params=["float64", "float32"])
def layouts(request):
    dtype = request.param
    runs = {
        "1 device": _one("none", dtype, 1),
        "pmap x4": _one("pmap", dtype, 4),
        "sharding x4": _one("sharding", dtype, 4),
        "2 processes x 2": _two_processes(dtype),
    }
    return dtype, runs


def test_layouts_train_the_same_model(layouts):
    dtype, runs = layouts
    ref = runs["1 device"]
    assert runs["pmap x4"]["devices"] == 4 and runs["2 processes x 2"]["processes"] == 2
    for name, run in runs.items():
        assert len(run["losses"]) == len(ref["losses"]) == 62, name
        if dtype == "float64":
            # the same computation up to the order of the per-device partial sums: measured <= 4.3e-16
            np.testing.assert_allclose(run["losses"], ref["losses"], rtol=1e-13, atol=0, err_msg=name)
            assert run["test_accuracy"] == ref["test_accuracy"], name
        else:
            np.testing.assert_allclose(run["losses"][:50], ref["losses"][:50], rtol=1e-5, err_msg=name)
            assert abs(run["test_accuracy"] - ref["test_accuracy"]) <= 0.005, name
