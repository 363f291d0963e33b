"""fnnet.optim.lbfgs against live torch.optim.LBFGS (torch 2.13).

Each case runs the same problem from the same weights in torch and in fnnet and compares, after
every outer step, the returned loss, the iteration and evaluation counts (exactly) and the
parameters; at the end the whole optimizer state (direction, step, history in torch's order,
H_diag, previous gradient and loss).

"50 steps" for L-BFGS: one torch ``step`` already runs up to ``max_iter`` inner iterations, so the
float64 cases run 5 outer steps of ``max_iter=10`` (up to 50 iterations, and 5 steps also check
that the state carries across ``step`` calls as torch's does); float32 runs one outer step of
``max_iter=10`` (the first 10 iterations).
"""

from __future__ import annotations

import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnnet.optim.lbfgs import LBFGSOptimizer, LBFGSState, lbfgs

# --------------------------------------------------------------------------------------------
# problems: the same function in JAX (a module-level loss_fn, so cases share compilations) and
# in torch (over a list of tensors in jax.tree_util.tree_leaves order)

_DATA_RNG = np.random.default_rng(0)
_X = _DATA_RNG.normal(size=(16, 2))
_Y = np.sin(_X[:, :1]) + _X[:, 1:] ** 2


class _MLP(nn.Module):
    """2-8-1 tanh regression net (Flax linen params pytree)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = jnp.tanh(nn.Dense(8, name="hidden")(x))
        return nn.Dense(1, name="out")(h)


def _mlp_loss(params):
    dtype = params["params"]["out"]["kernel"].dtype
    x, y = jnp.asarray(_X, dtype), jnp.asarray(_Y, dtype)
    return jnp.mean((_MLP().apply(params, x) - y) ** 2)


def _mlp_torch_loss(torch, leaves):
    hidden_b, hidden_k, out_b, out_k = leaves  # tree_leaves order: hidden/{bias,kernel}, out/...
    x = torch.tensor(_X, dtype=hidden_k.dtype)
    y = torch.tensor(_Y, dtype=hidden_k.dtype)
    h = torch.tanh(x @ hidden_k + hidden_b)
    return torch.mean((h @ out_k + out_b - y) ** 2)


def _mlp_params(dtype):
    params = _MLP().init(jax.random.key(6), jnp.zeros((1, 2), jnp.float32))
    return jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a, np.float64), dtype), params)


def _rosenbrock(v):
    return (100 * (v[1:] - v[:-1] ** 2) ** 2 + (1 - v[:-1]) ** 2).sum()


def _rosen_loss(params):
    return _rosenbrock(jnp.concatenate([params["head"], params["tail"]]))


def _rosen_torch_loss(torch, leaves):
    return _rosenbrock(torch.cat(leaves))


def _rosen_params(dtype):
    # 4-d Rosenbrock (f = 70.4 here); L-BFGS runs 20-50 iterations into the local minimum near
    # (-0.78, 0.61, 0.38, 0.15), f = 3.70. From farther out (f = 494 at (-1.5, 1, 0.5, 2)) float32
    # rounding grows fast: torch float32 is 3e-5 away from torch float64 after 10 iterations.
    return {"head": jnp.asarray([-0.5, 0.5], dtype), "tail": jnp.asarray([0.8, 1.2], dtype)}


PROBLEMS = {
    "mlp": (_mlp_params, _mlp_loss, _mlp_torch_loss),
    "rosenbrock": (_rosen_params, _rosen_loss, _rosen_torch_loss),
}


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree_util.tree_leaves(tree)])


def _run_both(torch, problem, hp, dtype, steps):
    """Run torch and fnnet side by side; return per-step records and both final states."""
    make_params, loss_fn, torch_loss = PROBLEMS[problem]
    params = make_params(dtype)
    tdtype = torch.float64 if dtype == jnp.float64 else torch.float32
    tparams = [torch.tensor(np.asarray(a), dtype=tdtype, requires_grad=True) for a in jax.tree_util.tree_leaves(params)]
    topt = torch.optim.LBFGS(tparams, **hp)

    def closure():
        topt.zero_grad()
        loss = torch_loss(torch, tparams)
        loss.backward()
        return loss

    opt = lbfgs(**hp)
    state = opt.init(params)
    records = []
    for _ in range(steps):
        t_loss = float(topt.step(closure).detach())
        params, state, loss = opt.step(loss_fn, params, state)
        tstate = topt.state[tparams[0]]
        records.append({
            "loss": (float(loss), t_loss),
            "n_iter": (int(state.n_iter), tstate["n_iter"]),
            "func_evals": (int(state.func_evals), tstate["func_evals"]),
            "hist_len": (int(state.hist_len), len(tstate.get("old_dirs") or [])),
            "params": (_flat(params), _flat([p.detach().numpy() for p in tparams])),
        })  # fmt: skip
    return records, state, topt.state[tparams[0]]


def _history(state: LBFGSState, name: str) -> np.ndarray:
    """Ring buffer rows in torch's list order (oldest first)."""
    size = state.ro.shape[0]
    order = (int(state.hist_start) + np.arange(int(state.hist_len))) % size
    return np.asarray(getattr(state, name))[order]


def _assert_same(records, state, tstate, atol, rtol, state_rtol):
    """Counts exactly; losses at rtol; parameters at atol times the largest torch parameter;
    the final state at state_rtol times each quantity's largest torch value."""
    for k, rec in enumerate(records):
        for key in ("n_iter", "func_evals", "hist_len"):
            assert rec[key][0] == rec[key][1], f"step {k}: {key} {rec[key]}"
        np.testing.assert_allclose(*rec["loss"], rtol=rtol, atol=atol, err_msg=f"step {k} loss")
    ours, theirs = records[-1]["params"]
    scale = max(1.0, float(np.max(np.abs(theirs))))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=atol * scale, err_msg="params")
    if tstate.get("d") is None:  # torch never iterated: nothing else to compare
        assert int(state.n_iter) == 0
        return
    t = lambda v: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v)  # noqa: E731
    pairs = {
        "d": (state.d, tstate["d"]),
        "t": (state.t, tstate["t"]),
        "H_diag": (state.H_diag, tstate["H_diag"]),
        "prev_flat_grad": (state.prev_flat_grad, tstate["prev_flat_grad"]),
        "prev_loss": (state.prev_loss, tstate["prev_loss"]),
        "old_dirs": (_history(state, "old_dirs"), [t(v) for v in tstate["old_dirs"]]),
        "old_stps": (_history(state, "old_stps"), [t(v) for v in tstate["old_stps"]]),
        "ro": (_history(state, "ro"), [t(v) for v in tstate["ro"]]),
    }
    for name, (a, b) in pairs.items():
        a, b = np.asarray(a), np.asarray([t(v) for v in b] if isinstance(b, list) else t(b))
        assert a.shape == b.shape, f"state {name}: shape {a.shape} != torch {b.shape}"
        b_scale = float(np.max(np.abs(b))) if b.size else 0.0
        np.testing.assert_allclose(a, b, rtol=0, atol=state_rtol * b_scale, err_msg=f"state {name}")


# --------------------------------------------------------------------------------------------
# torch fidelity

# float64, 5 outer steps of max_iter=10. Together the sets take every exit of torch's step and
# every branch of its line search (counted with an instrumented copy of torch's code when
# choosing them; the exact per-step n_iter/func_evals comparison fails if an exit fires at
# another iteration than torch's, or the line search evaluates another number of times):
CASES_64 = {
    "defaults": dict(max_iter=10),  # n_iter == max_iter; Rosenbrock: gtd > -tolerance_change
    # Rosenbrock: current_evals >= max_eval, |loss - prev_loss| < tolerance_change, gtd; zoom once
    "strong_wolfe": dict(max_iter=10, line_search_fn="strong_wolfe"),
    # a short first step: the bracket phase extrapolates 1-3 times (Armijo and ascent brackets),
    # and max_ls = max_eval - current_evals runs out there
    "wolfe_extrapolates": dict(max_iter=10, lr=0.01, line_search_fn="strong_wolfe"),
    # a long first step: zoom up to 5 times, with insufficient-progress moves, high/low shifts
    "wolfe_zooms": dict(max_iter=10, lr=100, line_search_fn="strong_wolfe"),
    # 5 entries over 44-50 iterations: the ring buffer wraps (torch pops its oldest entry)
    "history_wraps": dict(max_iter=10, history_size=5, lr=0.5),
    "max_eval": dict(max_iter=10, max_eval=6, lr=0.3),  # every step ends on current_evals
    # max_ls runs out inside the zoom phase
    "max_eval_wolfe": dict(max_iter=10, max_eval=5, line_search_fn="strong_wolfe"),
    # opt_cond inside the loop, then steps that return right after their first evaluation
    "tolerance_grad": dict(max_iter=10, tolerance_grad=1e-2),
    "tolerance_change": dict(max_iter=10, lr=1e-3, tolerance_change=1e-3),  # |d*t| small
    "tolerances_wolfe": dict(max_iter=10, tolerance_grad=1e-2, tolerance_change=1e-4, line_search_fn="strong_wolfe"),
    "max_iter_0": dict(max_iter=0),  # torch evaluates the loss and returns
}
# float32: one outer step (the first 10 iterations) of the history-100 sets (two compilations per
# problem). Not "wolfe_extrapolates": its cubic extrapolation starts from two losses equal to
# float32 resolution, and torch float32 itself lands 7e-2 (MLP) and 2e-3 (Rosenbrock) away from
# torch float64 after 10 iterations.
CASES_32 = ("defaults", "strong_wolfe", "wolfe_zooms", "max_eval", "max_eval_wolfe")


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("case", sorted(CASES_64))
def test_matches_torch_float64(x64, torch, problem, case):
    hp = CASES_64[case]
    records, state, tstate = _run_both(torch, problem, hp, jnp.float64, steps=5)
    # 1e-10 as the issue asks (measured: at most 5.4e-12, history_wraps/MLP); with the line search,
    # whose cubic interpolation amplifies rounding differences, 3x the measured worst: 7.5e-11
    # (wolfe_extrapolates/MLP, parameters relative to the largest one)
    atol = 2.3e-10 if hp.get("line_search_fn") else 1e-10
    # The state holds gradients at a point near a minimum, differences of gradients and steps,
    # and ratios of those (ro, H_diag): the parameters' ~1e-12 error reaches them amplified by the
    # Hessian (~1e3 for Rosenbrock) and by cancellation (measured up to 3e-7 relative). 1e-6 still
    # tells a missing, stale or mis-ordered history entry (an O(1) difference) apart.
    _assert_same(records, state, tstate, atol=atol, rtol=1e-10, state_rtol=1e-6)


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("case", CASES_32)
def test_matches_torch_float32(torch, problem, case):
    hp = CASES_64[case]
    records, state, tstate = _run_both(torch, problem, hp, jnp.float32, steps=1)
    assert state.d.dtype == jnp.float32
    # relative to the largest parameter (norm-wise): torch keeps the loss as a Python float and
    # does part of the line search in float64, fnnet stays in float32 (measured: at most 2.2e-6)
    # state: see the float64 test; float32 cancellation leaves up to 3e-4 relative
    _assert_same(records, state, tstate, atol=1e-5, rtol=1e-5, state_rtol=1e-3)


def _optim_db_lbfgs_inputs(torch):
    from torch.testing._internal.common_optimizers import optim_db

    info = next(i for i in optim_db if i.optim_cls.__name__ == "LBFGS")
    return info.optim_inputs_func(device="cpu", dtype=torch.float64)


def test_optim_db_inputs_match_torch(x64, torch):
    """torch's optim_db inputs for LBFGS (a Tensor lr given to fnnet as a 0-d NumPy array), 3 steps of
    max_iter=10 on the MLP, at the float64 tolerances above."""
    for inp in _optim_db_lbfgs_inputs(torch):
        theirs = dict(inp.kwargs, max_iter=10)
        ours = {k: np.asarray(v.item()) if torch.is_tensor(v) else v for k, v in theirs.items()}
        make_params, loss_fn, torch_loss = PROBLEMS["mlp"]
        params = make_params(jnp.float64)
        tparams = [torch.tensor(np.asarray(a), requires_grad=True) for a in jax.tree_util.tree_leaves(params)]
        topt = torch.optim.LBFGS(tparams, **theirs)

        def closure(topt=topt, tparams=tparams, torch_loss=torch_loss):
            topt.zero_grad()
            loss = torch_loss(torch, tparams)
            loss.backward()
            return loss

        opt = lbfgs(**ours)
        state = opt.init(params)
        for _ in range(3):
            topt.step(closure)
            params, state, _ = opt.step(loss_fn, params, state)
        ours_flat, theirs_flat = _flat(params), _flat([p.detach().numpy() for p in tparams])
        atol = 2.3e-10 if theirs.get("line_search_fn") else 1e-10  # see test_matches_torch_float64
        np.testing.assert_allclose(ours_flat, theirs_flat, rtol=0, atol=atol, err_msg=inp.desc)
        assert int(state.n_iter) == topt.state[tparams[0]]["n_iter"], inp.desc


def test_lr_as_array(torch):
    """A 1-element array lr (torch: a Tensor), also traced inside the caller's jit; 2 elements raise."""
    with pytest.raises(ValueError) as ours:
        lbfgs(lr=np.array([0.1, 0.2]))
    with pytest.raises(ValueError) as theirs:
        torch.optim.LBFGS([torch.zeros(2, requires_grad=True)], lr=torch.tensor([0.1, 0.2]))
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        lbfgs(lr=jnp.asarray(-1.0))
    a, b, params = _least_squares_problem(6, jnp.float32)

    @jax.jit
    def step(lr, params):
        opt = lbfgs(lr=lr, max_iter=3)
        return opt.step(lambda p: _least_squares(p, a, b), params, opt.init(params))[0]

    got = step(jnp.asarray(0.5), params)  # the lr traced inside the caller's jit
    tw, tc = torch.zeros(6, requires_grad=True), torch.zeros(1, requires_grad=True)
    ta, tb = torch.tensor(np.asarray(a)), torch.tensor(np.asarray(b))
    topt = torch.optim.LBFGS([tc, tw], lr=torch.tensor(0.5), max_iter=3)  # tree order: c, w

    def closure():
        topt.zero_grad()
        loss = torch.mean((ta @ tw + tc - tb) ** 2)
        loss.backward()
        return loss

    topt.step(closure)
    theirs = np.concatenate([tc.detach().numpy(), tw.detach().numpy()])
    np.testing.assert_allclose(_flat(got), theirs, rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(theirs)) > 1e-2  # it moved


# --------------------------------------------------------------------------------------------
# hyperparameters

# (keywords, our exception, torch's behaviour: "init" raises the same error and message at
# construction, "init_type" the same error type; an exception class: torch accepts the settings
# and its step raises that; None: torch accepts them and steps)
INVALID = [
    (dict(lr=-1), ValueError, "init"),
    (dict(lr=float("nan")), ValueError, "init"),
    (dict(lr="0.1"), TypeError, "init_type"),
    (dict(line_search_fn="backtracking"), ValueError, RuntimeError),
    (dict(history_size=0), ValueError, IndexError),  # popping from its empty history list
    (dict(max_eval=0, line_search_fn="strong_wolfe"), ValueError, UnboundLocalError),  # max_ls -1
    (dict(max_iter=-1), ValueError, None),  # torch: a step that never iterates
    (dict(max_iter=2.5), TypeError, None),
    (dict(tolerance_grad=float("nan")), ValueError, None),
]


@pytest.mark.parametrize(("kwargs", "error", "torch_behaviour"), INVALID)
def test_invalid_hyperparameters(torch, kwargs, error, torch_behaviour):
    with pytest.raises(error) as ours:
        lbfgs(**kwargs)
    w = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    if torch_behaviour in ("init", "init_type"):
        with pytest.raises(error) as theirs:
            torch.optim.LBFGS([w], **kwargs)
        if torch_behaviour == "init":
            assert str(ours.value) == str(theirs.value)
        return
    opt = torch.optim.LBFGS([w], **kwargs)

    def closure():
        opt.zero_grad()
        loss = (w**4).sum()
        loss.backward()
        return loss

    if torch_behaviour is None:
        opt.step(closure)
    else:
        with pytest.raises(torch_behaviour):
            opt.step(closure)


def test_defaults_match_torch(torch):
    w = torch.zeros(2, requires_grad=True)
    defaults = torch.optim.LBFGS([w]).defaults
    ours = {k: p.default for k, p in inspect.signature(lbfgs).parameters.items()}
    assert isinstance(lbfgs(), LBFGSOptimizer)
    assert ours.pop("max_eval") is None and defaults.pop("max_eval") == 20 * 5 // 4
    assert ours == defaults


# --------------------------------------------------------------------------------------------
# compilation and memory


def _least_squares_problem(n: int, dtype):
    rng = np.random.default_rng(3)
    a = jnp.asarray(rng.normal(size=(32, n)) / np.sqrt(n), dtype)
    b = jnp.asarray(rng.normal(size=(32,)), dtype)
    params = {"w": jnp.zeros((n,), dtype), "c": jnp.zeros((1,), dtype)}
    return a, b, params


def _least_squares(params, a, b):
    return jnp.mean((a @ params["w"] + params["c"] - b) ** 2)


class _LeastSquaresLoss:
    """A callable with data and value equality, hence unhashable (like a plain dataclass)."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __eq__(self, other):
        return isinstance(other, _LeastSquaresLoss) and self.a is other.a and self.b is other.b

    def __call__(self, params):
        return _least_squares(params, self.a, self.b)


def test_step_does_not_recompile(compile_count):
    a, b, params = _least_squares_problem(40, jnp.float32)
    opt = lbfgs(max_iter=5, history_size=3)
    traces = []

    @jax.jit
    def train_step(params, state, a, b):
        traces.append(1)  # runs only while tracing
        return opt.step(lambda p: _least_squares(p, a, b), params, state)

    state = opt.init(params)
    params1, state, loss1 = train_step(params, state, a, b)
    a_half = a * 0.5
    compiled = compile_count()
    params2, state, loss2 = train_step(params1, state, a_half, b)  # new data, same shapes
    assert len(traces) == 1
    assert compile_count() == compiled >= 1
    assert float(loss2) == pytest.approx(float(_least_squares(params1, a * 0.5, b)), rel=1e-6)
    assert int(state.n_iter) == 10

    # the plain step (jitted inside, loss_fn static) traces loss_fn only on its first call
    calls = []

    def loss_fn(p):
        calls.append(1)
        return _least_squares(p, a, b)

    state = opt.init(params)
    params1, state1, loss1 = opt.step(loss_fn, params, state)
    traced = len(calls)
    opt.step(loss_fn, params1, state1)
    assert traced > 0 and len(calls) == traced

    # a loss_fn that cannot be a static jit argument is traced inline instead, same result
    params2, state2, loss2 = opt.step(_LeastSquaresLoss(a, b), params, state)
    assert int(state2.n_iter) == int(state1.n_iter) == 5
    assert int(state2.func_evals) == int(state1.func_evals)
    np.testing.assert_allclose(_flat(params2), _flat(params1), rtol=1e-6, atol=1e-7)
    assert float(loss2) == pytest.approx(float(loss1), rel=1e-6)  # eager vs compiled: an ulp


def test_memory_few_thousand_params(torch):
    """n = 3,000, history_size=100: the state is torch's two history matrices plus O(n), and the
    compiled step needs about one more copy of it (the loop carry), not one per iteration."""
    n = 3000
    a, b, params = _least_squares_problem(n, jnp.float32)
    loss_fn = lambda p: _least_squares(p, a, b)  # noqa: E731
    opt = lbfgs(max_iter=20, history_size=100)
    state = opt.init(params)
    history_bytes = 2 * 100 * (n + 1) * 4
    state_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(state))
    assert history_bytes <= state_bytes <= history_bytes + 16 * (n + 1) * 4
    compiled = jax.jit(lambda p, s: opt.step(loss_fn, p, s)).lower(params, state).compile()
    memory = compiled.memory_analysis()
    if memory is not None:  # backends without the analysis return None
        assert memory.temp_size_in_bytes < 1.5 * state_bytes

    new_params, state, _ = compiled(params, state)
    tw = torch.zeros(n, requires_grad=True)
    tc = torch.zeros(1, requires_grad=True)
    ta, tb = torch.tensor(np.asarray(a)), torch.tensor(np.asarray(b))
    topt = torch.optim.LBFGS([tc, tw], max_iter=20, history_size=100)  # tree order: c, w

    def closure():
        topt.zero_grad()
        loss = torch.mean((ta @ tw + tc - tb) ** 2)
        loss.backward()
        return loss

    topt.step(closure)
    assert int(state.n_iter) == topt.state[tc]["n_iter"]
    scale = float(tw.detach().abs().max())
    np.testing.assert_allclose(new_params["w"], tw.detach().numpy(), rtol=0, atol=1e-5 * scale)
