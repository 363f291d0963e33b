"""Shape ops and reductions of ``fnnet.nn.from_torch``'s interpreter, with torch's semantics: ``view``/``reshape``,
``permute``, ``squeeze`` (a dim of another size is left), ``expand``, ``chunk``/``split``, ``cat``/``stack``;
``mean``/``sum`` over dims, ``max``/``min`` with a dim (the gradient reaches the picked element, as torch's).
Sizes stay Python ints, static under jit.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnnet.nn._convert_ops import _is_array, _maximum, _minimum
from fnnet.nn.flatten import flatten as _flatten


class ValuesIndices(NamedTuple):
    """What ``torch.max(x, dim)`` returns (``torch.return_types.max``): ``values`` and ``indices``."""

    values: jax.Array
    indices: jax.Array


def _dim(dim: int, ndim: int) -> int:
    size = builtins.max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], but got {dim})")
    return dim % size


def _shape_args(shape: tuple) -> tuple[int, ...]:
    """``view(2, 3)`` or ``view((2, 3))`` / ``view(torch.Size)``: the shape as a tuple."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _check_ints(shape: tuple, what: str) -> tuple[int, ...]:
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{what}: sizes must be Python ints (static under jit), got {s!r}")
    return tuple(int(s) for s in shape)


def view(self: jax.Array, *shape: Any) -> jax.Array:
    """``Tensor.view(*shape)`` / ``reshape`` (one size may be -1)."""
    return jnp.reshape(self, _check_ints(_shape_args(shape), "view"))


def _reshape_fn(input: jax.Array, shape: Sequence[int]) -> jax.Array:
    return jnp.reshape(input, _check_ints(tuple(shape), "reshape"))


def _view_as(self: jax.Array, other: jax.Array) -> jax.Array:
    return jnp.reshape(self, other.shape)


def _size(self: jax.Array, dim: int | None = None) -> Any:
    """``Tensor.size(dim=None)``: a tuple of Python ints, or one int."""
    if dim is None:
        return tuple(self.shape)
    return int(self.shape[_dim(dim, self.ndim)])


def _ndim(self: jax.Array) -> int:
    return self.ndim


def _numel(self: jax.Array) -> int:
    return int(self.size)


def _flatten_method(self: jax.Array, start_dim: int = 0, end_dim: int = -1) -> jax.Array:
    return _flatten(self, start_dim, end_dim)


def _unflatten(self: jax.Array, dim: int, sizes: Sequence[int]) -> jax.Array:
    d = _dim(dim, self.ndim)
    return jnp.reshape(self, self.shape[:d] + tuple(sizes) + self.shape[d + 1 :])


def permute(input: jax.Array, *dims: Any) -> jax.Array:
    """``x.permute(*dims)`` / ``torch.permute(input, dims)``."""
    order = _shape_args(dims)
    return jnp.transpose(input, tuple(_dim(d, input.ndim) for d in order))


def transpose(input: jax.Array, dim0: int, dim1: int) -> jax.Array:
    return jnp.swapaxes(input, _dim(dim0, input.ndim), _dim(dim1, input.ndim))


def _t(input: jax.Array) -> jax.Array:
    """``torch.t``: transposes a 2-D tensor; 0-D and 1-D come back as they are."""
    if input.ndim > 2:
        raise ValueError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return input.T if input.ndim == 2 else input


def unsqueeze(input: jax.Array, dim: int) -> jax.Array:
    size = input.ndim + 1
    if not -size <= dim < size:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], but got {dim})")
    return jnp.expand_dims(input, dim % size)


def squeeze(input: jax.Array, dim: Any = None) -> jax.Array:
    """``torch.squeeze``: drop the given size-1 dims (a dim of another size is left, as torch does)."""
    if dim is None:
        return jnp.squeeze(input)
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = tuple(sorted({_dim(d, input.ndim) for d in dims if input.ndim and input.shape[_dim(d, input.ndim)] == 1}))
    return jnp.squeeze(input, axes) if axes else input


def _expand(self: jax.Array, *sizes: Any) -> jax.Array:
    """``Tensor.expand(*sizes)``: -1 keeps a dim; new leading dims may be added."""
    sizes = _check_ints(_shape_args(sizes), "expand")
    lead = len(sizes) - self.ndim
    if lead < 0:
        raise ValueError(f"expand: the number of sizes provided ({len(sizes)}) must be >= the tensor's ({self.ndim})")
    shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    return jnp.broadcast_to(self, shape)


def _expand_as(self: jax.Array, other: jax.Array) -> jax.Array:
    return jnp.broadcast_to(self, other.shape)


def _repeat(self: jax.Array, *sizes: Any) -> jax.Array:
    """``Tensor.repeat(*sizes)``: ``jnp.tile`` (at least as many sizes as dims, as torch requires)."""
    reps = _check_ints(_shape_args(sizes), "repeat")
    if len(reps) < self.ndim:
        raise ValueError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    return jnp.tile(self, reps)


def cat(tensors: Sequence[jax.Array], dim: int = 0) -> jax.Array:
    """``torch.cat(tensors, dim=0)``."""
    tensors = list(tensors)
    return jnp.concatenate(tensors, axis=_dim(dim, tensors[0].ndim))


def stack(tensors: Sequence[jax.Array], dim: int = 0) -> jax.Array:
    tensors = list(tensors)
    size = tensors[0].ndim + 1
    if not -size <= dim < size:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], but got {dim})")
    return jnp.stack(tensors, axis=dim % size)


def chunk(input: jax.Array, chunks: int, dim: int = 0) -> tuple[jax.Array, ...]:
    """``torch.chunk``: pieces of ``ceil(size / chunks)`` (the last smaller; maybe fewer pieces)."""
    d = _dim(dim, input.ndim)
    size = input.shape[d]
    step = -(-size // chunks) if size else 1
    return tuple(jax.lax.slice_in_dim(input, i, builtins.min(i + step, size), axis=d) for i in range(0, size, step))


def split(tensor: jax.Array, split_size_or_sections: Any, dim: int = 0) -> tuple[jax.Array, ...]:
    """``torch.split``: pieces of ``split_size`` (the last smaller), or of the listed sizes."""
    d = _dim(dim, tensor.ndim)
    size = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        bounds = [(i, builtins.min(i + step, size)) for i in range(0, size, step)] or [(0, 0)]
    else:
        sections = list(split_size_or_sections)
        if sum(sections) != size:
            raise ValueError(f"split_with_sizes expects split_sizes to sum exactly to {size}, got {sections}")
        starts = np.cumsum([0, *sections[:-1]])
        bounds = [(int(s), int(s) + n) for s, n in zip(starts, sections)]
    return tuple(jax.lax.slice_in_dim(tensor, a, b, axis=d) for a, b in bounds)


# ---- reductions ------------------------------------------------------------------------------------


def _axes(dim: Any, ndim: int) -> tuple[int, ...] | None:
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims:  # torch: an empty dim list reduces over every dim
        return None
    return tuple(_dim(d, ndim) for d in dims)


def _cast(x: jax.Array, dtype: Any) -> jax.Array:
    return x if dtype is None else x.astype(dtype)


def mean(input: jax.Array, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> jax.Array:
    """``torch.mean(input, dim=None, keepdim=False, *, dtype=None)`` (``Tensor.mean``)."""
    x = _cast(input, dtype)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"mean(): could not infer output dtype. Input dtype must be floating point, got {x.dtype}")
    return jnp.mean(x, axis=_axes(dim, x.ndim), keepdims=keepdim)


def sum_(input: jax.Array, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> jax.Array:
    """``torch.sum(input, dim=None, keepdim=False, *, dtype=None)`` (``Tensor.sum``)."""
    x = _cast(input, dtype)
    return jnp.sum(x, axis=_axes(dim, x.ndim), keepdims=keepdim)


def _arg_reduce(input: jax.Array, dim: int, keepdim: bool, pick: Callable) -> ValuesIndices:
    """``(values, indices)`` along ``dim``; the gradient reaches the one picked element, as torch's."""
    d = _dim(dim, input.ndim)
    idx = pick(input, axis=d, keepdims=True)
    values = jnp.take_along_axis(input, idx, axis=d)
    if not keepdim:
        values, idx = jnp.squeeze(values, d), jnp.squeeze(idx, d)
    return ValuesIndices(values, idx)


def max_(input: jax.Array, dim: Any = None, keepdim: bool = False) -> Any:
    """``torch.max(input)``, ``torch.max(input, dim, keepdim=False)`` -> ``(values, indices)``, or
    ``torch.max(input, other)`` (``maximum``)."""
    if dim is None:
        return jnp.max(input)
    if _is_array(dim):
        return _maximum(input, dim)
    return _arg_reduce(input, dim, keepdim, jnp.argmax)


def min_(input: jax.Array, dim: Any = None, keepdim: bool = False) -> Any:
    """``torch.min``, as :func:`max_`."""
    if dim is None:
        return jnp.min(input)
    if _is_array(dim):
        return _minimum(input, dim)
    return _arg_reduce(input, dim, keepdim, jnp.argmin)


def amax(input: jax.Array, dim: Any = (), keepdim: bool = False) -> jax.Array:
    """``torch.amax``: ties share the gradient equally (``jnp.max``'s rule too)."""
    return jnp.max(input, axis=_axes(dim, input.ndim), keepdims=keepdim)


def amin(input: jax.Array, dim: Any = (), keepdim: bool = False) -> jax.Array:
    return jnp.min(input, axis=_axes(dim, input.ndim), keepdims=keepdim)


def argmax(input: jax.Array, dim: int | None = None, keepdim: bool = False) -> jax.Array:
    if dim is None:
        return jnp.argmax(input.reshape(-1))
    return jnp.argmax(input, axis=_dim(dim, input.ndim), keepdims=keepdim)


def argmin(input: jax.Array, dim: int | None = None, keepdim: bool = False) -> jax.Array:
    if dim is None:
        return jnp.argmin(input.reshape(-1))
    return jnp.argmin(input, axis=_dim(dim, input.ndim), keepdims=keepdim)
