"""``torch.nn.Flatten`` and ``torch.nn.Unflatten`` (torch/nn/modules/flatten.py)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from fnnet.nn.module import Module

__all__ = ["Flatten", "Unflatten", "flatten"]


def _dim(dim: int, ndim: int) -> int:
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], but got {dim})")
    return dim % size


def flatten(input: jax.typing.ArrayLike, start_dim: int = 0, end_dim: int = -1) -> jax.Array:
    """``torch.flatten(input, start_dim=0, end_dim=-1)``: merge dims ``start_dim..end_dim`` into one."""
    x = jnp.asarray(input)
    if x.ndim == 0:
        return x.reshape(1)
    s, e = _dim(start_dim, x.ndim), _dim(end_dim, x.ndim)
    if s > e:
        raise ValueError(f"flatten() has invalid args: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
    return x.reshape(x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :])


class Flatten(Module):
    """``torch.nn.Flatten(start_dim=1, end_dim=-1)``."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1, *, rngs: Any = None) -> None:
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: jax.Array) -> jax.Array:
        return flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """``torch.nn.Unflatten(dim, unflattened_size)``: split dim ``dim`` into ``unflattened_size``
    (one entry may be -1)."""

    def __init__(self, dim: int, unflattened_size: tuple[int, ...] | list[int], *, rngs: Any = None) -> None:
        if isinstance(dim, str):
            raise TypeError("named-tensor Unflatten (a str dim) is not supported: pass an int dim")
        if not isinstance(unflattened_size, (tuple, list)) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in unflattened_size
        ):
            raise TypeError(f"unflattened_size must be a tuple of ints, but found {unflattened_size!r}")
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input: jax.Array) -> jax.Array:
        x = jnp.asarray(input)
        d = _dim(self.dim, x.ndim)
        sizes = list(self.unflattened_size)
        if sizes.count(-1) > 1:
            raise ValueError("only one dimension can be inferred (-1) in unflattened_size")
        known = math.prod(s for s in sizes if s != -1)
        if -1 in sizes:
            if known == 0 or x.shape[d] % known:
                raise ValueError(
                    f"unflattened_size {self.unflattened_size} does not divide dim {d} of size {x.shape[d]}"
                )
            sizes[sizes.index(-1)] = x.shape[d] // known
        if math.prod(sizes) != x.shape[d]:
            raise ValueError(
                f"unflattened_size {self.unflattened_size} must multiply to the size of dim {self.dim} ({x.shape[d]})"
            )
        return x.reshape(x.shape[:d] + tuple(sizes) + x.shape[d + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
