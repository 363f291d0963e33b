"""experiments/optimizer_zoo.py: all fifteen optimizers train the same MLP as torch, in float64 to 1e-10."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

EXPERIMENTS = pathlib.Path(__file__).resolve().parent.parent / "experiments"
EXPERIMENT = EXPERIMENTS / "optimizer_zoo.py"
NAMES = [
    "sgd", "adam", "adamw", "adagrad", "adadelta", "adamax", "asgd", "rmsprop", "rprop", "sparse_adam",
    "nadam", "radam", "adafactor", "muon", "lbfgs",
]  # fmt: skip


@pytest.fixture(scope="module")
def zoo():
    spec = importlib.util.spec_from_file_location("_experiment_optimizer_zoo", EXPERIMENT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    sys.path.insert(0, str(EXPERIMENTS))  # its sibling ``reports``, as when run from experiments/
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(EXPERIMENTS))
        sys.modules.pop(spec.name, None)


def _rows(stdout: str) -> dict[str, list[str]]:
    rows = {}
    for line in stdout.splitlines():
        fields = line.split()
        if fields and fields[0] in NAMES:
            rows[fields[0]] = fields[1:]
    return rows


def test_all_optimizers_match_torch_float64(zoo, torch, tmp_path, capsys):
    assert zoo.main(["--steps", "4", "--dtype", "float64", "--seed", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "4 steps, float64, seed 3; loss = MSE before the last step"
    rows = _rows(out)
    assert list(rows) == NAMES
    for name, (ours, theirs, diff) in rows.items():
        assert abs(float(ours) - float(theirs)) <= 1e-10 * float(theirs), name
        assert float(diff) < 1e-10, name
    assert (tmp_path / "results.txt").read_text().splitlines() == out.splitlines()[: len(NAMES) + 2]
    assert (tmp_path / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss_curves.png", "results.txt"]


def test_without_torch_fnnet_only(zoo, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    assert zoo.main(["--steps", "3", "--optimizers", "sgd,adam", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert list(rows) == ["sgd", "adam"]
    assert all(fields[1:] == ["-", "-"] and float(fields[0]) > 0 for fields in rows.values())
    assert "note: torch is not installed: fnnet only" in out


@pytest.mark.parametrize(
    "argv,culprit",
    [
        (["--steps", "0"], "--steps"),
        (["--dtype", "float16"], "--dtype"),
        (["--optimizers", "adam,lion"], "--optimizers"),
    ],
)
def test_bad_flags_one_line_error(zoo, tmp_path, capsys, argv, culprit):
    assert zoo.main(argv + ["--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and culprit in lines[0]
    assert not (tmp_path / "out").exists()
