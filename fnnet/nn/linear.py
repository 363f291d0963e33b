"""``torch.nn.Linear`` and ``torch.nn.Identity`` (torch/nn/modules/linear.py)."""

from __future__ import annotations

import math
from typing import Any

import jax
from flax import nnx

from fnnet.nn import init
from fnnet.nn._linear import linear
from fnnet.nn.module import Module, check_device, default_rngs, float_dtype

__all__ = ["Identity", "Linear"]


def check_size(value: Any, name: str, *, minimum: int = 0) -> int:
    """A non-negative int argument (torch raises on floats and negatives)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def uniform_param(key: jax.Array, shape: tuple[int, ...], bound: float, dtype) -> nnx.Param:
    """A parameter drawn from U(-bound, bound): torch's ``kaiming_uniform_(a=sqrt(5))`` and bias init.

    torch draws other numbers from its generator; load a torch ``state_dict`` for identical weights.
    """
    return nnx.Param(jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound))


def fan_in_bound(fan_in: int) -> float:
    """``1 / sqrt(fan_in)`` (0 for an empty layer): the bound of torch's default weight and bias init."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


class Identity(Module):
    """``torch.nn.Identity(*args, **kwargs)``: returns its input; every argument is ignored."""

    def __init__(self, *args: Any, rngs: Any = None, **kwargs: Any) -> None:
        pass

    def forward(self, input: jax.Array) -> jax.Array:
        return input


class Linear(Module):
    """``torch.nn.Linear(in_features, out_features, bias=True, device=None, dtype=None)``.

    ``weight`` is ``(out_features, in_features)`` and ``bias`` ``(out_features,)`` as in torch (so a
    torch ``state_dict`` loads with no transpose), both drawn from U(±1/sqrt(in_features)) like
    torch's ``reset_parameters``. ``dtype`` defaults to float32. ``bias=False`` leaves ``bias`` None.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        rngs: nnx.Rngs | int | None = None,
    ) -> None:
        self.in_features = check_size(in_features, "in_features")
        self.out_features = check_size(out_features, "out_features")
        check_device(device)
        dt = float_dtype(dtype)
        rngs = default_rngs(rngs)
        shape = (out_features, in_features)
        self.weight = nnx.Param(init.kaiming_uniform(rngs.params(), shape, a=math.sqrt(5), dtype=dt))
        bound = fan_in_bound(init.calculate_fan_in_and_fan_out(shape)[0])
        self.bias = uniform_param(rngs.params(), (out_features,), bound, dt) if bias else None

    def forward(self, input: jax.typing.ArrayLike) -> jax.Array:
        return linear(input, self.weight.get_value(), None if self.bias is None else self.bias.get_value())

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
