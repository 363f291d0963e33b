"""``torch.nn.init`` with explicit keys: each returns a new array instead of filling a tensor in place.

``kaiming_uniform(key, shape, a=math.sqrt(5))`` is the draw behind torch's default ``Linear``/``Conv``
weights (U(±1/sqrt(fan_in)) for that ``a``). Shapes are torch's: ``(out, in, *kernel)`` for weights,
and fans are computed as ``torch.nn.init._calculate_fan_in_and_fan_out`` does. The numbers differ from
torch's generator; load a torch ``state_dict`` when identical weights are needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "calculate_gain",
    "calculate_fan_in_and_fan_out",
    "constant",
    "kaiming_normal",
    "kaiming_uniform",
    "normal",
    "ones",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]

_LINEAR = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """``torch.nn.init.calculate_gain``."""
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def calculate_fan_in_and_fan_out(shape: Sequence[int]) -> tuple[int, int]:
    """``torch.nn.init._calculate_fan_in_and_fan_out`` for a weight of ``shape``."""
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape: Sequence[int], mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    return fan_in if mode == "fan_in" else fan_out


def uniform(key: jax.Array, shape: Sequence[int], a: float = 0.0, b: float = 1.0, dtype: Any = jnp.float32):
    """``torch.nn.init.uniform_``: U(a, b)."""
    return jax.random.uniform(key, tuple(shape), dtype, minval=a, maxval=b)


def normal(key: jax.Array, shape: Sequence[int], mean: float = 0.0, std: float = 1.0, dtype: Any = jnp.float32):
    """``torch.nn.init.normal_``: N(mean, std²)."""
    return mean + std * jax.random.normal(key, tuple(shape), dtype)


def constant(shape: Sequence[int], val: float, dtype: Any = jnp.float32) -> jax.Array:
    """``torch.nn.init.constant_``."""
    return jnp.full(tuple(shape), val, dtype)


def zeros(shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
    """``torch.nn.init.zeros_``."""
    return jnp.zeros(tuple(shape), dtype)


def ones(shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
    """``torch.nn.init.ones_``."""
    return jnp.ones(tuple(shape), dtype)


def kaiming_uniform(
    key: jax.Array,
    shape: Sequence[int],
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    dtype: Any = jnp.float32,
) -> jax.Array:
    """``torch.nn.init.kaiming_uniform_``: U(±gain·sqrt(3 / fan)). An empty fan gives zeros, as torch
    warns and leaves the tensor unchanged (here: bound 0)."""
    fan = _fan(shape, mode)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan) if fan else 0.0
    return uniform(key, shape, -bound, bound, dtype)


def kaiming_normal(
    key: jax.Array,
    shape: Sequence[int],
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    dtype: Any = jnp.float32,
) -> jax.Array:
    """``torch.nn.init.kaiming_normal_``: N(0, (gain / sqrt(fan))²)."""
    fan = _fan(shape, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0
    return normal(key, shape, 0.0, std, dtype)


def xavier_uniform(key: jax.Array, shape: Sequence[int], gain: float = 1.0, dtype: Any = jnp.float32) -> jax.Array:
    """``torch.nn.init.xavier_uniform_``: U(±gain·sqrt(6 / (fan_in + fan_out)))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(key, shape, -bound, bound, dtype)


def xavier_normal(key: jax.Array, shape: Sequence[int], gain: float = 1.0, dtype: Any = jnp.float32) -> jax.Array:
    """``torch.nn.init.xavier_normal_``: N(0, gain² · 2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    return normal(key, shape, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), dtype)
