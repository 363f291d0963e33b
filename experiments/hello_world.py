"""PyTorch Hello World (third tutorial) in Flax + optax: one SGD step of a 1-1-1 sigmoid network.

    python experiments/hello_world.py [--out DIR]

The tutorial's ``Net`` (``hidden_layer`` and ``output_layer``, both ``nn.Linear(1, 1)``, sigmoid
after each) with the hand-set weights w_l1=1.58, b_l1=-0.14, w_l2=2.45, b_l2=-0.11, input 0.8,
target 1, ``nn.MSELoss`` and one ``optim.SGD(lr=0.1)`` step, following the author's
``backprop_pytorch.py`` (``net.zero_grad(); loss.backward(); optimizer.step()``, the three lines the
article's text lost). Here the step is ``fnnet.smallnets.hello_train(steps=1)``:
``jax.value_and_grad`` of ``fnnet.nn.functional.mse_loss`` and one update of ``fnnet.optim.sgd(lr=0.1)``
(an optax transformation); no gradient buffers, so there is nothing to zero. Then the article's
hand-computed version (chain rule by hand, plain ``jnp``, no autodiff) prints the same numbers.
All values use ``round(x, 4)`` as the article.

``--out DIR`` receives ``output.txt`` (the printed lines). There is no randomness; ``--seed`` is
accepted for a uniform command line and unused.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from reports import atomic_write_text

from fnnet.models import HelloNet
from fnnet.smallnets import hello_data, hello_net, hello_train

LR = 0.1  # optim.SGD(net.parameters(), lr=0.1)
INPUT, TARGET = 0.8, 1.0


def topology(net: HelloNet, name: str = "Net") -> str:
    """``print(net)`` of the torch module: fnnet.nn modules print in torch's format; the class is named
    ``name`` (the tutorial's ``Net``)."""
    return repr(net).replace(type(net).__name__, name, 1)


def flax_values() -> dict[str, float]:
    """The ten printed quantities: the ``fnnet.nn`` module and one optax SGD step (``fnnet.smallnets.hello_train``)."""
    net = hello_net()
    x, _ = hello_data()
    new, _ = hello_train(net, steps=1, lr=LR)
    out, new_out = net(x), new(x)

    def scalars(n: HelloNet, prefix: str) -> dict[str, float]:
        hl, ol = n.hidden_layer, n.output_layer
        return {
            f"{prefix}w_l1": float(hl.weight.get_value()[0, 0]),
            f"{prefix}b_l1": float(hl.bias.get_value()[0]),
            f"{prefix}w_l2": float(ol.weight.get_value()[0, 0]),
            f"{prefix}b_l2": float(ol.bias.get_value()[0]),
        }

    return {
        **scalars(net, ""),
        "a_l2": float(out[0, 0]),
        **scalars(new, "updated_"),
        "updated_a_l2": float(new_out[0, 0]),
    }


def hand_values() -> dict[str, float]:
    """The article's NumPy backprop by hand, in plain ``jnp`` (no autodiff)."""
    sigmoid = jax.nn.sigmoid

    def sigmoid_prime(z):
        return sigmoid(z) * (1 - sigmoid(z))

    a_l0, w_l1, b_l1, w_l2, b_l2 = (jnp.float32(v) for v in (INPUT, 1.58, -0.14, 2.45, -0.11))
    z_l1 = w_l1 * a_l0 + b_l1
    a_l1 = sigmoid(z_l1)
    z_l2 = w_l2 * a_l1 + b_l2
    a_l2 = sigmoid(z_l2)
    dc_da_l2 = 2 * (a_l2 - 1)  # MSELoss has no 1/2, so the 2 stays (as the article notes)
    dc_db_l2 = sigmoid_prime(z_l2) * dc_da_l2
    dc_dw_l2 = a_l1 * dc_db_l2
    dc_da_l1 = w_l2 * dc_db_l2
    dc_db_l1 = sigmoid_prime(z_l1) * dc_da_l1
    dc_dw_l1 = a_l0 * dc_db_l1
    up = {
        "updated_w_l1": w_l1 - dc_dw_l1 * LR,
        "updated_b_l1": b_l1 - dc_db_l1 * LR,
        "updated_w_l2": w_l2 - dc_dw_l2 * LR,
        "updated_b_l2": b_l2 - dc_db_l2 * LR,
    }
    updated_a_l1 = sigmoid(up["updated_w_l1"] * a_l0 + up["updated_b_l1"])
    updated_a_l2 = sigmoid(up["updated_w_l2"] * updated_a_l1 + up["updated_b_l2"])
    values = {"w_l1": w_l1, "b_l1": b_l1, "w_l2": w_l2, "b_l2": b_l2, "a_l2": a_l2, **up, "updated_a_l2": updated_a_l2}
    return {k: float(v) for k, v in values.items()}


def format_values(values: dict[str, float]) -> list[str]:
    """The article's print lines: ``name = round(value, 4)``."""
    return [f"{k} = {round(v, 4)}" for k, v in values.items()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/hello_world"))
    parser.add_argument("--seed", type=int, default=0, help="unused: the weights are fixed")
    args = parser.parse_args(argv)
    try:
        lines = [f"network topology: {topology(hello_net())}"]
        lines += format_values(flax_values())
        lines.append("hand-computed (plain jnp, no autodiff):")
        lines += format_values(hand_values())
        text = "\n".join(lines)
        print(text)
        atomic_write_text(args.out / "output.txt", text + "\n")
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
