"""The base of fnnet's learning-rate schedulers: an optax schedule that knows torch's step rule."""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def float_dtype() -> jnp.dtype:
    """The default float dtype (float64 under ``jax_enable_x64``: torch computes in Python floats)."""
    return jnp.result_type(float)


def div(a: Any, b: Any) -> jax.Array:
    """``a / b`` as an IEEE division, as Python divides. XLA rewrites ``x / c`` (a constant, or a scalar
    broadcast to x's shape) into ``x * (1 / c)``, which is off by an ulp and moves e.g. ``1 - t / T`` at
    ``t = T`` off zero; a divisor built from ``a`` (``a * 0 + b``, exact for finite ``a``) behind an
    optimization barrier keeps the division."""
    a = jnp.asarray(a, float_dtype())
    return a / jax.lax.optimization_barrier(a * 0.0 + b)


def as_count(count: Any) -> jax.Array:
    """The step count as an integer array (Python ints, NumPy/JAX integer arrays; traced is fine)."""
    count = jnp.asarray(count)
    if not jnp.issubdtype(count.dtype, jnp.integer):
        raise TypeError(f"a scheduler's count must be an integer, got dtype {count.dtype}")
    return count


def as_lr(lr: Any, name: str = "lr") -> float:
    """A scheduler's learning rate: a Python number or a concrete 1-element array, as a float."""
    if isinstance(lr, bool | np.bool_):
        raise TypeError(f"{name} must be a float, got {lr!r}")
    if isinstance(lr, numbers.Real):
        return float(lr)
    if isinstance(lr, jax.Array | np.ndarray) and not isinstance(lr, jax.core.Tracer) and np.size(lr) == 1:
        return float(np.asarray(lr).reshape(()))
    raise TypeError(f"{name} must be a float (the optimizer's initial learning rate), got {type(lr).__name__}")


def as_int(value: Any, name: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


class LRScheduler:
    """``torch.optim.lr_scheduler.LRScheduler``: ``sched(count)`` is torch's ``get_last_lr()[0]`` after
    ``count`` calls of ``step()``.

    Every subclass is an optax schedule (a pure function of an integer count, jit-able with a traced
    count) returning the default float dtype. Pass one as an optimizer's ``lr`` to step it once per
    update; ``lr=lambda count: sched(count // steps_per_epoch)`` steps it once per epoch instead.

    ``base_lr`` is torch's ``base_lrs[0]``; ``momentum`` is a schedule of the momentum torch's
    scheduler writes into the optimizer (``OneCycleLR``/``CyclicLR`` with ``cycle_momentum=True``),
    else None. The private methods tell the composites (``SequentialLR``, ``ChainedScheduler``) how
    torch's recursive ``get_lr`` acts on the optimizer's shared learning rate:

    * ``_step(t, lr)``: torch's ``get_lr()`` at ``last_epoch = t`` given the group's current ``lr``
      (``t = 0`` is the step the constructor takes);
    * ``_kind``: ``"mult"`` (``_step`` multiplies ``lr``; ``_cumfactor(c)`` is the product up to ``c``),
      ``"abs"`` (``_step`` ignores ``lr``) or ``"affine"``;
    * ``_restart(k, lr_before)``: the value ``k`` steps after ``SequentialLR`` restarts it at a
      milestone (torch's ``_update_lr(0)``), ``lr_before`` being the group's lr just before.
    """

    base_lr: float
    momentum: Any = None
    _kind = "affine"
    _in_composites = True
    _restart_reads_lr = False

    def __call__(self, count: Any) -> jax.Array:
        return jnp.asarray(self._value(as_count(count)), float_dtype())

    def _value(self, c: jax.Array) -> jax.Array:
        raise NotImplementedError

    def _step(self, t: jax.Array, lr: jax.Array) -> jax.Array:
        raise NotImplementedError

    def _cumfactor(self, c: jax.Array) -> jax.Array:
        raise NotImplementedError

    def _restart(self, k: jax.Array, lr_before: jax.Array) -> jax.Array:
        del lr_before
        return self._value(k)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and k != "momentum")
        return f"{type(self).__name__}({args})"
