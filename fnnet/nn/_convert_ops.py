"""The torch ops ``fnnet.nn.from_torch`` can run (besides the shape ops and reductions in
``fnnet.nn._convert_shape``): each a JAX function with torch's argument names, defaults and semantics,
wrapped in an :class:`Op`; ``fnnet.nn._convert_tables`` says which torch function or method runs as which.

Not a functional file of ``fnnet.nn.functional``: these are the interpreter's handlers. The
``torch.nn.functional`` forms reuse ``fnnet.nn.functional``. Binary ops broadcast explicitly (torch's
rules, which are NumPy's), so they run under ``jax_numpy_rank_promotion="raise"``; arithmetic on two
Python numbers stays Python (``x.size(0) // 2``), so shapes stay static and a converted module jit-able.
"""

from __future__ import annotations

import builtins
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnnet.nn import functional as F
from fnnet.nn.module import float_dtype

__all__ = ["Device", "Marker", "Op", "jax_dtype", "qualified_name"]


class Op(NamedTuple):
    """One supported torch op: ``fn`` with torch's signature, the name messages use, and flags.

    ``module``: ``fn`` takes the converted module first (random ops draw its key). ``check(args)``
    runs at conversion on the bound arguments (values, or markers for graph values) and returns a
    reason the call is not supported, or ``None``. ``mutates``: the argument an in-place form writes
    (when ``inplace=True`` or for the ``x.op_()`` method).
    """

    fn: Callable
    name: str
    module: bool = False
    check: Callable[[dict], str | None] | None = None
    mutates: str | None = None


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


def _broadcast(*xs: Any) -> list[Any]:
    """torch's (NumPy's) broadcasting made explicit: lower-rank arrays get leading size-1 dims."""
    ranks = [x.ndim for x in xs if _is_array(x)]
    top = builtins.max(ranks, default=0)
    return [jnp.reshape(x, (1,) * (top - x.ndim) + x.shape) if _is_array(x) and x.ndim < top else x for x in xs]


def _float_default(result: Any, *inputs: Any) -> Any:
    """torch's rule for integer (or bool) tensors meeting a float only as a Python number, or divided: the
    result has torch's default dtype float32 (JAX would give float64 under x64)."""
    if not (_is_array(result) and jnp.issubdtype(result.dtype, jnp.floating)):
        return result
    arrays = [x for x in inputs if _is_array(x)]
    if arrays and not any(jnp.issubdtype(x.dtype, jnp.inexact) for x in arrays):
        return result.astype(jnp.float32)
    return result


def _binary(py_op: Callable, jnp_op: Callable) -> Callable:
    """A torch binary op: Python's on two Python numbers (shape arithmetic), else ``jnp_op``, broadcast."""

    def fn(input: Any, other: Any) -> Any:
        if not _is_array(input) and not _is_array(other):
            return py_op(input, other)
        return _float_default(jnp_op(*_broadcast(input, other)), input, other)

    return fn


_add = _binary(operator.add, jnp.add)
_sub = _binary(operator.sub, jnp.subtract)
_mul = _binary(operator.mul, jnp.multiply)
_truediv = _binary(operator.truediv, jnp.true_divide)
_floordiv = _binary(operator.floordiv, jnp.floor_divide)
_mod = _binary(operator.mod, jnp.remainder)
_pow = _binary(operator.pow, jnp.power)


def _compare(py_op: Callable, jnp_op: Callable) -> Callable:
    return _binary(py_op, jnp_op)


def add(input: Any, other: Any, *, alpha: Any = 1) -> Any:
    """``torch.add(input, other, *, alpha=1)``: ``input + alpha * other``."""
    return _add(input, other if alpha == 1 else _mul(other, alpha))


def sub(input: Any, other: Any, *, alpha: Any = 1) -> Any:
    """``torch.sub(input, other, *, alpha=1)``: ``input - alpha * other``."""
    return _sub(input, other if alpha == 1 else _mul(other, alpha))


def mul(input: Any, other: Any) -> Any:
    return _mul(input, other)


def div(input: Any, other: Any, *, rounding_mode: str | None = None) -> Any:
    """``torch.div`` (true division; ``rounding_mode`` is refused at conversion)."""
    return _truediv(input, other)


def _no_rounding(args: dict) -> str | None:
    return None if args.get("rounding_mode") is None else "rounding_mode is not supported"


def matmul(input: jax.Array, other: jax.Array) -> jax.Array:
    """``torch.matmul`` / ``@``: ``jnp.matmul`` with the batch dims broadcast explicitly."""
    if input.ndim > 2 and other.ndim > 2 and input.ndim != other.ndim:
        input, other = _broadcast(input, other)
    return jnp.matmul(input, other)


def _mm(input: jax.Array, mat2: jax.Array) -> jax.Array:
    if input.ndim != 2 or mat2.ndim != 2:
        raise ValueError(f"mm: both arguments must be 2-D, got shapes {input.shape} and {mat2.shape}")
    return jnp.matmul(input, mat2)


def _bmm(input: jax.Array, mat2: jax.Array) -> jax.Array:
    if input.ndim != 3 or mat2.ndim != 3:
        raise ValueError(f"bmm: both arguments must be 3-D, got shapes {input.shape} and {mat2.shape}")
    return jnp.matmul(input, mat2)


def _neg(input: Any) -> Any:
    return -input


def _where(condition: jax.Array, input: Any, other: Any) -> jax.Array:
    return jnp.where(*_broadcast(condition, input, other))


def _maximum(input: jax.Array, other: jax.Array) -> jax.Array:
    """``torch.maximum``: ties share the gradient equally, as ``jnp.maximum``."""
    return jnp.maximum(*_broadcast(input, other))


def _minimum(input: jax.Array, other: jax.Array) -> jax.Array:
    return jnp.minimum(*_broadcast(input, other))


def clamp(input: jax.Array, min: Any = None, max: Any = None) -> jax.Array:
    """``torch.clamp(input, min=None, max=None)``: gradient 1 where ``min <= x <= max`` (torch's backward;
    ``jnp.clip`` gives 1/2 at a bound)."""
    x = input
    if min is None and max is None:
        raise ValueError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if min is not None:
        x, lo = _broadcast(x, min)
        x = jnp.where(x < lo, jnp.asarray(lo, x.dtype), x)
    if max is not None:
        x, hi = _broadcast(x, max)
        x = jnp.where(x > hi, jnp.asarray(hi, x.dtype), x)
    return x


# ---- elementwise and softmax (torch.* / Tensor.* spellings) ----------------------------------------


def _unary(fn: Callable) -> Callable:
    def op(input: jax.Array) -> jax.Array:
        return fn(input)

    return op


def softmax(input: jax.Array, dim: int, dtype: Any = None) -> jax.Array:
    """``torch.softmax(input, dim, dtype=None)`` / ``Tensor.softmax``."""
    return F.softmax(input, dim, dtype=dtype)


def log_softmax(input: jax.Array, dim: int, dtype: Any = None) -> jax.Array:
    return F.log_softmax(input, dim, dtype=dtype)


def _pow_method(input: Any, exponent: Any) -> Any:
    return _pow(input, exponent)


def _square(input: jax.Array) -> jax.Array:
    return input * input


def _zeros_like(input: jax.Array, *, dtype: Any = None) -> jax.Array:
    return jnp.zeros_like(input, dtype=dtype)


def _ones_like(input: jax.Array, *, dtype: Any = None) -> jax.Array:
    return jnp.ones_like(input, dtype=dtype)


# ---- dtype and identity methods --------------------------------------------------------------------


class Device(NamedTuple):
    """A ``torch.device`` argument (to ``Tensor.to``): JAX places arrays itself, so it changes nothing."""

    name: str


def _to(self: jax.Array, *args: Any, **kwargs: Any) -> jax.Array:
    """``Tensor.to(dtype)``, ``.to(other)``, ``.to(device[, dtype])``: only the dtype matters here."""
    dtype = kwargs.get("dtype")
    for a in args:
        if _is_array(a):
            dtype = a.dtype
        elif isinstance(a, np.dtype):
            dtype = a
    return self if dtype is None else self.astype(dtype)


def _check_to(args: dict) -> str | None:
    extra = set(args.get("kwargs", {})) - {"dtype", "non_blocking", "copy", "device"}
    if extra:
        return f"keyword(s) {sorted(extra)} are not supported"
    for a in (*args.get("args", ()), args.get("kwargs", {}).get("device")):
        if a is not None and not isinstance(a, (Device, str, np.dtype, Marker)):
            return f"argument {a!r} is not supported"
    return None


class Marker(NamedTuple):
    """A value of the traced graph as :data:`Op.check` sees it (known only when the module runs)."""

    name: str


def jax_dtype(name: str) -> np.dtype:
    """The JAX dtype for a torch dtype name: a 64-bit float needs x64 (no silent float32), integers follow
    JAX's default width (``int64`` indices are ``int32`` without x64, as fnnet's integer buffers)."""
    dt = jnp.dtype(name)
    if jnp.issubdtype(dt, jnp.floating):
        return float_dtype(dt)
    return jax.dtypes.canonicalize_dtype(dt)


def _astype(name: str) -> Callable:
    def op(self: jax.Array) -> jax.Array:
        return self.astype(jax_dtype(name))

    return op


def _type_as(self: jax.Array, other: jax.Array) -> jax.Array:
    return self.astype(other.dtype)


def _identity(self: jax.Array) -> jax.Array:
    return self


def _detach(self: jax.Array) -> jax.Array:
    return jax.lax.stop_gradient(self)


# ---- Python builtins on graph values ---------------------------------------------------------------

_ATTRIBUTES = {"shape", "ndim", "T", "mT", "values", "indices"}


def _getattr(obj: Any, name: str) -> Any:
    """``x.shape`` (a tuple of ints), ``x.ndim``, ``x.T``, ``x.mT``; ``.values``/``.indices`` of a max."""
    if name == "shape":
        return tuple(obj.shape)
    if name == "mT":
        return jnp.swapaxes(obj, -1, -2)
    return getattr(obj, name)


def _check_getattr(args: dict) -> str | None:
    name = args.get("name")
    return None if name in _ATTRIBUTES else f"attribute {name!r} is not supported"


def _getitem(obj: Any, index: Any) -> Any:
    """``x[index]`` on arrays (NumPy indexing, as torch's: a list is an index array), tuples (``x.shape[1]``)
    and max results."""
    if _is_array(obj):
        parts = index if isinstance(index, tuple) else (index,)
        for axis, part in enumerate(parts):  # a list's indices are static: check them as torch does
            if isinstance(part, list) and part and Ellipsis not in parts[:axis]:
                size = obj.shape[axis - sum(p is None for p in parts[:axis])]
                bad = [i for i in part if isinstance(i, int) and not -size <= i < size]
                if bad:
                    raise IndexError(f"index {bad[0]} is out of bounds for dimension {axis} with size {size}")
        if isinstance(index, list):
            index = jnp.asarray(index)
        elif isinstance(index, tuple):
            index = tuple(jnp.asarray(i) if isinstance(i, list) else i for i in index)
    return obj[index]


# ---- torch.nn.functional forms that need more than fnnet.nn.functional -----------------------------


def dropout(module: Any, input: jax.Array, p: float = 0.5, training: bool = True, inplace: bool = False) -> jax.Array:
    """``F.dropout``: the converted module's own key (``fnnet.nn.module.RandomModule``) draws the mask."""
    if not training or p == 0.0:
        return F.dropout(input, p, False)
    return F.dropout(input, p, True, key=module._next_key())


def dropout2d(module: Any, input: jax.Array, p: float = 0.5, training: bool = True, inplace: bool = False) -> jax.Array:
    if not training or p == 0.0:
        return F.dropout2d(input, p, False)
    return F.dropout2d(input, p, True, key=module._next_key())


def _static(*names: str) -> Callable[[dict], str | None]:
    """A check that ``names`` are not graph values (they decide shapes or branches)."""

    def check(args: dict) -> str | None:
        for n in names:
            if isinstance(args.get(n), Marker):
                return f"{n} must be a constant, got the graph value {args[n].name!r}"
        return None

    return check


def _check_embedding(args: dict) -> str | None:
    if args.get("max_norm") is not None:
        return "max_norm renormalises the weight in place: use nn.Embedding(max_norm=...) instead"
    return None


def _check_batch_norm(args: dict) -> str | None:
    if args.get("training", False) and (args.get("running_mean") is not None or args.get("running_var") is not None):
        return "training=True updates running_mean/running_var in place: use nn.BatchNorm1d/2d instead"
    return None


def batch_norm(
    input: jax.Array,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-05,
) -> jax.Array:
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def qualified_name(target: Any) -> str:
    """A readable name for an fx call target (``torch.fft.fft``, ``Tensor.sort``, ``operator.xor``)."""
    if isinstance(target, str):
        return f"Tensor.{target}"
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target)
    if module in ("_operator", "operator"):
        return f"operator.{name}"
    if module.startswith("torch._C._"):  # torch._C._fft.fft_fft -> torch.fft.fft
        sub = module.removeprefix("torch._C._")
        return f"torch.{sub}.{name.removeprefix(sub + '_')}"
    return f"{module}.{name}" if module else name
