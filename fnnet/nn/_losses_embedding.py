"""``torch.nn.functional``'s embedding losses: cosine embedding and the two triplet margin losses.

Same conventions as ``fnnet.nn._losses`` and ``_losses_extra`` (torch's names, keywords, defaults,
legacy ``size_average``/``reduce``, reductions; ``clamp_min(v, 0)`` passes the gradient at ``v == 0``).
Stricter than torch: the inputs of one loss must have one shape (torch broadcasts tensors with the
same number of dimensions) and one float dtype; ``±1`` targets may be integer arrays.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fnnet.nn._losses import _float_input, _like, _reduce, _reduction, _same_shape
from fnnet.nn._losses_extra import _clamp_min0, _target_like

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

# torch's cosine_embedding_loss adds EPSILON = 1e-12 to both squared norms, a C++ float even in
# float64 (9.99999996e-13; with 1e-12 a zero vector's gradient differs by 2e-9 relative).
_EPSILON = float(np.float32(1e-12))


# -------------------------------------------------------------------------------- vector norms
@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _vector_norm(v: Array, p: float) -> Array:
    """torch's ``linalg.vector_norm(v, p, dim=-1)`` with torch's gradient (``norm_backward``): 0 where
    the norm is 0 (``jnp.linalg.norm`` gives NaN), ``sign`` for p = 1, ties of p = ±inf share equally."""
    a = jnp.abs(v)
    if p == 2:
        return jnp.sqrt(jnp.sum(v * v, axis=-1))
    if p == 1:
        return jnp.sum(a, axis=-1)
    if p == 0:
        return jnp.sum(v != 0, axis=-1).astype(v.dtype)
    if math.isinf(p):
        return jnp.max(a, axis=-1) if p > 0 else jnp.min(a, axis=-1)
    return jnp.sum(a**p, axis=-1) ** (1 / p)


def _vector_norm_fwd(v: Array, p: float) -> tuple[Array, tuple[Array, Array]]:
    norm = _vector_norm(v, p)
    return norm, (v, norm)


def _vector_norm_bwd(p: float, res: tuple[Array, Array], g: Array) -> tuple[Array]:
    v, norm = res
    g, n, a = g[..., None], norm[..., None], jnp.abs(v)
    if p == 0:
        return (jnp.zeros_like(v),)
    if p == 1:
        return (jnp.sign(v) * g,)
    if p == 2:
        return (g * jnp.where(n == 0, 0.0, v / n),)
    if math.isinf(p):
        mask = (a == n) | jnp.isnan(a)
        return (jnp.sign(v) * (g / jnp.sum(mask, axis=-1, keepdims=True) * mask),)
    if p < 1:
        return (jnp.sign(v) * jnp.where(v == 0, 0.0, a ** (p - 1)) * g * n ** (1 - p),)
    scale = jnp.where(n == 0, 0.0, g / n ** (p - 1))
    return ((jnp.sign(v) * a ** (p - 1) if p < 2 else v * a ** (p - 2)) * scale,)


_vector_norm.defvjp(_vector_norm_fwd, _vector_norm_bwd)


def _pairwise_distance(x1: Array, x2: Array, p: float = 2.0, eps: float = 1e-6) -> Array:
    """torch's ``pairwise_distance``: ``‖x1 - x2 + eps‖_p`` over the last axis (a scalar's own |·|)."""
    d = x1 - x2 + eps
    return _vector_norm(d.reshape(1) if d.ndim == 0 else d, p)


# ------------------------------------------------------------------------------------- losses
def cosine_embedding_loss(
    input1: ArrayLike,
    input2: ArrayLike,
    target: ArrayLike,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.cosine_embedding_loss``: ``1 - cos`` where ``t == 1``,
    ``max(0, cos - margin)`` where ``t == -1`` (0 for other targets).

    torch's cosine: ``Σx1·x2 / sqrt((Σx1² + ε)·(Σx2² + ε))``, ε = float32(1e-12) (so a zero vector
    gives cos 0 and large finite gradients, reproduced). Inputs (N, D) with target (N,), or (D,) with a scalar
    target. Not ``optax.losses.cosine_similarity``, which clips each norm at ``epsilon`` instead.
    """
    red = _reduction(size_average, reduce, reduction)
    x1 = _float_input(input1)
    x2 = _like(x1, input2, "input2")
    t = _target_like(x1, target)
    if t.ndim > 1:
        raise ValueError(f"0D or 1D target tensor expected, multi-target not supported (target shape {t.shape})")
    if x1.ndim != t.ndim + 1 or x2.ndim != t.ndim + 1:
        raise ValueError(
            f"{t.ndim}D target tensor expects {t.ndim + 1}D input tensors, but found inputs with sizes "
            f"{list(x1.shape)} and {list(x2.shape)}."
        )
    _same_shape(x1, x2, "input2")
    if t.shape != x1.shape[:-1]:
        raise ValueError(f"target shape {t.shape} must be {x1.shape[:-1]} for input shape {x1.shape}")
    prod = jnp.sum(x1 * x2, axis=-1)
    mag1 = jnp.sum(x1 * x1, axis=-1) + _EPSILON
    mag2 = jnp.sum(x2 * x2, axis=-1) + _EPSILON
    cos = prod / jnp.sqrt(mag1 * mag2)
    loss = jnp.where(t == 1, 1 - cos, 0.0) + jnp.where(t == -1, _clamp_min0(cos - margin), 0.0)
    return _reduce(loss, red)


def _triplet_inputs(anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike) -> tuple[Array, Array, Array]:
    a = _float_input(anchor)
    p, n = _like(a, positive, "positive"), _like(a, negative, "negative")
    if not a.ndim == p.ndim == n.ndim:
        raise ValueError(
            "The anchor, positive, and negative tensors are expected to have the same number of dimensions, "
            f"but got: anchor {a.ndim}D, positive {p.ndim}D, and negative {n.ndim}D inputs"
        )
    _same_shape(a, p, "positive")
    _same_shape(a, n, "negative")
    return a, p, n


def _triplet(a: Array, p: Array, n: Array, distance: Callable, margin: float, swap: bool, reduction: str) -> Array:
    d_pos, d_neg = distance(a, p), distance(a, n)
    if swap:  # Balntas et al.: the positive as anchor when it is closer to the negative
        d_neg = jnp.minimum(d_neg, distance(p, n))  # ties split the gradient, as torch.minimum
    return _reduce(_clamp_min0(margin + d_pos - d_neg), reduction)


def triplet_margin_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.triplet_margin_loss``: ``max(0, margin + d(a, pos) - d(a, neg))`` with
    ``d(x, y) = ‖x - y + eps‖_p`` over the last axis (``swap``: ``d(a, neg)`` becomes
    ``min(d(a, neg), d(pos, neg))``).

    Any ``p`` (incl. 0, fractional, negative and ±inf) with torch's norm gradients. Not
    ``optax.losses.triplet_margin_loss``: it computes ``(Σ(x - y)^p + eps)^(1/p)`` (eps inside the
    root, no absolute value, so odd ``p`` go wrong), has no ``swap`` and no reduction.
    """
    red = _reduction(size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    a, pos, neg = _triplet_inputs(anchor, positive, negative)
    return _triplet(a, pos, neg, lambda x, y: _pairwise_distance(x, y, p, eps), margin, swap, red)


def triplet_margin_with_distance_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    *,
    distance_function: Callable[[Array, Array], Array] | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.triplet_margin_with_distance_loss``: ``triplet_margin_loss`` with any
    ``distance_function(x, y)`` (a JAX function; default torch's ``pairwise_distance``, p = 2,
    eps = 1e-6)."""
    red = _reduction(None, None, reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    a, pos, neg = _triplet_inputs(anchor, positive, negative)
    distance = _pairwise_distance if distance_function is None else distance_function
    return _triplet(a, pos, neg, distance, margin, swap, red)


__all__ = ["cosine_embedding_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss"]
