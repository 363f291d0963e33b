"""``torch.optim.lr_scheduler.ReduceLROnPlateau`` as a pure state machine on metric values."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnnet.optim._lr_base import as_int, as_lr, float_dtype

__all__ = ["ReduceLROnPlateau", "PlateauState"]


class PlateauState(NamedTuple):
    """torch's ``ReduceLROnPlateau`` attributes: the current lr, ``best``, ``num_bad_epochs``,
    ``cooldown_counter`` and ``last_epoch``."""

    lr: jax.Array
    best: jax.Array
    num_bad_epochs: jax.Array
    cooldown_counter: jax.Array
    last_epoch: jax.Array


class ReduceLROnPlateau:
    """``torch.optim.lr_scheduler.ReduceLROnPlateau``: multiply the lr by ``factor`` when the metric
    has not improved for ``patience`` steps (then wait ``cooldown`` steps), never below ``min_lr``.

    Not a schedule (it reads a metric), but two pure, jit-able functions of its state::

        p = ReduceLROnPlateau(lr=0.1, patience=2)
        tx = optax.inject_hyperparams(fnnet.optim.sgd)(lr=0.1, momentum=0.9)
        opt_state, pstate = tx.init(params), p.init()
        for epoch in range(epochs):
            params, opt_state = train_one_epoch(params, opt_state)
            pstate = p.step(pstate, validation_loss(params))      # torch: scheduler.step(val_loss)
            opt_state.hyperparams["lr"] = p.lr(pstate)            # torch writes param_groups lr

    ``p.lr(state)`` equals torch's ``get_last_lr()[0]`` after the same metrics. Comparisons run in the
    default float dtype (float64 under x64, as torch's Python floats).

    ``optax.contrib.reduce_on_plateau`` differs: it is a gradient transformation scaling the updates,
    improves on ``metric < (1 - rtol) * best - atol`` (torch: ``best * (1 - threshold)`` or
    ``best - threshold``, the other direction for ``mode="max"``, which optax lacks), has
    ``min_scale`` in place of ``min_lr`` and no ``eps``, and averages the metric over
    ``accumulation_size`` calls.
    """

    def __init__(
        self,
        lr: float,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0,
        eps: float = 1e-8,
    ):
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        if mode not in {"min", "max"}:
            raise ValueError("mode " + str(mode) + " is unknown!")
        if threshold_mode not in {"rel", "abs"}:
            raise ValueError("threshold mode " + str(threshold_mode) + " is unknown!")
        self.base_lr = as_lr(lr)
        self.mode = mode
        self.factor = float(factor)
        self.patience = as_int(patience, "patience")
        self.threshold = float(threshold)
        self.threshold_mode = threshold_mode
        self.cooldown = as_int(cooldown, "cooldown")
        self.min_lr = as_lr(min_lr, "min_lr")
        self.eps = float(eps)

    def init(self) -> PlateauState:
        """torch's state right after construction (``best`` is the worst value for the mode)."""
        f = float_dtype()
        zero = jnp.zeros([], int)
        worse = math.inf if self.mode == "min" else -math.inf
        return PlateauState(jnp.asarray(self.base_lr, f), jnp.asarray(worse, f), zero, zero, zero)

    def _is_better(self, a: jax.Array, best: jax.Array) -> jax.Array:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, state: PlateauState, metrics: Any) -> PlateauState:
        """torch's ``scheduler.step(metrics)``, as a pure function of the state."""
        current = jnp.asarray(metrics, state.best.dtype)
        better = self._is_better(current, state.best)
        best = jnp.where(better, current, state.best)
        bad = jnp.where(better, 0, state.num_bad_epochs + 1)
        in_cooldown = state.cooldown_counter > 0
        cooldown_counter = jnp.where(in_cooldown, state.cooldown_counter - 1, state.cooldown_counter)
        bad = jnp.where(in_cooldown, 0, bad)  # bad epochs in cooldown are ignored
        reduce = bad > self.patience
        old = state.lr
        new = old * self.factor
        new = jnp.where(self.min_lr > new, self.min_lr, new)  # Python's max(old * factor, min_lr)
        lr = jnp.where(reduce & (old - new > self.eps), new, old)
        cooldown_counter = jnp.where(reduce, self.cooldown, cooldown_counter)
        bad = jnp.where(reduce, 0, bad)
        return PlateauState(lr, best, bad, cooldown_counter, state.last_epoch + 1)

    def lr(self, state: PlateauState) -> jax.Array:
        """The current learning rate (torch's ``get_last_lr()[0]``)."""
        return state.lr

    def __repr__(self) -> str:
        return f"ReduceLROnPlateau({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"
