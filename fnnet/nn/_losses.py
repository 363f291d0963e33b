"""``torch.nn.functional`` losses as pure JAX functions (their ``torch.nn`` modules are in ``fnnet.nn.loss``).

Each function keeps torch 2.13's name, argument order, keywords and defaults (including the deprecated
``size_average``/``reduce``, which override ``reduction`` with torch's warning) and torch's reduction
rules: class-weighted means divide by the summed weights of the non-ignored targets, so an all-ignored
batch gives NaN for ``reduction="mean"`` as in torch. The elementwise term comes from optax where optax
computes the same thing; each docstring says which optax loss is reused or why none is.

Where fnnet is stricter than torch (a ``ValueError`` naming both shapes/dtypes instead of a warning):
target shapes must equal the input's for the pointwise losses (torch warns and broadcasts ``mse_loss``,
``l1_loss``, ``smooth_l1_loss``, ``huber_loss``, and silently broadcasts ``kl_div``), and float targets
and weights must have the input's dtype (torch promotes for most losses). Python numbers and lists
are cast to the input's dtype. Value checks torch does at run time (class index out of range, BCE
probabilities outside [0, 1]) raise ``ValueError`` on concrete arrays; under ``jit``/``grad`` they
cannot raise, and an out-of-range class index gives NaN instead.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import xlogy

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_REDUCTIONS = ("none", "mean", "sum")


# --------------------------------------------------------------------------------------- helpers
def _reduction(
    size_average: bool | None, reduce: bool | None, reduction: str, allowed: tuple[str, ...] = _REDUCTIONS
) -> str:
    """torch's ``_Reduction``: legacy ``size_average``/``reduce`` override ``reduction``."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if (size_average and reduce) else ("sum" if reduce else "none")
        warnings.warn(
            f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
            UserWarning,
            stacklevel=3,
        )
    if reduction == "elementwise_mean":
        warnings.warn(
            "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
            UserWarning,
            stacklevel=3,
        )
        reduction = "mean"
    if reduction not in allowed:
        raise ValueError(f"{reduction} is not a valid value for reduction; expected one of {allowed}")
    return reduction


def _reduce(loss: Array, reduction: str) -> Array:
    if reduction == "none":
        return loss
    return jnp.sum(loss) if reduction == "sum" else jnp.mean(loss)


def _is_array(value: Any) -> bool:
    return isinstance(value, (jax.Array, np.ndarray, np.generic))


def _float_input(input: ArrayLike) -> Array:
    x = jnp.asarray(input)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"input must be a floating-point array, got dtype {x.dtype}")
    return x


def _like(x: Array, value: ArrayLike, name: str) -> Array:
    """``value`` as an array of ``x``'s dtype: arrays must already have it (torch: 'expected scalar
    type Float but found Double'); Python numbers and lists are cast."""
    if not _is_array(value):
        return jnp.asarray(value, dtype=x.dtype)
    v = jnp.asarray(value)
    if v.dtype != x.dtype:
        raise ValueError(
            f"expected {name} dtype {x.dtype} (the input's dtype) but found {v.dtype}"
            f" ({name} shape {v.shape}, input shape {x.shape})"
        )
    return v


def _same_shape(x: Array, t: Array, name: str = "target") -> None:
    if t.shape != x.shape:
        raise ValueError(f"{name} shape {t.shape} must equal input shape {x.shape}")


def _broadcast_into(x: Array, value: ArrayLike, name: str) -> Array:
    """``value`` broadcast to ``x.shape``, which it must not grow (torch's in-place ops demand it)."""
    v = _like(x, value, name)
    try:
        if np.broadcast_shapes(v.shape, x.shape) == x.shape:
            return jnp.broadcast_to(v, x.shape)
    except ValueError:
        pass
    raise ValueError(f"{name} shape {v.shape} must broadcast to input shape {x.shape}")


def _abs(e: Array) -> Array:
    """``|e|`` with torch's gradient ``sign(e)`` (0 at e == 0; ``jax.grad(jnp.abs)(0.0)`` is 1)."""
    return e * jnp.sign(e)


def _concrete(*arrays: Array) -> bool:
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


def _pointwise(input: ArrayLike, target: ArrayLike) -> tuple[Array, Array]:
    x = _float_input(input)
    t = _like(x, target, "target")
    _same_shape(x, t)
    return x, t


def _weighted(loss: Array, x: Array, weight: ArrayLike | None, reduction: str, mean_over_weights: bool) -> Array:
    """torch 2.13's optional elementwise ``weight`` of mse/l1 (mean = sum(w·l)/sum(w)) and huber
    (mean = mean(w·l))."""
    if weight is None:
        return _reduce(loss, reduction)
    w = _like(x, weight, "weight")
    _same_shape(x, w, "weight")
    loss = loss * w
    if reduction == "mean" and mean_over_weights:
        return jnp.sum(loss) / jnp.sum(w)
    return _reduce(loss, reduction)


# ----------------------------------------------------------------------------- regression losses
def mse_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: ArrayLike | None = None,
) -> Array:
    """``torch.nn.functional.mse_loss``: ``(input - target)**2`` reduced.

    The elementwise term is ``optax.losses.squared_error`` (not ``optax.l2_loss``, which has a 0.5
    factor). With ``weight`` (same shape as input), ``mean`` is ``sum(w·se) / sum(w)`` as in torch.
    """
    red = _reduction(size_average, reduce, reduction)
    x, t = _pointwise(input, target)
    return _weighted(optax.losses.squared_error(x, t), x, weight, red, mean_over_weights=True)


def l1_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: ArrayLike | None = None,
) -> Array:
    """``torch.nn.functional.l1_loss``: ``|input - target|`` reduced (gradient 0 where equal).

    optax has no absolute-error loss; ``e·sign(e)`` gives torch's zero gradient where input equals
    target (``jnp.abs`` has gradient 1 there). With ``weight``, ``mean`` is
    ``sum(w·|e|) / sum(w)`` as in torch.
    """
    red = _reduction(size_average, reduce, reduction)
    x, t = _pointwise(input, target)
    return _weighted(_abs(x - t), x, weight, red, mean_over_weights=True)


def smooth_l1_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Array:
    """``torch.nn.functional.smooth_l1_loss``: ``0.5·e²/beta`` for ``|e| < beta``, else ``|e| - beta/2``.

    Equals ``optax.huber_loss(input, target, delta=beta) / beta``, which is what is used; ``beta=0``
    is ``l1_loss`` as in torch, negative ``beta`` a ``ValueError``.
    """
    if beta < 0:
        raise ValueError(f"smooth_l1_loss does not support negative values for beta, got {beta}")
    red = _reduction(size_average, reduce, reduction)
    x, t = _pointwise(input, target)
    if beta == 0:
        return _reduce(_abs(x - t), red)
    return _reduce(optax.losses.huber_loss(x, t, delta=beta) / beta, red)


def huber_loss(
    input: ArrayLike, target: ArrayLike, reduction: str = "mean", delta: float = 1.0, weight: ArrayLike | None = None
) -> Array:
    """``torch.nn.functional.huber_loss``: ``0.5·e²`` for ``|e| < delta``, else ``delta·(|e| - delta/2)``.

    The elementwise term is ``optax.huber_loss`` (same values and delta semantics; optax returns the
    per-element values, reduced here). With ``weight``, torch 2.13's ``mean`` is ``mean(w·l)``, not
    the ``sum(w·l)/sum(w)`` of ``mse_loss``/``l1_loss``; reproduced as is.
    """
    if delta <= 0:
        raise ValueError(f"huber_loss does not support non-positive values for delta, got {delta}")
    red = _reduction(None, None, reduction)
    x, t = _pointwise(input, target)
    return _weighted(optax.losses.huber_loss(x, t, delta=delta), x, weight, red, mean_over_weights=False)


# ---------------------------------------------------------------------------------- binary losses
@jax.custom_vjp
def _bce(p: Array, t: Array) -> Array:
    """torch's elementwise BCE: both logs clamped at -100 (so p of exactly 0 or 1 stays finite)."""
    return (t - 1) * jnp.maximum(jnp.log1p(-p), -100.0) - t * jnp.maximum(jnp.log(p), -100.0)


def _bce_fwd(p: Array, t: Array) -> tuple[Array, tuple[Array, Array]]:
    return _bce(p, t), (p, t)


# torch's CPU kernel clamps with a float32 EPSILON = 1e-12 (also in float64): 9.99999996e-13.
_BCE_EPS = float(np.float32(1e-12))


def _bce_bwd(res: tuple[Array, Array], g: Array) -> tuple[Array, Array]:
    # torch/_decomp binary_cross_entropy_backward and binary_cross_entropy_target_backward.
    p, t = res
    return g * (p - t) / jnp.maximum(p * (1 - p), _BCE_EPS), -g * jnp.log(p / (1 - p))


_bce.defvjp(_bce_fwd, _bce_bwd)


def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.binary_cross_entropy`` on probabilities.

    Hand-written (optax only has the logits form, ``sigmoid_binary_cross_entropy``): torch clamps
    each log at -100 and its gradient is ``(p - t) / max(p·(1 - p), 1e-12)`` (a ``jax.custom_vjp``),
    so probabilities of exactly 0 and 1 give torch's finite losses (100) and gradients (±1e12).
    ``weight`` broadcasts to the input's shape.
    """
    red = _reduction(size_average, reduce, reduction)
    x, t = _pointwise(input, target)
    if _concrete(x, t):
        for name, a in (("input", x), ("target", t)):
            a_np = np.asarray(a)
            if not np.all((a_np >= 0) & (a_np <= 1)):
                raise ValueError(f"all elements of {name} should be between 0 and 1")
    loss = _bce(x, t)
    if weight is not None:
        loss = loss * _broadcast_into(x, weight, "weight")
    return _reduce(loss, red)


def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: ArrayLike | None = None,
) -> Array:
    """``torch.nn.functional.binary_cross_entropy_with_logits``.

    The elementwise term is ``optax.sigmoid_binary_cross_entropy``; optax has no ``pos_weight``, so
    ``(pos_weight - 1)·t·(-log σ(x))`` is added (torch's ``(1 + (pw - 1)·t)`` factor on the log-sigmoid
    term). ``weight`` and ``pos_weight`` broadcast to the input's shape, which they may not grow.
    """
    red = _reduction(size_average, reduce, reduction)
    x, t = _pointwise(input, target)
    loss = optax.losses.sigmoid_binary_cross_entropy(x, t)
    if pos_weight is not None:
        pw = _broadcast_into(x, pos_weight, "pos_weight")
        loss = loss - (pw - 1) * t * jax.nn.log_sigmoid(x)
    if weight is not None:
        loss = loss * _broadcast_into(x, weight, "weight")
    return _reduce(loss, red)


# ------------------------------------------------------------------------------------ class losses
def _class_axis(x: Array) -> int:
    if x.ndim == 0:
        raise ValueError("input must have shape (C,), (N, C) or (N, C, d1, ...); got shape ()")
    return 0 if x.ndim == 1 else 1


def _class_weight(x: Array, weight: ArrayLike | None, axis: int) -> Array | None:
    """Class weights of shape (C,), returned as (1, C, 1, ...) to broadcast against the input."""
    if weight is None:
        return None
    w = _like(x, weight, "weight")
    n_classes = x.shape[axis]
    if w.shape != (n_classes,):
        raise ValueError(
            f"weight should be defined for all {n_classes} classes: expected shape "
            f"({n_classes},) for input shape {x.shape}, got {w.shape}"
        )
    return w.reshape([n_classes if i == axis else 1 for i in range(x.ndim)])


def _class_target(x: Array, target: ArrayLike, axis: int, ignore_index: int) -> Array:
    t = jnp.asarray(target)
    expected = x.shape[:axis] + x.shape[axis + 1 :]
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise ValueError(
            f"expected integer class indices for target of shape {expected}, got dtype "
            f"{t.dtype} (target shape {t.shape}, input shape {x.shape})"
        )
    if t.shape != expected:
        raise ValueError(f"target shape {t.shape} does not match input shape {x.shape}: expected {expected}")
    if _concrete(t):
        t_np, n_classes = np.asarray(t), x.shape[axis]
        bad = (t_np != ignore_index) & ((t_np < 0) | (t_np >= n_classes))
        if np.any(bad):
            raise ValueError(
                f"target {t_np[bad].flat[0]} is out of bounds for {n_classes} classes (ignore_index={ignore_index})"
            )
    return t


def _nll_terms(logp: Array, t: Array, w_b: Array | None, ignore_index: int, axis: int) -> tuple[Array, Array, Array]:
    """Per position ``-w[t]·logp[t]`` and ``w[t]`` (both 0 where ignored) and the ignore mask.

    Hand-written (optax's integer-label cross entropy has no class weights or ignore_index). The
    class is picked with a one-hot ``where`` and a sum (exact, and cheaper to compile than a
    gather/scatter pair); an out-of-range index that is not ignored gives NaN (only reachable
    under ``jit``, where it cannot raise).
    """
    n_classes = logp.shape[axis]
    classes = jnp.arange(n_classes).reshape([n_classes if i == axis else 1 for i in range(logp.ndim)])
    hit = jnp.expand_dims(t, axis) == classes
    picked = jnp.sum(jnp.where(hit, logp, 0.0), axis=axis)
    w = jnp.ones_like(picked) if w_b is None else jnp.sum(jnp.where(hit, w_b, 0.0), axis=axis)
    ignored = t == ignore_index
    w = jnp.where(jnp.any(hit, axis=axis) | ignored, w, jnp.nan)  # finite where ignored: no NaN
    loss = jnp.where(ignored, 0.0, -w * picked)  # leaks into the gradients
    return loss, jnp.where(ignored, 0.0, w), ignored


def _weighted_mean(loss: Array, total_weight: Array, reduction: str) -> Array:
    if reduction == "none":
        return loss
    return jnp.sum(loss) if reduction == "sum" else jnp.sum(loss) / total_weight


def nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.nll_loss`` on log-probabilities of shape (C,), (N, C) or (N, C, d1, ...).

    ``mean`` divides by the summed class weights of the non-ignored targets (NaN when all are
    ignored, with zero gradients, as in torch). Any integer target dtype is accepted (torch wants
    int64 or uint8). Hand-written: optax has no NLL loss with weights or ignore_index.
    """
    red = _reduction(size_average, reduce, reduction)
    x = _float_input(input)
    axis = _class_axis(x)
    w = _class_weight(x, weight, axis)
    t = _class_target(x, target, axis, ignore_index)
    loss, total, _ = _nll_terms(x, t, w, ignore_index, axis)
    return _weighted_mean(loss, jnp.sum(total), red)


def cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Array:
    """``torch.nn.functional.cross_entropy`` on logits of shape (C,), (N, C) or (N, C, d1, ...).

    As in torch, a target with the input's shape holds class probabilities (float), any other
    shape class indices (integer, shape without the class axis). Class indices: ``log_softmax``
    then ``nll_loss``, plus torch's smoothing term ``label_smoothing/C · Σ_c -w_c·logp_c`` averaged
    over the same summed target weights. Not ``optax.softmax_cross_entropy_with_integer_labels``:
    it has no class weights, ignore_index or weighted mean. Probabilities: with no ``weight``, the
    per-position term is ``optax.softmax_cross_entropy`` (with ``axis`` = class axis); ``mean``
    divides by the number of positions (not by weights), as torch does.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    red = _reduction(size_average, reduce, reduction)
    x = _float_input(input)
    axis = _class_axis(x)
    n_classes = x.shape[axis]
    w_b = _class_weight(x, weight, axis)
    if jnp.shape(target) == x.shape:  # class probabilities
        if _is_array(target) and not jnp.issubdtype(jnp.asarray(target).dtype, jnp.floating):
            raise ValueError(
                "Expected floating point type for target with class probabilities "
                f"(target shape {x.shape} equals input shape), got "
                f"{jnp.asarray(target).dtype}"
            )
        if ignore_index >= 0:
            raise ValueError(
                f"ignore_index is not supported for floating point target, got ignore_index={ignore_index}"
            )
        t = _like(x, target, "target")
        if label_smoothing > 0:
            t = t * (1 - label_smoothing) + label_smoothing / n_classes
        per = (
            optax.losses.softmax_cross_entropy(x, t, axis=axis)
            if w_b is None
            else -jnp.sum(jax.nn.log_softmax(x, axis=axis) * t * w_b, axis=axis)
        )
        if red == "mean":
            return jnp.sum(per) / math.prod(per.shape)
        return _reduce(per, red)
    t = _class_target(x, target, axis, ignore_index)
    logp = jax.nn.log_softmax(x, axis=axis)
    loss, total, ignored = _nll_terms(logp, t, w_b, ignore_index, axis)
    total = jnp.sum(total)
    out = _weighted_mean(loss, total, red)
    if label_smoothing > 0:
        smooth = -jnp.sum(logp if w_b is None else logp * w_b, axis=axis)
        smooth = _weighted_mean(jnp.where(ignored, 0.0, smooth), total, red)
        out = (1 - label_smoothing) * out + smooth * (label_smoothing / n_classes)
    return out


def kl_div(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Array:
    """``torch.nn.functional.kl_div`` with log-probability ``input``, elementwise then reduced.

    Elementwise ``xlogy(t, t) - t·input`` (``exp(t)·(t - input)`` with ``log_target``), torch's
    formula. Not ``optax.kl_divergence``/``kl_divergence_with_log_targets``: they sum over a class
    axis, while torch reduces all elements by ``reduction``, incl. ``batchmean`` (sum / input.shape[0]).
    ``mean`` warns as torch does. Target shape must equal the input's (torch silently broadcasts).
    """
    legacy = size_average is not None or reduce is not None
    red = _reduction(size_average, reduce, reduction, _REDUCTIONS + ("batchmean",))
    if red == "mean" and not legacy:
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the "
            "support size.'batchmean' divides only by the batch size, and aligns with the "
            "KL div math definition.'mean' will be changed to behave the same as "
            "'batchmean' in the next major release.",
            UserWarning,
            stacklevel=2,
        )
    x, t = _pointwise(input, target)
    loss = jnp.exp(t) * (t - x) if log_target else xlogy(t, t) - t * x
    if red == "batchmean":
        return jnp.sum(loss) / x.shape[0] if x.ndim else jnp.sum(loss)
    return _reduce(loss, red)


__all__ = [
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "nll_loss",
    "kl_div",
]
