"""Activation layers (torch/nn/modules/activation.py): each is its ``fnnet.nn.functional`` form.

Every layer accepts ``rngs=`` and ignores it (none has parameters or randomness, except ``PReLU``'s
weight, which is not random), so generic code builds any layer the same way.
"""

from __future__ import annotations

from typing import Any

import jax

from fnnet.nn import _activations as F
from fnnet.nn.module import Module

__all__ = ["LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Tanh"]


class ReLU(Module):
    """``torch.nn.ReLU(inplace=False)`` (``inplace`` is accepted and has no effect on values)."""

    def __init__(self, inplace: bool = False, *, rngs: Any = None) -> None:
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return F.relu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    """``torch.nn.Sigmoid()``."""

    def __init__(self, *, rngs: Any = None) -> None:
        pass

    def forward(self, input: jax.Array) -> jax.Array:
        return F.sigmoid(input)


class Tanh(Module):
    """``torch.nn.Tanh()``."""

    def __init__(self, *, rngs: Any = None) -> None:
        pass

    def forward(self, input: jax.Array) -> jax.Array:
        return F.tanh(input)


class Softmax(Module):
    """``torch.nn.Softmax(dim=None)`` (``dim=None`` picks torch's implicit dim, with its warning)."""

    def __init__(self, dim: int | None = None, *, rngs: Any = None) -> None:
        self.dim = dim

    def forward(self, input: jax.Array) -> jax.Array:
        return F.softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``torch.nn.LogSoftmax(dim=None)``."""

    def __init__(self, dim: int | None = None, *, rngs: Any = None) -> None:
        self.dim = dim

    def forward(self, input: jax.Array) -> jax.Array:
        return F.log_softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
