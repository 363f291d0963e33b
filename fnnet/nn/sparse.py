"""``torch.nn.Embedding`` (torch/nn/modules/sparse.py)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from fnnet.nn._sparse import check_padding_idx, embedding, embedding_renorm
from fnnet.nn.linear import check_size
from fnnet.nn.module import Buffer, Module, check_device, default_rngs, float_dtype

__all__ = ["Embedding"]


def _as_array(value: Any) -> np.ndarray:
    """A torch tensor (read duck-typed: fnnet never imports torch) or array-like as NumPy."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class Embedding(Module):
    """``torch.nn.Embedding(num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
    scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None)``.

    ``weight`` ``(num_embeddings, embedding_dim)`` is drawn from N(0, 1) with the ``padding_idx`` row
    zeroed, as torch's ``reset_parameters`` (other numbers than torch's generator: load a torch
    ``state_dict`` for identical weights). A negative ``padding_idx`` counts from the end and is stored
    non-negative. The padding row gets no gradient; ``scale_grad_by_freq`` and ``sparse`` as
    ``fnnet.nn.functional.embedding`` (gradients are dense in JAX; ``fnnet.optim.sparse_adam`` leaves
    rows with no gradient untouched).

    ``max_norm``: like torch, each forward renormalises the rows it looks up and writes them back into
    ``weight`` (``weight.set_value``, in training and eval). Inside a compiled step the new weight lives
    in the merged model: read it back with ``nnx.state(model)`` as torch's in-place write would leave it.

    Frozen weights (``_freeze=True``, ``from_pretrained(freeze=True)``): ``weight`` is a
    :class:`fnnet.nn.Buffer` instead of an ``nnx.Param``, so ``nnx.state(model, nnx.Param)`` (what an
    optimizer trains) leaves it out, while ``state_dict`` still lists it as ``"weight"`` like torch.
    Unfreeze with ``emb.weight = nnx.Param(emb.weight.get_value())`` (torch: ``requires_grad_()``).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Any = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        rngs: nnx.Rngs | int | None = None,
    ) -> None:
        self.num_embeddings = check_size(num_embeddings, "num_embeddings")
        self.embedding_dim = check_size(embedding_dim, "embedding_dim")
        self.padding_idx = check_padding_idx(padding_idx, num_embeddings)
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        check_device(device)
        shape = (num_embeddings, embedding_dim)
        if _weight is None:
            dt = float_dtype(dtype)
            value = jax.random.normal(default_rngs(rngs).params(), shape, dt)
            if self.padding_idx is not None:
                value = value.at[self.padding_idx].set(0)
        else:
            array = _as_array(_weight)
            if list(array.shape) != list(shape):
                raise ValueError("Shape of weight does not match num_embeddings and embedding_dim")
            if np.issubdtype(array.dtype, np.floating):
                float_dtype(array.dtype, "_weight's dtype")  # float64 needs x64: never downcast silently
            value = jnp.asarray(array)
        self.weight = Buffer(value) if _freeze else nnx.Param(value)
        self.sparse = sparse

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Any,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """``torch.nn.Embedding.from_pretrained``: an Embedding holding ``embeddings`` (2-D, kept as
        given: the padding row is not zeroed). ``freeze=True`` stores it as a Buffer (not trained)."""
        array = _as_array(embeddings)
        if array.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = array.shape
        return cls(
            num_embeddings=rows,
            embedding_dim=cols,
            _weight=array,
            _freeze=freeze,
            padding_idx=padding_idx,
            max_norm=max_norm,
            norm_type=norm_type,
            scale_grad_by_freq=scale_grad_by_freq,
            sparse=sparse,
        )

    def forward(self, input: jax.typing.ArrayLike) -> jax.Array:
        weight = self.weight.get_value()
        out = embedding(
            input, weight, self.padding_idx, self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse
        )
        if self.max_norm is not None:  # torch's embedding_renorm_ writes the looked-up rows back
            self.weight.set_value(jax.lax.stop_gradient(embedding_renorm(weight, input, self.max_norm, self.norm_type)))
        return out

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s
