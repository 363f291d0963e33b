"""``torch.nn.functional`` activations: torch's names, keywords (``dim``, ``inplace``) and values.

``inplace`` is accepted for torch's signatures and ignored: JAX arrays are immutable, so every
function returns a new array (the value torch's in-place form leaves in the tensor).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

__all__ = ["relu", "sigmoid", "tanh", "softmax", "log_softmax"]


def _float(input: jax.typing.ArrayLike, name: str) -> jax.Array:
    x = jnp.asarray(input)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name}: input must be a floating-point array, got dtype {x.dtype}")
    return x


def relu(input: jax.typing.ArrayLike, inplace: bool = False) -> jax.Array:
    """``torch.nn.functional.relu``: ``max(x, 0)``; gradient 0 at 0 as torch (``jax.nn.relu`` too)."""
    return jax.nn.relu(_float(input, "relu"))


def sigmoid(input: jax.typing.ArrayLike) -> jax.Array:
    """``torch.sigmoid`` / ``F.sigmoid``: ``1 / (1 + exp(-x))`` (``jax.nn.sigmoid``)."""
    return jax.nn.sigmoid(_float(input, "sigmoid"))


def tanh(input: jax.typing.ArrayLike) -> jax.Array:
    """``torch.tanh`` / ``F.tanh``."""
    return jnp.tanh(_float(input, "tanh"))


def _softmax_dim(ndim: int, dim: int | None, name: str) -> int:
    """torch's ``_get_softmax_dim``: an implicit dim is 0 for 0-, 1- and 3-D inputs, else 1 (warned)."""
    if dim is None:
        warnings.warn(
            f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an "
            "argument.",
            UserWarning,
            stacklevel=3,
        )
        return 0 if ndim in (0, 1, 3) else 1
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], but got {dim})")
    return dim % size if ndim else 0


def _as(x: jax.Array, dtype) -> jax.Array:
    return x if dtype is None else x.astype(dtype)


def softmax(input: jax.typing.ArrayLike, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> jax.Array:
    """``torch.nn.functional.softmax(input, dim, dtype=None)`` (``jax.nn.softmax`` over ``dim``).

    ``dtype`` casts the input first, as torch does. A 0-d input gives 1.
    """
    x = _as(_float(input, "softmax"), dtype)
    axis = _softmax_dim(x.ndim, dim, "softmax")
    return jnp.ones_like(x) if x.ndim == 0 else jax.nn.softmax(x, axis=axis)


def log_softmax(input: jax.typing.ArrayLike, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> jax.Array:
    """``torch.nn.functional.log_softmax(input, dim, dtype=None)`` (``jax.nn.log_softmax`` over ``dim``)."""
    x = _as(_float(input, "log_softmax"), dtype)
    axis = _softmax_dim(x.ndim, dim, "log_softmax")
    return jnp.zeros_like(x) if x.ndim == 0 else jax.nn.log_softmax(x, axis=axis)
