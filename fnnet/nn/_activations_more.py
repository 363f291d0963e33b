"""``torch.nn.functional`` activations, part 2: the smooth ones (exponential, Gaussian, softplus family, GLU).

``jax.nn``'s where its values and derivatives are torch's formulas (to the last bits of rounding):
``elu``, ``selu``, ``gelu(approximate="tanh")``, ``silu``, ``mish``, ``softsign``, ``logsigmoid``, ``glu``.
Hand-written: ``celu`` (torch's gradient rounds ``1 / alpha`` through float32), ``gelu(approximate="none")``
(torch's ``erf`` form), ``softplus`` (``beta`` and the ``threshold`` switch), ``tanhshrink`` (no jax.nn twin).
Gradients at the kinks are torch's: ``elu``'s at 0 is ``alpha``, ``celu``'s 1, ``selu``'s ``scale * alpha``.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fnnet.nn._activations import _float

__all__ = ["elu", "selu", "celu", "gelu", "silu", "mish", "softplus", "softsign", "logsigmoid", "tanhshrink", "glu"]


def elu(input: jax.typing.ArrayLike, alpha: float = 1.0, inplace: bool = False) -> jax.Array:
    """``torch.nn.functional.elu``: ``x if x > 0 else alpha * expm1(x)`` (``jax.nn.elu``; gradient ``alpha`` at 0)."""
    return jax.nn.elu(_float(input, "elu"), alpha)


def selu(input: jax.typing.ArrayLike, inplace: bool = False) -> jax.Array:
    """``torch.nn.functional.selu``: ``scale * elu(x, alpha)`` with torch's constants (``jax.nn.selu``)."""
    return jax.nn.selu(_float(input, "selu"))


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _celu(x: jax.Array, alpha: float) -> jax.Array:
    negative = jnp.where(x > 0, jnp.zeros((), x.dtype), x)  # keeps the unused branch finite
    return jnp.where(x > 0, x, jnp.expm1(negative * (1.0 / alpha)) * alpha)


@_celu.defjvp
def _celu_jvp(alpha, primals, tangents):
    (x,), (t,) = primals, tangents
    scale = 1.0 / float(np.float32(alpha))  # torch's backward: 1.0 / alpha.toFloat()
    negative = jnp.where(x > 0, jnp.zeros((), x.dtype), x)
    slope = jnp.where(x > 0, jnp.ones((), x.dtype), scale * alpha * jnp.exp(negative * scale))
    return _celu(x, alpha), t * slope


def celu(input: jax.typing.ArrayLike, alpha: float = 1.0, inplace: bool = False) -> jax.Array:
    """``torch.nn.functional.celu``: ``x if x > 0 else alpha * expm1(x / alpha)``; ``alpha = 0`` raises, as in torch.

    Hand-written: torch's gradient uses ``1 / float32(alpha)`` (``alpha.toFloat()``), also in float64, which
    moves it by up to ~4e-7 relative from ``jax.nn.celu``'s exact one when ``alpha`` is not a float32 number.
    """
    if alpha == 0:
        raise ValueError("ZeroDivisionError: alpha cannot be 0 for CELU")
    return _celu_jit(_float(input, "celu"), float(alpha))


@partial(jax.jit, static_argnums=(1,))
def _celu_jit(x: jax.Array, alpha: float) -> jax.Array:
    return _celu(x, alpha)


def gelu(input: jax.typing.ArrayLike, approximate: str = "none") -> jax.Array:
    """``torch.nn.functional.gelu(input, approximate="none")``: ``x * Φ(x)``; ``"tanh"`` for the tanh approximation.

    ``"none"`` is hand-written as torch computes it, ``x * 0.5 * (1 + erf(x / sqrt(2)))``: ``jax.nn.gelu``
    uses ``erfc``, which differs in the far negative tail (where torch's rounds to -0). ``"tanh"`` is
    ``jax.nn.gelu(approximate=True)``.
    """
    x = _float(input, "gelu")
    if approximate == "none":
        return _gelu_erf(x)
    if approximate == "tanh":
        return jax.nn.gelu(x, approximate=True)
    raise ValueError(f"approximate argument must be either none or tanh, got {approximate!r}.")


@jax.jit
def _gelu_erf(x: jax.Array) -> jax.Array:
    return x * 0.5 * (1 + lax.erf(x * math.sqrt(0.5)))


def silu(input: jax.typing.ArrayLike, inplace: bool = False) -> jax.Array:
    """``torch.nn.functional.silu``: ``x * sigmoid(x)`` (``jax.nn.silu``)."""
    return jax.nn.silu(_float(input, "silu"))


def mish(input: jax.typing.ArrayLike, inplace: bool = False) -> jax.Array:
    """``torch.nn.functional.mish``: ``x * tanh(softplus(x))`` (``jax.nn.mish``; no softplus threshold, as torch)."""
    return jax.nn.mish(_float(input, "mish"))


def softplus(input: jax.typing.ArrayLike, beta: float = 1.0, threshold: float = 20.0) -> jax.Array:
    """``torch.nn.functional.softplus(input, beta=1, threshold=20)``: ``log1p(exp(beta * x)) / beta``, or ``x``
    where ``beta * x > threshold`` (value and gradient 1 there).

    Hand-written: ``jax.nn.softplus`` has neither ``beta`` nor the linear switch.
    """
    return _softplus(_float(input, "softplus"), beta, threshold)


@jax.jit
def _softplus(x: jax.Array, beta: float, threshold: float) -> jax.Array:
    bx = x * beta
    linear = bx > threshold
    safe = jnp.where(linear, jnp.zeros((), x.dtype), bx)  # keeps the unused branch's gradient finite
    return jnp.where(linear, x, jnp.log1p(jnp.exp(safe)) / beta)


def softsign(input: jax.typing.ArrayLike) -> jax.Array:
    """``torch.nn.functional.softsign``: ``x / (1 + |x|)`` (``jax.nn.soft_sign``)."""
    return jax.nn.soft_sign(_float(input, "softsign"))


def logsigmoid(input: jax.typing.ArrayLike) -> jax.Array:
    """``torch.nn.functional.logsigmoid``: ``log(sigmoid(x)) = -softplus(-x)``, stable (``jax.nn.log_sigmoid``)."""
    return jax.nn.log_sigmoid(_float(input, "logsigmoid"))


def tanhshrink(input: jax.typing.ArrayLike) -> jax.Array:
    """``torch.nn.functional.tanhshrink``: ``x - tanh(x)`` (no jax.nn twin)."""
    return _tanhshrink(_float(input, "tanhshrink"))


@jax.jit
def _tanhshrink(x: jax.Array) -> jax.Array:
    return x - jnp.tanh(x)


def glu(input: jax.typing.ArrayLike, dim: int = -1) -> jax.Array:
    """``torch.nn.functional.glu(input, dim=-1)``: ``a * sigmoid(b)``, ``a, b`` the halves of ``dim`` (``jax.nn.glu``).

    torch's errors: a 0-d input, ``dim`` out of range, an odd size.
    """
    x = _float(input, "glu")
    if x.ndim == 0:
        raise ValueError("glu does not support scalars because halving size must be even")
    if not -x.ndim <= dim < x.ndim:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-x.ndim}, {x.ndim - 1}], but got {dim})"
        )
    dim %= x.ndim
    if x.shape[dim] % 2:
        raise ValueError(f"Halving dimension must be even, but dimension {dim} is size {x.shape[dim]}")
    return jax.nn.glu(x, axis=dim)
