"""``torch.nn.functional.linear``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["linear"]


def add_bias(y: jax.Array, bias: jax.Array | None, axis: int = -1) -> jax.Array:
    """``y + bias`` with ``bias`` laid along ``axis`` of ``y`` (explicit broadcast: no rank promotion)."""
    if bias is None:
        return y
    axis = axis % y.ndim
    shape = [1] * y.ndim
    shape[axis] = bias.shape[0]
    return y + bias.reshape(shape)


def linear(input: jax.typing.ArrayLike, weight: jax.typing.ArrayLike, bias: jax.typing.ArrayLike | None = None):
    """``torch.nn.functional.linear``: ``input @ weight.T + bias``, ``weight`` in torch's ``(out, in)``.

    ``input`` is ``(*, in_features)`` (any number of leading dims, or none).
    """
    x, w = jnp.asarray(input), jnp.asarray(weight)
    if w.ndim not in (1, 2):
        raise ValueError(f"linear: weight must be 1-D or 2-D (out_features, in_features), got shape {w.shape}")
    if x.ndim == 0 or x.shape[-1] != w.shape[-1]:
        raise ValueError(
            f"linear: mat1 and mat2 shapes cannot be multiplied (input shape {x.shape}, weight shape {w.shape}: "
            f"the input's last dim must be in_features={w.shape[-1]})"
        )
    y = jnp.matmul(x, w.T) if w.ndim == 2 else jnp.matmul(x, w)
    return (
        add_bias(y, None if bias is None else jnp.asarray(bias))
        if w.ndim == 2
        else (y if bias is None else y + jnp.asarray(bias))
    )
