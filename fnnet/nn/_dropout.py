"""``torch.nn.functional.dropout`` with an explicit key, per tensor or per example.

torch draws the mask from its global generator; here the key is an argument. ``key`` is one PRNG key
(the mask for the whole input is drawn from it) or one key per example: an array of ``N`` typed keys
(or ``(N, 2)`` raw ``uint32`` keys) for an input of ``N`` rows, in which case row ``b``'s mask depends
only on ``key[b]``. That is what lets fnnet's training core draw the same masks for an example
whether its batch runs on one device or is split over many (DESIGN.md principle 5).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["dropout"]


def check_probability(p: float) -> float:
    """torch's check: ``dropout probability has to be between 0 and 1, but got p``."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def _is_key_batch(key: jax.Array) -> bool:
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key.ndim == 1
    return key.ndim == 2


def keep_mask(key: jax.Array, shape: tuple[int, ...], keep: float) -> jax.Array:
    """Bernoulli(``keep``) mask of ``shape``: from one key, or row by row from a batch of keys."""
    if _is_key_batch(key):
        if not shape or key.shape[0] != shape[0]:
            raise ValueError(f"{key.shape[0]} per-example keys given for an input of shape {shape}")
        return jax.vmap(lambda k: jax.random.bernoulli(k, keep, shape[1:]))(key)
    return jax.random.bernoulli(key, keep, shape)


def dropout(
    input: jax.typing.ArrayLike, p: float = 0.5, training: bool = True, inplace: bool = False, *, key=None
) -> jax.Array:
    """``torch.nn.functional.dropout``: zero each element with probability ``p``, scale the rest by
    ``1 / (1 - p)`` (inverted dropout), only when ``training``. ``p = 1`` gives zeros, as torch.

    ``inplace`` is accepted and ignored (JAX arrays are immutable). ``key`` is required when
    ``training`` and ``0 < p``: one key, or one key per example (see the module docstring).
    """
    p = check_probability(p)
    x = jnp.asarray(input)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return jnp.zeros_like(x)
    if key is None:
        raise ValueError("dropout in training mode needs key= (a PRNG key, or one key per example)")
    keep = keep_mask(key, x.shape, 1.0 - p)
    return x * (keep.astype(x.dtype) / jnp.asarray(1.0 - p, x.dtype))
