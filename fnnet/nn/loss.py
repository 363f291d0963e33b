"""The ``torch.nn`` loss modules (torch/nn/modules/loss.py), each its ``fnnet.nn.functional`` loss.

``nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)(logits, target)`` is
``F.cross_entropy(logits, target, weight=w, label_smoothing=0.1)``. As in torch, the legacy
``size_average``/``reduce`` arguments become ``reduction`` when the module is built (with torch's
warning), and a tensor ``weight`` (``pos_weight``) is a buffer, so it is in ``state_dict``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from fnnet.nn import _ctc, _losses, _losses_embedding, _losses_extra
from fnnet.nn.module import Buffer, Module

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CTCLoss",
    "CosineEmbeddingLoss",
    "CrossEntropyLoss",
    "GaussianNLLLoss",
    "HingeEmbeddingLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "MSELoss",
    "MarginRankingLoss",
    "MultiLabelMarginLoss",
    "MultiLabelSoftMarginLoss",
    "MultiMarginLoss",
    "NLLLoss",
    "PoissonNLLLoss",
    "SmoothL1Loss",
    "SoftMarginLoss",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
    "loss_module",
]

_LEGACY = ("size_average", "reduce")


def loss_module(
    fn: Callable[..., jax.Array],
    name: str,
    fields: tuple[str, ...],
    *,
    buffers: tuple[str, ...] = (),
    doc: str = "",
    keyword_only: tuple[str, ...] = (),
    defaults: Mapping[str, Any] | None = None,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> type[Module]:
    """A ``fnnet.nn.Module`` class ``name`` whose constructor takes torch's ``fields`` (positional in
    that order, same defaults as ``fn``'s keywords; the trailing ``keyword_only`` ones after ``*``) and
    whose ``forward(*inputs)`` is ``fn(*inputs, **options)``. ``buffers`` name the tensor options torch
    registers as buffers; ``defaults`` override ``fn``'s where the torch module's differ (``0.0`` for
    ``0``); ``check(values)`` runs torch's constructor checks. The class's signature is torch's
    constructor's, then the keyword-only ``rngs=None`` every fnnet layer takes."""
    params = inspect.signature(fn).parameters
    missing = [f for f in fields if f not in params]
    if missing:
        raise TypeError(f"{fn.__name__} has no keyword(s) {missing} for {name}")
    if tuple(fields[len(fields) - len(keyword_only) :]) != tuple(keyword_only):
        raise TypeError(f"keyword_only {keyword_only} must be the last of {name}'s fields {fields}")
    defaults = {**{f: params[f].default for f in fields}, **(defaults or {})}
    n_positional = len(fields) - len(keyword_only)

    def __init__(self, *args: Any, rngs: Any = None, **kwargs: Any) -> None:  # noqa: N807
        if len(args) > n_positional:
            raise TypeError(f"{name}() takes {n_positional} positional arguments but {len(args)} were given")
        values = dict(defaults)
        for field, value in zip(fields, args):
            values[field] = value
        for key, value in kwargs.items():
            if key not in values:
                raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
            if key in fields[: len(args)]:
                raise TypeError(f"{name}() got multiple values for argument {key!r}")
            values[key] = value
        if check is not None:
            check(values)
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
    kinds = [inspect.Parameter.POSITIONAL_OR_KEYWORD] * n_positional + [inspect.Parameter.KEYWORD_ONLY] * len(
        keyword_only
    )
    signature = [inspect.Parameter(f, kind, default=defaults[f]) for f, kind in zip(fields, kinds)]
    signature.append(inspect.Parameter("rngs", inspect.Parameter.KEYWORD_ONLY, default=None))
    cls.__signature__ = inspect.Signature(signature)
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


# ---------------------------------------------------------------- the rest of torch/nn/modules/loss.py
_LEGACY_REDUCTION = ("size_average", "reduce", "reduction")


def _positive_margin(name: str) -> Callable[[dict[str, Any]], None]:
    def check(values: dict[str, Any]) -> None:
        if values["margin"] <= 0:
            raise ValueError(f"{name}: expected margin to be greater than 0, got {values['margin']} instead")

    return check


def _multi_margin_check(values: dict[str, Any]) -> None:
    if values["p"] not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    weight = values["weight"]
    if weight is not None and jnp.ndim(weight) != 1:
        raise ValueError(f"MultiMarginLoss: expected weight to be None or 1D tensor, got {jnp.ndim(weight)}D instead")


PoissonNLLLoss = loss_module(
    _losses_extra.poisson_nll_loss,
    "PoissonNLLLoss",
    ("log_input", "full", "size_average", "eps", "reduce", "reduction"),
)
GaussianNLLLoss = loss_module(
    _losses_extra.gaussian_nll_loss,
    "GaussianNLLLoss",
    ("full", "eps", "reduction"),
    keyword_only=("full", "eps", "reduction"),
    doc="``torch.nn.GaussianNLLLoss(*, full=False, eps=1e-06, reduction='mean')``: "
    "``GaussianNLLLoss(...)(input, target, var)`` is ``F.gaussian_nll_loss``.",
)
CosineEmbeddingLoss = loss_module(
    _losses_embedding.cosine_embedding_loss,
    "CosineEmbeddingLoss",
    ("margin", *_LEGACY_REDUCTION),
    defaults={"margin": 0.0},
)
HingeEmbeddingLoss = loss_module(
    _losses_extra.hinge_embedding_loss, "HingeEmbeddingLoss", ("margin", *_LEGACY_REDUCTION)
)
MarginRankingLoss = loss_module(
    _losses_extra.margin_ranking_loss, "MarginRankingLoss", ("margin", *_LEGACY_REDUCTION), defaults={"margin": 0.0}
)
MultiLabelMarginLoss = loss_module(_losses_extra.multilabel_margin_loss, "MultiLabelMarginLoss", _LEGACY_REDUCTION)
MultiLabelSoftMarginLoss = loss_module(
    _losses_extra.multilabel_soft_margin_loss,
    "MultiLabelSoftMarginLoss",
    ("weight", *_LEGACY_REDUCTION),
    buffers=("weight",),
)
MultiMarginLoss = loss_module(
    _losses_extra.multi_margin_loss,
    "MultiMarginLoss",
    ("p", "margin", "weight", *_LEGACY_REDUCTION),
    buffers=("weight",),
    check=_multi_margin_check,
)
SoftMarginLoss = loss_module(_losses_extra.soft_margin_loss, "SoftMarginLoss", _LEGACY_REDUCTION)
TripletMarginLoss = loss_module(
    _losses_embedding.triplet_margin_loss,
    "TripletMarginLoss",
    ("margin", "p", "eps", "swap", *_LEGACY_REDUCTION),
    defaults={"p": 2.0},
    check=_positive_margin("TripletMarginLoss"),
)
TripletMarginWithDistanceLoss = loss_module(
    _losses_embedding.triplet_margin_with_distance_loss,
    "TripletMarginWithDistanceLoss",
    ("distance_function", "margin", "swap", "reduction"),
    keyword_only=("distance_function", "margin", "swap", "reduction"),
    check=_positive_margin("TripletMarginWithDistanceLoss"),
    doc="``torch.nn.TripletMarginWithDistanceLoss(*, distance_function=None, margin=1.0, swap=False, "
    "reduction='mean')``: ``F.triplet_margin_with_distance_loss``; ``distance_function`` is a JAX function "
    "(``None``: torch's ``pairwise_distance``, which torch's module holds as a ``PairwiseDistance()`` "
    "submodule: its ``repr`` shows it, fnnet's does not).",
)
CTCLoss = loss_module(
    _ctc.ctc_loss,
    "CTCLoss",
    ("blank", "reduction", "zero_infinity"),
    doc="``torch.nn.CTCLoss(blank=0, reduction='mean', zero_infinity=False)``: "
    "``CTCLoss(...)(log_probs, targets, input_lengths, target_lengths)`` is ``F.ctc_loss``, with torch's "
    "gradient (see ``fnnet.nn._ctc``).",
)
