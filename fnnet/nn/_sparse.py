"""``torch.nn.functional.embedding`` (torch/nn/functional.py) with torch's gradient rules.

``jnp.take(weight, input, axis=0)`` gives the values; its gradient does not: torch gives the
``padding_idx`` row no gradient, can divide each row's gradient by the number of times the batch
uses it (``scale_grad_by_freq``), and with ``max_norm`` renormalises the rows it looks up *before*
the lookup, under ``no_grad``, so the gradient goes to the weight as if the renormalisation had not
happened. A ``custom_vjp`` states that backward rule.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["embedding"]


def _check_indices(input: jax.typing.ArrayLike) -> jax.Array:
    idx = jnp.asarray(input)
    if idx.dtype not in (jnp.dtype(jnp.int32), jnp.dtype("int64")):
        raise TypeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; "
            f"but got {idx.dtype} instead (while checking arguments for embedding)"
        )
    return idx


def check_padding_idx(padding_idx: int | None, num_embeddings: int) -> int | None:
    """torch's ``padding_idx`` rule: in ``[-num_embeddings, num_embeddings)``, negatives counted from the end."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
        raise TypeError(f"padding_idx must be an int or None, got {padding_idx!r}")
    padding_idx = int(padding_idx)
    if (padding_idx > 0 and padding_idx >= num_embeddings) or padding_idx < -num_embeddings:
        raise ValueError("Padding_idx must be within num_embeddings")
    return padding_idx + num_embeddings if padding_idx < 0 else padding_idx


def _row_norm(rows: jax.Array, norm_type: float) -> jax.Array:
    """torch's ``row.norm(p)`` for each row: p = 0 counts non-zeros, ±inf the max/min magnitude."""
    a = jnp.abs(rows)
    if norm_type == 0:
        return jnp.sum(a != 0, axis=-1).astype(rows.dtype)
    if norm_type == float("inf"):
        return jnp.max(a, axis=-1)
    if norm_type == float("-inf"):
        return jnp.min(a, axis=-1)
    if norm_type == 2:
        return jnp.sqrt(jnp.sum(a * a, axis=-1))
    if norm_type == 1:
        return jnp.sum(a, axis=-1)
    return jnp.sum(a**norm_type, axis=-1) ** (1.0 / norm_type)


def _renormed_rows(weight: jax.Array, flat: jax.Array, max_norm: float, norm_type: float) -> jax.Array:
    """The rows ``weight[flat]`` as torch's ``embedding_renorm_`` leaves them: scaled by
    ``max_norm / (norm + 1e-7)`` where their ``norm_type``-norm exceeds ``max_norm``."""
    rows = jnp.take(weight, flat, axis=0, mode="clip")
    norm = _row_norm(rows, norm_type)
    scale = jnp.where(norm > max_norm, max_norm / (norm + 1e-7), 1).astype(rows.dtype)
    return rows * scale[:, None]


def embedding_renorm(
    weight: jax.typing.ArrayLike, input: jax.typing.ArrayLike, max_norm: float, norm_type: float = 2.0
) -> jax.Array:
    """``torch.embedding_renorm_(weight, input, max_norm, norm_type)`` as a new array: the rows that
    ``input`` looks up, renormalised to norm ``max_norm`` where theirs is larger (others unchanged).
    What ``Embedding(max_norm=...)`` stores back into its weight after each forward, as torch does."""
    w = jnp.asarray(weight)
    flat = _check_indices(input).reshape(-1)
    if flat.size == 0:
        return w
    flat = jnp.where(flat < 0, w.shape[0], flat)  # out of range: dropped, never wrapped
    return w.at[flat].set(_renormed_rows(w, flat, max_norm, norm_type), mode="drop")


@partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5, 6))
def _lookup(weight, idx, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse):
    flat = idx.reshape(-1)
    rows = jnp.take(weight, flat, axis=0, mode="fill")  # NaN rows for floating weights
    if max_norm is not None:
        valid = (flat >= 0) & (flat < weight.shape[0])
        rows = jnp.where(valid[:, None], _renormed_rows(weight, flat, max_norm, norm_type), rows)
    return rows.reshape((*idx.shape, weight.shape[1]))


def _lookup_fwd(weight, idx, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse):
    out = _lookup(weight, idx, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)
    return out, (idx, jnp.zeros((weight.shape[0], 0), weight.dtype))


def _lookup_bwd(padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, residuals, g):
    if scale_grad_by_freq and sparse:
        raise ValueError("embedding_backward: scale_grad_by_freq not supported with sparse gradients")
    idx, like = residuals
    num = like.shape[0]
    flat = idx.reshape(-1)
    g = g.reshape(flat.shape[0], -1)
    if scale_grad_by_freq:  # torch: each use of row k contributes grad / (uses of k in the batch)
        counts = jnp.zeros((num,), g.dtype).at[flat].add(1, mode="drop")
        g = g * (1 / jnp.take(counts, flat, mode="fill", fill_value=1))[:, None]
    if padding_idx is not None:  # torch skips the padding row: it gets no gradient
        g = jnp.where((flat == padding_idx)[:, None], jnp.zeros((), g.dtype), g)
    grad = jnp.zeros((num, g.shape[1]), like.dtype).at[flat].add(g, mode="drop")
    return grad, None


_lookup.defvjp(_lookup_fwd, _lookup_bwd)


def embedding(
    input: jax.typing.ArrayLike,
    weight: jax.typing.ArrayLike,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> jax.Array:
    """``torch.nn.functional.embedding``: rows of ``weight`` (``(V, D)``) at integer ``input`` (any
    shape), giving ``(*input.shape, D)``, with torch's gradient rules:

    * the ``padding_idx`` row gets no gradient (a negative ``padding_idx`` counts from the end);
    * ``scale_grad_by_freq`` divides the gradient of each use of a row by the row's count in ``input``;
    * ``max_norm``: rows whose ``norm_type``-norm exceeds ``max_norm`` are looked up scaled by
      ``max_norm / (norm + 1e-7)``, and the gradient reaches ``weight`` unscaled, as in torch. torch
      also writes the scaled rows back into ``weight`` in place; a function cannot, so the output is
      the same and ``Embedding`` stores them back itself (``embedding_renorm`` computes them);
    * ``sparse=True`` is accepted: JAX gradients are dense; ``fnnet.optim.sparse_adam`` leaves the rows
      with an all-zero gradient untouched, as torch's ``SparseAdam`` does with a sparse one. As in
      torch, differentiating with both ``sparse`` and ``scale_grad_by_freq`` raises.

    Indices outside ``[0, V)`` raise torch's ``IndexError`` when ``input`` is concrete; under ``jit``
    they give NaN rows (floating weights) and no gradient.
    """
    idx = _check_indices(input)
    w = jnp.asarray(weight)
    if w.ndim != 2:
        raise ValueError("'weight' must be 2-D")
    padding_idx = check_padding_idx(padding_idx, w.shape[0])
    if not isinstance(idx, jax.core.Tracer) and idx.size:
        host = np.asarray(idx)  # on the host: a constant inside jit has concrete values but traced ops
        if host.min() < 0 or host.max() >= w.shape[0]:
            raise IndexError("index out of range in self")
    idx = jnp.where(idx < 0, w.shape[0], idx)  # never wrap negatives (torch refuses them)
    if max_norm is not None:
        max_norm = float(max_norm)
    return _lookup(w, idx, padding_idx, max_norm, float(norm_type), bool(scale_grad_by_freq), bool(sparse))
