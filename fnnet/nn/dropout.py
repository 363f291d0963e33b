"""``torch.nn.Dropout`` and ``Dropout2d`` (torch/nn/modules/dropout.py) with explicit, per-example-capable keys."""

from __future__ import annotations

import jax
from flax import nnx

from fnnet.nn._dropout import check_probability, dropout, dropout2d
from fnnet.nn.module import RandomModule

__all__ = ["Dropout", "Dropout2d"]


class Dropout(RandomModule):
    """``torch.nn.Dropout(p=0.5, inplace=False)``: inverted dropout in training mode, identity in eval.

    The mask comes from the layer's own key (from ``rngs``, default ``nnx.Rngs(0)``) and call count;
    inside fnnet's training core, from one key per example (``fnnet.nn.module.bind_example_keys``).
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rngs: nnx.Rngs | int | None = None) -> None:
        self.p = check_probability(p)
        self.inplace = inplace
        self._init_rng(rngs)

    def forward(self, input: jax.Array) -> jax.Array:
        if not self.training or self.p == 0.0:
            return input
        return dropout(input, self.p, True, key=self._next_key())

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(RandomModule):
    """``torch.nn.Dropout2d(p=0.5, inplace=False)``: zero whole channels of ``(N, C, H, W)`` inputs in
    training mode (torch 2.13 reads a 3-D input as ``(N, C, L)``, with its warning), identity in eval.

    Keys as :class:`Dropout`: the layer's own key and call count, or one key per example bound by
    ``fnnet.nn.module.bind_example_keys`` (an example's channel mask then depends only on its key).
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rngs: nnx.Rngs | int | None = None) -> None:
        self.p = check_probability(p)
        self.inplace = inplace
        self._init_rng(rngs)

    def forward(self, input: jax.Array) -> jax.Array:
        if not self.training or self.p == 0.0:
            return dropout2d(input, self.p, False)
        return dropout2d(input, self.p, True, key=self._next_key())

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
