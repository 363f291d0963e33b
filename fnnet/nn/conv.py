"""``torch.nn.Conv1d``, ``Conv2d``, ``ConvTranspose1d``, ``ConvTranspose2d`` (torch/nn/modules/conv.py).

Weights in torch's layout (``(out, in/groups, *kernel)``; transposed: ``(in, out/groups, *kernel)``),
inputs in torch's ``(N, C, L)`` / ``(N, C, H, W)`` (or unbatched) layout, torch's default init
(``kaiming_uniform_(a=sqrt(5))`` for the weight, U(±1/sqrt(fan_in)) for the bias). ``padding_mode``
``"reflect"``/``"replicate"``/``"circular"`` pads with ``F.pad`` and convolves with no padding, as torch
does. The convolution itself is ``fnnet.nn.functional.conv*d``: on a CPU a matrix-product lowering
that stays fast inside ``lax.scan``, XLA's own convolution elsewhere (see ``fnnet.nn._conv``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
from flax import nnx

from fnnet.nn import _conv as F
from fnnet.nn import init
from fnnet.nn._padding import pad
from fnnet.nn.linear import check_size, fan_in_bound, uniform_param
from fnnet.nn.module import Module, check_device, default_rngs, float_dtype

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(value: Any, n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    if (
        isinstance(value, Sequence)
        and len(value) == n
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return tuple(value)
    raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")


class _ConvNd(Module):
    """What torch's ``_ConvNd`` holds and checks; subclasses give ``nd``, ``transposed`` and forward."""

    nd = 2
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, output_padding, device, dtype, rngs) -> None:  # fmt: skip
        nd, name = self.nd, type(self).__name__
        check_size(in_channels, "in_channels")
        check_size(out_channels, "out_channels")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        valid_padding_strings = {"same", "valid"}
        if isinstance(padding, str):
            if padding not in valid_padding_strings:
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {valid_padding_strings}")
            if padding == "same" and any(s != 1 for s in _ntuple(stride, nd, "stride")):
                raise ValueError("padding='same' is not supported for strided convolutions")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {list(_PADDING_MODES)}, but got padding_mode='{padding_mode}'"
            )
        if self.transposed and padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {name}')
        check_device(device)
        dt = float_dtype(dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _ntuple(kernel_size, nd, "kernel_size")
        self.stride = _ntuple(stride, nd, "stride")
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, nd, "padding")
        self.dilation = _ntuple(dilation, nd, "dilation")
        self.output_padding = _ntuple(output_padding, nd, "output_padding")
        self.groups, self.padding_mode = groups, padding_mode
        if self.transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        rngs = default_rngs(rngs)
        # torch's reset_parameters: kaiming_uniform_(weight, a=sqrt(5)); bias U(±1/sqrt(fan_in)) with
        # fan_in from the weight's own shape (for a transposed conv that is out/groups * kernel).
        self.weight = nnx.Param(init.kaiming_uniform(rngs.params(), shape, a=math.sqrt(5), dtype=dt))
        bound = fan_in_bound(init.calculate_fan_in_and_fan_out(shape)[0])
        self.bias = uniform_param(rngs.params(), (out_channels,), bound, dt) if bias else None

    def _reversed_padding_repeated_twice(self) -> tuple[int, ...]:
        """torch's padding for ``F.pad`` (last dim first, each side), incl. ``"same"``'s uneven split."""
        out: list[int] = []
        for i in reversed(range(self.nd)):
            if self.padding == "same":
                total = self.dilation[i] * (self.kernel_size[i] - 1)
                left = total // 2
                out += [left, total - left]
            elif self.padding == "valid":
                out += [0, 0]
            else:
                out += [self.padding[i], self.padding[i]]
        return tuple(out)

    def _weights(self) -> tuple[jax.Array, jax.Array | None]:
        return self.weight.get_value(), None if self.bias is None else self.bias.get_value()

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self.nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self.nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None, *, rngs: nnx.Rngs | int | None = None) -> None:  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, 0, device, dtype, rngs)  # fmt: skip

    def forward(self, input: jax.typing.ArrayLike) -> jax.Array:
        weight, bias = self._weights()
        conv = F.conv1d if self.nd == 1 else F.conv2d
        if self.padding_mode != "zeros":
            padded = pad(input, self._reversed_padding_repeated_twice(), mode=self.padding_mode)
            return conv(padded, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(_Conv):
    """``torch.nn.Conv1d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
    bias=True, padding_mode='zeros', device=None, dtype=None)`` on ``(N, C, L)`` or ``(C, L)``."""

    nd = 1


class Conv2d(_Conv):
    """``torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
    bias=True, padding_mode='zeros', device=None, dtype=None)`` on ``(N, C, H, W)`` or ``(C, H, W)``."""

    nd = 2


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None, *, rngs: nnx.Rngs | int | None = None) -> None:  # fmt: skip
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__} does not support a string padding, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device, dtype, rngs)  # fmt: skip

    def _output_padding(self, input: jax.Array, output_size: Sequence[int] | None) -> tuple[int, ...]:
        """torch's ``_output_padding``: the extra size that makes the output ``output_size``."""
        if output_size is None:
            return self.output_padding
        nd = self.nd
        output_size = list(output_size)
        if len(output_size) == nd + 2 or (len(output_size) == nd + 1 and input.ndim == nd + 1):
            output_size = output_size[-nd:]
        if len(output_size) != nd:
            raise ValueError(f"ConvTranspose{nd}D: for {input.ndim}D input, output_size must have {nd} or "
                             f"{nd + 2} elements (got {len(output_size)})")  # fmt: skip
        spatial = input.shape[-nd:]
        result = []
        for d in range(nd):
            smallest = (
                (spatial[d] - 1) * self.stride[d]
                - 2 * self.padding[d]
                + self.dilation[d] * (self.kernel_size[d] - 1)
                + 1
            )
            largest = smallest + self.stride[d] - 1
            if not smallest <= output_size[d] <= largest:
                raise ValueError(f"requested an output size of {output_size}, but valid sizes range from "
                                 f"{smallest} to {largest} (for an input of {list(spatial)})")  # fmt: skip
            result.append(output_size[d] - smallest)
        return tuple(result)

    def forward(self, input: jax.typing.ArrayLike, output_size: Sequence[int] | None = None) -> jax.Array:
        weight, bias = self._weights()
        x = jax.numpy.asarray(input)
        conv_t = F.conv_transpose1d if self.nd == 1 else F.conv_transpose2d
        output_padding = self._output_padding(x, output_size)
        return conv_t(x, weight, bias, self.stride, self.padding, output_padding, self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose):
    """``torch.nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=1, padding=0,
    output_padding=0, groups=1, bias=True, dilation=1, padding_mode='zeros', device=None, dtype=None)``."""

    nd = 1


class ConvTranspose2d(_ConvTranspose):
    """``torch.nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
    output_padding=0, groups=1, bias=True, dilation=1, padding_mode='zeros', device=None, dtype=None)``;
    ``forward(input, output_size=None)``."""

    nd = 2
