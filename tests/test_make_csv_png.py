"""experiments/make_csv_png.py: IDX -> the tutorial's CSV+PNG layout, read back by fnnet.data."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest
from PIL import Image

from fnnet import data as fd

REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("make_csv_png", REPO / "experiments" / "make_csv_png.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    for var in ("FNNET_DATA_DIR", "FNNET_DOWNLOAD_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize("with_labels", [False, True])
def test_converts_and_reads_back(script, tmp_path, capsys, with_labels):
    out = tmp_path / "out"
    argv = ["--data-dir", str(fd.sample_dir()), "--out", str(out), "--limit", "60"]
    assert script.main(argv + (["--with-test-labels"] if with_labels else [])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "source: shipped sample (10,000 train / 2,000 test)"
    assert lines[1].startswith(f"wrote 60 train and 60 test PNGs to {out} in ")
    sample = fd.load_idx_dir(fd.sample_dir())
    counts = np.bincount(sample.train_labels[:60], minlength=10).tolist()
    assert lines[2] == f"train.csv: id,label (0..59); per-class counts {counts}"
    assert lines[3] == f"test.csv: {'id,label' if with_labels else 'id'} (60000..60059)"
    assert sorted(p.name for p in out.iterdir()) == ["test", "test.csv", "train", "train.csv"]
    assert len(list((out / "train").glob("*.png"))) == 60
    back = fd.load_fashion_mnist(out, cache_dir=tmp_path / "uc", verbose=False)
    assert np.array_equal(back.train_images, sample.train_images[:60])
    assert np.array_equal(back.train_labels, sample.train_labels[:60])
    assert np.array_equal(back.test_images, sample.test_images[:60])
    if with_labels:
        assert np.array_equal(back.test_labels, sample.test_labels[:60])
    else:
        assert back.test_labels is None
    # the tutorial's reader: one grayscale 28x28 PNG per CSV id
    first = (out / "train.csv").read_text().splitlines()[1].split(",")[0]
    assert np.array_equal(np.asarray(Image.open(out / "train" / f"{first}.png").convert("L")), sample.train_images[0])


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--data-dir", "/nonexistent/fmnist"], "error: /nonexistent/fmnist: data directory not found"),
        (["--limit", "0"], "error: --limit must be a positive integer, got 0"),
    ],
)
def test_user_errors_are_one_line(script, tmp_path, capsys, argv, message):
    assert script.main(argv + ["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == message and "Traceback" not in err
    assert not (tmp_path / "o").exists()
