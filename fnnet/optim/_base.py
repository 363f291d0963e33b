"""What every fnnet optimizer shares: hyperparameter checks, the lr scaling, weight decay, small helpers.

Hyperparameters. A float hyperparameter may be a Python number, a 0-d (or 1-element) JAX/NumPy array
(torch: a Tensor), and ``lr``, SGD/RMSprop's ``momentum`` and ``betas`` entries may also be a schedule
(a function of the step count). Under ``optax.inject_hyperparams`` every numeric hyperparameter reaches
the factory as an array, concrete in ``init`` and traced in a jitted ``update``, so:

* validation runs only on Python numbers and concrete arrays (``_check``), never on tracers;
* the *structure* of a transform (which state it keeps) is chosen from the argument's *type*, never
  from an array's value: a Python ``0`` may drop a branch (torch's ``if momentum != 0``), an array
  keeps it and selects torch's branch with ``jnp.where`` at run time. ``init`` and ``update`` thus
  build the same state whether the value is concrete or traced;
* scalar arithmetic on hyperparameters runs in the hyperparameter's own dtype (torch: Python
  doubles) and is cast to each parameter's dtype where it meets the parameter (``_leaf``), so a
  float64 array never promotes float32 parameters.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

Schedule = Callable[[jax.Array], jax.Array]
Hyper = float | jax.Array
ScalarOrSchedule = float | jax.Array | Schedule
Tx = optax.GradientTransformation


# ----------------------------------------------------------------------------------------------
# hyperparameter values


def is_array(x: Any) -> bool:
    """A JAX or NumPy array (a NumPy scalar such as ``np.float32(0.1)`` counts as a number)."""
    return isinstance(x, jax.Array | np.ndarray)


def is_schedule(x: Any) -> bool:
    return callable(x) and not is_array(x)


def hparam(value: Any, name: str, *, schedule: bool = False) -> Any:
    """Normalise a hyperparameter: a Python/NumPy real stays as it is, an array of one element
    becomes a 0-d JAX array (torch: ``Tensor {name} must be 1-element`` otherwise), a callable is
    kept where a schedule is allowed."""
    if is_schedule(value):
        if schedule:
            return value
        raise TypeError(f"{name} must be a float or a 0-d array, got the callable {value!r}")
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a float, got the bool {value!r}")
    if isinstance(value, numbers.Real):
        return value
    if is_array(value):
        if np.size(value) != 1:
            raise ValueError(f"Tensor {name} must be 1-element")
        if not jnp.issubdtype(value.dtype, jnp.integer) and not jnp.issubdtype(value.dtype, jnp.floating):
            raise TypeError(f"{name} must be a real number, got an array of dtype {value.dtype}")
        return jnp.reshape(jnp.asarray(value), ())
    kinds = "a float, a 0-d array or an optax schedule" if schedule else "a float or a 0-d array"
    raise TypeError(f"{name} must be {kinds}, got {type(value).__name__}")


def concrete(x: Any) -> float | None:
    """The value of a Python number or a concrete array; None for tracers and schedules."""
    if isinstance(x, numbers.Real):
        return x
    if is_array(x) and not isinstance(x, jax.core.Tracer):
        return float(np.asarray(x))
    return None


def check(x: Any, ok: Callable[[float], bool], message: Callable[[float], str]) -> None:
    """torch's ``if not ok: raise ValueError(message)``, for Python numbers and concrete arrays."""
    value = concrete(x)
    if value is not None and not ok(value):
        raise ValueError(message(value))


def check_lr(lr: Any, *, strict: bool = False) -> Any:
    lr = hparam(lr, "lr", schedule=True)
    if strict:
        check(lr, lambda v: v > 0.0, lambda v: f"Invalid learning rate: {v}")
    else:
        check(lr, lambda v: v >= 0.0, lambda v: f"Invalid learning rate: {v}")
    return lr


def check_nonneg(value: Any, name: str, label: str, *, schedule: bool = False) -> Any:
    """``0.0 <= value`` or torch's ``ValueError(f"Invalid {label}: {value}")`` (NaN fails too)."""
    value = hparam(value, name, schedule=schedule)
    check(value, lambda v: v >= 0.0, lambda v: f"Invalid {label}: {v}")
    return value


def check_betas(betas: Any, *, schedule: bool = True) -> tuple[Any, Any]:
    """torch's ``0.0 <= beta < 1.0`` for both entries (a schedule entry is not range-checked)."""
    if isinstance(betas, str) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    out = []
    for i, beta in enumerate(betas):
        beta = hparam(beta, f"betas[{i}]", schedule=schedule)
        check(beta, lambda v: 0.0 <= v < 1.0, lambda v, i=i: f"Invalid beta parameter at index {i}: {v}")
        out.append(beta)
    return out[0], out[1]


def static_zero(x: Any) -> bool:
    """True for a Python number equal to 0: torch's ``if x != 0`` branch can be dropped at build time."""
    return isinstance(x, numbers.Real) and x == 0


def leaf(h: Any, like: jax.Array) -> Any:
    """A scalar hyperparameter expression, cast to the dtype of the parameter it meets (torch casts its
    Python-double scalars in the kernel); Python numbers stay weakly typed."""
    if isinstance(h, numbers.Real):
        return h
    return jnp.asarray(h, like.dtype)


def at(h: Any, count: jax.Array) -> Any:
    """A hyperparameter's value at a step count (schedules are called, values returned)."""
    return h(count) if is_schedule(h) else h


def zero_count() -> jax.Array:
    """A step counter in JAX's default integer dtype (int64 under jax_enable_x64).

    optax counts in int32, and e.g. ``optax.exponential_decay(...)(int32 count)`` is float32 even with
    x64 on, which would round a schedule's lr to float32 where torch uses a Python float.
    """
    return jnp.zeros([], dtype=int)


def step_float(count: jax.Array) -> jax.Array:
    """torch's step number as a float scalar in the default float dtype (a Python float in torch)."""
    return jnp.asarray(count, jnp.result_type(float))


def one_minus_pow(beta: Any, step: jax.Array) -> jax.Array:
    """torch's bias correction ``1 - beta ** step`` (a Python double in torch). In float64 the same
    expression; in float32 (x64 off) ``-expm1(step * log(beta))`` with the log taken in double for a
    Python beta, which keeps float32 from cancelling ``1 - 0.999 ** t`` to a few significant bits."""
    if step.dtype == jnp.float64:
        return 1 - beta**step
    log_beta = math.log(beta) if isinstance(beta, numbers.Real) and beta > 0 else jnp.log(beta)
    return -jnp.expm1(step * log_beta)


def float_dtype(params: Any) -> jnp.dtype:
    """The widest floating dtype among the params (torch keeps its scalar state in the default dtype)."""
    dtypes = [x.dtype for x in jax.tree.leaves(params) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.result_type(*dtypes) if dtypes else jnp.result_type(float)


def unzip(like: Any, tuples: Any, n: int) -> tuple[Any, ...]:
    """A tree (shaped like ``like``) of n-tuples -> an n-tuple of trees."""
    return jax.tree.transpose(jax.tree.structure(like), jax.tree.structure((0,) * n), tuples)


def lerp(start: jax.Array, end: jax.Array, weight: Any) -> jax.Array:
    """``torch.lerp`` with a scalar weight, in torch's CPU formula (two branches for accuracy).

    A Python weight picks its branch at build time; an array weight with ``jnp.where``.
    """
    if isinstance(weight, numbers.Real):
        if weight < 0.5:
            return start + weight * (end - start)
        return end - (end - start) * (1.0 - weight)
    low = start + leaf(weight, start) * (end - start)
    high = end - (end - start) * leaf(1.0 - weight, start)
    return jnp.where(weight < 0.5, low, high)


def py_max(a: Any, b: Any) -> Any:
    """Python's ``max(a, b)``: ``a`` unless ``b > a``."""
    return jnp.where(b > a, b, a)


def py_min(a: Any, b: Any) -> Any:
    """Python's ``min(a, b)``: ``a`` unless ``b < a``."""
    return jnp.where(b < a, b, a)


# ----------------------------------------------------------------------------------------------
# small shared transforms


class ScaleByLrState(NamedTuple):
    count: jax.Array


def scale_by_lr(lr: ScalarOrSchedule, lr_decay: Hyper = 0.0) -> Tx:
    """Multiply by ``-lr / (1 + (t - 1) * lr_decay)`` at torch step t (``lr(t - 1)`` for a schedule).

    A Python-float lr without decay is ``optax.scale_by_learning_rate``; otherwise a counter in the
    default integer dtype (see ``zero_count``) feeds the schedule, and the factor is cast to each
    update's dtype (torch: ``param.add_(grad, alpha=-lr)``).
    """
    if isinstance(lr, numbers.Real) and static_zero(lr_decay):
        return optax.scale_by_learning_rate(lr)

    def init_fn(params):
        del params
        return ScaleByLrState(zero_count())

    def update_fn(updates, state, params=None):
        del params
        factor = -at(lr, state.count)
        if not static_zero(lr_decay):
            factor = factor / (1 + state.count * lr_decay)
        out = jax.tree.map(lambda g: jnp.asarray(factor, g.dtype) * g, updates)
        return out, ScaleByLrState(optax.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


def maximize_tx(maximize: bool) -> Tx:
    """torch's ``grad = -grad`` when ``maximize``."""
    return optax.scale(-1.0) if maximize else optax.identity()


def needs_params(tx: Tx, what: str) -> Tx:
    """Wrap ``tx`` so that ``update(..., params=None)`` names the optimizer and the reason."""

    def update_fn(updates, state, params=None, **extra):
        if params is None:
            raise ValueError(f"fnnet.optim.{what} reads the parameters: call tx.update(grads, state, params)")
        return tx.update(updates, state, params, **extra) if extra else tx.update(updates, state, params)

    return optax.GradientTransformation(tx.init, update_fn)


def _add_decayed_weights(weight_decay: Hyper) -> Tx:
    """``g + wd * p`` where ``wd != 0``, ``g`` untouched where it is 0 (torch's branch, at run time)."""

    def update_fn(updates, state, params):
        out = jax.tree.map(lambda g, p: jnp.where(weight_decay != 0, g + leaf(weight_decay, g) * p, g), updates, params)
        return out, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def coupled_weight_decay(weight_decay: Hyper, what: str) -> Tx:
    """torch's ``grad = grad.add(param, alpha=weight_decay)`` (L2 added to the gradient)."""
    if static_zero(weight_decay):
        return optax.identity()
    if isinstance(weight_decay, numbers.Real):
        return needs_params(optax.add_decayed_weights(weight_decay), f"{what}(weight_decay != 0)")
    return needs_params(_add_decayed_weights(weight_decay), f"{what}(weight_decay given as an array)")


class ScheduledState(NamedTuple):
    """``count`` (default integer dtype) feeds the schedules; ``inner`` is the wrapped transform's state."""

    count: jax.Array
    inner: Any


def scheduled(factory: Callable[..., Tx], **hparams: Any) -> Tx:
    """``factory(**hparams)``, with the callable hyperparameters evaluated at each step's count.

    Like ``optax.inject_hyperparams`` (step t uses ``schedule(t - 1)``), but counting in the default
    integer dtype (see ``zero_count``: optax's int32 count rounds schedule values to float32 under
    x64) and without copying the constant hyperparameters into the state. ``factory`` must be
    array-safe: it gets concrete arrays in ``init`` and possibly traced ones in ``update``.
    """
    if not any(is_schedule(v) for v in hparams.values()):
        return factory(**hparams)

    def values(count):
        return {k: (v(count) if is_schedule(v) else v) for k, v in hparams.items()}

    def init_fn(params):
        count = zero_count()
        return ScheduledState(count, factory(**values(count)).init(params))

    def update_fn(updates, state, params=None):
        updates, inner = factory(**values(state.count)).update(updates, state.inner, params)
        return updates, ScheduledState(optax.safe_increment(state.count), inner)

    return optax.GradientTransformation(init_fn, update_fn)


def count_like(count: jax.Array, like: jax.Array) -> jax.Array:
    return count.astype(like.dtype)
