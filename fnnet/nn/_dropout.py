"""``torch.nn.functional.dropout`` with an explicit key, per tensor or per example.

torch draws the mask from its global generator; here the key is an argument. ``key`` is one PRNG key
(the mask for the whole input is drawn from it) or one key per example: an array of ``N`` typed keys
(or ``(N, 2)`` raw ``uint32`` keys) for an input of ``N`` rows, in which case row ``b``'s mask depends
only on ``key[b]``. That is what lets fnnet's training core draw the same masks for an example
whether its batch runs on one device or is split over many (DESIGN.md principle 5).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

__all__ = ["dropout", "dropout2d"]


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
    ``1 / (1 - p)`` (inverted dropout), only when ``training``. ``p = 1`` gives ``input * 0`` as torch
    (zeros, and NaN where the input is infinite or NaN).

    ``inplace`` is accepted and ignored (JAX arrays are immutable). ``key`` is required when
    ``training`` and ``0 < p``: one key, or one key per example (see the module docstring).
    """
    p = check_probability(p)
    x = jnp.asarray(input)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * jnp.zeros((), x.dtype)
    if key is None:
        raise ValueError("dropout in training mode needs key= (a PRNG key, or one key per example)")
    keep = keep_mask(key, x.shape, 1.0 - p)
    return x * (keep.astype(x.dtype) / jnp.asarray(1.0 - p, x.dtype))


_DEPRECATED_RANK = (
    "dropout2d: Received a {}-D input to dropout2d, which is deprecated and will result in an error in a "
    "future release. To retain the behavior and silence this warning, please use dropout instead. Note that "
    "dropout2d exists to provide channel-wise dropout on inputs with 2 spatial dimensions, a channel "
    "dimension, and an optional batch dimension (i.e. 3D or 4D inputs)."
)
_THREE_D = (
    "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior is "
    "desired - input is interpreted as shape (N, C, L), where C is the channel dim. This behavior will "
    "change in a future release to interpret the input as one without a batch dimension, i.e. shape "
    "(C, H, W). To maintain the 1D channel-wise dropout behavior, please switch to using dropout1d instead."
)


def dropout2d(
    input: jax.typing.ArrayLike, p: float = 0.5, training: bool = True, inplace: bool = False, *, key=None
) -> jax.Array:
    """``torch.nn.functional.dropout2d``: zero whole channels ``input[n, c]`` with probability ``p``,
    scale the rest by ``1 / (1 - p)``, only when ``training``.

    torch 2.13's rules, warnings included: a 4-D input is ``(N, C, H, W)``; a 3-D input is read as
    ``(N, C, L)`` (channel-wise 1-D dropout, with torch's warning that this will change to the
    unbatched ``(C, H, W)``); other ranks warn and drop ``input[n, c]`` slices all the same (2-D:
    single elements; fewer than 2 dimensions raise in training). ``key``: one key, or one key per
    example (``input.shape[0]`` keys), as for :func:`dropout`; an example's channel mask then depends
    only on its key. ``inplace`` is accepted and ignored.
    """
    p = check_probability(p)
    x = jnp.asarray(input)
    if x.ndim not in (3, 4):
        warnings.warn(_DEPRECATED_RANK.format(x.ndim), stacklevel=2)
    if x.ndim == 3:
        warnings.warn(_THREE_D, stacklevel=2)
    if not training or p == 0.0 or x.size == 0:
        return x
    if p == 1.0:
        return x * jnp.zeros((), x.dtype)
    if x.ndim < 2:
        raise ValueError("Feature dropout requires at least 2 dimensions in the input")
    if key is None:
        raise ValueError("dropout2d in training mode needs key= (a PRNG key, or one key per example)")
    keep = keep_mask(key, x.shape[:2] + (1,) * (x.ndim - 2), 1.0 - p)
    return x * (keep.astype(x.dtype) / jnp.asarray(1.0 - p, x.dtype))
