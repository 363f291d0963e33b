"""PyTorch reference of experiments/scratch_network.py: the article's network from scratch in torch.

    python benchmarks/torch_reference/scratch_network.py [--corrected | --as-published] [--epochs 5000]
                                                         [--lr 0.1] [--seed 0] [--out DIR]

The article's loop as published (``torch.randn`` weights, ``torch.mm``, one Python iteration per
epoch); prints the same three lines and writes ``predictions.txt`` like the fnnet experiment. Used by
``benchmarks/run_all.py`` for the whole-process wall time a user waits for.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import torch
from _common import write_atomic


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--corrected", dest="mode", action="store_const", const="corrected")
    group.add_argument("--as-published", dest="mode", action="store_const", const="as-published")
    parser.set_defaults(mode="corrected")
    parser.add_argument("--epochs", type=int, default=5000)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/torch_scratch_network"))
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    X = torch.tensor([[1, 0, 1, 0], [1, 0, 1, 1], [0, 1, 0, 1]], dtype=torch.float32)
    y = torch.tensor([[1], [1], [0]], dtype=torch.float32)

    def sigmoid(x):
        return 1 / (1 + torch.exp(-x))

    def derivatives_sigmoid(x):
        return sigmoid(x) * (1 - sigmoid(x))

    lr = args.lr
    wh, bh = torch.randn(4, 3), torch.randn(1, 3)
    wout, bout = torch.randn(3, 1), torch.randn(1, 1)
    for _ in range(args.epochs):
        hidden_layer_input1 = torch.mm(X, wh)
        hidden_layer_input = hidden_layer_input1 + bh
        hidden_layer_activations = sigmoid(hidden_layer_input)
        output_layer_input1 = torch.mm(hidden_layer_activations, wout)
        output_layer_input = output_layer_input1 + bout
        if args.mode == "as-published":
            output = sigmoid(output_layer_input1)
            slope_output_layer = derivatives_sigmoid(output)
            slope_hidden_layer = derivatives_sigmoid(hidden_layer_activations)
        else:
            output = sigmoid(output_layer_input)
            slope_output_layer = derivatives_sigmoid(output_layer_input)
            slope_hidden_layer = derivatives_sigmoid(hidden_layer_input)
        E = y - output
        d_output = E * slope_output_layer
        Error_at_hidden_layer = torch.mm(d_output, wout.t())
        d_hiddenlayer = Error_at_hidden_layer * slope_hidden_layer
        wout += torch.mm(hidden_layer_activations.t(), d_output) * lr
        wh += torch.mm(X.t(), d_hiddenlayer) * lr
        if args.mode == "as-published":
            bout += d_output.sum() * lr
            bh += d_hiddenlayer.sum() * lr
        else:
            bout += torch.sum(d_output, dim=0, keepdim=True) * lr
            bh += torch.sum(d_hiddenlayer, dim=0, keepdim=True) * lr
    preds = output[:, 0].tolist()
    lines = [
        f"mode: {args.mode}, epochs: {args.epochs}, lr: {args.lr}, seed: {args.seed}",
        "output: " + " ".join(repr(v) for v in preds),
        "predictions: " + " ".join(f"{v:.2f}" for v in preds),
    ]
    text = "\n".join(lines)
    print(text)
    write_atomic(args.out / "predictions.txt", text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
