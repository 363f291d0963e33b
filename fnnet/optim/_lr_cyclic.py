"""torch's schedulers that set the learning rate outright (no recursion): the cyclic ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from fnnet.optim._lr_base import LRScheduler, as_count, as_int, as_lr, div, float_dtype

__all__ = ["CyclicLR", "OneCycleLR", "CosineAnnealingWarmRestarts"]


def _f(x: Any) -> jax.Array:
    return jnp.asarray(x, float_dtype())


class _Momentum:
    """The momentum schedule of a cycling scheduler: ``sched.momentum(count)`` is the momentum (SGD,
    RMSprop) or beta1 (Adam family) torch's scheduler has set after ``count`` steps."""

    def __init__(self, owner: LRScheduler):
        self._owner = owner

    def __call__(self, count: Any) -> jax.Array:
        return jnp.asarray(self._owner._momentum_value(as_count(count)), float_dtype())

    def __repr__(self) -> str:
        return f"{self._owner!r}.momentum"


class CyclicLR(LRScheduler):
    """``torch.optim.lr_scheduler.CyclicLR``: the lr cycles between ``base_lr`` and ``max_lr`` (up in
    ``step_size_up`` steps, down in ``step_size_down``), scaled per cycle or per step by the mode.

    No ``lr``: torch sets the optimizer's lr to ``base_lr`` itself. With ``cycle_momentum=True``
    (torch's default) ``sched.momentum`` cycles inversely between ``max_momentum`` and
    ``base_momentum``: pass it as SGD/RMSprop's ``momentum`` or the Adam family's ``betas[0]`` to
    train as torch does. A ``scale_fn`` gets the cycle number (``scale_mode="cycle"``) or the step
    count (``"iterations"``) as an integer JAX array: write it with jnp. optax has no cyclic schedule.
    """

    _kind = "abs"
    _in_composites = False

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[jax.Array], Any] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
    ):
        self.base_lr = as_lr(base_lr, "base_lr")
        self.max_lr = as_lr(max_lr, "max_lr")
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if mode not in ["triangular", "triangular2", "exp_range"] and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(f"scale_fn must be a function, got {type(scale_fn).__name__}")
        self.mode = mode
        self.gamma = float(gamma)
        self.scale_fn = scale_fn
        if scale_fn is None:  # torch's _init_scale_fn: the mode fixes the scale mode
            scale_mode = "iterations" if mode == "exp_range" else "cycle"
        self.scale_mode = scale_mode
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum = float(base_momentum)
        self.max_momentum = float(max_momentum)
        self.momentum = _Momentum(self) if self.cycle_momentum else None

    def _scale(self, x: jax.Array) -> jax.Array:
        if self.scale_fn is not None:
            return _f(self.scale_fn(x))
        if self.mode == "triangular":
            return _f(1.0)
        if self.mode == "triangular2":
            return div(1, 2.0 ** (_f(x) - 1))
        return self.gamma ** _f(x)  # exp_range

    def _phase(self, c: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(scale_factor, scale_fn(...)) at ``last_epoch = c``, in torch's arithmetic."""
        ratio = div(c, self.total_size)
        cycle = jnp.floor(1 + ratio)
        x = 1.0 + ratio - cycle
        scale_factor = jnp.where(x <= self.step_ratio, div(x, self.step_ratio), div(x - 1, self.step_ratio - 1))
        arg = cycle.astype(c.dtype) if self.scale_mode == "cycle" else c
        return scale_factor, self._scale(arg)

    def _value(self, c):
        scale_factor, scale = self._phase(c)
        return self.base_lr + (self.max_lr - self.base_lr) * scale_factor * scale

    def _momentum_value(self, c):
        scale_factor, scale = self._phase(c)
        return self.max_momentum - (self.max_momentum - self.base_momentum) * scale_factor * scale

    def _step(self, t, lr):
        return self._value(t)


class OneCycleLR(LRScheduler):
    """``torch.optim.lr_scheduler.OneCycleLR``: warm up from ``max_lr / div_factor`` to ``max_lr``, then
    anneal to ``max_lr / div_factor / final_div_factor`` (``three_phase``: back down to the initial lr
    first), by cosine or linearly; with ``cycle_momentum`` the momentum runs the other way between
    ``max_momentum`` and ``base_momentum`` (``sched.momentum``).

    No ``lr``: torch sets the optimizer's lr itself. torch ends its phases at ``pct_start * T - 1`` and
    ``T - 1`` (``T = total_steps``); ``optax.cosine_onecycle_schedule`` at ``int(pct_start * T)`` and ``T``,
    and cycles no momentum; three phases have no optax twin. Past ``total_steps`` torch raises; fnnet
    returns the value at ``total_steps`` (the last one torch reports) for every later count.
    """

    _kind = "abs"
    _in_composites = False

    def __init__(
        self,
        max_lr: float,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ):
        self.max_lr = as_lr(max_lr, "max_lr")
        if total_steps is not None:
            if total_steps <= 0 or not isinstance(total_steps, int):
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}")
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        if pct_start < 0 or pct_start > 1 or not isinstance(pct_start, float):
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self.pct_start = pct_start
        self.anneal_strategy = anneal_strategy
        self.three_phase = bool(three_phase)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)
        self.base_lr = self.max_lr / self.div_factor  # torch's group["initial_lr"]
        self.min_lr = self.base_lr / self.final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum = float(base_momentum)
        self.max_momentum = float(max_momentum)
        self.momentum = _Momentum(self) if self.cycle_momentum else None
        total = self.total_steps
        lrs = {"initial_lr": self.base_lr, "max_lr": self.max_lr, "min_lr": self.min_lr}
        moms = {"max_momentum": self.max_momentum, "base_momentum": self.base_momentum}
        if self.three_phase:
            phases = [
                (float(pct_start * total) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * total) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            phases = [
                (float(pct_start * total) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        # (start_step, end_step, start_lr, end_lr, start_momentum, end_momentum) per phase
        self._phases = []
        start = 0.0
        for end, lr0, lr1, m0, m1 in phases:
            self._phases.append((start, end, lrs[lr0], lrs[lr1], moms[m0], moms[m1]))
            start = end
        if self._phases[0][1] == 0:  # torch divides by the first phase's length 0 at step 0
            raise ValueError(
                f"OneCycleLR(total_steps={total}, pct_start={pct_start}): the first phase ends at step 0 "
                "and torch raises ZeroDivisionError when it is built"
            )

    def _anneal(self, start: float, end: float, pct: jax.Array) -> jax.Array:
        if self.anneal_strategy == "cos":
            cos_out = jnp.cos(jnp.pi * pct) + 1
            return end + (start - end) / 2.0 * cos_out
        return (end - start) * pct + start

    def _select(self, c: jax.Array, momentum: bool) -> jax.Array:
        step_num = jnp.minimum(c, self.total_steps)
        out = None
        for i in reversed(range(len(self._phases))):
            start, end, lr0, lr1, m0, m1 = self._phases[i]
            pct = div(_f(step_num) - start, end - start)
            value = self._anneal(m0, m1, pct) if momentum else self._anneal(lr0, lr1, pct)
            out = value if out is None else jnp.where(step_num <= end, value, out)
        return out

    def _value(self, c):
        return self._select(c, momentum=False)

    def _momentum_value(self, c):
        return self._select(c, momentum=True)

    def _step(self, t, lr):
        return self._value(t)


class CosineAnnealingWarmRestarts(LRScheduler):
    """``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts``: cosine annealing from ``lr`` to
    ``eta_min`` over ``T_i`` steps, restarting at ``lr``; the periods are ``T_0, T_0 * T_mult,
    T_0 * T_mult**2, ...`` (torch's integer ``T_cur``/``T_i`` recursion, exactly).

    optax: ``optax.sgdr_schedule`` takes a finite list of cycles (a dict each, with warmup) where
    torch takes one integer ``T_mult``; with ``T_mult=1`` and enough cycles it draws the same curve.
    """

    _kind = "abs"

    def __init__(self, lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0):
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, float | int):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}")
        self.base_lr = as_lr(lr)
        self.T_0 = as_int(T_0, "T_0", 1)
        self.T_mult = as_int(T_mult, "T_mult", 1)
        self.eta_min = float(eta_min)
        # cycle k starts at T_0 * (T_mult**k - 1) / (T_mult - 1); listed up to int64's range
        starts, lengths = [0], [self.T_0]
        while self.T_mult > 1 and starts[-1] + lengths[-1] < 2**62:
            starts.append(starts[-1] + lengths[-1])
            lengths.append(lengths[-1] * self.T_mult)
        self._starts, self._lengths = starts, lengths

    def _cycle(self, c: jax.Array) -> tuple[jax.Array, jax.Array]:
        """torch's ``(T_cur, T_i)`` after ``c`` steps."""
        if self.T_mult == 1:
            return c % self.T_0, jnp.asarray(self.T_0, c.dtype)
        limit = jnp.iinfo(c.dtype).max
        starts = jnp.asarray([s for s in self._starts if s <= limit], c.dtype)
        lengths = jnp.asarray(self._lengths[: starts.shape[0]], c.dtype)
        k = jnp.sum(c >= starts) - 1
        return c - starts[k], lengths[k]

    def _value(self, c):
        t_cur, t_i = self._cycle(c)
        eta = self.eta_min
        return eta + (self.base_lr - eta) * (1 + jnp.cos(div(jnp.pi * _f(t_cur), _f(t_i)))) / 2

    def _step(self, t, lr):
        return self._value(t)
