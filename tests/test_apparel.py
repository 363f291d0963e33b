"""The apparel classifier: torch fidelity of the tutorial recipes, the script's outputs, kill-and-resume."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import fnnet

REPO = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = REPO / "experiments" / "apparel_classifier.py"


@pytest.fixture(scope="module")
def sample():
    return fnnet.load_fashion_mnist(fnnet.data.sample_dir(), verbose=False)


@pytest.mark.parametrize("recipe_name", ["tutorial", "tutorial-fixed"])
def test_tutorial_recipes_match_torch(recipe_name, sample, torch):
    """Same initial weights, same data: fnnet's per-epoch losses equal torch's (float32, 1e-4 rel).

    The torch side is the tutorial's loop: a full-batch forward on the training subset, backward,
    ``Adam(lr=0.0005).step()``, with ``zero_grad()`` only in the fixed recipe; the validation loss
    is computed after each step (fnnet's history convention). 1e-4: float32 sums over 2,000 images
    in other orders drift by ~1e-6 per epoch, and Adam's early steps (v ~ 0) amplify that.
    """
    recipe = fnnet.RECIPES[recipe_name].with_overrides(epochs=6)
    splits = fnnet.prepare_splits(sample, seed=0)
    splits = splits._replace(
        train_x=splits.train_x[:2000], train_y=splits.train_y[:2000], val_x=splits.val_x[:500], val_y=splits.val_y[:500]
    )
    state = fnnet.build_state(recipe, seed=1, n_train=2000)
    sd = fnnet.flax_to_torch(state.params, prefixes=["0", "2"])
    _, history = fnnet.fit(state, splits, recipe, seed=1)

    net = torch.nn.Sequential(torch.nn.Linear(784, 500), torch.nn.ReLU(), torch.nn.Linear(500, 10))
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sd.items()})
    opt = torch.optim.Adam(net.parameters(), lr=0.0005)
    criterion = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(splits.train_x), torch.from_numpy(splits.train_y.astype(np.int64))
    vx, vy = torch.from_numpy(splits.val_x), torch.from_numpy(splits.val_y.astype(np.int64))
    train_losses, val_losses = [], []
    for _ in range(recipe.epochs):
        if recipe_name == "tutorial-fixed":
            opt.zero_grad()
        loss = criterion(net(tx), ty)
        loss.backward()
        opt.step()
        train_losses.append(loss.item())
        with torch.no_grad():
            val_losses.append(criterion(net(vx), vy).item())
    np.testing.assert_allclose([r["train_loss"] for r in history], train_losses, rtol=1e-4)
    np.testing.assert_allclose([r["val_loss"] for r in history], val_losses, rtol=1e-4)
    # The two recipes really differ: accumulated gradients move the weights further each step.
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def _run(args, env=None, **kw):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
        **kw,
    )


def _numbers(metrics: dict) -> dict:
    """metrics.json without the timings."""
    return {k: v for k, v in metrics.items() if k != "wall_time_s"}


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory):
    """A private compilation cache and user cache, so runs share compiled programs but not ~/.cache."""
    home = tmp_path_factory.mktemp("cache")
    return {"XDG_CACHE_HOME": str(home), "FNNET_DATA_DIR": ""}


# --no-download with an empty user cache: the shipped sample, as on a machine with no network.
FAST = ["--recipe", "strong", "--epochs", "4", "--batch-size", "500", "--seed", "3", "--no-download"]


def test_script_writes_every_output_and_is_deterministic(tmp_path, cache_env):
    first = _run([*FAST, "--out", str(tmp_path / "a")], env=cache_env)
    assert first.returncode == 0, first.stderr
    out = tmp_path / "a"
    for name in [
        "metrics.json",
        "loss.png",
        "sample.png",
        "confusion.png",
        "predictions.png",
        "submission.csv",
        "model.jaxexport",
        "model.json",
    ]:
        assert (out / name).stat().st_size > 0, name
    lines = [l for l in first.stdout.splitlines() if l.startswith("epoch")]
    assert len(lines) == 4 and lines[-1].startswith("epoch   4/4")
    metrics = json.loads((out / "metrics.json").read_text())
    for key in [
        "train_accuracy",
        "val_accuracy",
        "test_accuracy",
        "per_class_accuracy",
        "history",
        "recipe",
        "seed",
        "data",
        "wall_time_s",
    ]:
        assert key in metrics, key
    assert metrics["data"] == {
        "source": metrics["data"]["source"],
        "is_sample": True,
        "train": 9000,
        "val": 1000,
        "test": 2000,
    }
    assert len(metrics["history"]) == 4 and set(metrics["per_class_accuracy"]) == set(fnnet.CLASS_NAMES)
    sub = (out / "submission.csv").read_text().splitlines()
    assert sub[0] == "id,label" and len(sub) == 2001 and sub[1].startswith("60000,")
    # The submission is the model's argmax on the test images: its accuracy is metrics' test accuracy.
    labels = np.array([int(l.split(",")[1]) for l in sub[1:]])
    test_labels = fnnet.load_fashion_mnist(fnnet.data.sample_dir(), verbose=False).test_labels
    assert np.mean(labels == test_labels) == pytest.approx(metrics["test_accuracy"], abs=1e-12)

    second = _run([*FAST, "--out", str(tmp_path / "b")], env=cache_env)
    assert second.returncode == 0, second.stderr
    again = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert _numbers(again) == _numbers(metrics)  # same seed: bitwise the same numbers


def test_sigkill_and_resume_is_bitwise_identical(tmp_path, cache_env):
    """A real run killed with SIGKILL after its first checkpoint, resumed, equals an uninterrupted run."""
    full = _run([*FAST, "--out", str(tmp_path / "full")], env=cache_env)
    assert full.returncode == 0, full.stderr

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *FAST, "--out", str(out)],
        env={**os.environ, **cache_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 300
    while not (out / "checkpoints" / "2").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "metrics.json").exists()

    refused = _run([*FAST, "--out", str(out)], env=cache_env)
    assert refused.returncode == 2 and "--resume" in refused.stderr and "Traceback" not in refused.stderr

    resumed = _run([*FAST, "--out", str(out), "--resume"], env=cache_env)
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert _numbers(a) == _numbers(b)
    assert (tmp_path / "full" / "submission.csv").read_bytes() == (out / "submission.csv").read_bytes()

    # The final checkpoints hold bitwise-equal parameters and optimizer state.
    recipe = fnnet.RECIPES["strong"].with_overrides(epochs=4, batch_size=500)
    template = fnnet.build_state(recipe, 3, 9000)
    _, sa, _ = fnnet.Checkpointer(tmp_path / "full" / "checkpoints").restore_latest(template)
    _, sb, _ = fnnet.Checkpointer(out / "checkpoints").restore_latest(template)
    for x, y in zip(jax.tree.leaves(fnnet.checkpoint.state_tree(sa)), jax.tree.leaves(fnnet.checkpoint.state_tree(sb))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


@pytest.mark.parametrize(
    "args, env, culprit",
    [
        (["--data-dir", "/nonexistent/fmnist"], {}, "/nonexistent/fmnist"),
        (["--epochs", "0"], {}, "--epochs"),
        (["--recipe", "bogus"], {}, "--recipe"),
        (["--parallel", "pmap", "--devices", "64"], {}, "--devices 64"),
        (["--parallel", "sharding", "--batch-size", "501", "--no-download"], TWO_DEVICES, "divisible"),
        (
            [
                "--parallel",
                "sharding",
                "--num-processes",
                "2",
                "--process-id",
                "1",
                "--coordinator",
                "127.0.0.1:9",
                "--coordinator-timeout",
                "2",
            ],
            {},
            "127.0.0.1:9",
        ),
    ],
)
def test_script_errors_are_one_line(args, env, culprit, tmp_path, cache_env):
    result = _run([*args, "--out", str(tmp_path)], env={**cache_env, **env})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert culprit in result.stderr.strip().splitlines()[-1]
