"""PyTorch reference of ``experiments/apparel_classifier.py --recipe tutorial``: the case study end to end.

    python benchmarks/torch_reference/apparel_classifier.py --data-dir DIR [--epochs 20] [--seed 0] [--out DIR]

What the fnnet experiment does with the ``tutorial`` recipe, written the way the tutorial writes it:
the four IDX files read with gzip + NumPy, images / 255 flattened to 784, scikit-learn's
``train_test_split(test_size=0.1, stratify=y)``, ``Sequential(Linear(784, 500), ReLU(),
Linear(500, 10))``, ``CrossEntropyLoss``, ``Adam(lr=0.0005)``, 20 full-batch epochs without
``zero_grad`` (as published) and the validation loss after each, a checkpoint (model + optimizer)
written atomically after every epoch, then train/validation/test accuracy, ``submission.csv``,
``metrics.json``, the four figures (losses, a sample image, the confusion matrix, predictions) and
an exported model (``torch.export`` -> ``model.pt2``).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import pathlib
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from _common import save_figure, write_atomic

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def read_idx(path: pathlib.Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find(folder: pathlib.Path, stem: str) -> pathlib.Path:
    for name in (f"{stem}.gz", stem):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"{folder}: no {stem}[.gz]")


def main(argv=None) -> int:
    wall0 = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=pathlib.Path, required=True, help="the four Fashion-MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/torch_apparel_classifier"))
    args = parser.parse_args(argv)
    from sklearn.model_selection import train_test_split

    torch.manual_seed(args.seed)
    d = args.data_dir
    train_images = read_idx(find(d, "train-images-idx3-ubyte"))
    train_labels = read_idx(find(d, "train-labels-idx1-ubyte"))
    test_images = read_idx(find(d, "t10k-images-idx3-ubyte"))
    test_labels = read_idx(find(d, "t10k-labels-idx1-ubyte"))
    train_x = (train_images.reshape(-1, 784) / 255.0).astype(np.float32)
    test_x = (test_images.reshape(-1, 784) / 255.0).astype(np.float32)
    tr_x, val_x, tr_y, val_y = train_test_split(
        train_x, train_labels.astype(np.int64), test_size=0.1, stratify=train_labels, random_state=args.seed
    )
    tr_x, tr_y = torch.from_numpy(tr_x), torch.from_numpy(tr_y)
    val_x, val_y = torch.from_numpy(val_x), torch.from_numpy(val_y)
    print(f"data: {d}: {len(tr_x)} train / {len(val_x)} validation / {len(test_x)} test images")

    model = nn.Sequential(nn.Linear(784, 500), nn.ReLU(), nn.Linear(500, 10))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.0005)
    history = []
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        model.train()
        output_train = model(tr_x)
        loss_train = criterion(output_train, tr_y)
        loss_train.backward()  # no optimizer.zero_grad(): the published loop accumulates
        optimizer.step()
        model.eval()
        with torch.no_grad():
            output_val = model(val_x)
            loss_val = criterion(output_val, val_y)
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_train.item(),
            "val_loss": loss_val.item(),
            "val_accuracy": (output_val.argmax(1) == val_y).float().mean().item(),
        }
        history.append(row)
        buf = io.BytesIO()
        torch.save(
            {"epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history},
            buf,
        )
        write_atomic(args.out / "checkpoints" / "last.pt", buf.getvalue())
        print(
            f"epoch {epoch + 1:3d}/{args.epochs}  train_loss {row['train_loss']:.4f}  "
            f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  {time.perf_counter() - t0:.2f}s",
            flush=True,
        )

    model.eval()
    with torch.no_grad():
        train_pred = model(tr_x).argmax(1)
        val_pred = model(val_x).argmax(1)
        test_pred = model(torch.from_numpy(test_x)).argmax(1).numpy()
    metrics = {
        "recipe": "tutorial",
        "seed": args.seed,
        "epochs": args.epochs,
        "train_accuracy": (train_pred == tr_y).float().mean().item(),
        "val_accuracy": (val_pred == val_y).float().mean().item(),
        "test_accuracy": float(np.mean(test_pred == test_labels)),
        "history": history,
    }
    matrix = np.zeros((10, 10), np.int64)
    np.add.at(matrix, (test_labels, test_pred), 1)
    metrics["per_class_accuracy"] = {CLASS_NAMES[c]: float(matrix[c, c] / max(1, matrix[c].sum())) for c in range(10)}
    write_atomic(
        args.out / "submission.csv", "id,label\n" + "".join(f"{i},{p}\n" for i, p in enumerate(test_pred.tolist()))
    )
    exported = torch.export.export(model, (torch.zeros(1, 784),))
    buf = io.BytesIO()
    torch.export.save(exported, buf)
    write_atomic(args.out / "model.pt2", buf.getvalue())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["epoch"] for r in history], [r["train_loss"] for r in history], label="Training loss")
    ax.plot([r["epoch"] for r in history], [r["val_loss"] for r in history], label="Validation loss")
    ax.legend()
    save_figure(fig, args.out / "loss.png")
    pick = int(np.random.RandomState(128).choice(len(train_images)))
    fig, ax = plt.subplots(figsize=(3, 3.3))
    ax.imshow(train_images[pick], cmap="gray")
    ax.set_title(f"id {pick}: {CLASS_NAMES[int(train_labels[pick])]}")
    ax.axis("off")
    save_figure(fig, args.out / "sample.png")
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(matrix, cmap="Blues")
    for i in range(10):
        for j in range(10):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax)
    ax.set_title("Test confusion matrix")
    save_figure(fig, args.out / "confusion.png")
    show = np.random.RandomState(args.seed).choice(len(test_x), size=24, replace=False)
    fig, axes = plt.subplots(4, 6, figsize=(6 * 1.9, 4 * 2.1))
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        ax.imshow(test_x[show[k]].reshape(28, 28), cmap="gray")
        ax.set_title(f"{CLASS_NAMES[test_pred[show[k]]]}\n(true: {CLASS_NAMES[test_labels[show[k]]]})", fontsize=7)
    save_figure(fig, args.out / "predictions.png")
    metrics["wall_time_s"] = time.perf_counter() - wall0
    write_atomic(args.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    print(
        f"done: train_acc {metrics['train_accuracy']:.4f}  val_acc {metrics['val_accuracy']:.4f}  "
        f"test_acc {metrics['test_accuracy']:.4f}  wall {metrics['wall_time_s']:.1f}s  outputs in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
