"""Atomic file writing and the apparel classifier's figures.

Every file goes to a temporary name in its target directory first and is renamed into place, so a
crash never leaves a half-written file where a finished one was. Figures need matplotlib (the
``plot`` extra); :func:`have_matplotlib` lets callers say so when it is missing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from fnnet._io import atomic_write_bytes, atomic_write_text

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "write_json",
    "write_submission",
    "have_matplotlib",
    "save_figure",
    "plot_losses",
    "plot_sample",
    "plot_confusion",
    "plot_predictions",
    "confusion_matrix",
]


def write_json(path: str | os.PathLike, obj: Any) -> pathlib.Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_submission(path: str | os.PathLike, ids: Sequence[int], labels: Sequence[int]) -> pathlib.Path:
    """The tutorial's ``sample_submission``: an ``id,label`` CSV."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "label"])
    writer.writerows(zip((int(i) for i in ids), (int(l) for l in labels)))
    return atomic_write_text(path, buf.getvalue())


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike) -> pathlib.Path:
    """Render a matplotlib figure to PNG and write it atomically; closes the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def plot_losses(path, history: Sequence[dict[str, float]]) -> pathlib.Path:
    """Train and validation loss per epoch (the tutorial's "training vs validation loss")."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [row["epoch"] for row in history]
    ax.plot(epochs, [row["train_loss"] for row in history], label="Training loss")
    ax.plot(epochs, [row["val_loss"] for row in history], label="Validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_sample(path, image: np.ndarray, title: str) -> pathlib.Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3, 3.3))
    ax.imshow(image.reshape(28, 28), cmap="gray")
    ax.set_title(title)
    ax.axis("off")
    return save_figure(fig, path)


def confusion_matrix(true: np.ndarray, pred: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((classes, classes), np.int64)
    np.add.at(out, (np.asarray(true), np.asarray(pred)), 1)
    return out


def plot_confusion(path, matrix: np.ndarray, class_names: Sequence[str]) -> pathlib.Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if matrix[i, j] > threshold else "black",
            )
    fig.colorbar(im, ax=ax)
    ax.set_title("Test confusion matrix")
    return save_figure(fig, path)


def plot_predictions(
    path, images: np.ndarray, pred: np.ndarray, true: np.ndarray | None, class_names: Sequence[str], cols: int = 6
) -> pathlib.Path:
    """A grid of images titled ``predicted (true)``; mistakes in red."""
    plt = _pyplot()
    n = len(images)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.9, rows * 2.1))
    for k, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k].reshape(28, 28), cmap="gray")
        if true is None:
            ax.set_title(class_names[pred[k]], fontsize=8)
        else:
            wrong = pred[k] != true[k]
            ax.set_title(
                f"{class_names[pred[k]]}\n(true: {class_names[true[k]]})", fontsize=7, color="red" if wrong else "black"
            )
    fig.suptitle("Test predictions (mistakes in red)")
    return save_figure(fig, path)
