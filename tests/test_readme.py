"""The README's library example runs as written, and says what it claims."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parent.parent


def _library_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Using fnnet as a library") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_library_example_runs():
    out = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(out):
        exec(compile(_library_example(), "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    assert out.getvalue().startswith("Sequential(\n  (0): Linear(in_features=784, out_features=500, bias=True)")
    assert list(namespace["sd"]) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert namespace["sd"]["0.weight"].shape == (500, 784)
    history = namespace["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3] and all("val_loss" in row for row in history)
    assert namespace["logits"].shape == (8, 10) and not namespace["model"].training


def test_committed_full_data_runs_back_the_readme_claims():
    """results/: the full-data metrics.json the README's accuracy claims rest on, made by today's recipes."""
    import json
    import sys

    sys.path.insert(0, str(REPO / "experiments"))
    import apparel_recipes as recipes

    for folder, bound, minutes in (("strong", 0.90, None), ("cnn", 0.925, 15)):
        m = json.loads((REPO / "results" / folder / "metrics.json").read_text())
        recipe = recipes.RECIPES[folder]
        assert (m["recipe"], m["seed"], m["epochs"], m["batch_size"], m["lr"], m["dtype"]) == (
            folder, 0, recipe.epochs, recipe.batch_size, recipe.lr, "float32"
        )  # fmt: skip
        data = m["data"]
        assert data["source"].startswith("IDX files") and not data["is_sample"]
        assert (data["train"], data["val"], data["test"]) == (54000, 6000, 10000)
        assert m["test_accuracy"] >= bound and len(m["history"]) == recipe.epochs
        if minutes is not None:
            assert m["wall_time_s"] <= minutes * 60
