"""The op tables of ``fnnet.nn.from_torch``: which torch function or ``Tensor`` method runs as which
handler of ``fnnet.nn._convert_ops`` / ``fnnet.nn._convert_shape`` (or ``fnnet.nn.functional``).

:func:`function_table` maps torch's function objects (``torch.cat``, ``F.relu``, ``operator.add``, ...)
to :class:`~fnnet.nn._convert_ops.Op` s, built from the ``torch`` module passed in (fnnet never imports
torch); :data:`METHODS` maps ``Tensor`` method names (``"view"``, ``"mean"``, ...) to ops, and
:data:`INPLACE_METHODS` the in-place methods allowed on values nothing reads afterwards.
"""

from __future__ import annotations

import builtins
import operator
from typing import Any

import jax
import jax.numpy as jnp

from fnnet.nn import _convert_ops as ops
from fnnet.nn import _convert_shape as shape
from fnnet.nn import functional as F
from fnnet.nn._convert_ops import Op
from fnnet.nn.flatten import flatten as _flatten

__all__ = ["INPLACE_METHODS", "METHODS", "function_table"]


_CHECK_ALIAS_METHODS = ("relu", "sigmoid", "tanh", "add", "sub", "mul", "div", "clamp", "pow", "neg", "exp")

METHODS: dict[str, Op] = {
    # shape
    "view": Op(shape.view, "Tensor.view"),
    "reshape": Op(shape.view, "Tensor.reshape"),
    "view_as": Op(shape._view_as, "Tensor.view_as"),
    "reshape_as": Op(shape._view_as, "Tensor.reshape_as"),
    "size": Op(shape._size, "Tensor.size"),
    "dim": Op(shape._ndim, "Tensor.dim"),
    "ndimension": Op(shape._ndim, "Tensor.ndimension"),
    "numel": Op(shape._numel, "Tensor.numel"),
    "flatten": Op(shape._flatten_method, "Tensor.flatten"),
    "unflatten": Op(shape._unflatten, "Tensor.unflatten"),
    "permute": Op(shape.permute, "Tensor.permute"),
    "transpose": Op(shape.transpose, "Tensor.transpose"),
    "t": Op(shape._t, "Tensor.t"),
    "unsqueeze": Op(shape.unsqueeze, "Tensor.unsqueeze"),
    "squeeze": Op(shape.squeeze, "Tensor.squeeze"),
    "expand": Op(shape._expand, "Tensor.expand"),
    "expand_as": Op(shape._expand_as, "Tensor.expand_as"),
    "repeat": Op(shape._repeat, "Tensor.repeat"),
    "chunk": Op(shape.chunk, "Tensor.chunk"),
    "split": Op(shape.split, "Tensor.split"),
    "contiguous": Op(ops._identity, "Tensor.contiguous"),
    "clone": Op(ops._identity, "Tensor.clone"),
    "detach": Op(ops._detach, "Tensor.detach"),
    # arithmetic
    "add": Op(ops.add, "Tensor.add"),
    "sub": Op(ops.sub, "Tensor.sub"),
    "mul": Op(ops.mul, "Tensor.mul"),
    "div": Op(ops.div, "Tensor.div", check=ops._no_rounding),
    "matmul": Op(ops.matmul, "Tensor.matmul"),
    "mm": Op(ops._mm, "Tensor.mm"),
    "bmm": Op(ops._bmm, "Tensor.bmm"),
    "pow": Op(ops._pow_method, "Tensor.pow"),
    "neg": Op(ops._neg, "Tensor.neg"),
    "abs": Op(ops._unary(jnp.abs), "Tensor.abs"),
    "exp": Op(ops._unary(jnp.exp), "Tensor.exp"),
    "log": Op(ops._unary(jnp.log), "Tensor.log"),
    "sqrt": Op(ops._unary(jnp.sqrt), "Tensor.sqrt"),
    "rsqrt": Op(ops._unary(jax.lax.rsqrt), "Tensor.rsqrt"),
    "square": Op(ops._square, "Tensor.square"),
    "clamp": Op(ops.clamp, "Tensor.clamp"),
    "clip": Op(ops.clamp, "Tensor.clip"),
    # activations
    "relu": Op(ops._unary(F.relu), "Tensor.relu"),
    "sigmoid": Op(ops._unary(F.sigmoid), "Tensor.sigmoid"),
    "tanh": Op(ops._unary(F.tanh), "Tensor.tanh"),
    "softmax": Op(ops.softmax, "Tensor.softmax"),
    "log_softmax": Op(ops.log_softmax, "Tensor.log_softmax"),
    # reductions
    "mean": Op(shape.mean, "Tensor.mean"),
    "sum": Op(shape.sum_, "Tensor.sum"),
    "max": Op(shape.max_, "Tensor.max"),
    "min": Op(shape.min_, "Tensor.min"),
    "amax": Op(shape.amax, "Tensor.amax"),
    "amin": Op(shape.amin, "Tensor.amin"),
    "argmax": Op(shape.argmax, "Tensor.argmax"),
    "argmin": Op(shape.argmin, "Tensor.argmin"),
    # dtype
    "to": Op(ops._to, "Tensor.to", check=ops._check_to),
    "type_as": Op(ops._type_as, "Tensor.type_as"),
    "float": Op(ops._astype("float32"), "Tensor.float"),
    "double": Op(ops._astype("float64"), "Tensor.double"),
    "long": Op(ops._astype("int64"), "Tensor.long"),
    "int": Op(ops._astype("int32"), "Tensor.int"),
    "bool": Op(ops._astype("bool"), "Tensor.bool"),
}

# In-place methods ``x.relu_()``, ``x.add_(y)`` ...: the same values when nothing reads ``x`` afterwards
# (checked at conversion); the others are unsupported.
INPLACE_METHODS = {f"{name}_": name for name in _CHECK_ALIAS_METHODS}

_INPLACE_F = ("relu", "relu6", "leaky_relu", "elu", "selu", "celu", "silu", "mish", "hardtanh", "hardswish",
              "hardsigmoid", "threshold")  # fmt: skip
_PLAIN_F = ("gelu", "softplus", "softsign", "logsigmoid", "tanhshrink", "softshrink", "hardshrink", "glu", "softmax",
            "log_softmax", "softmin", "sigmoid", "tanh", "prelu", "linear", "conv1d", "conv2d", "conv_transpose1d",
            "conv_transpose2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "pad",
            "layer_norm", "group_norm")  # fmt: skip
_POOL_F = ("max_pool1d", "max_pool2d", "max_pool1d_with_indices", "max_pool2d_with_indices", "adaptive_max_pool1d",
           "adaptive_max_pool2d", "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices")  # fmt: skip


def function_table(torch: Any) -> dict[Any, Op]:
    """torch function object -> :class:`Op`, for the functions a traced forward may call."""
    TF = torch.nn.functional
    table: dict[Any, Op] = {
        operator.add: Op(ops._add, "+"),
        operator.sub: Op(ops._sub, "-"),
        operator.mul: Op(ops._mul, "*"),
        operator.truediv: Op(ops._truediv, "/"),
        operator.floordiv: Op(ops._floordiv, "//"),
        operator.mod: Op(ops._mod, "%"),
        operator.pow: Op(ops._pow, "**"),
        operator.matmul: Op(ops.matmul, "@"),
        operator.neg: Op(ops._neg, "unary -"),
        operator.gt: Op(ops._compare(operator.gt, jnp.greater), ">"),
        operator.ge: Op(ops._compare(operator.ge, jnp.greater_equal), ">="),
        operator.lt: Op(ops._compare(operator.lt, jnp.less), "<"),
        operator.le: Op(ops._compare(operator.le, jnp.less_equal), "<="),
        operator.eq: Op(ops._compare(operator.eq, jnp.equal), "=="),
        operator.ne: Op(ops._compare(operator.ne, jnp.not_equal), "!="),
        operator.getitem: Op(ops._getitem, "[] (getitem)"),
        builtins.getattr: Op(ops._getattr, "getattr", check=ops._check_getattr),
        torch.add: Op(ops.add, "torch.add"),
        torch.sub: Op(ops.sub, "torch.sub"),
        torch.mul: Op(ops.mul, "torch.mul"),
        torch.div: Op(ops.div, "torch.div", check=ops._no_rounding),
        torch.matmul: Op(ops.matmul, "torch.matmul"),
        torch.mm: Op(ops._mm, "torch.mm"),
        torch.bmm: Op(ops._bmm, "torch.bmm"),
        torch.neg: Op(ops._neg, "torch.neg"),
        torch.abs: Op(ops._unary(jnp.abs), "torch.abs"),
        torch.exp: Op(ops._unary(jnp.exp), "torch.exp"),
        torch.log: Op(ops._unary(jnp.log), "torch.log"),
        torch.sqrt: Op(ops._unary(jnp.sqrt), "torch.sqrt"),
        torch.rsqrt: Op(ops._unary(jax.lax.rsqrt), "torch.rsqrt"),
        torch.square: Op(ops._square, "torch.square"),
        torch.pow: Op(ops._pow_method, "torch.pow"),
        torch.clamp: Op(ops.clamp, "torch.clamp"),
        torch.clip: Op(ops.clamp, "torch.clip"),
        torch.where: Op(ops._where, "torch.where"),
        torch.maximum: Op(ops._maximum, "torch.maximum"),
        torch.minimum: Op(ops._minimum, "torch.minimum"),
        torch.relu: Op(ops._unary(F.relu), "torch.relu"),
        torch.sigmoid: Op(ops._unary(F.sigmoid), "torch.sigmoid"),
        torch.tanh: Op(ops._unary(F.tanh), "torch.tanh"),
        torch.softmax: Op(ops.softmax, "torch.softmax"),
        torch.log_softmax: Op(ops.log_softmax, "torch.log_softmax"),
        torch.cat: Op(shape.cat, "torch.cat"),
        torch.concat: Op(shape.cat, "torch.concat"),
        torch.stack: Op(shape.stack, "torch.stack"),
        torch.chunk: Op(shape.chunk, "torch.chunk"),
        torch.split: Op(shape.split, "torch.split"),
        torch.flatten: Op(_flatten, "torch.flatten"),
        torch.reshape: Op(shape._reshape_fn, "torch.reshape"),
        torch.permute: Op(shape.permute, "torch.permute"),
        torch.transpose: Op(shape.transpose, "torch.transpose"),
        torch.t: Op(shape._t, "torch.t"),
        torch.unsqueeze: Op(shape.unsqueeze, "torch.unsqueeze"),
        torch.squeeze: Op(shape.squeeze, "torch.squeeze"),
        torch.mean: Op(shape.mean, "torch.mean"),
        torch.sum: Op(shape.sum_, "torch.sum"),
        torch.max: Op(shape.max_, "torch.max"),
        torch.min: Op(shape.min_, "torch.min"),
        torch.amax: Op(shape.amax, "torch.amax"),
        torch.amin: Op(shape.amin, "torch.amin"),
        torch.argmax: Op(shape.argmax, "torch.argmax"),
        torch.argmin: Op(shape.argmin, "torch.argmin"),
        torch.zeros_like: Op(ops._zeros_like, "torch.zeros_like"),
        torch.ones_like: Op(ops._ones_like, "torch.ones_like"),
        TF.dropout: Op(ops.dropout, "F.dropout", module=True, check=ops._static("p", "training"), mutates="input"),
        TF.dropout2d: Op(
            ops.dropout2d, "F.dropout2d", module=True, check=ops._static("p", "training"), mutates="input"
        ),
        TF.embedding: Op(F.embedding, "F.embedding", check=ops._check_embedding),
        TF.batch_norm: Op(ops.batch_norm, "F.batch_norm", check=ops._check_batch_norm),
    }
    for name in _INPLACE_F:
        table[getattr(TF, name)] = Op(getattr(F, name), f"F.{name}", mutates="input")
    for name in (*_PLAIN_F, *_POOL_F):
        table[getattr(TF, name)] = Op(getattr(F, name), f"F.{name}")
    return table
