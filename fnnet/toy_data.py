"""The fundamentals tutorial's toy data set, shipped so that no scikit-learn is needed.

``fnnet/_data/binary_classification.csv`` holds the 100 rows of
``sklearn.datasets.make_classification(100, 5, n_informative=3, random_state=101)`` (columns
``x0..x4`` as float64 with 17 significant digits, i.e. exactly, and the 0/1 label ``y``);
the tutorial casts both to float32, and so does :func:`load_binary_classification`.
"""

from __future__ import annotations

import importlib.resources

import numpy as np

__all__ = ["load_binary_classification"]

_FILE = "binary_classification.csv"
_HEADER = "x0,x1,x2,x3,x4,y"
_ROWS, _FEATURES = 100, 5


def load_binary_classification() -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: float32 arrays of shape ``(100, 5)`` and ``(100,)``, as the tutorial feeds torch.

    Equal to ``make_classification(100, 5, n_informative=3, random_state=101)`` cast with
    ``.astype(np.float32)`` (tests check this against live scikit-learn).
    """
    resource = importlib.resources.files("fnnet") / "_data" / _FILE
    text = resource.read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or lines[0].strip() != _HEADER:
        raise ValueError(f"{resource}: expected header {_HEADER!r}, got {lines[0] if lines else ''!r}")
    # float64 first, then float32: the file stores the generator's float64 values exactly, and
    # the tutorial's float32 are their roundings (X.astype(np.float32)).
    data = np.loadtxt(lines[1:], delimiter=",", dtype=np.float64, ndmin=2)
    if data.shape != (_ROWS, _FEATURES + 1):
        raise ValueError(f"{resource}: expected {_ROWS} rows of {_FEATURES + 1} columns, got {data.shape}")
    labels = data[:, _FEATURES]
    bad = np.flatnonzero((labels != 0.0) & (labels != 1.0))
    if bad.size:
        raise ValueError(f"{resource}: row {int(bad[0]) + 2} has label {labels[bad[0]]!r}, expected 0 or 1")
    return data[:, :_FEATURES].astype(np.float32), labels.astype(np.float32)
