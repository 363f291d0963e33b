"""The fundamentals tutorial's binary classifier: 5-8-4-1 network, BCE, SGD, the five-step loop.

    python experiments/binary_classifier.py [--epochs 1000] [--seed 0] [--out DIR]

Follows the author's notebooks: the 100 rows of ``make_classification(100, 5, n_informative=3,
random_state=101)`` as float32 (shipped in fnnet, so no scikit-learn is needed), ``Network``
``Linear(5,8) -> ReLU -> Linear(8,4) -> ReLU -> Linear(4,1) -> Sigmoid`` initialised like torch's
``nn.Linear``, ``nn.BCELoss()`` and ``optim.SGD(lr=0.1)``, full batch. The model's ``[100, 1]``
output is reshaped to ``[100]`` before the loss (torch 2.13 rejects the author's mismatched shapes).
Each run is one ``jit``: ``lax.scan`` over the epochs.

Prints the loss every 100 epochs of the long run and its final accuracy, and saves the author's
figures under ``--out``: ``untrained_probabilities.png`` (the 100 probabilities of the untrained
model), ``loss.png`` ("Loss over epochs"), and ``probabilities.png``: a fresh network trained 200
epochs, one panel "Output probabilities after N epochs" every 20 epochs. The author seeded
nothing; here both networks' initial weights come from ``jax.random.key(--seed)``.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import pathlib
import sys
import tempfile
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fnnet.losses import binary_cross_entropy
from fnnet.models import BinaryClassifier
from fnnet.optim import sgd
from fnnet.toy_data import load_binary_classification


@dataclasses.dataclass(frozen=True)
class Config:
    epochs: int = 1000  # the loss-curve run
    lr: float = 0.1  # optim.SGD(model.parameters(), lr=0.1)
    snapshot_every: int = 20  # the fresh network's probabilities are plotted every 20 epochs ...
    snapshots: int = 10  # ... of a 200-epoch run
    print_every: int = 100


MODEL = BinaryClassifier()  # n_hidden1=8, n_hidden2=4, n_output=1, torch-style init


@jax.jit
def init_params(key: jax.Array) -> dict:
    """Initial weights of a fresh ``Network``, drawn like ``nn.Linear``'s (other numbers than torch's)."""
    return MODEL.init(key, jnp.zeros((1, 5), jnp.float32))


@jax.jit
def predict(params: dict, X: jax.Array) -> jax.Array:
    """The model's probabilities as a ``[N]`` vector (the ``[N, 1]`` output, reshaped)."""
    return MODEL.apply(params, X).reshape(X.shape[0])


def _epoch(tx: optax.GradientTransformation, X: jax.Array, y: jax.Array):
    """One epoch of the tutorial's five-step loop as a pure ``(params, opt_state) -> ... , loss``."""

    def epoch(carry, _):
        params, opt_state = carry
        # No optimizer.zero_grad(): jax.grad returns fresh gradients as values, nothing
        # accumulates in .grad buffers, so there is nothing to reset.
        def loss_fn(p):
            output = predict(p, X)  # 1. forward pass
            return binary_cross_entropy(output, y)  # 2. loss (nn.BCELoss, mean)

        loss, grads = jax.value_and_grad(loss_fn)(params)  # 3.-4. gradients (loss.backward())
        updates, opt_state = tx.update(grads, opt_state, params)  # 5. optimizer.step()
        return (optax.apply_updates(params, updates), opt_state), loss

    return epoch


@functools.partial(jax.jit, static_argnames=("epochs", "lr"))
def train(params: dict, X: jax.Array, y: jax.Array, *, epochs: int, lr: float) -> tuple[dict, jax.Array]:
    """``epochs`` full-batch SGD steps in one ``lax.scan``; returns (params, loss of every epoch)."""
    tx = sgd(lr=lr)
    (params, _), losses = jax.lax.scan(_epoch(tx, X, y), (params, tx.init(params)), length=epochs)
    return params, losses


@functools.partial(jax.jit, static_argnames=("snapshots", "every", "lr"))
def train_snapshots(
    params: dict, X: jax.Array, y: jax.Array, *, snapshots: int, every: int, lr: float
) -> jax.Array:
    """Train ``snapshots * every`` epochs; the probabilities after every ``every`` epochs, ``[snapshots, N]``."""
    tx = sgd(lr=lr)
    epoch = _epoch(tx, X, y)

    def block(carry, _):
        carry, _ = jax.lax.scan(epoch, carry, length=every)
        return carry, predict(carry[0], X)

    _, probs = jax.lax.scan(block, (params, tx.init(params)), length=snapshots)
    return probs


def _save_figure(fig, path: pathlib.Path) -> None:
    """``fig.savefig`` to a temporary file in the same folder, then ``os.replace`` (atomic)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _figures(out: pathlib.Path, untrained: np.ndarray, losses: np.ndarray, probs: np.ndarray,
             every: int) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    fig, ax = plt.subplots(figsize=(15, 3))
    ax.set_title("Output probabilities with the untrained model", fontsize=16)
    ax.bar(np.arange(untrained.size), untrained)
    _save_figure(fig, out / "untrained_probabilities.png")
    written.append("untrained_probabilities.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.set_title("Loss over epochs", fontsize=16)
    ax.plot(np.arange(1, losses.size + 1), losses)
    ax.set_xlabel("Epochs")
    ax.set_ylabel("Training loss")
    _save_figure(fig, out / "loss.png")
    written.append("loss.png")
    plt.close(fig)

    fig, axes = plt.subplots(len(probs), 1, figsize=(15, 2.2 * len(probs)), squeeze=False)
    for i, (ax, p) in enumerate(zip(axes[:, 0], probs)):
        ax.set_title(f"Output probabilities after {(i + 1) * every} epochs", fontsize=12)
        ax.bar(np.arange(p.size), p)
        ax.set_ylim(0, 1)
    fig.tight_layout()
    _save_figure(fig, out / "probabilities.png")
    written.append("probabilities.png")
    plt.close(fig)
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
        params = init_params(key_long)
        untrained = np.asarray(predict(params, X))
        print(f"untrained model: mean probability {untrained.mean():.4f} "
              f"(min {untrained.min():.4f}, max {untrained.max():.4f})")
        params, losses = train(params, X, y, epochs=cfg.epochs, lr=cfg.lr)
        losses = np.asarray(losses)
        for i in [*range(0, cfg.epochs, cfg.print_every), cfg.epochs - 1]:
            if i == cfg.epochs - 1 and i % cfg.print_every == 0:
                continue  # already printed
            print(f"epoch {i + 1:5d}: loss {losses[i]:.6f}")
        accuracy = float(np.mean((np.asarray(predict(params, X)) > 0.5) == (y_np > 0.5)))
        print(f"accuracy after {cfg.epochs} epochs: {accuracy:.2f}")
        probs = np.asarray(train_snapshots(init_params(key_fresh), X, y, snapshots=cfg.snapshots,
                                           every=cfg.snapshot_every, lr=cfg.lr))
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
