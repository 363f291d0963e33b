"""The ``torch.nn`` loss modules (torch/nn/modules/loss.py), each its ``fnnet.nn.functional`` loss.

``nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)(logits, target)`` is
``F.cross_entropy(logits, target, weight=w, label_smoothing=0.1)``. As in torch, the legacy
``size_average``/``reduce`` arguments become ``reduction`` when the module is built (with torch's
warning), and a tensor ``weight`` (``pos_weight``) is a buffer, so it is in ``state_dict``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from fnnet.nn import _losses
from fnnet.nn.module import Buffer, Module

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "MSELoss",
    "NLLLoss",
    "SmoothL1Loss",
    "loss_module",
]

_LEGACY = ("size_average", "reduce")


def loss_module(
    fn: Callable[..., jax.Array], name: str, fields: tuple[str, ...], *, buffers: tuple[str, ...] = (), doc: str = ""
) -> type[Module]:
    """A ``fnnet.nn.Module`` class ``name`` whose constructor takes torch's ``fields`` (positional in
    that order, same defaults as ``fn``'s keywords; ``keyword_only`` ones after ``*``) and whose
    ``forward(*inputs)`` is ``fn(*inputs, **options)``. ``buffers`` name the tensor options torch
    registers as buffers."""
    params = inspect.signature(fn).parameters
    defaults = {f: params[f].default for f in fields if f in params}
    missing = [f for f in fields if f not in params]
    if missing:
        raise TypeError(f"{fn.__name__} has no keyword(s) {missing} for {name}")

    def __init__(self, *args: Any, rngs: Any = None, **kwargs: Any) -> None:  # noqa: N807
        if len(args) > len(fields):
            raise TypeError(f"{name}() takes {len(fields)} positional arguments but {len(args)} were given")
        values = dict(defaults)
        for field, value in zip(fields, args):
            values[field] = value
        for key, value in kwargs.items():
            if key not in values:
                raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
            if key in fields[: len(args)]:
                raise TypeError(f"{name}() got multiple values for argument {key!r}")
            values[key] = value
        if "reduction" in values and any(values.get(k) is not None for k in _LEGACY):
            values["reduction"] = _losses._reduction(values.get("size_average"), values.get("reduce"), "mean")
        for key in _LEGACY:
            values.pop(key, None)
        for key, value in values.items():
            if key in buffers and value is not None:
                setattr(self, key, Buffer(jnp.asarray(value)))
            else:
                setattr(self, key, value)

    def forward(self, *inputs: Any) -> jax.Array:
        options = {}
        for key in fields:
            if key in _LEGACY:
                continue
            value = getattr(self, key)
            options[key] = value.get_value() if isinstance(value, Buffer) else value
        return fn(*inputs, **options)

    cls = type(name, (Module,), {"__init__": __init__, "forward": forward})
    cls.__module__ = __name__
    cls.__qualname__ = name
    args = ", ".join(f"{f}={defaults[f]!r}" for f in fields)
    cls.__doc__ = doc or f"``torch.nn.{name}({args})``: ``{name}(...)(*inputs)`` is ``F.{fn.__name__}``."
    return cls


L1Loss = loss_module(_losses.l1_loss, "L1Loss", ("size_average", "reduce", "reduction"))
MSELoss = loss_module(_losses.mse_loss, "MSELoss", ("size_average", "reduce", "reduction"))
SmoothL1Loss = loss_module(_losses.smooth_l1_loss, "SmoothL1Loss", ("size_average", "reduce", "reduction", "beta"))
HuberLoss = loss_module(_losses.huber_loss, "HuberLoss", ("reduction", "delta"))
BCELoss = loss_module(
    _losses.binary_cross_entropy, "BCELoss", ("weight", "size_average", "reduce", "reduction"), buffers=("weight",)
)
BCEWithLogitsLoss = loss_module(
    _losses.binary_cross_entropy_with_logits,
    "BCEWithLogitsLoss",
    ("weight", "size_average", "reduce", "reduction", "pos_weight"),
    buffers=("weight", "pos_weight"),
)
CrossEntropyLoss = loss_module(
    _losses.cross_entropy,
    "CrossEntropyLoss",
    ("weight", "size_average", "ignore_index", "reduce", "reduction", "label_smoothing"),
    buffers=("weight",),
)
NLLLoss = loss_module(
    _losses.nll_loss, "NLLLoss", ("weight", "size_average", "ignore_index", "reduce", "reduction"), buffers=("weight",)
)
KLDivLoss = loss_module(_losses.kl_div, "KLDivLoss", ("size_average", "reduce", "reduction", "log_target"))
