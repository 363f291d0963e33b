"""torch.optim-faithful optimizers as optax ``GradientTransformation`` s.

Each ``fnnet.optim.<name>(...)`` takes the keywords and defaults of ``torch.optim.<Name>`` (torch 2.13)
and returns an ``optax.GradientTransformation`` built as an ``optax.chain`` of small transforms: optax's
own where their arithmetic is torch's, a literal port of torch's ``_single_tensor_<name>`` otherwise.
Use it the optax way::

    tx = fnnet.optim.adam(lr=5e-4)
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)   # params: needed for weight decay, ASGD
    params = optax.apply_updates(params, updates)

Shared conventions (all optimizers):

* ``lr`` is a float or an optax schedule; the schedule is evaluated at torch's step count minus one
  (step 1 uses ``lr(0)``, as ``optax.scale_by_learning_rate``), counted in JAX's default integer dtype
  so that a schedule's value stays float64 under ``jax_enable_x64``.
* ``maximize`` negates the gradient first, exactly as torch; it is keyword-only here (in some torch
  classes it is positional).
* torch's implementation switches ``foreach``, ``fused``, ``capturable`` and ``differentiable`` are
  omitted: they select kernels, not arithmetic; passing one raises ``TypeError``.
* Invalid hyperparameters raise ``ValueError`` with torch's message text. A schedule ``lr`` is not
  range-checked (torch has no schedules).
* Optimizers that read parameters (``weight_decay != 0``, ASGD) raise ``ValueError`` when
  ``update`` gets ``params=None``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = [
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "asgd",
    "rmsprop",
    "rprop",
    "sgd",
    "sparse_adam",
]

ScalarOrSchedule = float | Callable[[jax.Array], jax.Array]
_Tx = optax.GradientTransformation


# ----------------------------------------------------------------------------------------------
# validation (torch's messages)


def _check_lr(lr: ScalarOrSchedule, *, strict: bool = False) -> None:
    if callable(lr):
        return
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be a float or an optax schedule, got {type(lr).__name__}")
    if (lr <= 0.0) if strict else (lr < 0.0):
        raise ValueError(f"Invalid learning rate: {lr}")


def _check_nonneg(value: float, label: str) -> None:
    if not value >= 0.0:
        raise ValueError(f"Invalid {label}: {value}")


def _check_betas(betas: tuple[float, float]) -> None:
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta}")


# ----------------------------------------------------------------------------------------------
# small shared transforms


def _lr_at(lr: ScalarOrSchedule, count: jax.Array) -> jax.Array | float:
    return lr(count) if callable(lr) else lr


def _zero_count() -> jax.Array:
    """A step counter in JAX's default integer dtype (int64 under jax_enable_x64).

    optax counts in int32, and e.g. ``optax.exponential_decay(...)(int32 count)`` is float32 even with
    x64 on, which would round a schedule's lr to float32 where torch uses a Python float.
    """
    return jnp.zeros([], dtype=int)


class ScaleByLrState(NamedTuple):
    count: jax.Array


def _scale_by_lr(lr: ScalarOrSchedule, lr_decay: float = 0.0) -> _Tx:
    """Multiply by ``-lr / (1 + (t - 1) * lr_decay)`` at torch step t (``lr(t - 1)`` for a schedule).

    A constant lr without decay is ``optax.scale_by_learning_rate``; otherwise a counter in the
    default integer dtype (see ``_zero_count``) feeds the schedule.
    """
    if not callable(lr) and lr_decay == 0:
        return optax.scale_by_learning_rate(lr)

    def init_fn(params):
        del params
        return ScaleByLrState(_zero_count())

    def update_fn(updates, state, params=None):
        del params
        factor = -_lr_at(lr, state.count)
        if lr_decay != 0:
            factor = factor / (1 + state.count * lr_decay)
        out = jax.tree.map(lambda g: jnp.asarray(factor, g.dtype) * g, updates)
        return out, ScaleByLrState(optax.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


def _maximize(maximize: bool) -> _Tx:
    """torch's ``grad = -grad`` when ``maximize``."""
    return optax.scale(-1.0) if maximize else optax.identity()


def _needs_params(tx: _Tx, what: str) -> _Tx:
    """Wrap ``tx`` so that ``update(..., params=None)`` names the optimizer and the reason."""

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(f"fnnet.optim.{what} reads the parameters: call tx.update(grads, state, params)")
        return tx.update(updates, state, params)

    return optax.GradientTransformation(tx.init, update_fn)


def _coupled_weight_decay(weight_decay: float, what: str) -> _Tx:
    """torch's ``grad = grad.add(param, alpha=weight_decay)`` (L2 added to the gradient)."""
    if weight_decay == 0:
        return optax.identity()
    return _needs_params(optax.add_decayed_weights(weight_decay), f"{what}(weight_decay != 0)")


def _lerp(start: jax.Array, end: jax.Array, weight: float) -> jax.Array:
    """``torch.lerp`` with a scalar weight, in torch's CPU formula (two branches for accuracy)."""
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


def _unzip3(like: Any, triples: Any) -> tuple[Any, Any, Any]:
    """A tree (shaped like ``like``) of 3-tuples -> a 3-tuple of trees."""
    return jax.tree.transpose(jax.tree.structure(like), jax.tree.structure((0, 0, 0)), triples)


def _count_like(count: jax.Array, leaf: jax.Array) -> jax.Array:
    return count.astype(leaf.dtype)


def _float_dtype(params: Any) -> jnp.dtype:
    """The widest floating dtype among the params (torch keeps its scalar state in the default dtype)."""
    dtypes = [x.dtype for x in jax.tree.leaves(params) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.result_type(*dtypes) if dtypes else jnp.result_type(float)


# ----------------------------------------------------------------------------------------------
# SGD


class TraceWithDampeningState(NamedTuple):
    count: jax.Array
    momentum_buffer: optax.Updates


def _trace_with_dampening(momentum: float, dampening: float) -> _Tx:
    """torch's SGD momentum buffer with dampening: ``buf = g`` on step 1, then
    ``buf = momentum * buf + (1 - dampening) * g`` (optax.trace has no dampening and starts at 0)."""

    def init_fn(params):
        return TraceWithDampeningState(_zero_count(), optax.tree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        buf = jax.tree.map(
            lambda g, b: jnp.where(state.count == 0, g, b * momentum + (1 - dampening) * g),
            updates,
            state.momentum_buffer,
        )
        return buf, TraceWithDampeningState(optax.safe_increment(state.count), buf)

    return optax.GradientTransformation(init_fn, update_fn)


def sgd(
    lr: ScalarOrSchedule = 1e-3,
    momentum: float = 0,
    dampening: float = 0,
    weight_decay: float = 0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
) -> _Tx:
    """``torch.optim.SGD``.

    Plain ``optax.sgd(lr, momentum, nesterov)`` equals this only with ``dampening=0`` and
    ``weight_decay=0``: optax has neither. With ``dampening=0`` torch's buffer (``buf = g`` on step 1,
    then ``momentum * buf + g``) is exactly ``optax.trace``, which is reused; with dampening a
    small transform starts the buffer at ``g`` undamped, as torch does.
    """
    _check_lr(lr)
    _check_nonneg(momentum, "momentum value")
    _check_nonneg(weight_decay, "weight_decay value")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    if momentum == 0:
        trace = optax.identity()
    elif dampening == 0:
        trace = optax.trace(decay=momentum, nesterov=nesterov)
    else:
        trace = _trace_with_dampening(momentum, dampening)
    return optax.chain(
        _maximize(maximize),
        _coupled_weight_decay(weight_decay, "sgd"),
        trace,
        _scale_by_lr(lr),
    )


# ----------------------------------------------------------------------------------------------
# Adam, AdamW


class ScaleByTorchAdamState(NamedTuple):
    count: jax.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates
    max_exp_avg_sq: optax.Updates | None


def _scale_by_torch_adam(beta1: float, beta2: float, eps: float, amsgrad: bool) -> _Tx:
    """torch's Adam direction ``exp_avg / bias_correction1 / (sqrt(v) / sqrt(bias_correction2) + eps)``.

    Hand-written: optax's ``scale_by_amsgrad`` keeps the max of the bias-corrected second moment,
    torch the max of the raw one (divided by the current correction); one literal port covers both.
    """

    def init_fn(params):
        zeros = optax.tree.zeros_like(params)
        return ScaleByTorchAdamState(_zero_count(), zeros, zeros, zeros if amsgrad else None)

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_increment(state.count)
        exp_avg = jax.tree.map(lambda m, g: _lerp(m, g, 1 - beta1), state.exp_avg, updates)
        exp_avg_sq = jax.tree.map(lambda v, g: v * beta2 + (1 - beta2) * (g * g), state.exp_avg_sq, updates)
        max_sq = jax.tree.map(jnp.maximum, state.max_exp_avg_sq, exp_avg_sq) if amsgrad else None
        second = max_sq if amsgrad else exp_avg_sq

        def direction(m, v):
            t = _count_like(count, m)
            bias_correction1 = 1 - beta1**t
            bias_correction2_sqrt = jnp.sqrt(1 - beta2**t)
            denom = jnp.sqrt(v) / bias_correction2_sqrt + eps
            return m / denom / bias_correction1

        out = jax.tree.map(direction, exp_avg, second)
        return out, ScaleByTorchAdamState(count, exp_avg, exp_avg_sq, max_sq)

    return optax.GradientTransformation(init_fn, update_fn)


def adam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> _Tx:
    """``torch.optim.Adam`` (including ``amsgrad``, ``maximize`` and ``decoupled_weight_decay``).

    Differences from plain ``optax.adam``: ``weight_decay`` here is torch's coupled L2 term added to
    the gradient before the moments (optax.adam has none); ``amsgrad=True`` keeps the max of the raw
    second moment (``optax.amsgrad`` maxes the bias-corrected one); the arithmetic follows torch's
    order (``lerp`` moments, ``sqrt(v)/sqrt(bc2) + eps``). ``decoupled_weight_decay=True`` is AdamW.
    """
    _check_lr(lr)
    _check_nonneg(eps, "epsilon value")
    _check_betas(betas)
    _check_nonneg(weight_decay, "weight_decay value")
    beta1, beta2 = betas
    moments = _scale_by_torch_adam(beta1, beta2, eps, amsgrad)
    if decoupled_weight_decay:
        decayed = (
            optax.identity() if weight_decay == 0 else _needs_params(optax.add_decayed_weights(weight_decay), "adamw")
        )
        # -lr * (direction + wd * param) == torch's param *= 1 - lr*wd followed by the Adam step
        return optax.chain(_maximize(maximize), moments, decayed, _scale_by_lr(lr))
    return optax.chain(
        _maximize(maximize),
        _coupled_weight_decay(weight_decay, "adam"),
        moments,
        _scale_by_lr(lr),
    )


def adamw(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
) -> _Tx:
    """``torch.optim.AdamW``: Adam whose weight decay shrinks the parameters, ``p -= lr * wd * p``.

    Plain ``optax.adamw`` has the same decoupled form but its default ``weight_decay`` is 1e-4
    (torch: 1e-2), its ``amsgrad`` does not exist and its moment arithmetic is ordered differently.
    """
    return adam(lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decoupled_weight_decay=True)


# ----------------------------------------------------------------------------------------------
# Adagrad, Adadelta, Adamax


class ScaleByTorchAdagradState(NamedTuple):
    sum: optax.Updates


def _scale_by_torch_adagrad(initial_accumulator_value: float, eps: float) -> _Tx:
    """torch's Adagrad direction ``g / (sqrt(sum) + eps)``; optax.scale_by_rss puts eps inside
    ``rsqrt(sum + eps)`` and zeroes entries whose sum is 0, so it is not reused."""

    def init_fn(params):
        return ScaleByTorchAdagradState(jax.tree.map(lambda p: jnp.full_like(p, initial_accumulator_value), params))

    def update_fn(updates, state, params=None):
        del params
        acc = jax.tree.map(lambda s, g: s + g * g, state.sum, updates)
        out = jax.tree.map(lambda g, s: g / (jnp.sqrt(s) + eps), updates, acc)
        return out, ScaleByTorchAdagradState(acc)

    return optax.GradientTransformation(init_fn, update_fn)


def adagrad(
    lr: ScalarOrSchedule = 1e-2,
    lr_decay: float = 0,
    weight_decay: float = 0,
    initial_accumulator_value: float = 0,
    eps: float = 1e-10,
    *,
    maximize: bool = False,
) -> _Tx:
    """``torch.optim.Adagrad``: step t uses ``lr / (1 + (t - 1) * lr_decay)``.

    Plain ``optax.adagrad`` starts its accumulator at 0.1 (torch: 0), uses ``eps=1e-7`` inside
    ``rsqrt(sum + eps)`` (torch: 1e-10 added to ``sqrt(sum)``) and has no ``lr_decay`` or weight decay.
    """
    _check_lr(lr)
    _check_nonneg(lr_decay, "lr_decay value")
    _check_nonneg(weight_decay, "weight_decay value")
    _check_nonneg(initial_accumulator_value, "initial_accumulator_value value")
    _check_nonneg(eps, "epsilon value")
    return optax.chain(
        _maximize(maximize),
        _coupled_weight_decay(weight_decay, "adagrad"),
        _scale_by_torch_adagrad(initial_accumulator_value, eps),
        _scale_by_lr(lr, lr_decay),
    )


def adadelta(
    lr: ScalarOrSchedule = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0,
    *,
    maximize: bool = False,
) -> _Tx:
    """``torch.optim.Adadelta``; its direction is exactly ``optax.scale_by_adadelta``, reused.

    Plain ``optax.adadelta`` defaults to ``learning_rate=None``, which skips the ``-lr`` scaling and so
    *ascends*; torch's lr defaults to 1.0.
    """
    _check_lr(lr)
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"Invalid rho value: {rho}")
    _check_nonneg(eps, "epsilon value")
    _check_nonneg(weight_decay, "weight_decay value")
    return optax.chain(
        _maximize(maximize),
        _coupled_weight_decay(weight_decay, "adadelta"),
        optax.scale_by_adadelta(rho=rho, eps=eps),
        _scale_by_lr(lr),
    )


def adamax(
    lr: ScalarOrSchedule = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    *,
    maximize: bool = False,
) -> _Tx:
    """``torch.optim.Adamax``; its direction ``m / bias_correction1 / max(b2 * u, |g| + eps)`` is exactly
    ``optax.scale_by_adamax``, reused. Plain ``optax.adamax`` has no weight decay and no maximize.
    """
    _check_lr(lr)
    _check_nonneg(eps, "epsilon value")
    _check_betas(betas)
    _check_nonneg(weight_decay, "weight_decay value")
    return optax.chain(
        _maximize(maximize),
        _coupled_weight_decay(weight_decay, "adamax"),
        optax.scale_by_adamax(b1=betas[0], b2=betas[1], eps=eps),
        _scale_by_lr(lr),
    )


# ----------------------------------------------------------------------------------------------
# ASGD


class TorchASGDState(NamedTuple):
    """``ax`` is torch's averaged iterate (``optimizer.state[p]["ax"]``)."""

    count: jax.Array
    eta: jax.Array
    mu: jax.Array
    ax: optax.Params


def _torch_asgd(lr: ScalarOrSchedule, lambd: float, alpha: float, t0: float) -> _Tx:
    """torch's ASGD step (post-2024 form): ``p = p * (1 - lambd * eta) - eta * g``, then the average
    ``ax`` and the next ``eta = lr / (1 + lambd * lr * t) ** alpha``, ``mu = 1 / max(1, t - t0)``.
    Hand-written: optax has no ASGD."""

    def init_fn(params):
        dtype = _float_dtype(params)
        return TorchASGDState(
            _zero_count(),
            jnp.asarray(_lr_at(lr, _zero_count()), dtype),
            jnp.ones([], dtype),
            optax.tree.zeros_like(params),
        )

    def update_fn(updates, state, params):
        eta, mu = state.eta, state.mu
        new_params = jax.tree.map(
            lambda p, g: p * (1 - lambd * eta).astype(p.dtype) - eta.astype(p.dtype) * g,
            params,
            updates,
        )
        out = jax.tree.map(lambda new, p: new - p, new_params, params)
        ax = jax.tree.map(
            lambda a, new: jnp.where(mu == 1, new, a + (new - a) * mu.astype(a.dtype)),
            state.ax,
            new_params,
        )
        step = state.count.astype(eta.dtype) + 1
        lr_t = jnp.asarray(_lr_at(lr, state.count), eta.dtype)
        new_eta = lr_t / (1 + lambd * lr_t * step) ** alpha
        new_mu = 1 / jnp.maximum(1, step - t0)
        return out, TorchASGDState(optax.safe_increment(state.count), new_eta, new_mu, ax)

    return optax.GradientTransformation(init_fn, update_fn)


def asgd(
    lr: ScalarOrSchedule = 1e-2,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: float = 0,
    *,
    maximize: bool = False,
) -> _Tx:
    """``torch.optim.ASGD`` (torch's current semantics: ``eta`` and ``mu`` are recomputed from the step
    count after each step, the lr in force being that step's). optax has no ASGD.

    The averaged parameters torch keeps in ``state[p]["ax"]`` are in the returned state's
    ``TorchASGDState.ax`` (the last element of the chain state). ``update`` needs ``params``.
    """
    _check_lr(lr)
    _check_nonneg(weight_decay, "weight_decay value")
    return optax.chain(
        _maximize(maximize),
        _coupled_weight_decay(weight_decay, "asgd"),
        _needs_params(_torch_asgd(lr, lambd, alpha, t0), "asgd"),
    )


# ----------------------------------------------------------------------------------------------
# RMSprop, Rprop


def rmsprop(
    lr: ScalarOrSchedule = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0,
    momentum: float = 0,
    centered: bool = False,
    *,
    maximize: bool = False,
) -> _Tx:
    """``torch.optim.RMSprop``, built on ``optax.scale_by_rms``/``scale_by_stddev`` with
    ``eps_in_sqrt=False`` and ``optax.trace`` for momentum.

    Plain ``optax.rmsprop`` puts eps inside the square root by default (``eps_in_sqrt=True``), its decay
    defaults to 0.9 (torch's ``alpha``: 0.99), and it has no weight decay.
    """
    _check_lr(lr)
    _check_nonneg(eps, "epsilon value")
    _check_nonneg(momentum, "momentum value")
    _check_nonneg(weight_decay, "weight_decay value")
    _check_nonneg(alpha, "alpha value")
    if centered:
        scale = optax.scale_by_stddev(decay=alpha, eps=eps, eps_in_sqrt=False)
    else:
        scale = optax.scale_by_rms(decay=alpha, eps=eps, eps_in_sqrt=False)
    return optax.chain(
        _maximize(maximize),
        _coupled_weight_decay(weight_decay, "rmsprop"),
        scale,
        optax.trace(decay=momentum) if momentum > 0 else optax.identity(),
        _scale_by_lr(lr),
    )


class TorchRpropState(NamedTuple):
    prev: optax.Updates
    step_size: optax.Updates


def _torch_rprop(lr: ScalarOrSchedule, etas: tuple[float, float], step_sizes: tuple[float, float]) -> _Tx:
    """torch's Rprop step ``-sign(g) * step_size`` (the gradient zeroed where its sign flipped).
    Hand-written: optax.scale_by_rprop returns a one-step-stale update (zero on step 1)."""
    etaminus, etaplus = etas
    step_size_min, step_size_max = step_sizes

    def init_fn(params):
        lr0 = _lr_at(lr, _zero_count())
        return TorchRpropState(
            optax.tree.zeros_like(params),
            jax.tree.map(lambda p: jnp.full_like(p, lr0), params),
        )

    def update_fn(updates, state, params=None):
        del params

        def one(g, prev, size):
            sign = jnp.sign(g * prev)
            factor = jnp.where(sign > 0, etaplus, jnp.where(sign < 0, etaminus, 1.0))
            size = jnp.clip(size * factor.astype(size.dtype), step_size_min, step_size_max)
            g = jnp.where(sign < 0, jnp.zeros_like(g), g)
            return -jnp.sign(g) * size, g, size

        out, prev, size = _unzip3(updates, jax.tree.map(one, updates, state.prev, state.step_size))
        return out, TorchRpropState(prev, size)

    return optax.GradientTransformation(init_fn, update_fn)


def rprop(
    lr: ScalarOrSchedule = 1e-2,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50),
    *,
    maximize: bool = False,
) -> _Tx:
    """``torch.optim.Rprop``. ``lr`` is only the initial per-element step size (a schedule is read
    once, at 0, as torch reads ``group["lr"]`` once). Plain ``optax.rprop`` applies each step's update
    one step late (its first update is zero; torch's is ``-lr * sign(g)``), so it is not built on.
    """
    _check_lr(lr)
    if not 0.0 < etas[0] < 1.0 < etas[1]:
        raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
    return optax.chain(_maximize(maximize), _torch_rprop(lr, etas, step_sizes))


# ----------------------------------------------------------------------------------------------
# SparseAdam


class ScaleBySparseAdamState(NamedTuple):
    count: jax.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates


def _touched_rows(g: jax.Array) -> jax.Array:
    """Boolean of g's shape-rank: True on rows (slices along axis 0) with any nonzero entry."""
    if g.ndim == 0:
        return g != 0
    touched = jnp.any(g != 0, axis=tuple(range(1, g.ndim)))
    return touched.reshape((g.shape[0],) + (1,) * (g.ndim - 1))


def _scale_by_sparse_adam(beta1: float, beta2: float, eps: float) -> _Tx:
    """torch's SparseAdam direction on touched rows; untouched rows keep their moments and get 0.
    Hand-written: optax has no SparseAdam."""

    def init_fn(params):
        zeros = optax.tree.zeros_like(params)
        return ScaleBySparseAdamState(_zero_count(), zeros, zeros)

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_increment(state.count)

        def one(g, m, v):
            rows = _touched_rows(g)
            m_update = (g - m) * (1 - beta1)
            v_update = (g * g - v) * (1 - beta2)
            numer = m_update + m
            denom = jnp.sqrt(v_update + v) + eps
            t = _count_like(count, g)
            scale = jnp.sqrt(1 - beta2**t) / (1 - beta1**t)
            direction = jnp.where(rows, numer / denom * scale, jnp.zeros_like(g))
            return direction, jnp.where(rows, m + m_update, m), jnp.where(rows, v + v_update, v)

        out, m, v = _unzip3(updates, jax.tree.map(one, updates, state.exp_avg, state.exp_avg_sq))
        return out, ScaleBySparseAdamState(count, m, v)

    return optax.GradientTransformation(init_fn, update_fn)


def sparse_adam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    *,
    maximize: bool = False,
) -> _Tx:
    """``torch.optim.SparseAdam`` on dense JAX gradients.

    torch updates only the rows (slices along axis 0) that a sparse gradient lists. JAX gradients are
    dense, so a row whose gradient is **all zero** counts as untouched: its moments and parameters stay
    as they are. (A row torch lists with an all-zero gradient would still have its moments decayed
    there; that case cannot be told apart here.) The step count advances every step, as torch's does.
    Note torch's SparseAdam adds eps to ``sqrt(v)`` *before* bias correction
    (``lr * sqrt(bc2) / bc1 * m / (sqrt(v) + eps)``), unlike Adam. optax has no SparseAdam.
    """
    _check_lr(lr, strict=True)
    if not eps > 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    _check_betas(betas)
    return optax.chain(
        _maximize(maximize),
        _scale_by_sparse_adam(betas[0], betas[1], eps),
        _scale_by_lr(lr),
    )


# torch.optim.LBFGS: a closure-style optimizer (not a GradientTransformation), in its own module.
from fnnet._lbfgs import LBFGSOptimizer, LBFGSState, lbfgs  # noqa: E402

__all__ += ["lbfgs", "LBFGSOptimizer", "LBFGSState"]
