"""torch's chainable schedulers, each with a closed form that returns what torch's recursion returns.

torch computes most schedulers recursively, ``group["lr"] * factor``, from the optimizer's current lr.
Standalone, the product of those factors equals a closed form up to a few ulps per step, so
``_value`` is the closed form; ``_step`` is torch's recursion itself, used where other schedulers
share the lr (``ChainedScheduler``). Where torch's recursion departs from its closed form by more
than rounding (CosineAnnealingLR after ``T_max``), ``_value`` follows the recursion.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp

from fnnet.optim._lr_base import LRScheduler, as_int, as_lr, div, float_dtype

__all__ = [
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "PolynomialLR",
    "CosineAnnealingLR",
]


def _f(x: Any) -> jax.Array:
    """A value (a user function's result, a count) in the default float dtype."""
    return jnp.asarray(x, float_dtype())


def _check_fn(fn: Any, name: str = "lr_lambda") -> Callable:
    if not callable(fn):
        raise TypeError(f"{name} should be a function, but got {type(fn).__name__}")
    return fn


def _product(fn: Callable, start: jax.Array, first: Any, last: jax.Array) -> jax.Array:
    """``start * fn(first) * ... * fn(last)``, left to right as torch's recursion multiplies."""
    lower = jnp.asarray(first, last.dtype)
    return jax.lax.fori_loop(lower, last + 1, lambda t, acc: acc * _f(fn(t)), _f(start))


class LambdaLR(LRScheduler):
    """``torch.optim.lr_scheduler.LambdaLR``: ``lr * lr_lambda(count)``.

    ``lr_lambda`` gets the count as an integer JAX array (traced under jit): write it with jnp or
    Python arithmetic (``lambda epoch: 0.95 ** epoch``), and ``jnp.where`` instead of ``if``.
    optax: ``lambda count: lr * lr_lambda(count)`` is the same function.
    """

    _kind = "abs"

    def __init__(self, lr: float, lr_lambda: Callable[[jax.Array], Any]):
        self.base_lr = as_lr(lr)
        self.lr_lambda = _check_fn(lr_lambda)

    def _value(self, c):
        return self.base_lr * _f(self.lr_lambda(c))

    def _step(self, t, lr):
        return self._value(t)


class MultiplicativeLR(LRScheduler):
    """``torch.optim.lr_scheduler.MultiplicativeLR``: ``lr * lr_lambda(1) * ... * lr_lambda(count)``.

    No closed form exists for an arbitrary ``lr_lambda``, so the product runs as a ``fori_loop`` of
    ``count`` iterations (O(count) per call: step it per epoch, or use ``LambdaLR`` with the product
    written in closed form, when counts are large). optax has no such schedule.
    """

    _kind = "mult"
    _restart_reads_lr = True

    def __init__(self, lr: float, lr_lambda: Callable[[jax.Array], Any]):
        self.base_lr = as_lr(lr)
        self.lr_lambda = _check_fn(lr_lambda)

    def _value(self, c):
        return _product(self.lr_lambda, self.base_lr, 1, c)

    def _cumfactor(self, c):
        return _product(self.lr_lambda, 1.0, 1, c)

    def _step(self, t, lr):
        return jnp.where(t == 0, lr, lr * _f(self.lr_lambda(t)))

    def _restart(self, k, lr_before):
        # torch's SequentialLR calls get_lr() at last_epoch 0 outside the initial step: lr * lr_lambda(0)
        return _product(self.lr_lambda, lr_before, 0, k)


class StepLR(LRScheduler):
    """``torch.optim.lr_scheduler.StepLR``: ``lr * gamma ** (count // step_size)``.

    optax: ``optax.exponential_decay(lr, step_size, gamma, staircase=True)`` gives the same values
    (in float32 for optax's int32 counts, even under x64).
    """

    _kind = "mult"

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1):
        self.base_lr = as_lr(lr)
        self.step_size = as_int(step_size, "step_size", 1)
        self.gamma = float(gamma)

    def _cumfactor(self, c):
        return self.gamma ** _f(c // self.step_size)

    def _value(self, c):
        return self.base_lr * self._cumfactor(c)

    def _step(self, t, lr):
        return jnp.where((t == 0) | (t % self.step_size != 0), lr, lr * self.gamma)


class MultiStepLR(LRScheduler):
    """``torch.optim.lr_scheduler.MultiStepLR``: ``lr * gamma ** (milestones reached)``.

    As torch (a ``Counter``), the milestones may come in any order and a repeated milestone decays
    once per repetition. optax: ``optax.piecewise_constant_schedule(lr, {m: gamma for m in
    milestones})`` is the same for distinct milestones; its dict cannot repeat one.
    """

    _kind = "mult"

    def __init__(self, lr: float, milestones: Iterable[int], gamma: float = 0.1):
        self.base_lr = as_lr(lr)
        self.milestones = [as_int(m, "milestones[i]") for m in milestones]
        self.gamma = float(gamma)
        self._counts = collections.Counter(self.milestones)

    def _reached(self, c, *, negatives: bool = False) -> jax.Array:
        n = jnp.zeros([], c.dtype)
        for m, k in self._counts.items():
            if m >= 0 or negatives:
                n = n + k * (c >= m)
        return n

    def _cumfactor(self, c):
        return self.gamma ** _f(self._reached(c))

    def _value(self, c):
        return self.base_lr * self._cumfactor(c)

    def _step(self, t, lr):
        k = jnp.zeros([], t.dtype)
        for m, n in self._counts.items():
            k = k + n * (t == m)
        return jnp.where(k > 0, lr * self.gamma ** _f(k), lr)

    def _restart(self, k, lr_before):
        # torch's closed form at 0 counts every milestone <= 0, negative ones included
        return self.base_lr * self.gamma ** _f(self._reached(k, negatives=True))


class ConstantLR(LRScheduler):
    """``torch.optim.lr_scheduler.ConstantLR``: ``lr * factor`` until ``total_iters``, then
    ``lr * factor * (1 / factor)`` (torch restores by dividing, within an ulp of ``lr``).

    optax: ``optax.piecewise_constant_schedule(lr * factor, {total_iters: 1 / factor})``.
    """

    _kind = "mult"

    def __init__(self, lr: float, factor: float = 1.0 / 3, total_iters: int = 5):
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.base_lr = as_lr(lr)
        self.factor = float(factor)
        self.total_iters = as_int(total_iters, "total_iters")
        if self.factor == 0 and self.total_iters > 0:
            raise ValueError("ConstantLR(factor=0): torch divides by the factor at total_iters (ZeroDivisionError)")

    def _restores(self, c):
        return (c >= self.total_iters) & (self.total_iters > 0)

    def _cumfactor(self, c):
        return jnp.where(self._restores(c), self.factor * (1.0 / self.factor if self.factor else 0.0), self.factor)

    def _value(self, c):
        low = self.base_lr * self.factor
        return jnp.where(self._restores(c), low * (1.0 / self.factor if self.factor else 0.0), low)

    def _step(self, t, lr):
        back = lr * (1.0 / self.factor) if self.factor else lr
        return jnp.where(t == 0, lr * self.factor, jnp.where(t != self.total_iters, lr, back))

    def _restart(self, k, lr_before):
        if self.total_iters <= 0:  # torch's closed form at 0: factor + (0 >= total_iters) * (1 - factor)
            return _f(self.base_lr * (self.factor + (1 - self.factor)))
        return self._value(k)


class LinearLR(LRScheduler):
    """``torch.optim.lr_scheduler.LinearLR``: ``lr * start_factor`` moving linearly to
    ``lr * end_factor`` over ``total_iters`` steps, then constant.

    optax: ``optax.linear_schedule(lr * start_factor, lr * end_factor, total_iters)``, the same line.
    """

    _kind = "mult"

    def __init__(self, lr: float, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5):
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 and less or equal to 1.")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.base_lr = as_lr(lr)
        self.start_factor = float(start_factor)
        self.end_factor = float(end_factor)
        self.total_iters = as_int(total_iters, "total_iters")

    def _cumfactor(self, c):
        total = self.total_iters
        if total <= 0:  # torch never moves: get_lr keeps the lr for every last_epoch > total_iters
            return _f(self.start_factor)
        return self.start_factor + div((self.end_factor - self.start_factor) * _f(jnp.minimum(total, c)), total)

    def _ratio(self, t):
        """torch's step factor at ``last_epoch = t`` (``1 <= t <= total_iters``)."""
        start, end, total = self.start_factor, self.end_factor, self.total_iters
        return 1.0 + div(end - start, total * start + _f(t - 1) * (end - start))

    def _value(self, c):
        if self.total_iters <= 0:
            return self.base_lr * self._cumfactor(c)
        # the last step's factor, 1 + (end - start) / (start + (total - 1) * end), cancels when end_factor
        # is small (to exactly 0, or a few ulps off it): take it as torch computes it
        total = self.total_iters
        last = self.base_lr * self._cumfactor(jnp.asarray(total - 1, c.dtype)) * self._ratio(total)
        return jnp.where(c < total, self.base_lr * self._cumfactor(c), last)

    def _step(self, t, lr):
        moved = lr * self._ratio(t)
        return jnp.where(t == 0, lr * self.start_factor, jnp.where(t > self.total_iters, lr, moved))

    def _restart(self, k, lr_before):
        total = self.total_iters
        if total > 0:
            return self._value(k)
        # torch's closed form at 0 (then constant): divides by total_iters
        scale = math.nan if total == 0 else self.start_factor + (self.end_factor - self.start_factor)
        return _f(self.base_lr * scale)


class ExponentialLR(LRScheduler):
    """``torch.optim.lr_scheduler.ExponentialLR``: ``lr * gamma ** count``.

    optax: ``optax.exponential_decay(lr, 1, gamma)`` (float32 values for its int32 counts).
    """

    _kind = "mult"

    def __init__(self, lr: float, gamma: float):
        self.base_lr = as_lr(lr)
        self.gamma = float(gamma)

    def _cumfactor(self, c):
        return self.gamma ** _f(c)

    def _value(self, c):
        return self.base_lr * self._cumfactor(c)

    def _step(self, t, lr):
        return jnp.where(t == 0, lr, lr * self.gamma)


class PolynomialLR(LRScheduler):
    """``torch.optim.lr_scheduler.PolynomialLR``: ``lr * (1 - min(count, total_iters) / total_iters)
    ** power``.

    optax: ``optax.polynomial_schedule(lr, 0.0, power, total_iters)``, the same curve.
    """

    _kind = "mult"

    def __init__(self, lr: float, total_iters: int = 5, power: float = 1.0):
        self.base_lr = as_lr(lr)
        self.total_iters = as_int(total_iters, "total_iters")
        self.power = float(power)

    def _cumfactor(self, c):
        total = self.total_iters
        if total <= 0:  # torch never moves (last_epoch > total_iters from the first step)
            return _f(1.0)
        return (1.0 - div(jnp.minimum(total, c), total)) ** self.power

    def _value(self, c):
        return self.base_lr * self._cumfactor(c)

    def _step(self, t, lr):
        total = self.total_iters
        ratio = div(1.0 - div(t, total), 1.0 - div(t - 1, total)) if total else _f(1.0)
        return jnp.where((t == 0) | (t > total), lr, lr * ratio**self.power)

    def _restart(self, k, lr_before):
        total = self.total_iters
        if total > 0:
            return self._value(k)
        return _f(math.nan if total == 0 else 0.0)  # torch's closed form at 0, then constant


class CosineAnnealingLR(LRScheduler):
    """``torch.optim.lr_scheduler.CosineAnnealingLR``: ``eta_min + (lr - eta_min) * (1 + cos(pi * count
    / T_max)) / 2`` up to ``T_max``; past it, what torch's recursion returns.

    torch steps recursively; past ``T_max`` its recursion climbs back (a period of ``2 * T_max``) and
    restarts each climb with an additive step, ``lr + (base - eta_min) * (1 - cos(pi / T_max)) / 2``, whose
    ``1 - cos`` is computed otherwise than the closed form's ``1 + cos(pi * (T_max + 1) / T_max)``. The
    two differ by up to ~1e-11 relative for large ``T_max``; fnnet follows torch's additive restart and
    scales it by the closed-form ratio (which telescopes torch's per-step ratios).

    optax: ``optax.cosine_decay_schedule(lr, T_max, alpha=eta_min / lr)`` equals this up to ``T_max``
    and then stays at ``eta_min`` instead of climbing back.
    """

    def __init__(self, lr: float, T_max: int, eta_min: float = 0.0):
        self.base_lr = as_lr(lr)
        self.T_max = as_int(T_max, "T_max", 1)
        self.eta_min = float(eta_min)

    def _cos(self, t) -> jax.Array:
        return jnp.cos(div(jnp.pi * _f(t), self.T_max))

    def _value(self, c):
        eta, base, period = self.eta_min, self.base_lr, 2 * self.T_max
        first = eta + (base - eta) * (1 + self._cos(c)) / 2
        # the last restart r <= c (torch's additive step at (r - 1 - T_max) % (2 T_max) == 0)
        r = self.T_max + 1 + period * jnp.floor_divide(jnp.maximum(c - self.T_max - 1, 0), period)
        lr_r = eta + (base - eta) * (1 - math.cos(math.pi / self.T_max)) / 2
        later = eta + (lr_r - eta) * div(1 + self._cos(c), 1 + self._cos(r))
        return jnp.where(c <= self.T_max, first, jnp.where(c == r, lr_r, later))

    def _step(self, t, lr):
        eta, base = self.eta_min, self.base_lr
        restart = lr + (base - eta) * (1 - math.cos(math.pi / self.T_max)) / 2
        ratio = div(1 + self._cos(t), 1 + self._cos(t - 1))
        moved = jnp.where((t - 1 - self.T_max) % (2 * self.T_max) == 0, restart, ratio * (lr - eta) + eta)
        return jnp.where(t == 0, lr, moved)
