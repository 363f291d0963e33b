"""``torch.nn.Sequential`` (torch/nn/modules/container.py)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from fnnet.nn._conv import conv_plan
from fnnet.nn._fused import cheap_to_recompute, conv_output_shape, tiles
from fnnet.nn._pooling import max_pool1d_window, max_pool2d_window
from fnnet.nn.activation import ReLU
from fnnet.nn.batchnorm import BatchNorm1d, BatchNorm2d
from fnnet.nn.conv import Conv1d, Conv2d
from fnnet.nn.module import Module
from fnnet.nn.pooling import MaxPool1d, MaxPool2d

__all__ = ["Sequential"]


def _fusable(run: list[Any], input: Any) -> tuple | None:
    """The max pooling window when ``run`` is ``BatchNorm -> ReLU -> MaxPool`` that
    ``_BatchNorm._forward`` can compute as one operation on ``input``, else None."""
    if len(run) < 3:
        return None
    bn, relu, pool = run
    kinds = {BatchNorm2d: (MaxPool2d, 4, max_pool2d_window), BatchNorm1d: (MaxPool1d, 3, max_pool1d_window)}
    if type(bn) not in kinds or type(relu) is not ReLU:
        return None
    pool_type, ndim, window = kinds[type(bn)]
    if type(pool) is not pool_type or pool.return_indices or not bn.training or bn.axis_name is not None:
        return None
    if not isinstance(input, (jax.Array, jax.ShapeDtypeStruct)) or input.ndim != ndim or input.size == 0:
        return None
    if not jnp.issubdtype(input.dtype, jnp.floating):
        return None
    return window(input, pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode)


def _conv_plan(conv: Any, input: Any) -> tuple | None:
    """``(x, weight, bias, geometry)`` (checked) when ``conv`` is a ``Conv2d``/``Conv1d`` with zero padding
    on a batched float input that ``fnnet.nn._fused.conv_batch_norm_relu_max_pool_stats`` can take, else None."""
    kinds = {Conv2d: (4, "conv2d"), Conv1d: (3, "conv1d")}
    if type(conv) not in kinds or conv.padding_mode != "zeros":
        return None
    ndim, name = kinds[type(conv)]
    if not isinstance(input, jax.Array) or input.ndim != ndim or input.size == 0:
        return None
    if not jnp.issubdtype(input.dtype, jnp.floating):
        return None
    weight, bias = conv._weights()
    args = (conv.stride, conv.padding, conv.dilation, conv.groups)
    x, w, geometry, _ = conv_plan(input, weight, *args, nd=ndim - 2, name=name)
    return x, w, bias, geometry


def _fusable_block(run: list[Any], input: Any) -> tuple | None:
    """``(window, conv)`` for ``BatchNorm._forward`` when ``run`` is ``Conv -> BatchNorm -> ReLU -> MaxPool``
    with a convolution cheap to recompute whose output the pooling windows tile (``fnnet.nn._fused``'s
    ``cheap_to_recompute`` and ``tiles``), else None."""
    if len(run) < 4:
        return None
    plan = _conv_plan(run[0], input)
    if plan is None:
        return None
    x, w, _, geometry = plan
    if not cheap_to_recompute(w.shape):
        return None
    y = jax.ShapeDtypeStruct(conv_output_shape(x.shape, w.shape, geometry), x.dtype)
    window = _fusable(run[1:4], y)
    if window is None or not tiles(window, y.shape[2:]):
        return None
    return window, plan


class Sequential(Module):
    """``torch.nn.Sequential(*modules)`` or ``Sequential(OrderedDict([(name, module), ...]))``.

    Children are attributes named ``"0"``, ``"1"``, ... (or the dict's names), so ``state_dict``
    keys are torch's ``"0.weight"``; ``seq[i]``, ``seq[a:b]``, ``len``, iteration and ``append``
    work as in torch. Any ``nnx.Module`` can be a child.

    In training mode, three consecutive children ``BatchNorm2d, ReLU, MaxPool2d`` (or ``BatchNorm1d,
    ReLU, MaxPool1d`` on ``(N, C, L)``) run as one operation that pools before it normalises: the same
    output bit for bit, the same buffer updates, torch's gradient, less memory traffic (see
    ``fnnet.nn._fused``). Not under ``pmap``'s synchronised statistics, nor for subclasses that change
    ``forward``, nor with ``return_indices=True``. A ``Conv2d``/``Conv1d`` (zero padding, at most 16
    multiply-adds an output) right before such a run, whose output the pooling windows tile, joins it:
    one loop over batch chunks forward and backward that never holds the convolution's output, nor its
    gradient, for the whole batch (``fnnet.nn._fused.conv_batch_norm_relu_max_pool_stats``; the output
    equals the layers' up to rounding: the batch statistics are merged across chunks).
    """

    def __init__(self, *args: Any, rngs: Any = None) -> None:
        if len(args) == 1 and isinstance(args[0], (OrderedDict, dict)):
            items = list(args[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(args)]
        self._names: tuple[str, ...] = ()
        for name, module in items:
            self._add(str(name), module)

    def _add(self, name: str, module: Any) -> None:
        if not isinstance(module, nnx.Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass (Sequential child {name!r})")
        if name in self._names:
            raise KeyError(f"module name {name!r} already exists in this Sequential")
        setattr(self, name, module)
        self._names = (*self._names, name)

    def forward(self, input: Any) -> Any:
        children = [getattr(self, name) for name in self._names]
        i = 0
        while i < len(children):
            block = _fusable_block(children[i : i + 4], input)
            if block is not None:  # Conv -> BatchNorm -> ReLU -> MaxPool in training: one operation
                input = children[i + 1]._forward(input, *block)
                i += 4
                continue
            window = _fusable(children[i : i + 3], input)
            if window is not None:  # BatchNorm -> ReLU -> MaxPool in training: one operation
                input = children[i]._forward(input, window)
                i += 3
            else:
                input = children[i](input)
                i += 1
        return input

    def append(self, module: nnx.Module) -> Sequential:
        """Add ``module`` at the end, named by its position (torch's ``append``)."""
        self._add(str(len(self._names)), module)
        return self

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[nnx.Module]:
        return (getattr(self, n) for n in self._names)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(OrderedDict((n, getattr(self, n)) for n in self._names[index]))
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"Sequential indices must be integers or slices, not {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range")
        return getattr(self, self._names[index])
