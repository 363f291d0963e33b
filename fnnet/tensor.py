"""The torch tensor vocabulary of the tutorials, spelled in JAX.

Only what torch names or means differently is wrapped here; where ``jnp`` already matches torch
(``+ - * /``, ``jnp.exp``, ``jnp.dot`` on vectors, ``x.reshape(-1, 3)`` for ``view``, ``x.tolist()``,
``x.item()``, indexing and slicing ...) use it directly -- docs/rosetta.md lists every call.

Differences that hold throughout:

* JAX arrays are immutable values: there are no views, no in-place ``+=`` on shared storage and no
  memory shared with NumPy (``from_numpy`` copies).
* 64-bit dtypes (``DoubleTensor``, ``LongTensor``) exist in JAX only with ``jax_enable_x64``. fnnet
  never downcasts silently: asking for (or inferring, the way torch would) a 64-bit dtype while x64
  is off raises ``ValueError`` saying how to turn it on.
* torch's default float dtype is float32 whatever the x64 setting; ``tensor``, ``zeros`` and
  ``randn`` keep it, where ``jnp.asarray([1.0])`` / ``jnp.zeros`` would give float64 under x64.
* randomness takes an explicit key (``manual_seed(n)`` returns one) instead of a global generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "DTYPES",
    "cat",
    "det",
    "from_numpy",
    "from_pandas",
    "inverse",
    "jax_dtype",
    "manual_seed",
    "mm",
    "randn",
    "t",
    "tensor",
    "to_pandas",
    "transpose",
    "x64_enabled",
    "zeros",
]

#: torch tensor-type and dtype names -> NumPy/JAX dtypes (``torch.float`` is float32, ``torch.int``
#: is int32 and ``torch.long`` int64, unlike NumPy's ``"int"`` which means int64).
DTYPES: dict[str, np.dtype] = {
    "FloatTensor": np.dtype(np.float32),
    "DoubleTensor": np.dtype(np.float64),
    "HalfTensor": np.dtype(np.float16),
    "IntTensor": np.dtype(np.int32),
    "LongTensor": np.dtype(np.int64),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
    "float16": np.dtype(np.float16),
    "int32": np.dtype(np.int32),
    "int64": np.dtype(np.int64),
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
    "half": np.dtype(np.float16),
    "int": np.dtype(np.int32),
    "long": np.dtype(np.int64),
}

_WIDE = frozenset(np.dtype(d) for d in (np.float64, np.int64, np.uint64, np.complex128))
_X64_HINT = (
    'enable 64-bit types with jax.config.update("jax_enable_x64", True) before creating arrays '
    "(or run with JAX_ENABLE_X64=1), or ask for a 32-bit dtype explicitly; fnnet never downcasts "
    "silently"
)


def x64_enabled() -> bool:
    """Whether JAX currently allows 64-bit dtypes (``jax_enable_x64``)."""
    return bool(jax.config.jax_enable_x64)


def _require_x64(dt: np.dtype, what: str) -> None:
    if dt in _WIDE and not x64_enabled():
        raise ValueError(f"{what} is {dt}, which JAX only has with jax_enable_x64 on: {_X64_HINT}")


def jax_dtype(name: Any) -> np.dtype:
    """Resolve a torch dtype spelling to a NumPy/JAX dtype, refusing 64-bit types without x64.

    Accepts the names in ``DTYPES`` (``"FloatTensor"``, ``"int64"``, ``"long"`` ...), the same with a
    ``"torch."`` prefix, torch's own objects (``torch.float64``, ``torch.LongTensor``; torch need not
    be imported for the other forms) and NumPy/JAX dtypes (``jnp.float32``).
    """
    if isinstance(name, type) and name.__module__ == "torch":  # torch.FloatTensor and friends
        name = name.__name__
    elif not isinstance(name, str) and type(name).__module__ == "torch":  # torch.float32 ...
        name = str(name)
    if isinstance(name, str):
        key = name.removeprefix("torch.")
        if key not in DTYPES:
            raise ValueError(f"jax_dtype: unknown torch dtype name {name!r}; expected one of {sorted(DTYPES)}")
        resolved = DTYPES[key]
    else:
        try:
            resolved = np.dtype(name)
        except TypeError as e:
            raise TypeError(f"jax_dtype: expected a torch dtype name or a NumPy/JAX dtype, got {name!r}") from e
    _require_x64(resolved, f"dtype {name!r}")
    return resolved


def _torch_default_dtype(a: np.ndarray, what: str) -> np.dtype:
    """The dtype torch.tensor infers for Python data: float32, int64, bool or complex64."""
    kinds = {"f": np.float32, "i": np.int64, "u": np.int64, "b": np.bool_, "c": np.complex64}
    if a.dtype.kind not in kinds:
        raise TypeError(f"{what}: cannot make a tensor from data of NumPy dtype {a.dtype}; expected numbers or bools")
    return np.dtype(kinds[a.dtype.kind])


def tensor(data: Any, dtype: Any = None) -> jax.Array:
    """``torch.tensor(data, dtype=...)`` (also ``torch.FloatTensor(data)`` via ``dtype="FloatTensor"``).

    Infers dtypes as torch does, not as JAX does: Python floats -> float32, Python ints (and
    ``range``) -> int64, bools -> bool; NumPy arrays, JAX arrays and pandas objects keep their
    dtype. An inferred or requested 64-bit dtype needs ``jax_enable_x64`` (ValueError otherwise).
    """
    if hasattr(data, "to_numpy") and type(data).__module__.startswith("pandas"):
        return from_pandas(data, dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic, jax.Array)):
        a, inferred = data, np.dtype(data.dtype)
    else:
        try:
            a = np.asarray(data)
        except ValueError as e:  # ragged nested lists
            raise ValueError(f"tensor: data must be rectangular numbers, got {type(data).__name__}: {e}") from e
        inferred = _torch_default_dtype(a, "tensor")
    target = jax_dtype(dtype) if dtype is not None else inferred
    _require_x64(target, "tensor: the dtype torch would give here" if dtype is None else "tensor: dtype")
    return jnp.asarray(a, dtype=target)


def from_numpy(array: np.ndarray) -> jax.Array:
    """``torch.from_numpy``: same values and dtype; JAX copies, so the two do not share memory."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    _require_x64(array.dtype, "from_numpy: the array's dtype")
    return jnp.asarray(array)


def from_pandas(obj: Any, dtype: Any = None) -> jax.Array:
    """``torch.from_numpy(series.values)`` / ``torch.tensor(df.values)`` for a Series or DataFrame.

    Keeps the pandas dtype (pandas' floats are float64, so that needs x64 unless ``dtype`` says
    e.g. ``"float32"``); non-numeric columns raise TypeError naming them.
    """
    import pandas as pd  # pandas is a dependency, but only this function and to_pandas need it

    if not isinstance(obj, (pd.Series, pd.DataFrame)):
        raise TypeError(f"from_pandas: expected a pandas Series or DataFrame, got {type(obj).__name__}")
    columns = obj.dtypes.items() if isinstance(obj, pd.DataFrame) else [(obj.name, obj.dtype)]
    bad = [str(c) for c, d in columns if not pd.api.types.is_numeric_dtype(d)]
    if bad:
        raise TypeError(f"from_pandas: column(s) {bad} are not numeric; select numeric columns first")
    a = obj.to_numpy()
    if a.dtype == object:
        raise TypeError("from_pandas: the columns have no common numeric dtype; convert them first")
    return tensor(a, dtype=dtype)


def to_pandas(x: Any, index: Any = None, columns: Any = None, name: Any = None) -> Any:
    """``pd.Series(t.numpy())`` / ``pd.DataFrame(t.numpy())``: a 1-D array becomes a Series, 2-D a DataFrame."""
    import pandas as pd

    a = np.asarray(x)
    if a.ndim == 1:
        return pd.Series(a, index=index, name=name)
    if a.ndim == 2:
        return pd.DataFrame(a, index=index, columns=columns)
    raise ValueError(f"to_pandas: expected a 1-D or 2-D array, got shape {a.shape}")


def _size(size: tuple[Any, ...], what: str) -> tuple[int, ...]:
    """torch's ``*size`` convention: ``f(2, 3)`` or ``f((2, 3))``."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for n in size:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{what}: size must be non-negative integers, got {size!r}")
    return tuple(int(n) for n in size)


def zeros(*size: Any, dtype: Any = "float32") -> jax.Array:
    """``torch.zeros(*size)``: varargs or one tuple; float32 by default even under x64 (torch's default)."""
    return jnp.zeros(_size(size, "zeros"), dtype=jax_dtype(dtype))


def manual_seed(seed: int) -> jax.Array:
    """``torch.manual_seed(seed)`` becomes a key you pass on: ``jax.random.key(seed)``; no global state."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {seed!r}")
    return jax.random.key(int(seed))


def randn(*size: Any, key: jax.Array, dtype: Any = "float32") -> jax.Array:
    """``torch.randn(*size)`` with an explicit ``key``: standard normal draws, float32 by default.

    Same distribution as torch, not the same numbers (different generators); same key -> same bits.
    """
    return jax.random.normal(key, _size(size, "randn"), dtype=jax_dtype(dtype))


def mm(input: jax.Array, mat2: jax.Array) -> jax.Array:
    """``torch.mm``: 2-D @ 2-D only, same dtype on both sides (jnp.matmul would broadcast and promote)."""
    a, b = jnp.asarray(input), jnp.asarray(mat2)
    for arg, m in (("input", a), ("mat2", b)):
        if m.ndim != 2:
            raise ValueError(f"mm: {arg} must be a 2-D matrix, got shape {m.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"mm: shapes {a.shape} and {b.shape} cannot be multiplied ({a.shape[1]} != {b.shape[0]})")
    if a.dtype != b.dtype:
        raise TypeError(f"mm: input and mat2 must have the same dtype, got {a.dtype} and {b.dtype}")
    return jnp.matmul(a, b)


def t(x: jax.Array) -> jax.Array:
    """``x.t()`` / ``torch.t``: transpose of a matrix; 0-D and 1-D come back unchanged; >2-D is an error."""
    x = jnp.asarray(x)
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dimensions, got shape {x.shape}; use transpose(x, dim0, dim1)")
    return x.T


def transpose(x: jax.Array, dim0: int, dim1: int) -> jax.Array:
    """``torch.transpose(x, dim0, dim1)`` swaps two dims: ``jnp.swapaxes`` (``jnp.transpose`` permutes all)."""
    return jnp.swapaxes(x, dim0, dim1)


def cat(tensors: Sequence[jax.Array], dim: int = 0) -> jax.Array:
    """``torch.cat(tensors, dim)``: ``jnp.concatenate(tensors, axis=dim)``.

    Requires a list or tuple: jnp.concatenate would also accept one array and split it along axis 0.
    """
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"cat: tensors must be a list or tuple of arrays, got {type(tensors).__name__}")
    return jnp.concatenate(tensors, axis=dim)


def inverse(x: jax.Array) -> jax.Array:
    """``torch.inverse`` / ``torch.linalg.inv``: ``jnp.linalg.inv``.

    Unlike torch, a singular matrix gives inf/nan instead of raising (the check cannot run under jit).
    """
    return jnp.linalg.inv(x)


def det(x: jax.Array) -> jax.Array:
    """``torch.det`` / ``torch.linalg.det``: ``jnp.linalg.det``."""
    return jnp.linalg.det(x)
