"""The series' part II CNN: the as-published recipe against torch from the same initial weights, and
the CNN recipes' script paths (export, parallel layouts)."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO

import fnnet

sys.path.insert(0, str(REPO / "experiments"))
import apparel_recipes as recipes  # noqa: E402

N_TRAIN, N_VAL = 2000, 500
BIASES = ("cnn_layers.0.bias", "cnn_layers.4.bias")  # the conv biases right before each BatchNorm
BNS = ("cnn_layers.1", "cnn_layers.5")


@pytest.fixture(scope="module")
def sample():
    return fnnet.load_fashion_mnist(fnnet.data.sample_dir(), verbose=False)


def _torch_net(torch):
    """Part II's ``Net`` as the article's code writes it."""
    tnn = torch.nn

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.cnn_layers = tnn.Sequential(
                tnn.Conv2d(1, 4, kernel_size=3, stride=1, padding=1),
                tnn.BatchNorm2d(4),
                tnn.ReLU(inplace=True),
                tnn.MaxPool2d(kernel_size=2, stride=2),
                tnn.Conv2d(4, 4, kernel_size=3, stride=1, padding=1),
                tnn.BatchNorm2d(4),
                tnn.ReLU(inplace=True),
                tnn.MaxPool2d(kernel_size=2, stride=2),
            )
            self.linear_layers = tnn.Sequential(tnn.Linear(4 * 7 * 7, 10))

        def forward(self, x):
            x = self.cnn_layers(x)
            x = x.view(x.size(0), -1)
            return self.linear_layers(x)

    return Net()


def _torch_run(torch, net, splits, epochs, *, published: bool):
    """The article's loop: zero_grad, train forward, val forward (inside model.train() when published),
    both losses recorded, backward of the training loss, Adam step. Also each epoch's conv biases
    before the step (for the running_mean bookkeeping)."""
    opt = torch.optim.Adam(net.parameters(), lr=0.07)
    criterion = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(splits.train_x), torch.from_numpy(splits.train_y.astype(np.int64))
    vx, vy = torch.from_numpy(splits.val_x), torch.from_numpy(splits.val_y.astype(np.int64))
    train, val, biases = [], [], []
    for _ in range(epochs):
        net.train()
        biases.append({k: v.detach().numpy().copy() for k, v in net.state_dict().items() if k in BIASES})
        opt.zero_grad()
        out = net(tx)
        if published:
            out_val = net(vx)
            val.append(criterion(out_val, vy).item())
        loss = criterion(out, ty)
        train.append(loss.item())
        loss.backward()
        opt.step()
        if not published:
            net.eval()
            with torch.no_grad():
                val.append(criterion(net(vx), vy).item())
    return train, val, biases


def _bias_contribution(biases: list[dict], updates_per_epoch: int, momentum: float = 0.1) -> dict:
    """What the conv biases add to each BatchNorm's running_mean: every update adds m * (batch mean),
    and the batch mean of a conv output includes its bias b_t; the rest decays by (1 - m) per update."""
    out = {}
    for bias_key, bn in zip(BIASES, BNS):
        total = np.zeros_like(biases[0][bias_key])
        for row in biases:
            for _ in range(updates_per_epoch):
                total = (1 - momentum) * total + momentum * row[bias_key]
        out[f"{bn}.running_mean"] = total
    return out


# Bounds (fnnet vs torch 2.13 on this test's data and seeded torch init, measured): float64 losses
# 5.4e-12, running statistics 5.6e-11 -> 1e-10. float32: one ulp of a full-batch sum moves an early
# Adam step (v ~ 0) and lr 0.07 carries it on: losses 3.3e-5 apart after 25 steps -> 1e-4; running
# statistics 8.9e-4 -> 2.5e-3.
TOL = {"float64": {"loss": 1e-10, "stats": 1e-10}, "float32": {"loss": 1e-4, "stats": 2.5e-3}}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("recipe_name", ["cnn-tutorial", "cnn-tutorial-fixed"])
def test_part_two_cnn_matches_torch(recipe_name, dtype, sample, torch, x64):
    """From the same initial weights: per-epoch train and validation losses, final running_var and
    num_batches_tracked equal torch's. running_mean is compared after removing each run's own conv-bias
    contribution: a conv bias right before a BatchNorm gets only rounding-noise gradients (BatchNorm
    cancels it) and Adam turns that noise into real steps, so the biases themselves (and the
    running_mean they feed) differ between any two implementations, even torch against itself with
    the rows reordered (2.3e-3 apart).

    The same random walk makes an EVAL-mode forward irreproducible (it subtracts running_mean, which
    lags the walking bias): the fixed recipe's validation losses are therefore compared in float64 at
    1.5e-3 (measured 5.6e-4) and not in float32 (measured 23% apart). The published
    recipe validates in training mode, where BatchNorm cancels the bias, and matches at 1e-10.
    """
    tol = TOL[dtype]
    recipe = recipes.RECIPES[recipe_name].with_overrides(epochs=25)
    np_dtype, jnp_dtype = {"float64": (np.float64, jnp.float64), "float32": (np.float32, jnp.float32)}[dtype]
    splits = recipes.prepare_splits(sample, seed=0, dtype=np_dtype, shape=(1, 28, 28))
    splits = splits._replace(
        train_x=splits.train_x[:N_TRAIN], train_y=splits.train_y[:N_TRAIN], val_x=splits.val_x[:N_VAL],
        val_y=splits.val_y[:N_VAL],
    )  # fmt: skip
    torch.manual_seed(0)  # fixed initial weights: float32's drift depends on the trajectory
    net = _torch_net(torch).to(getattr(torch, dtype))
    model = recipes.build_model(recipe, 0, dtype=jnp_dtype)
    fnnet.nn.load_state_dict(model, net.state_dict())
    assert list(fnnet.nn.state_dict(model)) == list(net.state_dict())

    published = recipe.validate_in_train_mode
    state = fnnet.TrainState.create(model, recipes.make_optimizer(recipe, N_TRAIN), 0)
    step = jax.jit(recipes.make_step(recipe, val=(splits.val_x, splits.val_y))(None))
    evaluator = fnnet.train.make_evaluator(recipes.make_loss(recipe))
    batch = fnnet.train.Batch(jnp.asarray(splits.train_x), jnp.asarray(splits.train_y), jnp.arange(N_TRAIN))
    ours_train, ours_val, ours_biases = [], [], []
    for _ in range(recipe.epochs):
        ours_biases.append({k: v for k, v in fnnet.nn.state_dict(state.model()).items() if k in BIASES})
        state, metrics = step(state, batch)
        ours_train.append(float(metrics["loss"]))
        ours_val.append(
            float(metrics["val_loss"]) if published else evaluator(state, splits.val_x, splits.val_y)["loss"]
        )
    theirs_train, theirs_val, theirs_biases = _torch_run(torch, net, splits, recipe.epochs, published=published)

    np.testing.assert_allclose(ours_train, theirs_train, rtol=tol["loss"])
    if published:
        np.testing.assert_allclose(ours_val, theirs_val, rtol=tol["loss"])
    elif dtype == "float64":
        np.testing.assert_allclose(ours_val, theirs_val, rtol=1.5e-3)
    ours, theirs = fnnet.nn.state_dict(state.model()), {k: v.numpy() for k, v in net.state_dict().items()}
    updates = 2 if published else 1  # the published loop updates the statistics from both batches
    for bn in BNS:
        assert int(ours[f"{bn}.num_batches_tracked"]) == int(theirs[f"{bn}.num_batches_tracked"]) == updates * 25
        np.testing.assert_allclose(ours[f"{bn}.running_var"], theirs[f"{bn}.running_var"], rtol=tol["stats"])
    ours_bias = _bias_contribution(ours_biases, updates)
    theirs_bias = _bias_contribution(theirs_biases, updates)
    for key in ours_bias:
        # The subtraction cancels values of size ~|running_mean|: the bound is relative to that size.
        scale = float(np.abs(theirs[key]).max())
        np.testing.assert_allclose(
            ours[key] - ours_bias[key], theirs[key] - theirs_bias[key], rtol=0, atol=tol["stats"] * scale
        )


# ------------------------------------------------------------------------------ data parallelism
def _worker(mode, devices, *, processes=1, pid=0, port=0):
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", FNNET_TEST_RECIPE="cnn")
    args = [sys.executable, str(REPO / "tests" / "parallel_worker.py"), mode, "float64", str(devices)]
    if processes > 1:
        args += [str(processes), str(pid), str(port)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _result(proc):
    import json

    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    rows = [line for line in out.splitlines() if line.startswith("{")]  # process > 0 prints none
    return json.loads(rows[-1]) if rows else None


@pytest.mark.slow
def test_cnn_layouts_train_the_same_model_with_global_batchnorm():
    """BatchNorm statistics over the global batch (torch's SyncBatchNorm): 1 device, pmap x4,
    sharding x4 and 2 processes x 2 devices train the same CNN (float64: every step's loss and the
    final running statistics within 1e-13, identical test predictions' accuracy)."""
    import socket

    runs = {"1 device": _result(_worker("none", 1)), "pmap x4": _result(_worker("pmap", 4)),
            "sharding x4": _result(_worker("sharding", 4))}  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [_worker("sharding", 2, processes=2, pid=pid, port=port) for pid in (0, 1)]
    results = [_result(p) for p in procs]
    runs["2 processes x 2"] = results[0]
    ref = runs["1 device"]
    assert len(ref["losses"]) == 16 and ref["buffers"]
    for name, run in runs.items():
        np.testing.assert_allclose(run["losses"], ref["losses"], rtol=1e-13, err_msg=name)
        for key, values in ref["buffers"].items():
            # statistics of order 1 summed per device in another order: 1e-13 absolute (measured 8.1e-14)
            np.testing.assert_allclose(run["buffers"][key], values, rtol=1e-13, atol=1e-13, err_msg=f"{name} {key}")
        assert run["test_accuracy"] == ref["test_accuracy"], name


# ------------------------------------------------------------------------------ the script, end to end
def test_cnn_script_outputs_export_and_resume(tmp_path):
    """The strong CNN recipe through experiments/apparel_classifier.py on the shipped sample: every
    output file; the NCHW export classifies the test images without fnnet exactly as submission.csv
    says; a run SIGKILLed after its first checkpoint, resumed, ends bitwise equal to an uninterrupted one."""
    import json
    import os
    import signal
    import subprocess
    import time

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "FNNET_DATA_DIR": ""}
    args = [sys.executable, str(REPO / "experiments" / "apparel_classifier.py"), "--recipe", "cnn", "--epochs", "3",
            "--batch-size", "500", "--no-download", "--seed", "2"]  # fmt: skip
    full = subprocess.run(
        [*args, "--out", str(tmp_path / "full")], capture_output=True, text=True, env=env, timeout=900
    )
    assert full.returncode == 0, full.stderr[-2000:]
    out = tmp_path / "full"
    for name in ["metrics.json", "loss.png", "sample.png", "confusion.png", "predictions.png", "submission.csv",
                 "model.jaxexport", "model.json"]:  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    assert len([line for line in full.stdout.splitlines() if line.startswith("epoch")]) == 3
    contract = json.loads((out / "model.json").read_text())
    assert contract["input"] == {"shape": ["batch", 1, 28, 28], "dtype": "float32", "layout": "NCHW"}
    predicted = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "predict.py"), "--model", str(out), "--images",
         str(REPO / "fnnet" / "_sample" / "t10k-images-idx3-ubyte.gz"), "--out", str(tmp_path / "pred.csv")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    ours = [line.split(",")[1] for line in (tmp_path / "pred.csv").read_text().splitlines()[1:]]
    theirs = [line.split(",")[1] for line in (out / "submission.csv").read_text().splitlines()[1:]]
    assert ours == theirs and len(ours) == 2000

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*args, "--out", str(killed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 600
    while not (killed / "checkpoints" / "1").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    resumed = subprocess.run(
        [*args, "--out", str(killed), "--resume"], capture_output=True, text=True, env=env, timeout=900
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (out, killed))
    assert {k: v for k, v in a.items() if k != "wall_time_s"} == {k: v for k, v in b.items() if k != "wall_time_s"}
    assert (out / "submission.csv").read_bytes() == (killed / "submission.csv").read_bytes()
