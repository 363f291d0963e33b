"""``torch.nn.LayerNorm`` and ``torch.nn.GroupNorm`` (torch/nn/modules/normalization.py).

Flax's ``nnx.LayerNorm``/``nnx.GroupNorm`` differ: they compute the variance as ``E[x²] - E[x]²`` by
default (fnnet: two passes, as torch), ``nnx.LayerNorm`` normalises over the last axis only and takes
``num_features`` rather than a shape, and ``nnx.GroupNorm`` puts channels on the last axis and
names its parameters ``scale``/``bias`` (torch: ``weight``/``bias``, channels on axis 1).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from fnnet.nn._normalization import group_norm, layer_norm
from fnnet.nn.linear import check_size
from fnnet.nn.module import Module, check_device, float_dtype

__all__ = ["GroupNorm", "LayerNorm"]


class LayerNorm(Module):
    """``torch.nn.LayerNorm(normalized_shape, eps=1e-05, elementwise_affine=True, bias=True, device=None,
    dtype=None)``: normalise over the trailing ``normalized_shape`` dimensions (an int means one).

    ``weight`` (ones) and ``bias`` (zeros) have shape ``normalized_shape``; ``elementwise_affine=False``
    leaves both None, ``bias=False`` only ``bias``.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-05,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        rngs: Any = None,
    ) -> None:
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, Sequence):
            raise TypeError(f"normalized_shape must be an int or a sequence of ints, got {normalized_shape!r}")
        self.normalized_shape = tuple(
            check_size(int(s) if isinstance(s, numbers.Integral) else s, "normalized_shape") for s in normalized_shape
        )
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        check_device(device)
        dt = float_dtype(dtype)
        self.weight = nnx.Param(jnp.ones(self.normalized_shape, dt)) if elementwise_affine else None
        self.bias = nnx.Param(jnp.zeros(self.normalized_shape, dt)) if elementwise_affine and bias else None

    def forward(self, input: jax.typing.ArrayLike) -> jax.Array:
        return layer_norm(
            input,
            self.normalized_shape,
            None if self.weight is None else self.weight.get_value(),
            None if self.bias is None else self.bias.get_value(),
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """``torch.nn.GroupNorm(num_groups, num_channels, eps=1e-05, affine=True, device=None, dtype=None, *,
    bias=True)``: normalise each group of ``num_channels // num_groups`` channels of each example of an
    ``(N, C, *)`` input, then scale and shift per channel (``weight`` ones, ``bias`` zeros, ``(C,)``).
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-05,
        affine: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
        rngs: Any = None,
    ) -> None:
        check_size(num_groups, "num_groups", minimum=1)
        check_size(num_channels, "num_channels")
        if num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        check_device(device)
        dt = float_dtype(dtype)
        self.weight = nnx.Param(jnp.ones((num_channels,), dt)) if affine else None
        self.bias = nnx.Param(jnp.zeros((num_channels,), dt)) if affine and bias else None

    def forward(self, input: jax.typing.ArrayLike) -> jax.Array:
        return group_norm(
            input,
            self.num_groups,
            None if self.weight is None else self.weight.get_value(),
            None if self.bias is None else self.bias.get_value(),
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )
