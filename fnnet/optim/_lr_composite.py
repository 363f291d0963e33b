"""torch's composite schedulers, ``SequentialLR`` and ``ChainedScheduler``, over fnnet schedulers."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from fnnet.optim._lr_base import LRScheduler, as_int, float_dtype

__all__ = ["SequentialLR", "ChainedScheduler"]


def _check_members(schedulers: Sequence[Any], who: str, what: str) -> list[LRScheduler]:
    """torch's checks (a non-empty list, no ReduceLROnPlateau) and fnnet's: one optimizer, i.e. one lr."""
    from fnnet.optim._lr_plateau import ReduceLROnPlateau

    schedulers = list(schedulers)
    if len(schedulers) < 1:
        raise ValueError(f"{who} expects at least one scheduler{what}, but got no scheduler.")
    for i, s in enumerate(schedulers):
        if isinstance(s, ReduceLROnPlateau):
            raise ValueError(
                f"{who} does not support `ReduceLROnPlateau` scheduler as it "
                "requires additional kwargs to be specified when calling `step`, "
                f"but got one at index {i} in the given schedulers sequence."
            )
        if not isinstance(s, LRScheduler):
            raise TypeError(f"{who} at index {i} should be a fnnet.optim.lr_scheduler scheduler, got {s!r}")
        if isinstance(s, SequentialLR | ChainedScheduler):
            raise ValueError(f"{who}: nesting {type(s).__name__} (index {i}) is not supported")
        if not s._in_composites:
            raise ValueError(
                f"{who}: {type(s).__name__} (index {i}) sets the optimizer's learning rate itself; fnnet "
                "composes only the schedulers built with lr="
            )
    lrs = {s.base_lr for s in schedulers}
    if len(lrs) != 1:
        raise ValueError(
            f"{who} expects all schedulers to belong to the same optimizer: give them all the same lr, "
            f"got {sorted(lrs)}"
        )
    return schedulers


class SequentialLR(LRScheduler):
    """``torch.optim.lr_scheduler.SequentialLR``: ``schedulers[i]`` from ``milestones[i - 1]`` on.

    At a milestone torch restarts the next scheduler at its value for count 0 (``_update_lr(0)``, its
    closed form where it has one): the returned values follow that rule, including
    ``MultiplicativeLR``, which restarts from the lr the previous scheduler left. The schedulers must
    share one ``lr`` (torch: one optimizer) and be built with ``lr=`` (not ``OneCycleLR``/``CyclicLR``);
    the milestones must not decrease (torch's ``bisect`` over an unsorted list steps schedulers in an
    order fnnet does not reproduce). optax: ``optax.join_schedules(schedules, boundaries)`` restarts
    every schedule at its own count 0 (so the same for closed-form ones, not for
    ``MultiplicativeLR``), and cannot express torch's initial step of a milestone at 0.
    """

    def __init__(self, schedulers: Sequence[LRScheduler], milestones: Sequence[int]):
        self.schedulers = _check_members(schedulers, "SequentialLR", "")
        self.milestones = [as_int(m, "milestones[i]") for m in milestones]
        if len(self.milestones) != len(self.schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more "
                f"than the number of milestone points, but got number of schedulers {len(self.schedulers)} and the "
                f"number of milestones to be equal to {len(self.milestones)}"
            )
        if any(b < a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"SequentialLR: milestones must not decrease, got {self.milestones}")
        self.base_lr = self.schedulers[0].base_lr
        # the scheduler torch gives the initial step (count 0) and the ones it restarts later
        self._first = bisect.bisect_right(self.milestones, 0)

    def _value_at(self, i: int, c: jax.Array) -> jax.Array:
        s = self.schedulers[i]
        if i <= self._first:  # stepped from the constructor on (torch: _initial_step, then step())
            return s._value(c)
        m = self.milestones[i - 1]
        before = self._value(jnp.asarray(m - 1, c.dtype), upto=i) if s._restart_reads_lr else None
        return s._restart(jnp.maximum(c - m, 0), before)

    def _value(self, c, upto: int | None = None):
        """The value at ``c``, from the schedulers before index ``upto`` (all by default)."""
        idx = jnp.zeros([], c.dtype)
        for m in self.milestones:
            idx = idx + (c >= m)
        out = jnp.asarray(0.0, float_dtype())
        for i in range(self._first, len(self.schedulers) if upto is None else upto):
            out = jnp.where(idx == i, jnp.asarray(self._value_at(i, c), float_dtype()), out)
        return out


class ChainedScheduler(LRScheduler):
    """``torch.optim.lr_scheduler.ChainedScheduler``: every scheduler steps the shared lr in turn.

    torch multiplies the optimizer's lr by each scheduler's step factor; fnnet returns that product
    (closed forms when every member is multiplicative or sets the lr outright, else torch's recursion
    itself as a ``fori_loop`` over the count: ``CosineAnnealingLR`` in a chain, O(count) per call).
    The schedulers share one ``lr`` and are built with ``lr=``. optax: no chaining of schedules;
    ``lambda c: s1(c) * s2(c) / lr`` is the product only for purely multiplicative members.
    """

    def __init__(self, schedulers: Sequence[LRScheduler]):
        self.schedulers = _check_members(schedulers, "ChainedScheduler", " to be chained")
        self.base_lr = self.schedulers[0].base_lr

    def _value(self, c):
        kinds = [s._kind for s in self.schedulers]
        if all(k in ("mult", "abs") for k in kinds):
            last_abs = max((i for i, k in enumerate(kinds) if k == "abs"), default=None)
            if last_abs is None:
                out = jnp.asarray(self.base_lr, float_dtype())
                for s in self.schedulers:
                    out = out * s._cumfactor(c)
                return out
            out = self.schedulers[last_abs]._value(c)
            for s in self.schedulers[last_abs + 1 :]:
                out = s._step(c, out)
            return out

        def body(t, lr):
            for s in self.schedulers:
                lr = jnp.asarray(s._step(t, lr), float_dtype())
            return lr

        zero = jnp.zeros([], c.dtype)
        return jax.lax.fori_loop(zero, c + 1, body, jnp.asarray(self.base_lr, float_dtype()))

    def _step(self, t, lr):
        for s in self.schedulers:
            lr = s._step(t, lr)
        return lr
