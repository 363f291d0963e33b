"""The layer table of ``fnnet.nn.from_torch``: torch layer class name -> a builder of its ``fnnet.nn`` twin.

Each builder reads the torch layer's constructor attributes (``in_features``, ``kernel_size``,
``padding_mode``, ``eps``, ``momentum``, ``p``, ``negative_slope``, ...) and calls the fnnet class with
them, with the dtype of the layer's parameters (float64 needs x64). The parameters and buffers are
then copied by ``fnnet.nn.load_state_dict`` over the whole converted model. A class is matched by its
exact type: a subclass with its own ``forward`` is traced instead, never taken for its parent.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from fnnet.nn import activation, batchnorm, conv, dropout, flatten, linear, normalization, padding, pooling, sparse

__all__ = ["LAYERS", "mutates_input"]

# The fnnet layer classes by name, read from their own files (this module is imported while fnnet.nn is).
nn = types.SimpleNamespace(
    **{
        name: getattr(module, name)
        for module in (activation, batchnorm, conv, dropout, flatten, linear, normalization, padding, pooling, sparse)
        for name in module.__all__
    }
)

Builder = Callable[[Any, Any, Any], Any]  # (torch layer, fnnet dtype or None, nnx.Rngs) -> fnnet layer


def _bias(m: Any) -> bool:
    return getattr(m, "bias", None) is not None


def _conv(cls: type) -> Builder:
    def build(m: Any, dt: Any, rngs: Any) -> Any:
        return cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups, _bias(m),
                   m.padding_mode, dtype=dt, rngs=rngs)  # fmt: skip

    return build


def _conv_transpose(cls: type) -> Builder:
    def build(m: Any, dt: Any, rngs: Any) -> Any:
        return cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.output_padding, m.groups,
                   _bias(m), m.dilation, m.padding_mode, dtype=dt, rngs=rngs)  # fmt: skip

    return build


def _batch_norm(cls: type) -> Builder:
    def build(m: Any, dt: Any, rngs: Any) -> Any:
        bias = m.bias is not None or not m.affine
        return cls(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats, dtype=dt, bias=bias, rngs=rngs)

    return build


def _max_pool(cls: type) -> Builder:
    def build(m: Any, dt: Any, rngs: Any) -> Any:
        return cls(m.kernel_size, m.stride, m.padding, m.dilation, m.return_indices, m.ceil_mode)

    return build


def _adaptive_max(cls: type) -> Builder:
    return lambda m, dt, rngs: cls(m.output_size, m.return_indices)


def _attrs(cls: type, *names: str, dtype: bool = False, random: bool = False) -> Builder:
    """``cls(m.<name>, ...)``: the constructor arguments read back from the torch layer's attributes."""

    def build(m: Any, dt: Any, rngs: Any) -> Any:
        kwargs: dict[str, Any] = {"dtype": dt} if dtype else {}
        if random:
            kwargs["rngs"] = rngs
        return cls(*(getattr(m, n) for n in names), **kwargs)

    return build


def _pad(cls: type, constant: bool = False) -> Builder:
    if constant:
        return lambda m, dt, rngs: cls(tuple(m.padding), m.value)
    return lambda m, dt, rngs: cls(tuple(m.padding))


def _embedding(m: Any, dt: Any, rngs: Any) -> Any:
    return nn.Embedding(m.num_embeddings, m.embedding_dim, m.padding_idx, m.max_norm, m.norm_type,
                        m.scale_grad_by_freq, m.sparse, dtype=dt, rngs=rngs)  # fmt: skip


def _layer_norm(m: Any, dt: Any, rngs: Any) -> Any:
    return nn.LayerNorm(m.normalized_shape, m.eps, m.elementwise_affine, _bias(m) or not m.elementwise_affine, dtype=dt)


def _group_norm(m: Any, dt: Any, rngs: Any) -> Any:
    return nn.GroupNorm(m.num_groups, m.num_channels, m.eps, m.affine, dtype=dt, bias=_bias(m) or not m.affine)


LAYERS: dict[str, Builder] = {
    "Identity": lambda m, dt, rngs: nn.Identity(),
    "Linear": lambda m, dt, rngs: nn.Linear(m.in_features, m.out_features, _bias(m), dtype=dt, rngs=rngs),
    "Conv1d": _conv(nn.Conv1d),
    "Conv2d": _conv(nn.Conv2d),
    "ConvTranspose1d": _conv_transpose(nn.ConvTranspose1d),
    "ConvTranspose2d": _conv_transpose(nn.ConvTranspose2d),
    "BatchNorm1d": _batch_norm(nn.BatchNorm1d),
    "BatchNorm2d": _batch_norm(nn.BatchNorm2d),
    "LayerNorm": _layer_norm,
    "GroupNorm": _group_norm,
    "Embedding": _embedding,
    "Dropout": _attrs(nn.Dropout, "p", "inplace", random=True),
    "Dropout2d": _attrs(nn.Dropout2d, "p", "inplace", random=True),
    "Flatten": _attrs(nn.Flatten, "start_dim", "end_dim"),
    "Unflatten": lambda m, dt, rngs: nn.Unflatten(m.dim, tuple(m.unflattened_size)),
    "MaxPool1d": _max_pool(nn.MaxPool1d),
    "MaxPool2d": _max_pool(nn.MaxPool2d),
    "AvgPool1d": _attrs(nn.AvgPool1d, "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    "AvgPool2d": _attrs(
        nn.AvgPool2d, "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"
    ),
    "AdaptiveAvgPool1d": _attrs(nn.AdaptiveAvgPool1d, "output_size"),
    "AdaptiveAvgPool2d": _attrs(nn.AdaptiveAvgPool2d, "output_size"),
    "AdaptiveMaxPool1d": _adaptive_max(nn.AdaptiveMaxPool1d),
    "AdaptiveMaxPool2d": _adaptive_max(nn.AdaptiveMaxPool2d),
    "ZeroPad1d": _pad(nn.ZeroPad1d),
    "ZeroPad2d": _pad(nn.ZeroPad2d),
    "ConstantPad1d": _pad(nn.ConstantPad1d, constant=True),
    "ConstantPad2d": _pad(nn.ConstantPad2d, constant=True),
    "ReflectionPad1d": _pad(nn.ReflectionPad1d),
    "ReflectionPad2d": _pad(nn.ReflectionPad2d),
    "ReplicationPad1d": _pad(nn.ReplicationPad1d),
    "ReplicationPad2d": _pad(nn.ReplicationPad2d),
    "CircularPad1d": _pad(nn.CircularPad1d),
    "CircularPad2d": _pad(nn.CircularPad2d),
    # activations
    "ReLU": _attrs(nn.ReLU, "inplace"),
    "ReLU6": _attrs(nn.ReLU6, "inplace"),
    "LeakyReLU": _attrs(nn.LeakyReLU, "negative_slope", "inplace"),
    "PReLU": _attrs(nn.PReLU, "num_parameters", "init", dtype=True),
    "ELU": _attrs(nn.ELU, "alpha", "inplace"),
    "CELU": _attrs(nn.CELU, "alpha", "inplace"),
    "SELU": _attrs(nn.SELU, "inplace"),
    "GELU": _attrs(nn.GELU, "approximate"),
    "SiLU": _attrs(nn.SiLU, "inplace"),
    "Mish": _attrs(nn.Mish, "inplace"),
    "Sigmoid": _attrs(nn.Sigmoid),
    "Tanh": _attrs(nn.Tanh),
    "Softplus": _attrs(nn.Softplus, "beta", "threshold"),
    "Softsign": _attrs(nn.Softsign),
    "Hardtanh": _attrs(nn.Hardtanh, "min_val", "max_val", "inplace"),
    "Hardswish": _attrs(nn.Hardswish, "inplace"),
    "Hardsigmoid": _attrs(nn.Hardsigmoid, "inplace"),
    "LogSigmoid": _attrs(nn.LogSigmoid),
    "Tanhshrink": _attrs(nn.Tanhshrink),
    "Softshrink": _attrs(nn.Softshrink, "lambd"),
    "Hardshrink": _attrs(nn.Hardshrink, "lambd"),
    "Threshold": _attrs(nn.Threshold, "threshold", "value", "inplace"),
    "GLU": _attrs(nn.GLU, "dim"),
    "Softmax": _attrs(nn.Softmax, "dim"),
    "LogSoftmax": _attrs(nn.LogSoftmax, "dim"),
    "Softmin": _attrs(nn.Softmin, "dim"),
    "Softmax2d": _attrs(nn.Softmax2d),
}


def mutates_input(layer: Any) -> bool:
    """Whether a torch layer writes into its input (``inplace=True``, or a Sequential starting with one)."""
    if getattr(layer, "inplace", False) is True:
        return True
    if type(layer).__name__ == "Sequential" and len(layer):
        return mutates_input(layer[0])
    return False
