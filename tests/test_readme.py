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
