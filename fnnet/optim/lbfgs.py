"""L-BFGS as a jit-able pure step: a reproduction of ``torch.optim.LBFGS`` (torch 2.13).

``opt = lbfgs(...)``; ``state = opt.init(params)``;
``params, state, loss = opt.step(loss_fn, params, state)`` does what one
``optimizer.step(closure)`` does in torch: up to ``max_iter`` inner iterations with torch's
two-loop recursion, first step ``min(1, 1/|g|_1) * lr``, tolerance exits in torch's order,
``max_eval`` accounting, and optionally torch's ``_strong_wolfe`` line search. ``loss`` is torch's
return value: the loss at the start of the step.

Hand-written because no library has these semantics: ``optax.lbfgs`` is one iteration per update
with a zoom line search, another initial step and memory rule, and no inner loop or tolerances.

Where this differs from torch:

* the state is a pytree of fixed-size arrays (history as ring buffers of shape
  ``(history_size, n)``), so the step compiles once; the history is read oldest first, as torch's
  lists are;
* torch keeps the loss as a Python float (float64) and does part of the line-search arithmetic in
  float64 even for float32 parameters; here everything runs in the parameters' dtype. float64
  results agree with torch to ~1e-10 over 50 iterations, float32 ones to ~1e-5 relative over 10,
  except where float32 itself is ill-conditioned (a line search extrapolating from two losses
  equal to float32 resolution, where torch's float32 and float64 runs part too);
* invalid settings raise ``ValueError`` when the optimizer is built (torch raises a
  ``RuntimeError`` for an unknown ``line_search_fn`` only inside ``step``, and fails with an
  ``IndexError`` for ``history_size=0``); complex parameters are not supported.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

__all__ = ["LBFGSOptimizer", "LBFGSState", "lbfgs"]

Params = Any
LossFn = Callable[[Params], jax.Array]
Evaluate = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


class LBFGSState(NamedTuple):
    """torch's ``optimizer.state`` for LBFGS, with the history lists as ring buffers.

    ``old_dirs[(hist_start + i) % history_size]`` is torch's ``old_dirs[i]`` for
    ``i < hist_len`` (likewise ``old_stps`` and ``ro``).
    """

    func_evals: jax.Array  # int32, total closure evaluations (torch state["func_evals"])
    n_iter: jax.Array  # int32, total inner iterations (torch state["n_iter"])
    d: jax.Array  # (n,) last search direction
    t: jax.Array  # () last step length
    old_dirs: jax.Array  # (history_size, n) gradient differences y
    old_stps: jax.Array  # (history_size, n) steps s
    ro: jax.Array  # (history_size,) 1 / (y . s)
    hist_start: jax.Array  # int32, ring index of the oldest entry
    hist_len: jax.Array  # int32, number of valid entries (torch len(old_dirs))
    H_diag: jax.Array  # () scale of the initial inverse Hessian
    prev_flat_grad: jax.Array  # (n,)
    prev_loss: jax.Array  # ()


class LBFGSOptimizer(NamedTuple):
    """Two pure functions, as an optax ``GradientTransformation`` but with a closure-style step.

    ``step(loss_fn, params, state) -> (params, state, loss)``; ``loss_fn(params)`` returns a scalar.
    ``step`` is jitted with ``loss_fn`` static (pass the same function object to reuse the
    compiled code); it may also be called inside the caller's own ``jax.jit``.
    """

    init: Callable[[Params], LBFGSState]
    step: Callable[[LossFn, Params, LBFGSState], tuple[Params, LBFGSState, jax.Array]]


def _py_max(a: jax.Array, b: jax.Array) -> jax.Array:
    """Python's ``max(a, b)``: ``a`` unless ``b > a`` (NaN handling as in torch's code)."""
    return jnp.where(b > a, b, a)


def _py_min(a: jax.Array, b: jax.Array) -> jax.Array:
    """Python's ``min(a, b)``: ``a`` unless ``b < a``."""
    return jnp.where(b < a, b, a)


def _cubic_interpolate(
    x1: jax.Array,
    f1: jax.Array,
    g1: jax.Array,
    x2: jax.Array,
    f2: jax.Array,
    g2: jax.Array,
    bounds: tuple[jax.Array, jax.Array] | None = None,
) -> jax.Array:
    """torch.optim.lbfgs._cubic_interpolate: minimiser of the cubic through two points."""
    ordered = x1 <= x2
    if bounds is None:
        xmin_bound = jnp.where(ordered, x1, x2)
        xmax_bound = jnp.where(ordered, x2, x1)
    else:
        xmin_bound, xmax_bound = bounds
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    real = d2_square >= 0
    d2 = jnp.sqrt(jnp.where(real, d2_square, jnp.zeros_like(d2_square)))
    min_pos = jnp.where(
        ordered,
        x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2)),
        x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2)),
    )
    clipped = _py_min(_py_max(min_pos, xmin_bound), xmax_bound)
    return jnp.where(real, clipped, (xmin_bound + xmax_bound) / 2.0)


def _strong_wolfe(
    evaluate: Evaluate,
    x: jax.Array,
    t: jax.Array,
    d: jax.Array,
    f: jax.Array,
    g: jax.Array,
    gtd: jax.Array,
    max_ls: jax.Array,
    tolerance_change: float,
    c1: float = 1e-4,
    c2: float = 0.9,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """torch.optim.lbfgs._strong_wolfe in lax control flow -> (f_new, g_new, t, ls_func_evals).

    The bracket is two entries (a one-point bracket is stored twice); both phases are
    ``lax.while_loop``s whose conditions are torch's ``while``/``break`` tests.
    """
    d_norm = jnp.max(jnp.abs(d))
    zero = jnp.zeros_like(t)
    izero = jnp.zeros((), jnp.int32)

    def obj(step: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        f_step, g_step = evaluate(x + step * d)
        return f_step, g_step, jnp.dot(g_step, d)

    f_new, g_new, gtd_new = obj(t)
    c = {
        "t": t, "t_prev": zero, "f_prev": f, "g_prev": g, "gtd_prev": gtd,
        "f_new": f_new, "g_new": g_new, "gtd_new": gtd_new,
        "ls_iter": izero, "evals": jnp.ones((), jnp.int32), "broke": jnp.array(False),
        "done": jnp.array(False), "b": jnp.zeros((2,), t.dtype), "bf": jnp.zeros((2,), t.dtype),
        "bg": jnp.zeros((2,) + g.shape, g.dtype), "bgtd": jnp.zeros((2,), t.dtype),
    }  # fmt: skip

    # bracket phase: find an interval containing a point satisfying the Wolfe criteria
    def bracket_cond(c: dict) -> jax.Array:
        return ~c["broke"] & (c["ls_iter"] < max_ls)

    def bracket_body(c: dict) -> dict:
        armijo_fail = (c["f_new"] > f + c1 * c["t"] * gtd) | ((c["ls_iter"] > 1) & (c["f_new"] >= c["f_prev"]))
        wolfe = jnp.abs(c["gtd_new"]) <= -c2 * gtd
        ascent = c["gtd_new"] >= 0

        def set_bracket(c: dict) -> dict:
            single = ~armijo_fail & wolfe  # torch: bracket = [t], done = True
            pick = lambda one, prev: jnp.where(single, one, prev)  # noqa: E731
            return c | {
                "b": jnp.stack([pick(c["t"], c["t_prev"]), c["t"]]),
                "bf": jnp.stack([pick(c["f_new"], c["f_prev"]), c["f_new"]]),
                "bg": jnp.stack([pick(c["g_new"], c["g_prev"]), c["g_new"]]),
                "bgtd": jnp.stack([pick(c["gtd_new"], c["gtd_prev"]), c["gtd_new"]]),
                "done": single,
                "broke": jnp.array(True),
            }

        def extrapolate(c: dict) -> dict:
            min_step = c["t"] + 0.01 * (c["t"] - c["t_prev"])
            max_step = c["t"] * 10
            t_next = _cubic_interpolate(
                c["t_prev"], c["f_prev"], c["gtd_prev"], c["t"], c["f_new"], c["gtd_new"],
                bounds=(min_step, max_step),
            )  # fmt: skip
            f_next, g_next, gtd_next = obj(t_next)
            return c | {
                "t": t_next, "t_prev": c["t"], "f_prev": c["f_new"], "g_prev": c["g_new"],
                "gtd_prev": c["gtd_new"], "f_new": f_next, "g_new": g_next, "gtd_new": gtd_next,
                "ls_iter": c["ls_iter"] + 1, "evals": c["evals"] + 1,
            }  # fmt: skip

        return lax.cond(armijo_fail | wolfe | ascent, set_bracket, extrapolate, c)

    c = lax.while_loop(bracket_cond, bracket_body, c)

    # reached max number of iterations: bracket [0, t] (torch leaves bracket_gtd unset here; the
    # zoom loop below does not run in that case, so its value is never read)
    exhausted = c["ls_iter"] == max_ls
    b = jnp.where(exhausted, jnp.stack([zero, c["t"]]), c["b"])
    bf = jnp.where(exhausted, jnp.stack([f, c["f_new"]]), c["bf"])
    bg = jnp.where(exhausted, jnp.stack([g, c["g_new"]]), c["bg"])
    low = jnp.where(bf[0] <= bf[1], 0, 1).astype(jnp.int32)
    z = {
        "b": b, "bf": bf, "bg": bg, "bgtd": c["bgtd"], "low": low, "done": c["done"],
        "insuf": jnp.array(False), "ls_iter": c["ls_iter"], "evals": c["evals"],
    }  # fmt: skip

    # zoom phase: refine the bracket until a point satisfies the criteria
    def zoom_cond(z: dict) -> jax.Array:
        small = jnp.abs(z["b"][1] - z["b"][0]) * d_norm < tolerance_change
        return ~z["done"] & (z["ls_iter"] < max_ls) & ~small

    def zoom_body(z: dict) -> dict:
        b, bf, bg, bgtd, low = z["b"], z["bf"], z["bg"], z["bgtd"], z["low"]
        high = 1 - low
        t_new = _cubic_interpolate(b[0], bf[0], bgtd[0], b[1], bf[1], bgtd[1])
        b_max, b_min = _py_max(b[0], b[1]), _py_min(b[0], b[1])
        eps = 0.1 * (b_max - b_min)
        near_boundary = _py_min(b_max - t_new, t_new - b_min) < eps
        move = z["insuf"] | (t_new >= b_max) | (t_new <= b_min)
        moved = jnp.where(jnp.abs(t_new - b_max) < jnp.abs(t_new - b_min), b_max - eps, b_min + eps)
        t_new = jnp.where(near_boundary & move, moved, t_new)
        insuf = near_boundary & ~move

        f_new, g_new, gtd_new = obj(t_new)
        armijo_fail = (f_new > f + c1 * t_new * gtd) | (f_new >= bf[low])
        # Armijo fails or not lower than the lowest point: the new point replaces high.
        # Otherwise it replaces low, and unless the Wolfe conditions hold (done) the old low
        # first replaces high when the new slope points away from high.
        wolfe = jnp.abs(gtd_new) <= -c2 * gtd
        shift = ~wolfe & (gtd_new * (b[high] - b[low]) >= 0)
        pos = jnp.arange(2)
        take_new = jnp.where(armijo_fail, pos == high, pos == low)
        take_low = ~armijo_fail & shift & (pos == high)

        def update(old: jax.Array, new: jax.Array) -> jax.Array:
            shape = (2,) + (1,) * (old.ndim - 1)
            tn, tl = take_new.reshape(shape), take_low.reshape(shape)
            lift = lambda v: jnp.reshape(v, (1,) + old.shape[1:])  # noqa: E731
            return jnp.where(tn, lift(new), jnp.where(tl, lift(old[low]), old))

        bf_next = update(bf, f_new)
        low_next = jnp.where(bf_next[0] <= bf_next[1], 0, 1).astype(jnp.int32)
        return {
            "b": update(b, t_new), "bf": bf_next, "bg": update(bg, g_new),
            "bgtd": update(bgtd, gtd_new), "low": jnp.where(armijo_fail, low_next, low),
            "done": ~armijo_fail & wolfe, "insuf": insuf,
            "ls_iter": z["ls_iter"] + 1, "evals": z["evals"] + 1,
        }  # fmt: skip

    z = lax.while_loop(zoom_cond, zoom_body, z)
    low = z["low"]
    return z["bf"][low], z["bg"][low], z["b"][low], z["evals"]


def _two_loop(g: jax.Array, state: LBFGSState, history_size: int) -> jax.Array:
    """torch's two-loop recursion over the ring buffers, oldest entry first -> direction d."""
    num_old = state.hist_len

    def ring(i: jax.Array) -> jax.Array:
        return (state.hist_start + i) % history_size

    def backward(j: jax.Array, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        q, al = carry
        i = num_old - 1 - j
        k = ring(i)
        al_i = jnp.dot(state.old_stps[k], q) * state.ro[k]
        return q + (-al_i) * state.old_dirs[k], al.at[i].set(al_i)

    al0 = jnp.zeros((history_size,), g.dtype)
    q, al = lax.fori_loop(0, num_old, backward, (-g, al0))

    def forward(i: jax.Array, r: jax.Array) -> jax.Array:
        k = ring(i)
        be_i = jnp.dot(state.old_dirs[k], r) * state.ro[k]
        return r + (al[i] - be_i) * state.old_stps[k]

    return lax.fori_loop(0, num_old, forward, q * state.H_diag)


def _update_history(g: jax.Array, state: LBFGSState, history_size: int) -> LBFGSState:
    """Push (y, s, 1/ys) when ``ys > 1e-10`` (dropping the oldest when full); new H_diag."""
    y = g - state.prev_flat_grad
    s = state.d * state.t
    ys = jnp.dot(y, s)

    def push(state: LBFGSState) -> LBFGSState:
        pos = (state.hist_start + state.hist_len) % history_size
        full = state.hist_len == history_size
        return state._replace(
            old_dirs=lax.dynamic_update_index_in_dim(state.old_dirs, y, pos, 0),
            old_stps=lax.dynamic_update_index_in_dim(state.old_stps, s, pos, 0),
            ro=state.ro.at[pos].set(1.0 / ys),
            hist_start=jnp.where(full, (state.hist_start + 1) % history_size, state.hist_start),
            hist_len=jnp.where(full, state.hist_len, state.hist_len + 1),
            H_diag=ys / jnp.dot(y, y),
        )

    return lax.cond(ys > 1e-10, push, lambda st: st, state)


class _HParams(NamedTuple):
    """The numeric settings, passed to the compiled step as traced scalars so that optimizers
    differing only in these share one compilation (history_size and line_search_fn are static)."""

    lr: float
    max_iter: int
    max_eval: int
    tolerance_grad: float
    tolerance_change: float


def _flatten(params: Params) -> tuple[jax.Array, Callable[[jax.Array], Params]]:
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError("params must contain at least one array")
    for leaf in leaves:
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"lbfgs needs real floating-point params, got a leaf of dtype {dtype}")
    return ravel_pytree(params)


def _init(params: Params, history_size: int) -> LBFGSState:
    flat, _ = _flatten(params)
    n, dtype = flat.shape[0], flat.dtype
    izero = jnp.zeros((), jnp.int32)
    return LBFGSState(
        func_evals=izero, n_iter=izero,
        d=jnp.zeros((n,), dtype), t=jnp.zeros((), dtype),
        old_dirs=jnp.zeros((history_size, n), dtype),
        old_stps=jnp.zeros((history_size, n), dtype),
        ro=jnp.zeros((history_size,), dtype), hist_start=izero, hist_len=izero,
        H_diag=jnp.ones((), dtype), prev_flat_grad=jnp.zeros((n,), dtype),
        prev_loss=jnp.zeros((), dtype),
    )  # fmt: skip


def _step(
    loss_fn: LossFn,
    params: Params,
    state: LBFGSState,
    hp: _HParams,
    history_size: int,
    line_search: bool,
) -> tuple[Params, LBFGSState, jax.Array]:
    """torch ``LBFGS.step(closure)``: the inner iterations as one ``lax.while_loop``."""
    x0, unravel = _flatten(params)
    dtype = x0.dtype
    if state.d.shape != x0.shape or state.d.dtype != dtype or state.ro.shape != (history_size,):
        raise ValueError(
            f"state was built for {state.d.shape[0]} {state.d.dtype} parameters and history "
            f"{state.ro.shape[0]}, params have {x0.shape[0]} {dtype} and history_size is "
            f"{history_size}: call init(params) of this optimizer first"
        )
    value_and_grad = jax.value_and_grad(lambda flat: loss_fn(unravel(flat)))

    def evaluate(flat: jax.Array) -> tuple[jax.Array, jax.Array]:
        loss, grad = value_and_grad(flat)
        return jnp.asarray(loss, dtype), grad

    orig_loss, g0 = value_and_grad(x0)
    c = {
        "x": x0, "g": g0, "loss": jnp.asarray(orig_loss, dtype),
        "n_iter": jnp.zeros((), jnp.int32), "evals": jnp.ones((), jnp.int32),
        "stop": jnp.max(jnp.abs(g0)) <= hp.tolerance_grad,  # optimal at the start: return
        "state": state._replace(func_evals=state.func_evals + 1),
    }  # fmt: skip

    def cond(c: dict) -> jax.Array:
        return ~c["stop"] & (c["n_iter"] < hp.max_iter)

    def body(c: dict) -> dict:
        x, g, loss = c["x"], c["g"], c["loss"]
        n_iter = c["n_iter"] + 1
        st = c["state"]
        st = st._replace(n_iter=st.n_iter + 1)
        first = st.n_iter == 1

        # compute the descent direction
        def steepest(st: LBFGSState) -> LBFGSState:
            return st._replace(
                d=-g, hist_start=jnp.zeros_like(st.hist_start),
                hist_len=jnp.zeros_like(st.hist_len), H_diag=jnp.ones_like(st.H_diag),
            )  # fmt: skip

        def quasi_newton(st: LBFGSState) -> LBFGSState:
            st = _update_history(g, st, history_size)
            return st._replace(d=_two_loop(g, st, history_size))

        st = lax.cond(first, steepest, quasi_newton, st)
        d = st.d

        # step length: min(1, 1/|g|_1) * lr on the very first iteration, else lr
        inv_l1 = 1.0 / jnp.sum(jnp.abs(g))
        t = jnp.where(first, jnp.where(inv_l1 < 1.0, inv_l1, 1.0) * hp.lr, hp.lr).astype(dtype)
        gtd = jnp.dot(g, d)
        gtd_stop = gtd > -hp.tolerance_change  # directional derivative below tolerance

        def skip(_: None) -> tuple:
            return x, g, loss, t, jnp.array(False), jnp.zeros((), jnp.int32)

        def move(_: None) -> tuple:
            if line_search:
                f_new, g_new, t_new, ls_evals = _strong_wolfe(
                    evaluate, x, t, d, loss, g, gtd,
                    max_ls=hp.max_eval - c["evals"], tolerance_change=hp.tolerance_change,
                )  # fmt: skip
                opt = jnp.max(jnp.abs(g_new)) <= hp.tolerance_grad
                return x + t_new * d, g_new, f_new, t_new, opt, ls_evals
            x_new = x + t * d

            def reevaluate(_: None) -> tuple:
                f_new, g_new = evaluate(x_new)
                opt = jnp.max(jnp.abs(g_new)) <= hp.tolerance_grad
                return g_new, f_new, opt, jnp.ones((), jnp.int32)

            def last(_: None) -> tuple:  # torch skips the evaluation on the last iteration
                return g, loss, jnp.array(False), jnp.zeros((), jnp.int32)

            g_new, f_new, opt, ls_evals = lax.cond(n_iter != hp.max_iter, reevaluate, last, None)
            return x_new, g_new, f_new, t, opt, ls_evals

        x, g_next, loss_next, t, opt_cond, ls_evals = lax.cond(gtd_stop, skip, move, None)
        evals = c["evals"] + ls_evals
        st = st._replace(t=t, prev_flat_grad=g, prev_loss=loss, func_evals=st.func_evals + ls_evals)
        stop = (
            gtd_stop
            | (n_iter == hp.max_iter)
            | (evals >= hp.max_eval)
            | opt_cond
            | (jnp.max(jnp.abs(d * t)) <= hp.tolerance_change)  # lack of progress
            | (jnp.abs(loss_next - loss) < hp.tolerance_change)
        )
        return {"x": x, "g": g_next, "loss": loss_next, "n_iter": n_iter, "evals": evals,
                "stop": stop, "state": st}  # fmt: skip

    c = lax.while_loop(cond, body, c)
    return unravel(c["x"]), c["state"], orig_loss


_jitted_step = jax.jit(_step, static_argnames=("loss_fn", "history_size", "line_search"))


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"Invalid {name}: {value} (expected an int >= {minimum})")
    return int(value)


def _check_float(name: str, value: object, allow_nan: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not allow_nan and math.isnan(value):
        raise ValueError(f"Invalid {name}: nan (expected a number)")
    return float(value)


def _check_lr(lr: object) -> float | jax.Array:
    """A Python number or a 1-element array (torch: a Tensor); torch's checks for concrete values."""
    if isinstance(lr, jax.Array | np.ndarray):
        if np.size(lr) != 1:
            raise ValueError("Tensor lr must be 1-element")
        if isinstance(lr, jax.core.Tracer):  # inside the caller's jit: no value to check
            return jnp.reshape(lr, ())
        lr = float(np.asarray(lr))
    if not _check_float("lr", lr, allow_nan=True) >= 0.0:  # torch's test and message, NaN too
        raise ValueError(f"Invalid learning rate: {lr}")
    return float(lr)


def lbfgs(
    lr: float | jax.Array = 1,
    max_iter: int = 20,
    max_eval: int | None = None,
    tolerance_grad: float = 1e-7,
    tolerance_change: float = 1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
) -> LBFGSOptimizer:
    """``torch.optim.LBFGS`` with the same keywords and defaults (``max_eval = max_iter * 5 // 4``).

    One ``step(loss_fn, params, state)`` equals one torch ``optimizer.step(closure)``; the state
    (direction, step, history, previous gradient and loss, iteration and evaluation counts) carries
    across steps as torch's does. Works on any pytree of float32 or float64 arrays (Flax params
    included); the parameters are flattened with ``jax.flatten_util.ravel_pytree``.
    Memory: two ``(history_size, n)`` buffers plus a few ``(n,)`` vectors, as torch.

    ``step`` is compiled once per ``(loss_fn, history_size, line_search_fn)`` and parameter
    shapes, with ``loss_fn`` a static argument (reuse the same function object; for changing data
    call ``step`` inside your own ``jax.jit`` with a ``loss_fn`` that closes over it).

    ``lr`` may be a 1-element array (torch: a Tensor), also a traced one inside the caller's ``jit``.
    Raises torch's ``ValueError("Invalid learning rate: ...")`` for ``lr < 0`` (or NaN), and
    ``ValueError`` where torch fails only inside ``step`` or silently does nothing useful: a
    ``line_search_fn`` other than ``None``/``"strong_wolfe"`` (torch: ``RuntimeError`` in
    ``step``), ``history_size < 1`` (torch: ``IndexError``), ``max_eval < 1`` with the line
    search (torch: ``UnboundLocalError``), negative ``max_iter``/``max_eval`` and NaN tolerances;
    ``TypeError`` for non-numeric settings. ``max_iter=0`` is accepted, as in torch (a step then
    only evaluates the loss).
    """
    lr = _check_lr(lr)
    if line_search_fn not in (None, "strong_wolfe"):
        raise ValueError(f"Invalid line_search_fn: {line_search_fn!r} (expected None or 'strong_wolfe')")
    line_search = line_search_fn == "strong_wolfe"
    max_iter = _check_int("max_iter", max_iter, 0)
    if max_eval is None:
        max_eval = max_iter * 5 // 4
    # torch's line search gets max_ls = max_eval - 1 on the first iteration and fails below 0
    max_eval = _check_int("max_eval", max_eval, 1 if line_search and max_iter > 0 else 0)
    hp = _HParams(
        lr=lr,
        max_iter=max_iter,
        max_eval=max_eval,
        tolerance_grad=_check_float("tolerance_grad", tolerance_grad),
        tolerance_change=_check_float("tolerance_change", tolerance_change),
    )
    # torch fails with an IndexError on its second iteration for history_size=0
    history_size = _check_int("history_size", history_size, 1)

    def init(params: Params) -> LBFGSState:
        """The empty torch state for ``params`` (counts 0, empty history)."""
        return _init(params, history_size)

    def step(loss_fn: LossFn, params: Params, state: LBFGSState) -> tuple[Params, LBFGSState, jax.Array]:
        """One torch ``LBFGS.step(closure)``: ``-> (params, state, loss at the start)``."""
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        try:
            hash(loss_fn)
        except TypeError:  # an unhashable callable cannot be a static jit argument: trace inline
            return _step(loss_fn, params, state, hp, history_size, line_search)
        return _jitted_step(loss_fn, params, state, hp, history_size=history_size, line_search=line_search)

    return LBFGSOptimizer(init=init, step=step)
