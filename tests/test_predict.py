"""experiments/predict.py: id,label rows from an exported model, for each input layout.

Expected labels come from the in-process ``fnnet.nn`` model (argmax of ``model(x)`` on the pixels
divided by 255); predict.py must reproduce them exactly from the artifact alone.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import importlib.util
import io
import json
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from flax import nnx
from PIL import Image

import fnnet
from fnnet.export import export_classifier

REPO = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = REPO / "experiments" / "predict.py"
_spec = importlib.util.spec_from_file_location("predict", SCRIPT)
predict = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(predict)

IDS = ["10", "3", "7", "100", "0"]  # numeric stems: a PNG folder must sort them 0, 3, 7, 10, 100


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """An exported random-init 784-32-10 MLP, five random 28x28 images and their true labels."""
    model = fnnet.models.mlp((784, 32, 10), rngs=nnx.Rngs(3))
    model_dir = tmp_path_factory.mktemp("model")
    export_classifier(model, model_dir)
    pixels = np.random.default_rng(0).integers(0, 256, (len(IDS), 28, 28), dtype=np.uint8)
    logits = model(pixels.reshape(len(IDS), 784).astype(np.float32) / 255.0)
    labels = {i: int(k) for i, k in zip(IDS, np.asarray(logits).argmax(1))}
    assert len(set(labels.values())) > 1, "pick a seed whose images get different labels"
    return model_dir, pixels, labels


def _png_folder(root: pathlib.Path, pixels: np.ndarray) -> pathlib.Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, im in zip(IDS, pixels):
        Image.fromarray(im, mode="L").save(root / f"{i}.png")
    return root


def _csv_layout(root: pathlib.Path, pixels: np.ndarray, split: str = "test") -> pathlib.Path:
    _png_folder(root / split, pixels)
    with open(root / f"{split}.csv", "w", newline="") as f:
        csv.writer(f).writerows([["id"], *([i] for i in IDS)])
    return root


def _idx(path: pathlib.Path, pixels: np.ndarray, gz: bool) -> pathlib.Path:
    raw = struct.pack(">4B3I", 0, 0, 8, 3, *pixels.shape) + pixels.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize(
    "layout, order, batch_size",
    [
        ("png-folder", ["0", "3", "7", "10", "100"], 1024),
        ("csv-test", IDS, 1024),
        ("csv-test", IDS, 2),  # batches of 2, 2 and 1
        ("csv-train", IDS, 1024),
        ("idx-raw", ["0", "1", "2", "3", "4"], 1024),
        ("idx-gz", ["0", "1", "2", "3", "4"], 3),
    ],
)
def test_predicts_each_layout(setup, tmp_path, capsys, layout, order, batch_size):
    model_dir, pixels, labels = setup
    images = {
        "png-folder": lambda: _png_folder(tmp_path / "png", pixels),
        "csv-test": lambda: _csv_layout(tmp_path / "data", pixels),
        "csv-train": lambda: _csv_layout(tmp_path / "data", pixels, split="train"),
        "idx-raw": lambda: _idx(tmp_path / "t10k-images-idx3-ubyte", pixels, gz=False),
        "idx-gz": lambda: _idx(tmp_path / "t10k-images-idx3-ubyte.gz", pixels, gz=True),
    }[layout]()
    rc = predict.main(["--model", str(model_dir), "--images", str(images), "--batch-size", str(batch_size)])
    out, err = capsys.readouterr()
    assert (rc, err) == (0, "")
    rows = _rows(out)
    assert rows[0] == ["id", "label"]
    assert [r[0] for r in rows[1:]] == order
    by_row = [labels[i] for i in IDS]  # IDX ids are row numbers in file order
    want = [str(by_row[int(i)]) if layout.startswith("idx") else str(labels[i]) for i in order]
    assert [r[1] for r in rows[1:]] == want


def test_out_file_written_atomically(setup, tmp_path, capsys):
    model_dir, pixels, labels = setup
    images = _csv_layout(tmp_path / "data", pixels)
    out = tmp_path / "sub" / "submission.csv"
    assert predict.main(["--model", str(model_dir), "--images", str(images), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote 5 predictions to {out}\n"
    assert _rows(out.read_text()) == [["id", "label"], *([i, str(labels[i])] for i in IDS)]
    assert os.listdir(out.parent) == ["submission.csv"]


def _env() -> dict[str, str]:
    return {**os.environ, "JAX_PLATFORMS": "cpu"}


def test_runs_without_importing_fnnet_or_flax(setup, tmp_path):
    model_dir, pixels, labels = setup
    images = _png_folder(tmp_path / "png", pixels)
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['predict.py', '--model', {str(model_dir)!r}, '--images', {str(images)!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fnnet', 'flax', 'optax'))\n"
        "print('imported:', bad)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "imported: []"
    assert lines[0] == "id,label" and len(lines) == 1 + len(IDS) + 1


def test_truncated_artifact_one_error_line(setup, tmp_path):
    model_dir, pixels, _ = setup
    bad = tmp_path / "model"
    shutil.copytree(model_dir, bad)
    blob = (bad / "model.jaxexport").read_bytes()
    (bad / "model.jaxexport").write_bytes(blob[: len(blob) // 2])
    images = _idx(tmp_path / "images-idx3-ubyte", pixels, gz=False)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", str(bad), "--images", str(images)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {bad / 'model.jaxexport'}: truncated or corrupt artifact")


def _write(path: pathlib.Path, data: bytes) -> pathlib.Path:
    path.write_bytes(data)
    return path


def _bad_png_size(root: pathlib.Path, pixels: np.ndarray) -> pathlib.Path:
    _png_folder(root, pixels)
    Image.fromarray(pixels[0, :20, :20], mode="L").save(root / "3.png")
    return root


def _bad_csv(root: pathlib.Path, pixels: np.ndarray) -> pathlib.Path:
    _csv_layout(root, pixels)
    (root / "test.csv").write_text("ident\n10\n")
    return root


def _missing_png(root: pathlib.Path, pixels: np.ndarray) -> pathlib.Path:
    _csv_layout(root, pixels)
    (root / "test" / "7.png").unlink()
    return root


@pytest.mark.parametrize(
    "make_images, extra, message",
    [
        (lambda d, p: d / "nowhere", [], "no such file or folder"),
        (lambda d, p: d, [], "no \\*.png files"),
        (_bad_png_size, [], "3.png: image is 20x20, 0.png is 28x28"),
        (_bad_csv, [], "test.csv: needs an 'id' column"),
        (_missing_png, [], "7.png: image file not found"),
        (
            lambda d, p: _idx(d / "x-idx3-ubyte", p[:, :20, :20], gz=False),
            [],
            "images are 20x20 \\(400 pixels\\), the model takes 784",
        ),
        (lambda d, p: _write(d / "x.gz", gzip.compress(p.tobytes())[:100]), [], "corrupt gzip"),
        (
            lambda d, p: _write(d / "x-idx1-ubyte", struct.pack(">4BI", 0, 0, 8, 1, 2) + b"\1\2"),
            [],
            "expected an IDX images file",
        ),
        (lambda d, p: _write(d / "x.txt", b"hello"), [], "not an IDX uint8 file"),
        (lambda d, p: _idx(d / "x-idx3-ubyte", p, gz=False), ["--batch-size", "0"], "--batch-size must be"),
    ],
    ids=[
        "missing-path",
        "empty-folder",
        "mixed-sizes",
        "csv-without-id",
        "missing-png",
        "wrong-size",
        "corrupt-gzip",
        "idx1-labels",
        "not-idx",
        "batch-size-0",
    ],
)
def test_user_errors_one_line(setup, tmp_path, capsys, make_images, extra, message):
    model_dir, pixels, _ = setup
    images = make_images(tmp_path, pixels)
    rc = predict.main(["--model", str(model_dir), "--images", str(images), *extra])
    out, err = capsys.readouterr()
    assert (rc, out) == (2, "")
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert re.search(message, err), err


def test_missing_model_dir(tmp_path, capsys):
    assert predict.main(["--model", str(tmp_path / "none"), "--images", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'none' / 'model.json'}: contract file not found\n"


def _future_jax(d: pathlib.Path) -> None:
    """The artifact and contract a jax with calling convention 99 would write."""
    from jax import export as jax_export

    exp = jax_export.deserialize(bytearray((d / "model.jaxexport").read_bytes()))
    blob = bytes(dataclasses.replace(exp, calling_convention_version=99).serialize())
    (d / "model.jaxexport").write_bytes(blob)
    contract = json.loads((d / "model.json").read_text())
    contract |= {
        "artifact_bytes": len(blob),
        "artifact_sha256": hashlib.sha256(blob).hexdigest(),
        "calling_convention_version": 99,
        "jax_version": "9.9.9",
    }
    (d / "model.json").write_text(json.dumps(contract))


def _flip_byte(d: pathlib.Path) -> None:
    blob = bytearray((d / "model.jaxexport").read_bytes())
    blob[100] ^= 1
    (d / "model.jaxexport").write_bytes(bytes(blob))


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            _future_jax,
            r"model.jaxexport: artifact uses jax.export calling convention 99 \(written by "
            r"jax 9.9.9\); this jax .* reads only \d+..\d+$",
        ),
        (_flip_byte, r"model.jaxexport: truncated or corrupt artifact"),
        (lambda d: (d / "model.jaxexport").unlink(), r"model.jaxexport: artifact file not found"),
        (lambda d: (d / "model.json").write_text("[1, 2"), r"model.json: not valid JSON"),
        (
            lambda d: (d / "model.json").write_text('{"format": "fnnet.export/1"}'),
            r"model.json: malformed contract \(KeyError: 'input'\)",
        ),
    ],
    ids=["future-jax", "flipped-byte", "no-artifact", "bad-json", "malformed-contract"],
)
def test_bad_model_one_error_line(setup, tmp_path, capsys, damage, message):
    model_dir, pixels, _ = setup
    bad = tmp_path / "model"
    shutil.copytree(model_dir, bad)
    damage(bad)
    images = _idx(tmp_path / "images-idx3-ubyte", pixels, gz=False)
    assert predict.main(["--model", str(bad), "--images", str(images)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert re.search(r"^error: " + re.escape(str(bad)) + "/" + message, err), err
