"""The neural network from scratch (first tutorial): hand-written backprop, whole run in one ``jit``.

    python experiments/scratch_network.py [--corrected | --as-published] [--epochs 5000] [--lr 0.1]
                                          [--seed 7] [--out DIR]

X = [[1,0,1,0],[1,0,1,1],[0,1,0,1]], y = [[1],[1],[0]], 3 hidden sigmoid neurons, lr 0.1: the
article's network trained by explicit matrix calculus (no autodiff), the whole loop one
``lax.scan`` inside one ``jax.jit`` (``fnnet.smallnets.scratch_train``; this script only parses
flags and prints).

* ``--corrected`` (default): ``output = sigmoid(output_layer_input)``, sigmoid slopes taken at the
  pre-activations, bias updates summed over the batch axis. This is exactly gradient descent on
  ``0.5 * sum((y - output)**2)`` (the tests check it against ``jax.grad``).
* ``--as-published``: the authors' update code with the slips readers pointed out: the output uses
  the pre-bias input (``sigmoid(output_layer_input1)``, so ``bout`` never affects it), the slopes
  are ``derivatives_sigmoid(output)`` and ``derivatives_sigmoid(hidden_layer_activations)`` (the
  sigmoid applied twice), and ``bout``/``bh`` are moved by the sum of all deltas (a scalar added to
  every entry).

Initial weights wh (4,3), bh (1,3), wout (3,1), bout (1,1) are ``jax.random.normal`` draws from
``jax.random.key(seed)``, standing in for the article's ``torch.randn``: the two generators draw
different numbers from the same seed, so the tests feed the *same* initial weights to both.
The printed predictions are the ``output`` of the last epoch's forward pass (the article prints
``output`` after the loop, i.e. before the last update). The article reports 0.98, 0.97, 0.03
from its own ``torch.randn`` draw. How close a run gets depends on the initial weights: of seeds
0..29 after 5000 epochs, most print within 0.02 of those values (``key(0)``: 0.97 0.97 0.05) and
seeds 7, 22, 23 and 25 print them exactly, so the default seed is 7.

``--out DIR`` receives ``predictions.txt`` (the printed lines).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence

import jax
from reports import atomic_write_text

from fnnet.smallnets import scratch_init, scratch_train


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--corrected",
        dest="mode",
        action="store_const",
        const="corrected",
        help="right backprop, equal to a jax.grad step (default)",
    )
    group.add_argument(
        "--as-published",
        dest="mode",
        action="store_const",
        const="as-published",
        help="the article's update code with its slips",
    )
    parser.set_defaults(mode="corrected")
    parser.add_argument("--epochs", type=int, default=5000, help="copies of the article say 1000, 5000 or 7000")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7, help="initial weights (7 reproduces the article's numbers)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/scratch_network"))
    args = parser.parse_args(argv)
    try:
        if args.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
        if not args.lr > 0:
            raise ValueError(f"--lr must be positive, got {args.lr}")
        w0 = scratch_init(jax.random.key(args.seed))
        _, output = scratch_train(w0, epochs=args.epochs, lr=args.lr, mode=args.mode)
        preds = [float(v) for v in output[:, 0]]
        lines = [
            f"mode: {args.mode}, epochs: {args.epochs}, lr: {args.lr}, seed: {args.seed}",
            "output: " + " ".join(repr(v) for v in preds),
            "predictions: " + " ".join(f"{v:.2f}" for v in preds),
        ]
        text = "\n".join(lines)
        print(text)
        atomic_write_text(args.out / "predictions.txt", text + "\n")
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
