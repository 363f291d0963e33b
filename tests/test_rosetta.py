"""docs/rosetta.md is the test plan: every row of a covered section has a torch-comparison case.

``SECTIONS`` maps a "## <name>" heading of docs/rosetta.md to the test modules whose
``ROSETTA_CASES`` dicts (torch spelling -> case function) together cover it. The torch spelling is the first
cell of a row with its backticks removed. A section whose helper adds rows adds one line here.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
ROSETTA = REPO / "docs" / "rosetta.md"

SECTIONS: dict[str, tuple[str, ...]] = {
    "Tensors": ("test_tensor.py",),
    "Autograd": ("test_autograd.py",),
    "Losses": ("test_losses.py", "test_losses_extra.py"),
    "Layers": ("test_layers_rosetta.py", "test_normalization.py", "test_dropout.py", "test_embedding.py"),
    "Activations": ("test_activations.py",),
    "Pooling": ("test_pooling.py",),
    "Porting torch models": ("test_convert.py",),
    "Optimizers": ("test_optim.py",),
    "Learning-rate schedulers": ("test_lr_scheduler.py",),
}


def rosetta_rows(text: str) -> dict[str, list[str]]:
    """Section name -> torch spellings of its table rows (header and separator rows left out)."""
    rows: dict[str, list[str]] = {}
    section = None
    for number, line in enumerate(text.splitlines(), start=1):
        heading = re.match(r"^## (.+?)\s*$", line)
        if heading:
            section = heading.group(1)
            rows.setdefault(section, [])
            continue
        if section is None or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3:
            raise ValueError(f"rosetta.md:{number}: expected 3 cells (torch | fnnet / JAX | notes), got {len(cells)}")
        if cells[0] == "torch" or set(cells[0]) <= set("-: "):
            continue
        rows[section].append(cells[0].replace("`", "").strip())
    return rows


def cases_of(test_files: tuple[str, ...]) -> dict:
    """The ``ROSETTA_CASES`` of every test module that covers a section, merged."""
    cases: dict = {}
    for test_file in test_files:
        name = f"_rosetta_{pathlib.Path(test_file).stem}"
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / test_file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases.update(module.ROSETTA_CASES)
    return cases


ROWS = rosetta_rows(ROSETTA.read_text(encoding="utf-8"))


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_row_has_a_torch_comparison(section):
    assert section in ROWS, f"docs/rosetta.md has no '## {section}' section"
    spellings = ROWS[section]
    assert spellings, f"'## {section}' has no rows"
    duplicates = sorted({s for s in spellings if spellings.count(s) > 1})
    assert not duplicates, f"rows listed twice in '## {section}': {duplicates}"
    cases = cases_of(SECTIONS[section])
    missing = sorted(set(spellings) - set(cases))
    stale = sorted(set(cases) - set(spellings))
    assert not missing, f"rows of '## {section}' without a case in tests/{SECTIONS[section]}: {missing}"
    assert not stale, f"cases in tests/{SECTIONS[section]} without a row in '## {section}': {stale}"


def test_loss_and_optimizer_sections_exist():
    """The headings the losses and optimizer rows go under."""
    assert {"Losses", "Optimizers"} <= set(ROWS)


def test_parser_reads_rows_and_skips_headers():
    text = "## A\n| torch | fnnet / JAX | notes |\n|---|---|---|\n| `x.t()` | `t(x)` | n |\n## B\n"
    assert rosetta_rows(text) == {"A": ["x.t()"], "B": []}
    with pytest.raises(ValueError, match="expected 3 cells"):
        rosetta_rows("## A\n| `x` | y |\n")
