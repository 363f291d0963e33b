"""Fault tolerance of fnnet.fit and the apparel script, each case done for real:
a SIGKILLed process of a real gloo run on loopback, truncated and corrupted checkpoint files,
a diverging learning rate, a real RLIMIT_FSIZE, real SIGINTs. Every subprocess has a time bound,
so a hang fails the test instead of blocking CI."""

from __future__ import annotations

import json
import os
import pathlib
import resource
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import optax
import pytest

import fnnet
import fnnet.nn.functional as F

REPO = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = REPO / "experiments" / "apparel_classifier.py"
BOUND_S = 300  # no single run here may take longer: a hang fails
# On the shipped sample, full batch, ~1 s an epoch: the tutorial's MLP and part II's CNN.
RECIPES = {"mlp": "tutorial-fixed", "cnn": "cnn-tutorial-fixed"}


@pytest.fixture(scope="module", params=sorted(RECIPES))
def ARGS(request):  # noqa: N802 - the arguments every run of a test shares
    return ["--recipe", RECIPES[request.param], "--epochs", "6", "--no-download"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("cache")
    return {**os.environ, "XDG_CACHE_HOME": str(home), "FNNET_DATA_DIR": "", "JAX_PLATFORMS": "cpu"}


def _run(args, env, *, file_limit_kib: int | None = None):
    command = [sys.executable, str(SCRIPT), *args]
    if file_limit_kib is not None:  # a real RLIMIT_FSIZE, set by the shell for the run alone
        command = ["bash", "-c", f'ulimit -f {file_limit_kib} && exec "$@"', "bash", *command]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=BOUND_S)


def _numbers(out: pathlib.Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k != "wall_time_s"}


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env, ARGS):  # noqa: N803
    """An uninterrupted run: what every recovered run must end equal to."""
    out = tmp_path_factory.mktemp("ref") / "run"
    done = _run([*ARGS, "--out", str(out)], env)
    assert done.returncode == 0, done.stderr
    return _numbers(out)


def _start(args, env):
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _wait_for(path: pathlib.Path, proc: subprocess.Popen, bound_s: float = BOUND_S) -> None:
    deadline = time.monotonic() + bound_s
    while not path.exists():
        assert proc.poll() is None, f"the run ended before {path} appeared: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"{path} did not appear within {bound_s}s"
        time.sleep(0.02)


def _no_partial_files(out: pathlib.Path) -> None:
    leftovers = [p.name for p in out.rglob("*") if "tmp" in p.name.lower()]
    assert not leftovers, f"half-written files left in {out}: {leftovers}"


# ----------------------------------------------------------------------------------------- Ctrl-C
def test_sigint_finishes_the_epoch_checkpoint_and_resumes_bitwise(tmp_path, env, reference, ARGS):  # noqa: N803
    out = tmp_path / "run"
    proc = _start([*ARGS, "--out", str(out)], env)
    _wait_for(out / "checkpoints" / "1", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=BOUND_S)
    assert proc.returncode == 130, err
    line = _last_line(err)
    epoch = int(line.split("interrupted at epoch ")[1].split(";")[0])
    assert line == f"interrupted at epoch {epoch}; continue with --resume"
    assert (out / "checkpoints" / str(epoch)).is_dir() and epoch < 6
    assert not (out / "metrics.json").exists()
    _no_partial_files(out)
    resumed = _run([*ARGS, "--out", str(out), "--resume"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert _numbers(out) == reference


def test_second_sigint_exits_at_once_without_damage(tmp_path, env, reference, ARGS):  # noqa: N803
    """The first Ctrl-C asks for the end of the epoch; the second ends the process at once (SIGINT's
    default action). What is on disk stays readable, and --resume still ends equal."""
    out = tmp_path / "run"
    proc = _start([*ARGS, "--epochs", "6", "--out", str(out)], env)
    _wait_for(out / "checkpoints" / "1", proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=BOUND_S)
    assert time.monotonic() - t0 < 5
    assert proc.returncode in (-signal.SIGINT, 130)
    resumed = _run([*ARGS, "--out", str(out), "--resume"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert _numbers(out) == reference


# -------------------------------------------------------------------------------------- divergence
def test_divergence_stops_with_status_3_and_keeps_the_last_finite_checkpoint(tmp_path, env, ARGS):  # noqa: N803
    out = tmp_path / "run"
    done = _run([*ARGS, "--lr", "1e20", "--out", str(out)], env)
    assert done.returncode == 3, done.stderr
    line = _last_line(done.stderr)
    assert "non-finite at epoch 2, step 1 of 1" in line and "Traceback" not in done.stderr
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["1"]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints"]  # no output from the diverged state
    history = fnnet.Checkpointer(out / "checkpoints").read_meta(1)["history"]
    assert np.isfinite(history[0]["train_loss"])
    allowed = _run([*ARGS, "--lr", "1e20", "--epochs", "3", "--allow-nonfinite", "--out", str(tmp_path / "on")], env)
    assert allowed.returncode == 0, allowed.stderr
    assert np.isnan(json.loads((tmp_path / "on" / "metrics.json").read_text())["history"][-1]["train_loss"])


# ---------------------------------------------------------------------------------------- disk full
def test_a_failed_write_names_the_file_and_keeps_earlier_checkpoints(tmp_path, env, reference, ARGS):  # noqa: N803
    out = tmp_path / "run"
    proc = _start([*ARGS, "--out", str(out)], env)
    _wait_for(out / "checkpoints" / "1", proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=BOUND_S)
    kept = sorted(p.name for p in (out / "checkpoints").iterdir())
    # Files of at most 1 MiB: less than a checkpoint of the MLP and its Adam moments (~4.4 MiB); 8 KiB:
    # less than the tutorial CNN's checkpoint metadata (~15 KB; its arrays are ~17 KB).
    limit = 1024 if ARGS[1] == "tutorial-fixed" else 8
    full = _run([*ARGS, "--out", str(out), "--resume"], env, file_limit_kib=limit)
    assert full.returncode != 0
    line = _last_line(full.stderr)
    assert line.startswith("error: could not write checkpoint ") and str(out / "checkpoints") in line, line
    assert "Traceback" not in full.stderr
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == kept  # nothing lost, nothing half-written
    resumed = _run([*ARGS, "--out", str(out), "--resume"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert _numbers(out) == reference


def test_atomic_write_names_the_file_when_the_disk_is_full(tmp_path):
    from fnnet._io import atomic_write_bytes

    target = tmp_path / "metrics.json"
    target.write_text("previous")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
    try:
        with pytest.raises(OSError, match=f"could not write {target}"):
            atomic_write_bytes(target, b"x" * 5000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert target.read_text() == "previous" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


# ------------------------------------------------------------------------------------- checkpoints
def _damage(checkpoint: pathlib.Path, how: str) -> None:
    data = max((p for p in (checkpoint / "state").rglob("*") if p.is_file() and p.parent.name == "d"),
               key=lambda p: p.stat().st_size)  # fmt: skip
    if how == "truncate":
        os.truncate(data, data.stat().st_size // 2)
    else:
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["truncate", "corrupt"])
def test_damaged_newest_checkpoint_resumes_from_the_older_one(how, tmp_path, env, reference, ARGS):  # noqa: N803
    out = tmp_path / "run"
    done = _run([*ARGS, "--out", str(out)], env)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["5", "6"]  # the last two are kept
    _damage(out / "checkpoints" / "6", how)
    (out / "metrics.json").unlink()
    resumed = _run([*ARGS, "--out", str(out), "--resume"], env)
    assert resumed.returncode == 0, resumed.stderr
    warnings = [line for line in resumed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"checkpoint {out / 'checkpoints' / '6'} is damaged" in warnings[0]
    assert "trying checkpoint 5" in warnings[0]
    assert _numbers(out) == reference


def test_checkpoint_without_its_manifest_resumes_and_gets_one(tmp_path, env, reference, ARGS):  # noqa: N803
    """A process killed between orbax's atomic rename and the manifest leaves a complete checkpoint
    without ``fnnet_manifest.json`` (seen in CI): resume uses it, silently, after the array digest."""
    out = tmp_path / "run"
    done = _run([*ARGS, "--out", str(out)], env)
    assert done.returncode == 0, done.stderr
    manifest = out / "checkpoints" / "6" / "fnnet_manifest.json"
    written = manifest.read_text()
    manifest.unlink()
    (out / "metrics.json").unlink()
    resumed = _run([*ARGS, "--out", str(out), "--resume"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert not [line for line in resumed.stderr.splitlines() if line.startswith("warning:")], resumed.stderr
    assert manifest.read_text() == written  # restored, and the same files' hashes
    assert _numbers(out) == reference


def test_checkpoint_without_manifest_and_with_damaged_arrays_falls_back(tmp_path, env, reference, ARGS):  # noqa: N803
    out = tmp_path / "run"
    assert _run([*ARGS, "--out", str(out)], env).returncode == 0
    (out / "checkpoints" / "6" / "fnnet_manifest.json").unlink()
    _damage(out / "checkpoints" / "6", "corrupt")
    (out / "metrics.json").unlink()
    resumed = _run([*ARGS, "--out", str(out), "--resume"], env)
    assert resumed.returncode == 0, resumed.stderr
    warnings = [line for line in resumed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"checkpoint {out / 'checkpoints' / '6'} is damaged" in warnings[0]
    assert "trying checkpoint 5" in warnings[0]
    assert _numbers(out) == reference


def test_no_intact_checkpoint_is_one_line_and_non_zero(tmp_path, env, ARGS):  # noqa: N803
    out = tmp_path / "run"
    assert _run([*ARGS, "--epochs", "2", "--out", str(out)], env).returncode == 0
    _damage(out / "checkpoints" / "2", "truncate")
    _damage(out / "checkpoints" / "1", "corrupt")
    resumed = _run([*ARGS, "--epochs", "2", "--out", str(out), "--resume"], env)
    assert resumed.returncode == 2 and "Traceback" not in resumed.stderr
    assert _last_line(resumed.stderr).startswith(f"error: no intact checkpoint in {out / 'checkpoints'}")


def test_resume_with_other_settings_is_refused_listing_each(tmp_path, env, ARGS):  # noqa: N803
    out = tmp_path / "run"
    assert _run([*ARGS, "--epochs", "2", "--out", str(out)], env).returncode == 0
    written = ARGS[1]  # "tutorial-fixed" or "cnn-tutorial-fixed"; the other recipe is the published one
    other = written.removesuffix("-fixed")
    refused = _run(
        ["--recipe", other, "--epochs", "5", "--seed", "3", "--no-download", "--out", str(out), "--resume"], env
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    line = _last_line(refused.stderr)
    assert line.startswith("error: --resume refused")
    for part in [f"recipe: checkpoint '{written}', this run '{other}'", "epochs: checkpoint 2, this run 5",
                 "seed: checkpoint 0, this run 3"]:  # fmt: skip
        assert part in line
    model = "mlp" if written == "tutorial-fixed" else "cnn-tutorial"
    other_model = _run(["--recipe", "cnn" if model == "mlp" else "strong", "--epochs", "2", "--no-download",
                        "--out", str(out), "--resume"], env)  # fmt: skip
    assert f"model: checkpoint '{model}'" in _last_line(other_model.stderr)
    dtype = _run([*ARGS, "--epochs", "2", "--dtype", "float64", "--out", str(out), "--resume"], env)
    assert "dtype: checkpoint 'float32', this run 'float64'" in _last_line(dtype.stderr)
    batch = _run([*ARGS, "--epochs", "2", "--batch-size", "100", "--out", str(out), "--resume"], env)
    assert "global_batch_size: checkpoint 9000, this run 100" in _last_line(batch.stderr)


# ------------------------------------------------------------------------------ the library directly
def test_fit_raises_on_a_non_finite_loss_before_saving(tmp_path, x64):
    x = np.random.default_rng(0).normal(size=(64, 5))
    y = np.random.default_rng(1).integers(0, 3, 64).astype(np.int32)
    model = fnnet.models.mlp((5, 8, 3), dtype="float64")
    checkpointer = fnnet.Checkpointer(tmp_path / "ckpt")
    with pytest.raises(fnnet.train.NonFiniteLossError) as err:
        fnnet.fit(model, fnnet.optim.sgd(lr=1e30), (x, y), loss_fn=F.cross_entropy, epochs=5, batch_size=16,
                  checkpointer=checkpointer)  # fmt: skip
    assert err.value.epoch >= 1 and 1 <= err.value.step <= 4
    assert checkpointer.epochs() == list(range(1, err.value.epoch))[-2:]


def test_fit_stops_after_the_epoch_on_sigint(tmp_path, x64):
    x = np.random.default_rng(0).normal(size=(64, 5))
    y = np.random.default_rng(1).integers(0, 3, 64).astype(np.int32)
    checkpointer = fnnet.Checkpointer(tmp_path / "ckpt")
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs as a background job

    def interrupt(entry):
        if entry.epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real signal, delivered to the main thread

    with pytest.raises(fnnet.train.Interrupted) as err:
        fnnet.fit(fnnet.models.mlp((5, 8, 3), dtype="float64"), optax.sgd(0.1), (x, y), loss_fn=F.cross_entropy,
                  epochs=5, on_epoch=interrupt, checkpointer=checkpointer)  # fmt: skip
    assert err.value.epoch == 2 and checkpointer.epochs() == [1, 2]
    assert signal.getsignal(signal.SIGINT) is before  # the handler was put back


# ------------------------------------------------------------------------------------- lost process
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MP_ARGS = ["--recipe", "strong", "--epochs", "4", "--batch-size", "200", "--no-download", "--dtype", "float64",
           "--parallel", "sharding", "--num-processes", "2", "--heartbeat-timeout", "20"]  # fmt: skip


def _processes(out: pathlib.Path, env, extra=()):
    port = _free_port()
    mp_env = {k: v for k, v in env.items() if k != "XLA_FLAGS"}
    return [
        _start(
            [*MP_ARGS, *extra, "--coordinator", f"127.0.0.1:{port}", "--process-id", str(i), "--out", str(out)], mp_env
        )
        for i in (0, 1)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("victim", [1, 0])
def test_a_lost_process_ends_the_others_and_resume_finishes_equal(victim, tmp_path, env):
    """SIGKILL one of two real gloo processes mid-epoch: the other exits non-zero within 60 s with one
    line naming the lost process; relaunching both with --resume ends with the metrics.json of an
    uninterrupted run of the same layout, bitwise (float64)."""
    full = tmp_path / "full"
    procs = _processes(full, env)
    for p in procs:
        p.communicate(timeout=BOUND_S)
        assert p.returncode == 0
    out = tmp_path / "killed"
    procs = _processes(out, env)
    _wait_for(out / "checkpoints" / "2", procs[0])
    time.sleep(0.3)  # into epoch 3
    procs[victim].send_signal(signal.SIGKILL)
    t0 = time.monotonic()
    survivor = procs[1 - victim]
    _, err = survivor.communicate(timeout=90)
    ended_s = time.monotonic() - t0
    procs[victim].communicate(timeout=BOUND_S)
    assert survivor.returncode not in (0, None) and ended_s < 60, (survivor.returncode, ended_s)
    lost = [line for line in err.splitlines() if line.startswith("error:")]
    assert lost == [lost[-1]] and f"lost process {victim}" in lost[-1], err[-2000:]
    assert "Traceback" not in err and "F1" not in err
    resumed = _processes(out, env, ["--resume"])
    for p in resumed:
        p.communicate(timeout=BOUND_S)
        assert p.returncode == 0
    assert _numbers(out) == _numbers(full)
