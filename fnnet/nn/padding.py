"""Padding layers (torch/nn/modules/padding.py): ``ZeroPad``, ``ConstantPad``, ``ReflectionPad``,
``ReplicationPad`` and ``CircularPad`` in 1-D and 2-D, each ``fnnet.nn.functional.pad`` with torch's
padding tuple (last dimension first, ``(left, right[, top, bottom])``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

from fnnet.nn._padding import pad
from fnnet.nn.module import Module

__all__ = [
    "CircularPad1d",
    "CircularPad2d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ZeroPad1d",
    "ZeroPad2d",
]


class _PadNd(Module):
    nd = 2
    mode = "constant"

    def __init__(self, padding: int | Sequence[int], *, rngs: Any = None) -> None:
        n = 2 * self.nd
        if isinstance(padding, int) and not isinstance(padding, bool):
            padding = (padding,) * n
        if (
            not isinstance(padding, Sequence)
            or len(padding) != n
            or not all(isinstance(p, int) and not isinstance(p, bool) for p in padding)
        ):
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple of {n} ints, got {padding!r}")
        self.padding = tuple(padding)

    def forward(self, input: jax.typing.ArrayLike) -> jax.Array:
        return pad(input, self.padding, mode=self.mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding: int | Sequence[int], value: float, *, rngs: Any = None) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input: jax.typing.ArrayLike) -> jax.Array:
        return pad(input, self.padding, mode="constant", value=self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """``torch.nn.ConstantPad1d(padding, value)``."""

    nd = 1


class ConstantPad2d(_ConstantPadNd):
    """``torch.nn.ConstantPad2d(padding, value)``."""

    nd = 2


class ZeroPad1d(ConstantPad1d):
    """``torch.nn.ZeroPad1d(padding)``."""

    def __init__(self, padding: int | Sequence[int], *, rngs: Any = None) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """``torch.nn.ZeroPad2d(padding)``."""

    def __init__(self, padding: int | Sequence[int], *, rngs: Any = None) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """``torch.nn.ReflectionPad1d(padding)``."""

    nd, mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """``torch.nn.ReflectionPad2d(padding)``."""

    nd, mode = 2, "reflect"


class ReplicationPad1d(_PadNd):
    """``torch.nn.ReplicationPad1d(padding)``."""

    nd, mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """``torch.nn.ReplicationPad2d(padding)``."""

    nd, mode = 2, "replicate"


class CircularPad1d(_PadNd):
    """``torch.nn.CircularPad1d(padding)``."""

    nd, mode = 1, "circular"


class CircularPad2d(_PadNd):
    """``torch.nn.CircularPad2d(padding)``."""

    nd, mode = 2, "circular"
