"""The rest of ``torch.nn.functional``'s losses (Poisson/Gaussian NLL, margin and multi-label losses).

Same conventions as ``fnnet.nn._losses``, whose helpers these reuse: torch 2.13's names, argument
order, keywords and defaults (the legacy ``size_average``/``reduce`` where torch has them), torch's
reductions and its subgradient choices at the kinks: ``clamp_min(v, 0)`` passes the gradient where
``v == 0`` (torch's ``where(v >= 0, grad, 0)``), while the C++ kernels of ``multi_margin_loss`` and
``multilabel_margin_loss`` count a term only where it is strictly positive.

Where fnnet is stricter than torch (a ``ValueError`` naming both shapes/dtypes instead of silent
broadcasting or promotion), as in ``_losses``: targets, second inputs and variances take the input's
shape (torch broadcasts tensors of the same number of dimensions; ``gaussian_nll_loss``'s target and
variance may broadcast into the input's shape, as torch documents), and float arrays must have the
input's dtype. Integer label arrays (``±1``, ``0/1``) are cast to the input's dtype, as torch
promotes them (not ``poisson_nll_loss``'s counts: see there); class-index targets may have any
integer dtype (torch wants int64). Value checks torch does at run time (class index out of range,
negative variance) raise on concrete arrays only.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fnnet.nn._losses import (
    _broadcast_into,
    _concrete,
    _float_input,
    _is_array,
    _like,
    _reduce,
    _reduction,
    _same_shape,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


# --------------------------------------------------------------------------------------- helpers
def _target_like(x: Array, value: ArrayLike, name: str = "target") -> Array:
    """``value`` in ``x``'s dtype: integer label arrays are cast, as torch promotes them; float arrays
    must already have it (``_like``)."""
    if _is_array(value) and jnp.issubdtype(jnp.asarray(value).dtype, jnp.integer):
        return jnp.asarray(value).astype(x.dtype)
    return _like(x, value, name)


def _labelled(input: ArrayLike, target: ArrayLike) -> tuple[Array, Array]:
    x = _float_input(input)
    t = _target_like(x, target)
    _same_shape(x, t)
    return x, t


def _clamp_min0(v: Array) -> Array:
    """torch's ``clamp_min(v, 0)``: gradient 1 where ``v >= 0`` (``jnp.maximum`` gives 0.5 at 0)."""
    return jnp.where(v < 0, 0.0, v)


def _class_indices(target: ArrayLike, name: str = "target") -> Array:
    t = jnp.asarray(target)
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise ValueError(f"expected integer class indices for {name}, got dtype {t.dtype} ({name} shape {t.shape})")
    return t


def _vector_or_matrix(x: Array) -> Array:
    """torch's (C,) / (N, C) / () inputs of the multi-class margin losses as (N, C)."""
    if x.ndim > 2 or (x.ndim > 0 and x.shape[-1] == 0):
        raise ValueError(f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: {x.shape}")
    return x.reshape(1, 1) if x.ndim == 0 else x.reshape(-1, x.shape[-1])


# ----------------------------------------------------------------------------- likelihood losses
def poisson_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.poisson_nll_loss``: ``exp(x) - t·x`` (``x - t·log(x + eps)`` when
    ``log_input=False``), plus with ``full`` the Stirling term ``t·log t - t + ½·log(2πt)`` where
    ``t > 1``.

    Hand-written (optax has no Poisson loss), in torch's formula, so its gradients come out the same,
    including the NaN target gradient at ``t == 0`` with ``full`` (``0·log 0`` is masked in the value,
    not in the derivative). Unlike the label losses, an integer ``target`` array is refused: torch
    computes ``log`` of an integer tensor in float32, so its Stirling term loses precision.
    """
    red = _reduction(size_average, reduce, reduction)
    x = _float_input(input)
    t = _like(x, target, "target")  # not cast from integers: torch's Stirling term would be float32 then
    _same_shape(x, t)
    loss = jnp.exp(x) - t * x if log_input else x - t * jnp.log(x + eps)
    if full:
        stirling = t * jnp.log(t) - t + 0.5 * jnp.log(2 * math.pi * t)
        loss = loss + jnp.where(t <= 1, 0.0, stirling)
    return _reduce(loss, red)


@jax.custom_vjp
def _clamp_var(var: Array, eps: float) -> Array:
    """``max(var, eps)`` whose gradient is the identity: torch clamps a clone under ``no_grad``."""
    return jnp.maximum(var, eps)


def _clamp_var_fwd(var: Array, eps: float) -> tuple[Array, None]:
    return _clamp_var(var, eps), None


def _clamp_var_bwd(_: None, g: Array) -> tuple[Array, None]:
    return g, None


_clamp_var.defvjp(_clamp_var_fwd, _clamp_var_bwd)


def _gaussian_var(x: Array, var: ArrayLike) -> Array:
    """torch's variance shapes: the input's, the input's without its last axis (one variance per
    row), or the input's with exactly one axis of size 1; broadcast to the input's shape."""
    if not _is_array(var):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        return jnp.full(x.shape, var, x.dtype)  # torch: var * ones_like(input)
    v = _like(x, var, "var")
    if _concrete(v) and np.any(np.asarray(v) < 0):
        raise ValueError("var has negative entry/entries")
    if v.shape != x.shape:
        if x.ndim > 0 and x.shape[:-1] == v.shape:
            v = v[..., None]
        elif not (v.ndim == x.ndim and sum(b for a, b in zip(x.shape, v.shape) if a != b) == 1):
            raise ValueError(f"var is of incorrect size: var shape {v.shape} for input shape {x.shape}")
    return jnp.broadcast_to(v, x.shape)


def gaussian_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    var: ArrayLike,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.gaussian_nll_loss``: ``½·(log v + (x - t)²/v)`` (+ ``½·log 2π`` with
    ``full``), with ``v = max(var, eps)``.

    As in torch the clamp is invisible to the gradient (torch clamps a clone under ``no_grad``): the
    variance's gradient is that of the clamped value, passed through even where ``var < eps``.
    ``target`` may broadcast into the input's shape (torch documents one axis of size 1); ``var`` is
    an array or a non-negative Python number. Hand-written: optax has no Gaussian NLL.
    """
    red = _reduction(None, None, reduction)
    x = _float_input(input)
    t = _broadcast_into(x, _target_like(x, target), "target")
    v = _clamp_var(_gaussian_var(x, var), eps)
    loss = 0.5 * (jnp.log(v) + (x - t) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, red)


# --------------------------------------------------------------------------------- margin losses
def hinge_embedding_loss(
    input: ArrayLike,
    target: ArrayLike,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.hinge_embedding_loss``: ``x`` where ``t == 1``, ``max(0, margin - x)``
    where ``t == -1`` (torch's formula: a target that is neither gets both terms).

    Not ``optax.losses.hinge_loss`` (``max(0, 1 - x·t)``, a different loss).
    """
    red = _reduction(size_average, reduce, reduction)
    x, t = _labelled(input, target)
    loss = jnp.where(t != 1, _clamp_min0(margin - x), 0.0) + jnp.where(t != -1, x, 0.0)
    return _reduce(loss, red)


def margin_ranking_loss(
    input1: ArrayLike,
    input2: ArrayLike,
    target: ArrayLike,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.margin_ranking_loss``: ``max(0, -t·(x1 - x2) + margin)``.

    Hand-written (no optax twin). ``input2`` and ``target`` must have ``input1``'s shape (torch
    broadcasts tensors with the same number of dimensions); ``target`` is differentiable, as in torch.
    """
    red = _reduction(size_average, reduce, reduction)
    x1 = _float_input(input1)
    x2 = _like(x1, input2, "input2")
    _same_shape(x1, x2, "input2")
    t = _target_like(x1, target)
    _same_shape(x1, t)
    return _reduce(_clamp_min0(-t * (x1 - x2) + margin), red)


def soft_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.soft_margin_loss``: ``log(1 + exp(-x·t))`` reduced.

    torch's kernels compute ``log1p(exp(-x·t))`` and the gradient ``-t·z/(1 + z)``, ``z = exp(-x·t)``,
    literally: inf and NaN once ``-x·t`` passes ~88.7 in float32 (~709.8 in float64). The same
    expression here gives the same values and, through ``jax.grad``, the same gradient.
    ``jax.nn.softplus(-x·t)`` would stay finite there.
    """
    red = _reduction(size_average, reduce, reduction)
    x, t = _labelled(input, target)
    return _reduce(jnp.log1p(jnp.exp(-x * t)), red)


# ---------------------------------------------------------------------- multi-label / multi-class
def multilabel_soft_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.multilabel_soft_margin_loss``: the mean over the last (class) axis of
    ``-(t·log σ(x) + (1 - t)·log σ(-x))``, times ``weight``, then reduced over the rest.

    The elementwise term is ``optax.sigmoid_binary_cross_entropy``; ``weight`` broadcasts into the
    input's shape (which it may not grow). Input (C,) gives one loss, (N, C) gives N.
    """
    red = _reduction(size_average, reduce, reduction)
    x, t = _labelled(input, target)
    if x.ndim == 0:
        raise ValueError("multilabel_soft_margin_loss: input must have a class axis, got shape ()")
    loss = optax.losses.sigmoid_binary_cross_entropy(x, t)
    if weight is not None:
        loss = loss * _broadcast_into(x, weight, "weight")
    return _reduce(jnp.sum(loss, axis=-1) / x.shape[-1], red)


def multi_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    p: int = 1,
    margin: float = 1.0,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.multi_margin_loss``: per sample ``Σ_{d≠y} w_y·max(0, margin - x_y + x_d)^p / C``.

    Input (C,) or (N, C) (or a scalar, one class), target (N,) class indices (() or (1,) for a single
    sample: the ``none`` output has the target's shape, as in torch). ``weight`` (C,) scales by the
    target class's weight. A term counts only where ``margin - x_y + x_d > 0`` (torch's kernel, also
    for its gradient). Not ``optax.losses.multiclass_hinge_loss``, which takes the max over classes.
    """
    red = _reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    x = _vector_or_matrix(_float_input(input))
    n, c = x.shape
    t = _class_indices(target)
    if t.ndim > 1 or t.size != n:
        raise ValueError(f"inconsistent target size, expected {n} but got {t.shape}")
    if _concrete(t) and np.any((np.asarray(t) < 0) | (np.asarray(t) >= c)):
        raise ValueError(f"target out of range: target {np.asarray(t).tolist()} for {c} classes")
    hit = t.reshape(n, 1) == jnp.arange(c).reshape(1, c)
    u = jnp.sum(jnp.where(hit, x, 0.0), axis=1, keepdims=True)  # x[y], exact
    z = margin - u + x
    h = jnp.where(z > 0, z if p == 1 else z * z, 0.0)
    if weight is not None:
        w = _like(x, weight, "weight")
        if w.ndim != 1:
            raise ValueError("weight must be one-dimensional")
        if w.shape != (c,):
            raise ValueError(f"inconsistent weight size, expected {c} but got {w.shape}")
        h = h * jnp.sum(jnp.where(hit, w.reshape(1, c), 0.0), axis=1, keepdims=True)
    per = jnp.sum(jnp.where(hit, 0.0, h), axis=1) / c
    per = jnp.where(jnp.any(hit, axis=1), per, jnp.nan)  # a class out of range (only under jit): NaN
    return per.reshape(t.shape) if red == "none" else _reduce(per, red)


def multilabel_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.multilabel_margin_loss``: per sample
    ``Σ_j Σ_{d not a target} max(0, 1 - x[y_j] + x[d]) / C``.

    ``target`` has the input's shape and holds class indices, ended by the first ``-1`` (entries after
    it are ignored; all must lie in [-1, C), as torch checks). A term counts only where it is strictly
    positive (torch's kernel). Input (C,) (or a scalar) gives one loss, (N, C) gives N. No optax twin.
    """
    red = _reduction(size_average, reduce, reduction)
    x0 = _float_input(input)
    x = _vector_or_matrix(x0)
    n, c = x.shape
    t0 = _class_indices(target)
    if t0.shape != x0.shape:
        raise ValueError(f"inconsistent target size: {t0.shape} for input of size: {x0.shape}")
    if _concrete(t0) and np.any((np.asarray(t0) < -1) | (np.asarray(t0) >= c)):
        raise ValueError(f"argument #2 'target' is out of range: values must lie in [-1, {c}), got {t0.tolist()}")
    t = t0.reshape(n, c)
    first_end = jnp.min(jnp.where(t < 0, jnp.arange(c).reshape(1, c), c), axis=1, keepdims=True)
    valid = jnp.arange(c).reshape(1, c) < first_end  # the labels before the first -1
    hits = (t.reshape(n, c, 1) == jnp.arange(c).reshape(1, 1, c)) & valid.reshape(n, c, 1)  # (n, j, d)
    is_target = jnp.any(hits, axis=1)  # (n, d)
    u = jnp.sum(jnp.where(hits, x.reshape(n, 1, c), 0.0), axis=2)  # (n, j): x[y_j]
    z = 1 - u.reshape(n, c, 1) + x.reshape(n, 1, c)
    counted = valid.reshape(n, c, 1) & ~is_target.reshape(n, 1, c) & (z > 0)
    per = jnp.sum(jnp.where(counted, z, 0.0), axis=(1, 2)) / c
    if red == "none":
        return per if x0.ndim == 2 else per.reshape(())
    return _reduce(per, red)


__all__ = [
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "margin_ranking_loss",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "multi_margin_loss",
    "multilabel_margin_loss",
]
