"""fnnet.export: a jax.export artifact + JSON contract that a jax-only process loads and runs.

The reference is the in-process Flax model itself: on the same machine the exported StableHLO
must give bitwise the same logits as the jitted ``model(x)`` in eval mode for any batch size (the batch
dimension is symbolic), including in a fresh process that never imports fnnet or flax.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest
from flax import nnx
from jax import export as jax_export

import fnnet
import fnnet.nn.functional as F
from fnnet import export as fx


def train_tiny_mlp(seed: int = 0, steps: int = 5, dropout: float = 0.0):
    """784-32-10, the apparel tutorial's Linear-ReLU-Linear at a test-sized width, after a few Adam
    steps on random data (so the weights are not just the initialisation); returns (model, state)."""
    model = fnnet.models.mlp((784, 32, 10), dropout=dropout, rngs=nnx.Rngs(seed))
    rng = np.random.default_rng(seed)
    x, y = rng.random((64, 784), dtype=np.float32), rng.integers(0, 10, 64).astype(np.int32)
    result = fnnet.fit(model, optax.adam(1e-2), (x, y), loss_fn=F.cross_entropy, epochs=steps, seed=seed)
    return model, result.state  # fit trained ``model`` in place


def logits(model, x):
    """``model(x)`` in eval mode, jitted as the export is: the weights closed over as constants of the
    program (passed as arguments instead, XLA may order the transposed weight's products otherwise:
    one-ulp differences), so the logits are bitwise the artifact's."""
    graphdef, state = nnx.split(model)

    def forward(x):
        m = nnx.merge(graphdef, state)
        m.eval()
        return m(x)

    return np.asarray(jax.jit(forward)(x))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model, state = train_tiny_mlp()
    out = tmp_path_factory.mktemp("model")
    artifact, contract = fx.export_classifier(model, out)
    return model, state, out, artifact, contract


def _inputs(n: int) -> np.ndarray:
    return np.random.default_rng(1).random((n, 784), dtype=np.float32)


def test_writes_both_files_atomically_and_nothing_else(exported):
    _, _, out, artifact, contract = exported
    assert (artifact, contract) == (out / "model.jaxexport", out / "model.json")
    assert sorted(os.listdir(out)) == ["model.jaxexport", "model.json"]  # no temp files left


def test_contract_describes_the_artifact(exported):
    _, _, out, artifact, contract_path = exported
    contract = json.loads(contract_path.read_text())
    blob = artifact.read_bytes()
    exp = jax_export.deserialize(bytearray(blob))
    import fnnet

    assert contract["input"] == {"shape": ["batch", 784], "dtype": "float32", "layout": "flat"}
    assert contract["normalisation"] == {"divide_by": 255.0, "subtract": 0.0}
    assert contract["output"] == "logits"
    assert contract["class_names"] == [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
    assert contract["jax_version"] == jax.__version__
    assert contract["fnnet_version"] == fnnet.__version__
    assert contract["platforms"] == ["cpu", "cuda"]  # cuda lowering works on a CPU-only machine
    assert contract["calling_convention_version"] == exp.calling_convention_version
    assert contract["artifact_bytes"] == len(blob)
    assert contract["artifact_sha256"] == hashlib.sha256(blob).hexdigest()
    assert jax_export.is_symbolic_dim(exp.in_avals[0].shape[0])
    assert str(exp.out_avals[0].shape[1]) == "10"


# Runs in a fresh interpreter: only json, sys, numpy and jax are imported.
_JAX_ONLY_SCRIPT = """
import json, sys
import numpy as np
import jax
from jax import export

model_dir, x_path, out_path = sys.argv[1:4]
contract = json.load(open(model_dir + "/model.json"))
with open(model_dir + "/model.jaxexport", "rb") as f:
    exp = export.deserialize(bytearray(f.read()))
x = np.load(x_path)
assert contract["input"]["dtype"] == "float32"
logits = {str(n): np.asarray(exp.call(x[:n])) for n in (3, 17)}
np.savez(out_path, **logits)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("fnnet", "flax", "optax", "torch"))
print("imported:", bad)
"""


def test_fresh_jax_only_process_predicts_bitwise_equal(exported, tmp_path):
    model, _, out, _, _ = exported
    x = _inputs(17)
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "load_and_predict.py"
    script.write_text(_JAX_ONLY_SCRIPT)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, str(script), str(out), str(tmp_path / "x.npy"), str(tmp_path / "logits.npz")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "imported: []"
    got = np.load(tmp_path / "logits.npz")
    for n in (3, 17):
        want = logits(model, x[:n])
        assert got[str(n)].shape == (n, 10)
        np.testing.assert_array_equal(got[str(n)], want)  # bitwise, same machine
        np.testing.assert_array_equal(got[str(n)].argmax(1), want.argmax(1))


@pytest.mark.parametrize("n", [1, 3, 17])
def test_load_exported_in_process_matches_model(exported, n):
    model, _, out, _, _ = exported
    logits_fn, contract = fx.load_exported(out)
    x = _inputs(n)
    np.testing.assert_array_equal(np.asarray(logits_fn(x)), logits(model, x))
    assert contract["class_names"][0] == "T-shirt/top"


def test_load_exported_rejects_wrong_input(exported):
    logits_fn, _ = fx.load_exported(exported[2])
    with pytest.raises(ValueError, match=r"x must have shape \(n, 784\)"):
        logits_fn(np.zeros((2, 783), np.float32))
    with pytest.raises(ValueError, match="x must have dtype float32"):
        logits_fn(np.zeros((2, 784), np.int32))


def _edit_json(path: pathlib.Path, **changes) -> None:
    contract = json.loads(path.read_text())
    contract.update(changes)
    path.write_text(json.dumps(contract))


def _future_artifact(model_dir: pathlib.Path, *, update_contract: bool) -> None:
    """Rewrite the artifact as a jax from the future would: calling convention 99."""
    exp = jax_export.deserialize(bytearray((model_dir / "model.jaxexport").read_bytes()))
    blob = bytes(dataclasses.replace(exp, calling_convention_version=99).serialize())
    (model_dir / "model.jaxexport").write_bytes(blob)
    changes = {"artifact_bytes": len(blob), "artifact_sha256": hashlib.sha256(blob).hexdigest()}
    if update_contract:
        changes |= {"calling_convention_version": 99, "jax_version": "9.9.9"}
    _edit_json(model_dir / "model.json", **changes)


def _truncate(d: pathlib.Path, keep: float) -> None:
    blob = (d / "model.jaxexport").read_bytes()
    (d / "model.jaxexport").write_bytes(blob[: int(len(blob) * keep)] if keep < 1 else blob[:-1])


def _flip_byte(d: pathlib.Path) -> None:
    blob = bytearray((d / "model.jaxexport").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (d / "model.jaxexport").write_bytes(bytes(blob))


@pytest.mark.parametrize(
    "damage, file, message",
    [
        (lambda d: (d / "model.json").unlink(), "model.json", "contract file not found"),
        (lambda d: (d / "model.jaxexport").unlink(), "model.jaxexport", "artifact file not found"),
        (lambda d: (d / "model.json").write_text("{not json"), "model.json", "not valid JSON"),
        (lambda d: _edit_json(d / "model.json", format="other"), "model.json", "not an fnnet export"),
        (lambda d: _truncate(d, 1.0), "model.jaxexport", "truncated or corrupt"),
        (lambda d: _truncate(d, 0.5), "model.jaxexport", "truncated or corrupt"),
        (lambda d: _truncate(d, 0.0), "model.jaxexport", "truncated or corrupt"),
        (_flip_byte, "model.jaxexport", "corrupt artifact: SHA-256 differs"),
        (
            lambda d: _edit_json(d / "model.json", input={"shape": ["batch", 100], "dtype": "float32"}),
            "model.json",
            "does not match model.jaxexport",
        ),
        (
            lambda d: _edit_json(d / "model.json", class_names=list("abcdefghi")),
            "model.json",
            "9 classes.*does not match",
        ),
        (
            lambda d: _edit_json(d / "model.json", normalisation={"scale": 2.0}),
            "model.json",
            "unknown normalisation keys",
        ),
        (
            lambda d: _future_artifact(d, update_contract=True),
            "model.jaxexport",
            r"calling convention 99 \(written by jax 9\.9\.9\); this jax .* reads only",
        ),
        (
            lambda d: _future_artifact(d, update_contract=False),
            "model.jaxexport",
            r"calling convention 99 .* reads only",
        ),
    ],
    ids=[
        "no-contract",
        "no-artifact",
        "bad-json",
        "wrong-format",
        "truncated-1-byte",
        "truncated-half",
        "empty",
        "flipped-byte",
        "shape-mismatch",
        "classes-mismatch",
        "bad-normalisation",
        "future-jax",
        "future-artifact-old-contract",
    ],
)
def test_load_exported_clear_errors(exported, tmp_path, damage, file, message):
    d = tmp_path / "model"
    shutil.copytree(exported[2], d)
    damage(d)
    with pytest.raises(ValueError, match=message) as info:
        fx.load_exported(d)
    assert str(d / file) in str(info.value)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"class_names": list("abc")}, ValueError, r"shape \(batch, 3\) to match class_names"),
        ({"class_names": ["a"] * 10}, ValueError, "class_names must be distinct"),
        ({"class_names": "abcdefghij"}, ValueError, "class_names must be a non-empty list"),
        ({"dtype": "int32"}, ValueError, "floating dtype"),
        ({"dtype": "nope"}, ValueError, "floating dtype"),
        ({"input_shape": (0,)}, ValueError, "input_shape must be"),
        ({"input_shape": ()}, ValueError, "input_shape must be"),
        ({"normalisation": {"divide_by": 0.0}}, ValueError, "must be non-zero"),
        ({"normalisation": {"divide_by": float("nan")}}, ValueError, "finite number"),
        ({"normalisation": {"mean": 0.5}}, ValueError, "unknown normalisation keys"),
        ({"platforms": ("cpu", "metal")}, ValueError, "platforms must be"),
        ({"platforms": ()}, ValueError, "platforms must be"),
    ],
    ids=lambda v: str(v) if isinstance(v, dict) else None,
)
def test_export_validates_arguments(exported, tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        fx.export_classifier(exported[0], tmp_path / "m", **kwargs)
    assert not (tmp_path / "m" / "model.json").exists()


def test_export_rejects_what_is_not_a_model(tmp_path):
    with pytest.raises(TypeError, match="model must be an nnx.Module, a TrainState or a function x -> logits"):
        fx.export_classifier("apply", tmp_path)


def test_a_module_its_train_state_and_a_function_export_the_same_model(exported, tmp_path):
    model, state, out, _, _ = exported
    x = _inputs(5)
    want = np.asarray(fx.load_exported(out)[0](x))
    fx.export_classifier(state, tmp_path / "state")  # fit's TrainState: what the apparel script exports
    fx.export_classifier(lambda v: model(v), tmp_path / "fn", platforms=("cpu",))
    for name in ("state", "fn"):
        np.testing.assert_array_equal(np.asarray(fx.load_exported(tmp_path / name)[0](x)), want, err_msg=name)


def test_export_runs_the_model_in_eval_mode_and_leaves_it_as_it_was(tmp_path):
    """A model with dropout exports its eval-mode forward (torch's ``model.eval()`` before export);
    the caller's model stays in training mode."""
    model, _ = train_tiny_mlp(steps=2, dropout=0.5)
    assert model.training
    fx.export_classifier(model, tmp_path, platforms=("cpu",))
    assert model.training and model[2].training
    x = _inputs(6)
    got = np.asarray(fx.load_exported(tmp_path)[0](x))
    np.testing.assert_array_equal(got, logits(model, x))
    assert not np.allclose(got, np.asarray(model(x)))  # training mode would drop units


def test_export_cpu_only_and_other_input_shape(tmp_path):
    """A (28, 28) input (``Flatten`` in front of the MLP, as a torch user writes it) exported for cpu alone."""
    model, _ = train_tiny_mlp(steps=1)
    fx.export_classifier(
        fnnet.nn.Sequential(fnnet.nn.Flatten(), model),
        tmp_path,
        input_shape=(28, 28),
        platforms=("cpu",),
        normalisation={"divide_by": 0.3530, "subtract": 0.2860},
    )
    logits_fn, contract = fx.load_exported(tmp_path)
    assert contract["input"] == {"shape": ["batch", 28, 28], "dtype": "float32", "layout": "(d0, d1)"}
    assert contract["platforms"] == ["cpu"]
    assert contract["normalisation"] == {"divide_by": 0.3530, "subtract": 0.2860}
    x = _inputs(4)
    np.testing.assert_array_equal(np.asarray(logits_fn(x.reshape(4, 28, 28))), logits(model, x))
