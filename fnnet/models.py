"""The three tutorials' networks, written with ``fnnet.nn`` exactly as their authors wrote them in torch.

* :class:`HelloNet` — the hello-world ``Net``: ``sigmoid(output_layer(sigmoid(hidden_layer(x))))``, 1-1-1.
* :class:`BinaryClassifier` — the fundamentals tutorial's ``Network(5, 8, 4, 1)``: ``hidden1``,
  ``hidden2``, ``relu``, ``output``, ``sigmoid``.
* :func:`mlp` — the apparel case study's ``Sequential(Linear(784, 500), ReLU(), Linear(500, 10))``,
  generalised to any widths, with an optional ``Dropout`` after each hidden ReLU.

Each has exactly its torch twin's ``state_dict`` keys and shapes, so ``fnnet.nn.load_state_dict`` takes
the torch model's weights, and its initialisation is ``nn.Linear``'s (other random numbers than torch's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from fnnet import nn

__all__ = ["BinaryClassifier", "HelloNet", "mlp"]


class HelloNet(nn.Module):
    """The hello-world ``Net`` (1-1-1, sigmoid after each layer); :meth:`published` sets the tutorial's
    hand-picked weights w_l1=1.58, b_l1=-0.14, w_l2=2.45, b_l2=-0.11."""

    def __init__(self, dtype: Any = None, *, rngs: nnx.Rngs | int | None = None) -> None:
        rngs = nn.module.default_rngs(rngs)
        self.hidden_layer = nn.Linear(1, 1, dtype=dtype, rngs=rngs)
        self.output_layer = nn.Linear(1, 1, dtype=dtype, rngs=rngs)

    def forward(self, x: jax.Array) -> jax.Array:
        return nn.functional.sigmoid(self.output_layer(nn.functional.sigmoid(self.hidden_layer(x))))

    @classmethod
    def published(cls, dtype: Any = None) -> HelloNet:
        """The network with the tutorial's weights (torch: ``net.hidden_layer.weight = nn.Parameter(...)``)."""
        net = cls(dtype)
        dt = net.hidden_layer.weight.get_value().dtype
        for layer, (w, b) in ((net.hidden_layer, (1.58, -0.14)), (net.output_layer, (2.45, -0.11))):
            layer.weight.set_value(jnp.full((1, 1), w, dt))
            layer.bias.set_value(jnp.full((1,), b, dt))
        return net


class BinaryClassifier(nn.Module):
    """The fundamentals tutorial's ``Network``: Linear(5, 8)-ReLU-Linear(8, 4)-ReLU-Linear(4, 1)-Sigmoid.

    Returns probabilities of shape ``(batch, n_output)``; the author fed that ``[100, 1]`` output to
    ``BCELoss`` against a ``[100]`` target, which torch 2.13 rejects, so reshape before the loss.
    """

    def __init__(
        self, n_input: int = 5, n_hidden1: int = 8, n_hidden2: int = 4, n_output: int = 1, dtype: Any = None,
        *, rngs: nnx.Rngs | int | None = None,
    ) -> None:  # fmt: skip
        rngs = nn.module.default_rngs(rngs)
        self.hidden1 = nn.Linear(n_input, n_hidden1, dtype=dtype, rngs=rngs)
        self.hidden2 = nn.Linear(n_hidden1, n_hidden2, dtype=dtype, rngs=rngs)
        self.relu = nn.ReLU()
        self.output = nn.Linear(n_hidden2, n_output, dtype=dtype, rngs=rngs)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: jax.Array) -> jax.Array:
        x = self.relu(self.hidden2(self.relu(self.hidden1(x))))
        return self.sigmoid(self.output(x))


def mlp(
    widths: Sequence[int] = (784, 500, 10),
    dropout: float = 0.0,
    dtype: Any = None,
    *,
    rngs: nnx.Rngs | int | None = None,
) -> nn.Sequential:
    """``Sequential(Linear(w0, w1), ReLU(), [Dropout(p),] Linear(w1, w2), ...)`` returning logits.

    ``widths`` are the layer widths, input first: the default is the apparel tutorial's 784-500-10.
    With ``dropout > 0`` a ``Dropout(dropout)`` follows each hidden ReLU (its keys per example inside
    fnnet's training core), so the torch twin's keys are ``"0.weight"``, ``"3.weight"``.
    """
    widths = tuple(widths)
    if len(widths) < 2 or any(isinstance(w, bool) or not isinstance(w, int) or w <= 0 for w in widths):
        raise ValueError(f"widths must be at least two positive ints (input first), got {widths!r}")
    rngs = nn.module.default_rngs(rngs)
    layers: list[nnx.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b, dtype=dtype, rngs=rngs))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
            if dropout != 0:  # Dropout(p) itself rejects p outside [0, 1], as torch
                layers.append(nn.Dropout(dropout, rngs=rngs))
    return nn.Sequential(*layers)
