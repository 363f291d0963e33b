"""PyTorch reference of experiments/binary_classifier.py: the fundamentals tutorial's classifier.

    python benchmarks/torch_reference/binary_classifier.py [--epochs 1000] [--seed 0] [--out DIR]

The author's ``Network(5, 8, 4, 1)``, ``nn.BCELoss()``, ``optim.SGD(lr=0.1)``, the five-step loop
(output reshaped to ``[100]``); the same prints and the same three figures as the fnnet experiment.
The data are the 100 rows of ``make_classification(100, 5, n_informative=3, random_state=101)``,
read from the CSV that fnnet ships (so neither script pays for importing scikit-learn).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
import torch
import torch.nn as nn
from _common import save_figure

DATA = pathlib.Path(__file__).resolve().parents[2] / "fnnet" / "_data" / "binary_classification.csv"


class Network(nn.Module):
    def __init__(self, n_input=5, n_hidden1=8, n_hidden2=4, n_output=1):
        super().__init__()
        self.hidden1 = nn.Linear(n_input, n_hidden1)
        self.hidden2 = nn.Linear(n_hidden1, n_hidden2)
        self.relu = nn.ReLU()
        self.output = nn.Linear(n_hidden2, n_output)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        x = self.relu(self.hidden2(self.relu(self.hidden1(x))))
        return self.sigmoid(self.output(x))


def train(model, X, y, epochs, lr=0.1):
    criterion = nn.BCELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        optimizer.zero_grad()
        output = model(X).view(-1)
        loss = criterion(output, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/torch_binary_classifier"))
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    table = np.loadtxt(DATA, delimiter=",", skiprows=1, dtype=np.float64)
    X = torch.from_numpy(table[:, :5].astype(np.float32))
    y = torch.from_numpy(table[:, 5].astype(np.float32))
    model = Network()
    with torch.no_grad():
        untrained = model(X).view(-1).numpy()
    print(
        f"untrained model: mean probability {untrained.mean():.4f} "
        f"(min {untrained.min():.4f}, max {untrained.max():.4f})"
    )
    losses = train(model, X, y, args.epochs)
    for i in [*range(0, args.epochs, 100), args.epochs - 1]:
        if i == args.epochs - 1 and i % 100 == 0:
            continue
        print(f"epoch {i + 1:5d}: loss {losses[i]:.6f}")
    with torch.no_grad():
        accuracy = float(((model(X).view(-1) > 0.5) == (y > 0.5)).float().mean())
    print(f"accuracy after {args.epochs} epochs: {accuracy:.2f}")
    fresh = Network()
    probs = []
    for _ in range(10):
        train(fresh, X, y, 20)
        with torch.no_grad():
            probs.append(fresh(X).view(-1).numpy())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(15, 3))
    ax.set_title("Output probabilities with the untrained model", fontsize=16)
    ax.bar(np.arange(untrained.size), untrained)
    save_figure(fig, args.out / "untrained_probabilities.png")
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.set_title("Loss over epochs", fontsize=16)
    ax.plot(np.arange(1, len(losses) + 1), losses)
    ax.set_xlabel("Epochs")
    ax.set_ylabel("Training loss")
    save_figure(fig, args.out / "loss.png")
    fig, axes = plt.subplots(len(probs), 1, figsize=(15, 2.2 * len(probs)), squeeze=False)
    for i, (ax, p) in enumerate(zip(axes[:, 0], probs)):
        ax.set_title(f"Output probabilities after {(i + 1) * 20} epochs", fontsize=12)
        ax.bar(np.arange(p.size), p)
        ax.set_ylim(0, 1)
    fig.tight_layout()
    save_figure(fig, args.out / "probabilities.png")
    names = ("untrained_probabilities.png", "loss.png", "probabilities.png")
    print(f"figures: {', '.join(str(args.out / n) for n in names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
