"""``torch.nn.functional.ctc_loss``: connectionist temporal classification, with torch's gradient.

The forward pass is torch's CPU algorithm (Graves et al. 2006, eq. 6-8) in log space: the alpha
recursion over the blank-extended targets runs under ``lax.scan`` over time, every batch item at
once, with fixed shapes and masks for the input and target lengths, so it compiles under ``jit``.
The backward pass is torch's too (a ``jax.custom_vjp``): the beta recursion runs as a reverse scan,
and the gradient with respect to ``log_probs[t, b, c]`` is torch's

    (exp(lp) - exp(log Σ_{s: l'_s = c} α_t(s)·β_t(s) + nll - lp)) · grad_out[b]   for t < input_length[b]

(0 for later t). That is not the derivative of the loss with respect to ``log_probs``: that would be
the second term alone. torch adds ``exp(lp)``, which makes it the derivative with respect to the
*logits* of a ``log_softmax`` (the term vanishes through ``log_softmax``'s backward, since the
true derivative sums to -1 over classes at every valid time step). So with ``log_probs =
log_softmax(logits)`` (torch's documented input) ``jax.grad`` of the true loss and torch agree on the
logits' gradient, but they differ on ``log_probs``' own gradient and for unnormalised inputs; fnnet
reproduces torch's. An impossible alignment has ``nll = inf`` and, as in torch, NaN gradients for
``t < input_length`` unless ``zero_infinity=True`` (loss and gradient 0).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnnet.nn._losses import _concrete, _float_input, _reduction

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
_NEG_INF = -jnp.inf


# --------------------------------------------------------------------------------------- inputs
def _lengths(value: ArrayLike | Sequence[int], n: int, name: str) -> Array:
    v = jnp.asarray(value)
    if not jnp.issubdtype(v.dtype, jnp.integer):
        raise ValueError(f"{name} must be integral, got dtype {v.dtype}")
    if v.ndim > 1 or v.size != n:
        raise ValueError(f"{name} must be of size batch_size ({n}), got shape {v.shape}")
    return v.reshape(n).astype(jnp.int32)


def _check_lengths(il: Array, tl: Array, max_input_length: int) -> None:
    if not _concrete(il, tl):
        return
    for name, v in (("input_lengths", np.asarray(il)), ("target_lengths", np.asarray(tl))):
        if np.any(v < 0):
            raise ValueError(f"Expected {name} to have value at least 0, but got value {v[v < 0][0]}")
    il_np = np.asarray(il)
    if np.any(il_np > max_input_length):
        raise ValueError(
            f"Expected input_lengths to have value at most {max_input_length}, but got value "
            f"{il_np[il_np > max_input_length][0]}"
        )


def _padded_targets(targets: ArrayLike, tl: Array, n: int, n_classes: int, blank: int) -> Array:
    """Targets as (N, S) class indices, blank past each target length. 1-D targets are torch's
    concatenated form (their size must be the sum of the lengths); 2-D ones are padded (N, S)."""
    t = jnp.asarray(targets)
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise ValueError(f"targets must hold integer class indices, got dtype {t.dtype}")
    concrete = _concrete(tl)
    if t.ndim == 1:
        total = t.shape[0]
        if concrete and int(np.sum(np.asarray(tl))) != total:
            raise ValueError(
                f"Expected tensor to have size {int(np.sum(np.asarray(tl)))} at dimension 0, but got size "
                f"{total} for argument #2 'targets' (concatenated targets: the sum of target_lengths)"
            )
        width = int(np.max(np.asarray(tl), initial=0)) if concrete else total
        pos = jnp.arange(width).reshape(1, width)
        idx = (jnp.cumsum(tl) - tl).reshape(n, 1) + pos
        padded = t[jnp.clip(idx, 0, total - 1)] if total else jnp.zeros((n, width), t.dtype)
    elif t.ndim == 2:
        if t.shape[0] != n:
            raise ValueError(f"Expected tensor to have size {n} at dimension 0, but got size {t.shape[0]} for targets")
        width = t.shape[1]
        if concrete and np.any(np.asarray(tl) > width):
            raise ValueError(
                f"Expected tensor to have size at least {int(np.max(np.asarray(tl)))} at dimension 1, but got "
                f"size {width} for argument #2 'targets'"
            )
        padded, pos = t, jnp.arange(width).reshape(1, width)
    else:
        raise ValueError(f"targets must be (N, S) padded or 1-D concatenated, got shape {t.shape}")
    valid = pos < tl.reshape(n, 1)
    if concrete and _concrete(padded):
        p, v = np.asarray(padded), np.asarray(valid)
        bad = v & ((p < 0) | (p >= n_classes))
        if np.any(bad):
            raise ValueError(f"target {p[bad][0]} is out of bounds for {n_classes} classes")
    return jnp.where(valid, padded, blank).astype(jnp.int32)


# ------------------------------------------------------------------------------------ recursions
def _lse3(a: Array, b: Array, c: Array) -> Array:
    """torch's ``log(exp(a-m) + exp(b-m) + exp(c-m)) + m`` with ``m = 0`` when all are -inf."""
    m = jnp.maximum(jnp.maximum(a, b), c)
    m = jnp.where(m == _NEG_INF, 0.0, m)
    return jnp.log(jnp.exp(a - m) + jnp.exp(b - m) + jnp.exp(c - m)) + m


def _shift(x: Array, k: int) -> Array:
    """``x[:, s - k]`` (k > 0) or ``x[:, s + |k|]`` (k < 0), -inf where that falls outside."""
    pad = jnp.full((x.shape[0], abs(k)), _NEG_INF, x.dtype)
    return jnp.concatenate([pad, x[:, :-k]], axis=1) if k > 0 else jnp.concatenate([x[:, -k:], pad], axis=1)


def _extended(targets: Array, blank: int) -> tuple[Array, Array]:
    """The blank-extended labels l' (N, 2S+1) and where the s-2 -> s skip is allowed (l'_{s-2} != l'_s)."""
    n, s = targets.shape
    ext = jnp.full((n, 2 * s + 1), blank, jnp.int32).at[:, 1::2].set(targets)
    prev2 = jnp.concatenate([jnp.full((n, 2), -1, jnp.int32), ext[:, :-2]], axis=1)
    return ext, ext != prev2


def _forward(lp: Array, ext: Array, skip: Array, il: Array, tl: Array) -> tuple[Array, Array, Array]:
    """(nll (N,), log_alpha (T, N, S'), emission log-probs (T, N, S'))."""
    n_t, n, width = lp.shape[0], ext.shape[0], ext.shape[1]
    emit = jnp.take_along_axis(lp, jnp.broadcast_to(ext.reshape(1, n, width), (n_t, n, width)), axis=2)
    s = jnp.arange(width).reshape(1, width)
    alpha0 = jnp.where((s == 0) | ((s == 1) & (tl.reshape(n, 1) > 0)), emit[0], _NEG_INF)

    def step(prev: Array, e: Array) -> tuple[Array, Array]:
        new = _lse3(prev, _shift(prev, 1), jnp.where(skip, _shift(prev, 2), _NEG_INF)) + e
        return new, new

    _, rest = jax.lax.scan(step, alpha0, emit[1:])
    alphas = jnp.concatenate([alpha0[None], rest], axis=0)
    last = jnp.take_along_axis(alphas, jnp.clip(il - 1, 0, n_t - 1).reshape(1, n, 1), axis=0)[0]  # (N, S')
    l1 = jnp.take_along_axis(last, (2 * tl).reshape(n, 1), axis=1)[:, 0]
    l2 = jnp.take_along_axis(last, jnp.maximum(2 * tl - 1, 0).reshape(n, 1), axis=1)[:, 0]
    m = jnp.maximum(l1, l2)
    m = jnp.where(m == _NEG_INF, 0.0, m)
    log_likelihood = jnp.where(tl == 0, last[:, 0], jnp.log(jnp.exp(l1 - m) + jnp.exp(l2 - m)) + m)
    log_likelihood = jnp.where(il == 0, jnp.where(tl == 0, 0.0, _NEG_INF), log_likelihood)
    return -log_likelihood, alphas, emit


def _betas(emit: Array, ext: Array, skip: Array, il: Array, tl: Array) -> Array:
    """log_beta (T, N, S'): torch's eq. (10)-(11), started at t = input_length - 1, -inf elsewhere."""
    n_t, n, width = emit.shape
    s = jnp.arange(width).reshape(1, width)
    two_l = (2 * tl).reshape(n, 1)
    in_range = s <= two_l
    skip_from = jnp.concatenate([skip[:, 2:], jnp.zeros((n, 2), bool)], axis=1)  # l'_{s+2} != l'_s
    start = in_range & (s >= two_l - 1)  # s = 2L and 2L - 1 (s = 0 when L = 0)

    def step(nxt: Array, xs: tuple[Array, Array]) -> tuple[Array, Array]:
        t, e = xs
        rec = _lse3(nxt, _shift(nxt, -1), jnp.where(skip_from, _shift(nxt, -2), _NEG_INF)) + e
        beta = jnp.where(in_range, rec, _NEG_INF)
        beta = jnp.where((t == il - 1).reshape(n, 1), jnp.where(start, e, _NEG_INF), beta)
        beta = jnp.where((t > il - 1).reshape(n, 1), _NEG_INF, beta)
        return beta, beta

    init = jnp.full((n, width), _NEG_INF, emit.dtype)
    return jax.lax.scan(step, init, (jnp.arange(n_t), emit), reverse=True)[1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _ctc_nll(lp: Array, ext: Array, skip: Array, il: Array, tl: Array, zero_infinity: bool) -> Array:
    return _forward_jit(lp, ext, skip, il, tl)[0]


def _ctc_nll_fwd(lp: Array, ext: Array, skip: Array, il: Array, tl: Array, zero_infinity: bool) -> tuple:
    nll, alphas, emit = _forward_jit(lp, ext, skip, il, tl)
    return nll, (lp, ext, skip, il, tl, nll, alphas, emit)


def _ctc_nll_bwd(zero_infinity: bool, res: tuple, g: Array) -> tuple:
    return _grad_jit(zero_infinity, *res, g), None, None, None, None


def _grad(
    zero_infinity: bool,
    lp: Array,
    ext: Array,
    skip: Array,
    il: Array,
    tl: Array,
    nll: Array,
    alphas: Array,
    emit: Array,
    g: Array,
) -> Array:
    """torch's ctc_loss_backward_cpu_template (see the module docstring)."""
    n_t, n, n_classes = lp.shape
    width = ext.shape[1]
    ab = alphas + _betas(emit, ext, skip, il, tl)  # (T, N, S')
    # torch's quirk: at t = input_length - 1 it *sets* the blank's entry from s = 2L, then *sets* the
    # entry of l'_{2L-1} from s = 2L - 1, so a target ending in the blank overwrites the first term.
    last_label = jnp.take_along_axis(ext, jnp.maximum(2 * tl - 1, 0).reshape(n, 1), axis=1)[:, 0]
    overwritten = (tl > 0) & (last_label == ext[:, 0])  # ext[:, 0] is the blank
    drop = (
        (jnp.arange(n_t).reshape(n_t, 1, 1) == (il - 1).reshape(1, n, 1))
        & (jnp.arange(width).reshape(1, 1, width) == (2 * tl).reshape(1, n, 1))
        & overwritten.reshape(1, n, 1)
    )
    ab = jnp.where(drop, _NEG_INF, ab)
    m = jnp.max(ab, axis=2, keepdims=True)
    m = jnp.where(m == _NEG_INF, 0.0, m)
    in_range = jnp.arange(width).reshape(1, width) <= (2 * tl).reshape(n, 1)
    onehot = (ext.reshape(n, width, 1) == jnp.arange(n_classes).reshape(1, 1, n_classes)) & in_range[..., None]
    # Σ_{s: l'_s = c} exp(α + β), scaled by exp(-m) per (t, b): torch's "collected" log-sum, eq. (16)
    total = jnp.einsum("tns,nsc->tnc", jnp.exp(ab - m), onehot.astype(lp.dtype), precision=jax.lax.Precision.HIGHEST)
    lcab = jnp.log(total) + m
    grad = (jnp.exp(lp) - jnp.exp(lcab + nll.reshape(1, n, 1) - lp)) * g.reshape(1, n, 1)
    grad = jnp.where((jnp.arange(n_t).reshape(n_t, 1) < il.reshape(1, n))[..., None], grad, 0.0)
    if zero_infinity:
        grad = jnp.where((nll == jnp.inf).reshape(1, n, 1), 0.0, grad)
    return grad


# Compiled once per shape, so that eager calls do not retrace the scans every time.
_forward_jit = jax.jit(_forward)
_grad_jit = jax.jit(_grad, static_argnums=0)
_ctc_nll.defvjp(_ctc_nll_fwd, _ctc_nll_bwd)


# ----------------------------------------------------------------------------------------- loss
def ctc_loss(
    log_probs: ArrayLike,
    targets: ArrayLike,
    input_lengths: ArrayLike | Sequence[int],
    target_lengths: ArrayLike | Sequence[int],
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Array:
    """``torch.nn.functional.ctc_loss``: the negative log-likelihood of each target sequence.

    ``log_probs`` (T, N, C) or unbatched (T, C) (normally ``log_softmax`` outputs); ``targets`` padded
    (N, S) or concatenated 1-D (size = the sum of ``target_lengths``); the lengths as integer arrays
    or sequences of N ints. ``mean`` divides each loss by its target length (at least 1), then
    averages over the batch; ``sum`` adds; ``none`` gives (N,) (a scalar unbatched). Impossible
    alignments give ``inf`` (0 with ``zero_infinity``). The gradient is torch's, not ``jax.grad`` of
    the loss (see the module docstring): equal through a ``log_softmax``, not on ``log_probs`` itself.

    Hand-written: ``optax.ctc_loss`` takes logits (it applies ``log_softmax``), batch-first
    (N, T, C) with padding masks, replaces ``log(0)`` by ``-1e5`` (finite losses for impossible
    alignments), does not reduce, and its ``jax.grad`` is the true derivative. Stricter than torch:
    targets must be integers (torch casts floats) inside [0, C) (torch reads out of bounds); the
    lengths may also be a Python int for unbatched input. Under ``jit`` with 1-D targets the padded
    width is the total target length (the longest is not known while tracing): pass (N, S) targets
    for speed. The ``jit``-compiled function has fixed shapes; the length checks run only on
    concrete arrays. A target equal to ``blank`` is accepted as by torch, including torch's backward
    at the last time step, which then overwrites one term of the blank's sum instead of adding it.
    """
    red = _reduction(None, None, reduction)
    lp = _float_input(log_probs)
    if lp.ndim not in (2, 3):
        raise ValueError(f"log_probs must have shape (T, N, C) or (T, C), got {lp.shape}")
    batched = lp.ndim == 3
    if not batched:
        lp = lp.reshape(lp.shape[0], 1, lp.shape[1])
    n_t, n, n_classes = lp.shape
    if not 0 <= blank < n_classes:
        raise ValueError(f"blank must be in label range: blank={blank} for {n_classes} classes")
    il = _lengths(input_lengths, n, "input_lengths")
    tl = _lengths(target_lengths, n, "target_lengths")
    _check_lengths(il, tl, n_t)
    ext, skip = _extended(_padded_targets(targets, tl, n, n_classes, blank), blank)
    if n_t == 0:  # no frames: only empty targets are possible (torch: nll = -0.0 or inf)
        nll = -jnp.where(tl == 0, 0.0, _NEG_INF).astype(lp.dtype)
    else:
        nll = _ctc_nll(lp, ext, skip, il, tl, zero_infinity)
    if zero_infinity:
        nll = jnp.where(nll == jnp.inf, 0.0, nll)
    if red == "mean":
        return jnp.mean(nll / jnp.maximum(tl, 1).astype(lp.dtype))
    if red == "sum":
        return jnp.sum(nll)
    return nll if batched else nll.reshape(())


__all__ = ["ctc_loss"]
