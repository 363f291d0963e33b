"""``torch.nn.functional`` activations, part 1: the softmax family and the piecewise-linear ones.

torch's names, keywords (``dim``, ``inplace``, ``negative_slope`` ...), values and gradients, including
torch's subgradient at every kink (``relu6``, ``hardtanh``, ``leaky_relu``, ``hardshrink``,
``softshrink``, ``threshold``, ``hardswish``, ``hardsigmoid``): each is written so that JAX's
derivative of the branch it selects is torch's backward formula at the boundary too. The smooth
activations (``elu``, ``gelu``, ``softplus`` ...) are in ``_activations_more``.

``inplace`` is accepted for torch's signatures and ignored: JAX arrays are immutable, so every
function returns a new array (the value torch's in-place form leaves in the tensor).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "softmin",
    "relu6",
    "leaky_relu",
    "prelu",
    "hardtanh",
    "hardswish",
    "hardsigmoid",
    "hardshrink",
    "softshrink",
    "threshold",
]


def _float(input: jax.typing.ArrayLike, name: str) -> jax.Array:
    x = jnp.asarray(input)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name}: input must be a floating-point array, got dtype {x.dtype}")
    return x


def relu(input: jax.typing.ArrayLike, inplace: bool = False) -> jax.Array:
    """``torch.nn.functional.relu``: ``max(x, 0)``; gradient 0 at 0 as torch.

    Hand-written as ``where(x <= 0, 0, x)``: ``jax.nn.relu`` agrees except that its gradient at a NaN input
    is 0 where torch's passes the gradient through.

    At NaN inputs torch's gradients depend on the kernel path: its vectorised loop and its scalar tail (the
    last elements of a tensor) can disagree. fnnet follows the vectorised loop, which all but a few elements
    of a tensor take (tested against it for every activation).
    """
    return _relu(_float(input, "relu"))


@jax.jit
def _relu(x: jax.Array) -> jax.Array:
    return jnp.where(x <= 0, jnp.zeros((), x.dtype), x)


def sigmoid(input: jax.typing.ArrayLike) -> jax.Array:
    """``torch.sigmoid`` / ``F.sigmoid``: ``1 / (1 + exp(-x))`` (``jax.nn.sigmoid``)."""
    return jax.nn.sigmoid(_float(input, "sigmoid"))


def tanh(input: jax.typing.ArrayLike) -> jax.Array:
    """``torch.tanh`` / ``F.tanh``."""
    return jnp.tanh(_float(input, "tanh"))


def _softmax_dim(ndim: int, dim: int | None, name: str, stacklevel: int = 3) -> int:
    """torch's ``_get_softmax_dim``: an implicit dim is 0 for 0-, 1- and 3-D inputs, else 1 (warned)."""
    if dim is None:
        warnings.warn(
            f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an "
            "argument.",
            UserWarning,
            stacklevel=stacklevel,
        )
        return 0 if ndim in (0, 1, 3) else 1
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], but got {dim})")
    return dim % size if ndim else 0


def _as(x: jax.Array, dtype) -> jax.Array:
    """``x`` cast to ``dtype`` (a jnp/NumPy dtype, its name, or a torch dtype such as ``torch.float64``)."""
    if dtype is None:
        return x
    if hasattr(dtype, "is_floating_point") and hasattr(dtype, "itemsize"):  # a torch.dtype
        dtype = str(dtype).removeprefix("torch.")
    return x.astype(dtype)


def softmax(input: jax.typing.ArrayLike, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> jax.Array:
    """``torch.nn.functional.softmax(input, dim, dtype=None)`` (``jax.nn.softmax`` over ``dim``).

    ``dtype`` casts the input first, as torch does. A 0-d input gives 1.
    """
    x = _as(_float(input, "softmax"), dtype)
    axis = _softmax_dim(x.ndim, dim, "softmax", _stacklevel)
    return jnp.ones_like(x) if x.ndim == 0 else jax.nn.softmax(x, axis=axis)


def log_softmax(input: jax.typing.ArrayLike, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> jax.Array:
    """``torch.nn.functional.log_softmax(input, dim, dtype=None)`` (``jax.nn.log_softmax`` over ``dim``)."""
    x = _as(_float(input, "log_softmax"), dtype)
    axis = _softmax_dim(x.ndim, dim, "log_softmax", _stacklevel)
    return jnp.zeros_like(x) if x.ndim == 0 else jax.nn.log_softmax(x, axis=axis)


def softmin(input: jax.typing.ArrayLike, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> jax.Array:
    """``torch.nn.functional.softmin(input, dim, dtype=None)``: ``softmax(-x)`` (negated, then cast, as torch)."""
    x = -_float(input, "softmin")
    axis = _softmax_dim(x.ndim, dim, "softmin", _stacklevel)
    x = _as(x, dtype)
    return jnp.ones_like(x) if x.ndim == 0 else jax.nn.softmax(x, axis=axis)


# ---- piecewise linear -----------------------------------------------------------------------------


def relu6(input: jax.typing.ArrayLike, inplace: bool = False) -> jax.Array:
    """``torch.nn.functional.relu6``: ``min(max(x, 0), 6)``; gradient 0 at 0 and 6, as torch (``jax.nn.relu6``)."""
    return jax.nn.relu6(_float(input, "relu6"))


def leaky_relu(input: jax.typing.ArrayLike, negative_slope: float = 0.01, inplace: bool = False) -> jax.Array:
    """``torch.nn.functional.leaky_relu``: ``x if x > 0 else negative_slope * x``.

    Hand-written: ``jax.nn.leaky_relu`` takes ``x >= 0``, so its gradient at 0 is 1; torch's is the slope.
    """
    return _leaky_relu(_float(input, "leaky_relu"), negative_slope)


# The hand-written cores are jitted (scalars traced): one compiled program per shape, also when called eagerly.
@jax.jit
def _leaky_relu(x: jax.Array, negative_slope: float) -> jax.Array:
    return jnp.where(x > 0, x, x * negative_slope)


def prelu(input: jax.typing.ArrayLike, weight: jax.typing.ArrayLike) -> jax.Array:
    """``torch.nn.functional.prelu(input, weight)``: ``x if x > 0 else weight * x``, ``weight`` per channel (dim 1).

    ``weight`` has 1 element or one per channel; gradient at 0 is ``weight`` as torch's. No jax.nn twin.
    """
    x = _float(input, "prelu")
    w = jnp.asarray(weight)
    if w.size != 1:
        if x.ndim == 0:
            raise ValueError("Not allow zero-dim input tensor.")
        channels = x.shape[1] if x.ndim > 1 else 1
        if channels != w.size:
            raise ValueError(
                f"Mismatch of parameter numbers and input channel size. Found parameter numbers = {w.size} and "
                f"channel size = {channels}."
            )
    if w.ndim > 1:
        raise ValueError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {w.ndim}")
    if x.ndim != w.ndim:
        shape = [1] * x.ndim
        if x.ndim > 1:
            shape[1] = w.size
        w = w.reshape(shape)
    return _prelu(x, w.astype(x.dtype))


@jax.jit
def _prelu(x: jax.Array, w: jax.Array) -> jax.Array:
    negative = jnp.where(x > 0, jnp.zeros((), x.dtype), x)  # so that x = +inf gives the weight gradient 0
    return jnp.where(x > 0, x, w * negative)


def hardtanh(
    input: jax.typing.ArrayLike, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> jax.Array:
    """``torch.nn.functional.hardtanh``: ``clamp(x, min_val, max_val)``; gradient 1 strictly inside only.

    Hand-written: ``jax.nn.hard_tanh`` has fixed bounds ±1 and gradient 1 at them (torch: 0).
    """
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _hardtanh(_float(input, "hardtanh"), min_val, max_val)


@jax.jit
def _hardtanh(x: jax.Array, min_val: float, max_val: float) -> jax.Array:
    clamped = jnp.where(x <= min_val, min_val, jnp.where(x >= max_val, max_val, lax.stop_gradient(x)))
    return jnp.where((x > min_val) & (x < max_val), x, clamped)  # NaN: value NaN, gradient 0 (torch's)


def hardswish(input: jax.typing.ArrayLike, inplace: bool = False) -> jax.Array:
    """``torch.nn.functional.hardswish``: ``x * relu6(x + 3) / 6`` (``jax.nn.hard_swish``).

    Its gradient is torch's, boundaries included: 0 at -3, 1 at 3.
    """
    return jax.nn.hard_swish(_float(input, "hardswish"))


#: torch's hardsigmoid backward multiplies by ``1.0f / 6.0f``, a float32 constant, also for float64.
_ONE_SIXTH_F32 = float(np.float32(1.0) / np.float32(6.0))


@jax.custom_jvp
def _hardsigmoid(x: jax.Array) -> jax.Array:
    return jax.nn.hard_sigmoid(x)


@_hardsigmoid.defjvp
def _hardsigmoid_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    slope = jnp.where((x > -3) & (x < 3), jnp.asarray(_ONE_SIXTH_F32, x.dtype), jnp.zeros((), x.dtype))
    return _hardsigmoid(x), t * slope


_hardsigmoid_jit = jax.jit(_hardsigmoid)


def hardsigmoid(input: jax.typing.ArrayLike, inplace: bool = False) -> jax.Array:
    """``torch.nn.functional.hardsigmoid``: ``relu6(x + 3) / 6`` (``jax.nn.hard_sigmoid``'s value).

    Its gradient is hand-written: torch's is ``float32(1/6)`` strictly inside (-3, 3), also in float64
    (0.1666666716337204), where ``jax.nn.hard_sigmoid``'s is the exact 1/6.
    """
    return _hardsigmoid_jit(_float(input, "hardsigmoid"))


def hardshrink(input: jax.typing.ArrayLike, lambd: float = 0.5) -> jax.Array:
    """``torch.nn.functional.hardshrink``: ``0 if -lambd <= x <= lambd else x``; gradient 0 at ±lambd (hand-written)."""
    return _hardshrink(_float(input, "hardshrink"), lambd)


@jax.jit
def _hardshrink(x: jax.Array, lambd: float) -> jax.Array:
    inside = jnp.where((x >= -lambd) & (x <= lambd), jnp.zeros((), x.dtype), lax.stop_gradient(x))
    return jnp.where((x < -lambd) | (x > lambd), x, inside)  # NaN: value NaN, gradient 0 (torch's)


def softshrink(input: jax.typing.ArrayLike, lambd: float = 0.5) -> jax.Array:
    """``torch.nn.functional.softshrink``: ``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0.

    Gradient 0 on ``[-lambd, lambd]`` as torch's; NaN stays NaN. ``lambd`` must be >= 0 (torch's error).
    No jax.nn twin.
    """
    x = _float(input, "softshrink")
    if not 0 <= lambd <= float(jnp.finfo(x.dtype).max):
        name = {"float16": "Half", "bfloat16": "BFloat16", "float32": "Float", "float64": "Double"}.get(x.dtype.name)
        raise ValueError(
            f"lambda must be in range [0, {float(jnp.finfo(x.dtype).max):g}] for input dtype {name}, "
            f"but found {lambd:g}"
        )
    return _softshrink(x, lambd)


@jax.jit
def _softshrink(x: jax.Array, lambd: float) -> jax.Array:
    return jnp.where(x > lambd, x - lambd, jnp.where(x < -lambd, x + lambd, x * 0))


def threshold(input: jax.typing.ArrayLike, threshold: float, value: float, inplace: bool = False) -> jax.Array:
    """``torch.nn.functional.threshold``: ``value if x <= threshold else x`` (gradient 0 where replaced)."""
    return _threshold(_float(input, "threshold"), threshold, value)


@jax.jit
def _threshold(x: jax.Array, threshold: float, value: float) -> jax.Array:
    return jnp.where(x <= threshold, value, x)
