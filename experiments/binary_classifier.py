"""The fundamentals tutorial's binary classifier: 5-8-4-1 network, BCE, SGD, the five-step loop.

    python experiments/binary_classifier.py [--epochs 1000] [--seed 0] [--out DIR]

Follows the author's notebooks: the 100 rows of ``make_classification(100, 5, n_informative=3,
random_state=101)`` as float32 (shipped in fnnet, so no scikit-learn is needed), ``Network``
``Linear(5,8) -> ReLU -> Linear(8,4) -> ReLU -> Linear(4,1) -> Sigmoid`` initialised like torch's
``nn.Linear``, ``nn.BCELoss()`` and ``optim.SGD(lr=0.1)``, full batch. The model's ``[100, 1]``
output is reshaped to ``[100]`` before the loss (torch 2.13 rejects the author's mismatched shapes).
Each run is one ``jit``: ``lax.scan`` over the epochs (``fnnet.smallnets.binary_train`` and
``binary_snapshots``; this script only parses flags, prints and plots).

Prints the loss every 100 epochs of the long run and its final accuracy, and saves the author's
figures under ``--out``: ``untrained_probabilities.png`` (the 100 probabilities of the untrained
model), ``loss.png`` ("Loss over epochs"), and ``probabilities.png``: a fresh network trained 200
epochs, one panel "Output probabilities after N epochs" every 20 epochs. The author seeded
nothing; here both networks' initial weights come from ``jax.random.key(--seed)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from reports import save_figure

from fnnet.smallnets import binary_init, binary_predict, binary_snapshots, binary_train
from fnnet.toy_data import load_binary_classification


@dataclasses.dataclass(frozen=True)
class Config:
    epochs: int = 1000  # the loss-curve run
    lr: float = 0.1  # optim.SGD(model.parameters(), lr=0.1)
    snapshot_every: int = 20  # the fresh network's probabilities are plotted every 20 epochs ...
    snapshots: int = 10  # ... of a 200-epoch run
    print_every: int = 100


def _figures(out: pathlib.Path, untrained: np.ndarray, losses: np.ndarray, probs: np.ndarray, every: int) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []  # save_figure writes atomically, creates the folder and closes the figure
    fig, ax = plt.subplots(figsize=(15, 3))
    ax.set_title("Output probabilities with the untrained model", fontsize=16)
    ax.bar(np.arange(untrained.size), untrained)
    save_figure(fig, out / "untrained_probabilities.png")
    written.append("untrained_probabilities.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.set_title("Loss over epochs", fontsize=16)
    ax.plot(np.arange(1, losses.size + 1), losses)
    ax.set_xlabel("Epochs")
    ax.set_ylabel("Training loss")
    save_figure(fig, out / "loss.png")
    written.append("loss.png")

    fig, axes = plt.subplots(len(probs), 1, figsize=(15, 2.2 * len(probs)), squeeze=False)
    for i, (ax, p) in enumerate(zip(axes[:, 0], probs)):
        ax.set_title(f"Output probabilities after {(i + 1) * every} epochs", fontsize=12)
        ax.bar(np.arange(p.size), p)
        ax.set_ylim(0, 1)
    fig.tight_layout()
    save_figure(fig, out / "probabilities.png")
    written.append("probabilities.png")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=Config.epochs, help="length of the loss-curve run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/binary_classifier"))
    args = parser.parse_args(argv)
    try:
        if args.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
        cfg = Config(epochs=args.epochs)
        X_np, y_np = load_binary_classification()
        X, y = jnp.asarray(X_np), jnp.asarray(y_np)
        key_long, key_fresh = jax.random.split(jax.random.key(args.seed))
        model = binary_init(key_long)
        untrained = np.asarray(binary_predict(model, X))
        print(
            f"untrained model: mean probability {untrained.mean():.4f} "
            f"(min {untrained.min():.4f}, max {untrained.max():.4f})"
        )
        model, losses = binary_train(model, X, y, epochs=cfg.epochs, lr=cfg.lr)
        losses = np.asarray(losses)
        for i in [*range(0, cfg.epochs, cfg.print_every), cfg.epochs - 1]:
            if i == cfg.epochs - 1 and i % cfg.print_every == 0:
                continue  # already printed
            print(f"epoch {i + 1:5d}: loss {losses[i]:.6f}")
        accuracy = float(np.mean((np.asarray(binary_predict(model, X)) > 0.5) == (y_np > 0.5)))
        print(f"accuracy after {cfg.epochs} epochs: {accuracy:.2f}")
        probs = np.asarray(
            binary_snapshots(binary_init(key_fresh), X, y, snapshots=cfg.snapshots, every=cfg.snapshot_every, lr=cfg.lr)
        )
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("figures skipped: matplotlib is not installed")
        else:
            written = _figures(args.out, untrained, losses, probs, cfg.snapshot_every)
            print(f"figures: {', '.join(str(args.out / w) for w in written)}")
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
