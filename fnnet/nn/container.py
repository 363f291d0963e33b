"""``torch.nn.Sequential`` (torch/nn/modules/container.py)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from flax import nnx

from fnnet.nn.module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """``torch.nn.Sequential(*modules)`` or ``Sequential(OrderedDict([(name, module), ...]))``.

    Children are attributes named ``"0"``, ``"1"``, ... (or the dict's names), so ``state_dict``
    keys are torch's ``"0.weight"``; ``seq[i]``, ``seq[a:b]``, ``len``, iteration and ``append``
    work as in torch. Any ``nnx.Module`` can be a child.
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
        for name in self._names:
            input = getattr(self, name)(input)
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
