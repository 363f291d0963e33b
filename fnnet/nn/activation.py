"""Activation layers (torch/nn/modules/activation.py): each is its ``fnnet.nn.functional`` form.

Every layer accepts ``rngs=`` and ignores it (none has parameters or randomness, except ``PReLU``'s
weight, which is not random), so generic code builds any layer the same way.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from fnnet.nn import _activations as F
from fnnet.nn import _activations_more as G
from fnnet.nn.linear import check_size
from fnnet.nn.module import Module, check_device, float_dtype

__all__ = [
    "CELU",
    "ELU",
    "GELU",
    "GLU",
    "Hardshrink",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "LeakyReLU",
    "LogSigmoid",
    "LogSoftmax",
    "Mish",
    "PReLU",
    "ReLU",
    "ReLU6",
    "SELU",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softmax2d",
    "Softmin",
    "Softplus",
    "Softshrink",
    "Softsign",
    "Tanh",
    "Tanhshrink",
    "Threshold",
]


def _inplace(inplace: bool, first: bool) -> str:
    """torch's ``inplace_str``: ``"inplace=True"`` (or ``", inplace=True"`` after other fields) when set."""
    if not inplace:
        return ""
    return "inplace=True" if first else ", inplace=True"


class ReLU(Module):
    """``torch.nn.ReLU(inplace=False)`` (``inplace`` is accepted and has no effect on values)."""

    def __init__(self, inplace: bool = False, *, rngs: Any = None) -> None:
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return F.relu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    """``torch.nn.Sigmoid()``."""

    def __init__(self, *, rngs: Any = None) -> None:
        pass

    def forward(self, input: jax.Array) -> jax.Array:
        return F.sigmoid(input)


class Tanh(Module):
    """``torch.nn.Tanh()``."""

    def __init__(self, *, rngs: Any = None) -> None:
        pass

    def forward(self, input: jax.Array) -> jax.Array:
        return F.tanh(input)


class Softmax(Module):
    """``torch.nn.Softmax(dim=None)`` (``dim=None`` picks torch's implicit dim, with its warning)."""

    def __init__(self, dim: int | None = None, *, rngs: Any = None) -> None:
        self.dim = dim

    def forward(self, input: jax.Array) -> jax.Array:
        return F.softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``torch.nn.LogSoftmax(dim=None)``."""

    def __init__(self, dim: int | None = None, *, rngs: Any = None) -> None:
        self.dim = dim

    def forward(self, input: jax.Array) -> jax.Array:
        return F.log_softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Threshold(Module):
    """``torch.nn.Threshold(threshold, value, inplace=False)``: ``value`` where ``x <= threshold``, else ``x``."""

    def __init__(self, threshold: float, value: float, inplace: bool = False, *, rngs: Any = None) -> None:
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return F.threshold(input, self.threshold, self.value)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}{_inplace(self.inplace, False)}"


class Hardtanh(Module):
    """``torch.nn.Hardtanh(min_val=-1.0, max_val=1.0, inplace=False, min_value=None, max_value=None)``.

    ``min_value``/``max_value`` are torch's deprecated spellings (same FutureWarning). ``max_val <= min_val``
    raises ``ValueError`` with torch's message (torch raises ``AssertionError``).
    """

    def __init__(
        self,
        min_val: float = -1.0,
        max_val: float = 1.0,
        inplace: bool = False,
        min_value: float | None = None,
        max_value: float | None = None,
        *,
        rngs: Any = None,
    ) -> None:
        if min_value is not None:
            warnings.warn(
                "keyword argument `min_value` is deprecated and renamed to `min_val`", FutureWarning, stacklevel=2
            )
            min_val = min_value
        if max_value is not None:
            warnings.warn(
                "keyword argument `max_value` is deprecated and renamed to `max_val`", FutureWarning, stacklevel=2
            )
            max_val = max_value
        if max_val <= min_val:
            raise ValueError(f"max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace(self.inplace, False)}"


class ReLU6(Hardtanh):
    """``torch.nn.ReLU6(inplace=False)``: ``Hardtanh(0.0, 6.0)`` (``jax.nn.relu6``)."""

    def __init__(self, inplace: bool = False, *, rngs: Any = None) -> None:
        super().__init__(0.0, 6.0, inplace)

    def forward(self, input: jax.Array) -> jax.Array:
        return F.relu6(input)

    def extra_repr(self) -> str:
        return _inplace(self.inplace, True)


class _Inplace(Module):
    """A parameter-free activation with torch's only argument ``inplace`` (accepted, no effect on values)."""

    _fn: Any = None
    _repr_inplace = True  # torch's SiLU, Mish, SELU show ``inplace=True``; Hardsigmoid, Hardswish show nothing

    def __init__(self, inplace: bool = False, *, rngs: Any = None) -> None:
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return type(self)._fn(input)

    def extra_repr(self) -> str:
        return _inplace(self.inplace, True) if self._repr_inplace else ""


class _NoArgs(Module):
    """A parameter-free activation without arguments (torch's ``Softsign``, ``LogSigmoid``, ``Tanhshrink``)."""

    _fn: Any = None

    def __init__(self, *, rngs: Any = None) -> None:
        pass

    def forward(self, input: jax.Array) -> jax.Array:
        return type(self)._fn(input)


class Hardsigmoid(_Inplace):
    """``torch.nn.Hardsigmoid(inplace=False)``: ``relu6(x + 3) / 6``."""

    _fn = staticmethod(F.hardsigmoid)
    _repr_inplace = False


class Hardswish(_Inplace):
    """``torch.nn.Hardswish(inplace=False)``: ``x * relu6(x + 3) / 6``."""

    _fn = staticmethod(F.hardswish)
    _repr_inplace = False


class SiLU(_Inplace):
    """``torch.nn.SiLU(inplace=False)``: ``x * sigmoid(x)``."""

    _fn = staticmethod(G.silu)


class Mish(_Inplace):
    """``torch.nn.Mish(inplace=False)``: ``x * tanh(softplus(x))``."""

    _fn = staticmethod(G.mish)


class SELU(_Inplace):
    """``torch.nn.SELU(inplace=False)``: ``scale * elu(x, alpha)`` with torch's constants."""

    _fn = staticmethod(G.selu)


class Softsign(_NoArgs):
    """``torch.nn.Softsign()``: ``x / (1 + |x|)``."""

    _fn = staticmethod(G.softsign)


class LogSigmoid(_NoArgs):
    """``torch.nn.LogSigmoid()``: ``log(sigmoid(x))``."""

    _fn = staticmethod(G.logsigmoid)


class Tanhshrink(_NoArgs):
    """``torch.nn.Tanhshrink()``: ``x - tanh(x)``."""

    _fn = staticmethod(G.tanhshrink)


class ELU(Module):
    """``torch.nn.ELU(alpha=1.0, inplace=False)``."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False, *, rngs: Any = None) -> None:
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return G.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace(self.inplace, False)}"


class CELU(ELU):
    """``torch.nn.CELU(alpha=1.0, inplace=False)``."""

    def forward(self, input: jax.Array) -> jax.Array:
        return G.celu(input, self.alpha)


class LeakyReLU(Module):
    """``torch.nn.LeakyReLU(negative_slope=0.01, inplace=False)`` (gradient at 0 is the slope, as torch's)."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False, *, rngs: Any = None) -> None:
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: jax.Array) -> jax.Array:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}{_inplace(self.inplace, False)}"


class PReLU(Module):
    """``torch.nn.PReLU(num_parameters=1, init=0.25, device=None, dtype=None)``.

    ``weight`` is ``(num_parameters,)`` filled with ``init`` (torch's ``reset_parameters``): one slope, or one
    per channel (dim 1 of the input).
    """

    def __init__(
        self, num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None, *, rngs: Any = None
    ) -> None:
        self.num_parameters = check_size(num_parameters, "num_parameters")
        check_device(device)
        self.init = init
        self.weight = nnx.Param(jnp.full((num_parameters,), init, float_dtype(dtype)))

    def forward(self, input: jax.Array) -> jax.Array:
        return F.prelu(input, self.weight.get_value())

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class GELU(Module):
    """``torch.nn.GELU(approximate="none")`` (``"tanh"`` for the tanh approximation)."""

    def __init__(self, approximate: str = "none", *, rngs: Any = None) -> None:
        self.approximate = approximate

    def forward(self, input: jax.Array) -> jax.Array:
        return G.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """``torch.nn.Softplus(beta=1.0, threshold=20.0)``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0, *, rngs: Any = None) -> None:
        self.beta = beta
        self.threshold = threshold

    def forward(self, input: jax.Array) -> jax.Array:
        return G.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardshrink(Module):
    """``torch.nn.Hardshrink(lambd=0.5)``."""

    def __init__(self, lambd: float = 0.5, *, rngs: Any = None) -> None:
        self.lambd = lambd

    def forward(self, input: jax.Array) -> jax.Array:
        return F.hardshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Softshrink(Hardshrink):
    """``torch.nn.Softshrink(lambd=0.5)``."""

    def forward(self, input: jax.Array) -> jax.Array:
        return F.softshrink(input, self.lambd)


class GLU(Module):
    """``torch.nn.GLU(dim=-1)``: ``a * sigmoid(b)`` for the two halves of ``dim``."""

    def __init__(self, dim: int = -1, *, rngs: Any = None) -> None:
        self.dim = dim

    def forward(self, input: jax.Array) -> jax.Array:
        return G.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmin(Module):
    """``torch.nn.Softmin(dim=None)``: ``softmax(-x, dim)``."""

    def __init__(self, dim: int | None = None, *, rngs: Any = None) -> None:
        self.dim = dim

    def forward(self, input: jax.Array) -> jax.Array:
        return F.softmin(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax2d(Module):
    """``torch.nn.Softmax2d()``: softmax over the channels (dim -3) of a ``(N, C, H, W)`` or ``(C, H, W)`` input."""

    def __init__(self, *, rngs: Any = None) -> None:
        pass

    def forward(self, input: jax.Array) -> jax.Array:
        ndim = jnp.ndim(input)
        if ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {ndim}D instead")
        return F.softmax(input, -3, _stacklevel=5)
