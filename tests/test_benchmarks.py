"""The benchmark scripts keep their output contract (issue 6), checked on their ``--quick`` problems.

Not a timing test: nothing here compares speeds. It checks that each script prints one JSON line per
implementation with the named keys, then the ratio line, and that the implementations it times
compute the same thing (the JAX prototype and fnnet from the same weights and batches).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
TIMING_KEYS = {"impl", "workload", "device", "median_s", "min_s", "first_call_s"}


def _run(script: str, *args: str) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--quick", "--repeats", "1", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_hello_prints_one_line_per_impl_then_the_ratio():
    lines = _run("hello.py", "--impls", "fnnet,torch")
    timings = [r for r in lines if "impl" in r]
    assert [r["impl"] for r in timings] == ["fnnet", "torch"]
    for r in timings:
        assert r.keys() >= TIMING_KEYS
        assert r["workload"] == "hello"
        assert r["min_s"] <= r["median_s"]
    ratio = [r for r in lines if "ratio" in r]
    assert len(ratio) == 1 and set(ratio[0]["ratio"]) == {"torch"}
    fn, tt = timings
    assert ratio[0]["ratio"]["torch"] == pytest.approx(tt["median_s"] / fn["median_s"], rel=1e-2)  # rounded to 3 places


def test_mlp_mini_prototype_computes_what_fnnet_computes(shared_fmnist):
    lines = _run("mlp_mini.py", "--impls", "fnnet,jax-prototype", "--data-dir", str(shared_fmnist))
    by_impl = {r["impl"]: r for r in lines if "impl" in r}
    assert set(by_impl) == {"fnnet", "jax-prototype"}
    # Same weights, same 42 batches, torch's Adam arithmetic in both; float32 over 42 steps: 1e-6 rel
    # (measured 6e-9; the two programs may order a few reductions differently).
    assert by_impl["jax-prototype"]["result"] == pytest.approx(by_impl["fnnet"]["result"], rel=1e-6)
    bar = [r for r in lines if "fnnet_over_prototype" in r]
    assert len(bar) == 1 and bar[0]["target_fnnet_over_prototype"] == 1.2
    assert bar[0]["meets_prototype_bar"] == (bar[0]["fnnet_over_prototype"] <= 1.2)


def test_cnn_mini_contract_and_per_step_plain_ratio(shared_fmnist):
    lines = _run(
        "cnn_mini.py", "--impls", "fnnet,fnnet-step,jax-plain", "--plain-steps", "3", "--data-dir", str(shared_fmnist)
    )
    timings = [r for r in lines if "impl" in r]
    assert [(r["impl"], r.get("variant")) for r in timings] == [
        ("fnnet", "epoch"),
        ("fnnet", "step"),
        ("jax-plain", "epoch"),
    ]
    for r in timings:
        assert r.keys() >= TIMING_KEYS | {"step_flop", "steps", "batch_size"}
        assert r["malloc"] == "default"  # glibc as users get it unless --keep-freed-memory
    epoch, step, plain = timings
    steps = epoch["steps"]
    assert step["steps"] == steps > 3 and plain["steps"] == 3
    # the compiled epoch and the Python loop of jitted steps run the same steps from the same state:
    # the same mean loss (float32; measured equal to 1e-7 relative, XLA may fuse the two differently)
    assert step["result"] == pytest.approx(epoch["result"], rel=1e-5)
    ratios = {r["variant"]: r["jax_plain_over_fnnet"] for r in lines if "jax_plain_over_fnnet" in r}
    for variant, fn in (("epoch", epoch), ("step", step)):
        per_step = (plain["median_s"] / 3) / (fn["median_s"] / steps)
        assert ratios[variant] == pytest.approx(per_step, rel=1e-2)  # rounded to 3 places


def test_cnn_mini_keep_freed_memory_flag_is_recorded(shared_fmnist):
    lines = _run("cnn_mini.py", "--impls", "fnnet-step", "--keep-freed-memory", "--data-dir", str(shared_fmnist))
    timings = [r for r in lines if "impl" in r]
    assert [(r["impl"], r.get("variant"), r["malloc"]) for r in timings] == [("fnnet", "step", "keep_freed_memory")]
