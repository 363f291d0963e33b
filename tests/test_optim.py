"""fnnet.optim against live torch.optim 2.13.

Each case runs three problems side by side in one optimizer: a small Flax MLP regression, a 4-d
Rosenbrock function and an embedding lookup whose gradient has all-zero rows (SparseAdam's
untouched rows). Every torch optimizer here treats each parameter tensor on its own, so summing the
three losses over their disjoint parameters is the same as three separate runs, for torch and fnnet
alike. float64: final parameters after 50 steps equal torch's within 1e-10 (JAX: one jit, lax.scan
over the steps). float32: every one of the first 10 steps within 1e-5 of torch relative to the
tensor's largest entry (float32 sums of the same terms in another order, in a few ulp per step).
Muon takes 2-D parameters only: it runs on a problem of matrices (an MLP without biases, the
embedding table and a square matrix), as do the ``optax.inject_hyperparams`` tests of all fourteen.
torch's own optimizer database (``optim_db``) adds its inputs to the float64 table.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnnet import optim

TORCH_NAME = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "asgd": "ASGD",
    "rmsprop": "RMSprop",
    "rprop": "Rprop",
    "sparse_adam": "SparseAdam",
    "nadam": "NAdam",
    "radam": "RAdam",
    "adafactor": "Adafactor",
    "muon": "Muon",
}
TABLE = [name for name in TORCH_NAME if name != "muon"]  # the names run on the mixed 1-D/2-D problem

# (fnnet name, keywords given to both fnnet and torch); ~3-5 per optimizer
CASES = [
    ("sgd", {"lr": 0.01}),
    ("sgd", {"lr": 0.01, "momentum": 0.9}),
    ("sgd", {"lr": 0.01, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1}),
    ("sgd", {"lr": 0.005, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01, "maximize": True}),
    ("adam", {}),
    ("adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "maximize": True}),
    ("adam", {"lr": 0.01, "weight_decay": 0.05, "decoupled_weight_decay": True}),
    ("adamw", {}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("adamw", {"lr": 0.01, "betas": (0.3, 0.9), "maximize": True}),
    ("adagrad", {}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.5}),
    ("adagrad", {"lr": 0.05, "eps": 1e-6, "maximize": True}),
    ("adadelta", {}),
    ("adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-5, "weight_decay": 0.1}),
    ("adadelta", {"maximize": True}),
    ("adamax", {}),
    ("adamax", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-4, "weight_decay": 0.1}),
    ("adamax", {"lr": 0.01, "maximize": True}),
    ("asgd", {}),
    ("asgd", {"lr": 0.01, "lambd": 1e-2, "alpha": 0.5, "t0": 10, "weight_decay": 0.1}),
    ("asgd", {"lr": 0.005, "t0": 0, "maximize": True}),
    ("rmsprop", {"lr": 0.001}),
    ("rmsprop", {"lr": 0.001, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.001, "centered": True, "eps": 1e-4}),
    ("rmsprop", {"lr": 0.001, "momentum": 0.9, "maximize": True}),
    ("rprop", {}),
    ("rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 1.0)}),
    ("rprop", {"maximize": True}),
    ("sparse_adam", {}),
    ("sparse_adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("sparse_adam", {"lr": 0.02, "maximize": True}),
    ("nadam", {}),
    ("nadam", {"lr": 0.01, "betas": (0.8, 0.99), "momentum_decay": 6e-3, "weight_decay": 0.1}),
    ("nadam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("nadam", {"lr": 0.005, "eps": 1e-6, "maximize": True}),
    ("radam", {}),
    ("radam", {"lr": 0.01, "weight_decay": 0.1}),
    ("radam", {"lr": 0.01, "betas": (0.8, 0.9), "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("radam", {"lr": 0.005, "eps": 1e-6, "maximize": True}),  # rho_t > 5 from step 6 on: both branches
    ("adafactor", {}),
    ("adafactor", {"lr": 0.05, "weight_decay": 0.1}),
    ("adafactor", {"beta2_decay": -0.5, "d": 1.5, "eps": (1e-3, 1e-2)}),
    ("adafactor", {"lr": 0.02, "maximize": True}),
]
MUON_CASES = [
    {"lr": 0.02},
    {"lr": 0.02, "nesterov": False, "momentum": 0.8},
    {"lr": 0.01, "adjust_lr_fn": "match_rms_adamw", "weight_decay": 0.05},
    {"lr": 0.02, "ns_steps": 6, "ns_coefficients": (3.4, -4.7, 2.0), "adjust_lr_fn": "original", "eps": 1e-6},
]

# optax schedules: torch gets group["lr"] = schedule(t) before its step t (t from 0)
SCHEDULES = {
    "exp": optax.exponential_decay(0.02, transition_steps=5, decay_rate=0.7),
    "cosine": optax.cosine_decay_schedule(0.05, decay_steps=50, alpha=0.1),
}
SCHEDULE_CASES = [
    ("sgd", {"momentum": 0.9}, "exp"),
    ("sgd", {}, "cosine"),
    ("adam", {"amsgrad": True}, "exp"),
    ("adam", {"weight_decay": 0.1, "decoupled_weight_decay": True}, "cosine"),
    ("adagrad", {"lr_decay": 0.05}, "exp"),
    ("asgd", {"t0": 5}, "cosine"),
    ("rmsprop", {"momentum": 0.5}, "exp"),
    ("nadam", {"weight_decay": 0.1}, "exp"),
    ("radam", {"weight_decay": 0.1, "decoupled_weight_decay": True}, "cosine"),
    ("adafactor", {"weight_decay": 0.1}, "cosine"),  # lr caps rho_t and scales the decay
]


def _case_id(case) -> str:
    name, kwargs = case[0], case[1]
    return name + "-" + ",".join(f"{k}={v}" for k, v in kwargs.items()) if kwargs else name


# ---------------------------------------------------------------------------------------------
# the problems


class _MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        hidden = jnp.tanh(nn.Dense(8, param_dtype=x.dtype)(x))
        return nn.Dense(1, param_dtype=x.dtype)(hidden)


_IDX = np.array([0, 2, 2, 5])  # rows 1, 3 and 4 of the table get an all-zero gradient


def _data(dtype) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    x = rng.normal(size=(16, 2))
    return {
        "x": x.astype(dtype),
        "y": (np.sin(x[:, :1]) + 0.5 * x[:, 1:]).astype(dtype),
        "target": rng.normal(size=(4, 3)).astype(dtype),
    }


def _init(dtype) -> dict:
    """Flax-layout params (nested dicts, Dense kernels (in, out)) as NumPy arrays."""
    rng = np.random.default_rng(7)
    tree = {
        "mlp": {
            "params": {
                "Dense_0": {"kernel": rng.normal(size=(2, 8)) * 0.7, "bias": rng.normal(size=(8,)) * 0.1},
                "Dense_1": {"kernel": rng.normal(size=(8, 1)) * 0.4, "bias": np.zeros(1)},
            }
        },
        "rosen": {"x": np.array([-1.2, 1.0, -0.5, 0.8])},
        "emb": {"table": rng.normal(size=(6, 3))},
    }
    return jax.tree.map(lambda a: np.asarray(a, dtype), tree)


def _rosenbrock(x):
    """sum((1 - x_i)^2 + 10 (x_{i+1} - x_i^2)^2): Rosenbrock with b = 10, so one lr fits all problems."""
    return ((1 - x[:-1]) ** 2 + 10 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def _jax_loss(params, data):
    pred = _MLP().apply(params["mlp"], data["x"])
    mlp = jnp.mean((pred - data["y"]) ** 2)
    emb = jnp.mean((jnp.tanh(params["emb"]["table"][_IDX]) - data["target"]) ** 2)
    return mlp + _rosenbrock(params["rosen"]["x"]) + emb


def _torch_loss(torch, p, data):
    layer0, layer1 = p["mlp"]["params"]["Dense_0"], p["mlp"]["params"]["Dense_1"]
    hidden = torch.tanh(data["x"] @ layer0["kernel"] + layer0["bias"].reshape(1, -1))
    pred = hidden @ layer1["kernel"] + layer1["bias"].reshape(1, -1)
    mlp = torch.mean((pred - data["y"]) ** 2)
    emb = torch.mean((torch.tanh(p["emb"]["table"][torch.as_tensor(_IDX)]) - data["target"]) ** 2)
    return mlp + _rosenbrock(p["rosen"]["x"]) + emb


def _init_2d(dtype) -> dict:
    """Matrices only (Muon's domain): an MLP without biases, the embedding table, a square matrix."""
    rng = np.random.default_rng(7)
    tree = {
        "w1": rng.normal(size=(2, 8)) * 0.7,
        "w2": rng.normal(size=(8, 1)) * 0.4,
        "emb": rng.normal(size=(6, 3)),
        "sq": rng.normal(size=(5, 5)),
    }
    return jax.tree.map(lambda a: np.asarray(a, dtype), tree)


def _jax_loss_2d(p, data):
    pred = jnp.tanh(data["x"] @ p["w1"]) @ p["w2"]
    emb = jnp.mean((jnp.tanh(p["emb"][_IDX]) - data["target"]) ** 2)
    return jnp.mean((pred - data["y"]) ** 2) + emb + jnp.sum(jnp.sin(p["sq"]) ** 2)


def _torch_loss_2d(torch, p, data):
    pred = torch.tanh(data["x"] @ p["w1"]) @ p["w2"]
    emb = torch.mean((torch.tanh(p["emb"][torch.as_tensor(_IDX)]) - data["target"]) ** 2)
    return torch.mean((pred - data["y"]) ** 2) + emb + torch.sum(torch.sin(p["sq"]) ** 2)


PROBLEMS = {"mixed": (_init, _jax_loss, _torch_loss), "2d": (_init_2d, _jax_loss_2d, _torch_loss_2d)}


def _problem(name: str) -> str:
    return "2d" if name == "muon" else "mixed"


# ---------------------------------------------------------------------------------------------
# runners


def _run_jax(txs, signs, params0, data, steps: int, loss=_jax_loss, hyper: Callable | None = None):
    """Run several optimizers side by side, all steps under ONE jit (lax.scan over the steps).

    Returns one (final params, final opt state, per-step params) triple per optimizer. ``hyper(i,
    state, t)`` may rewrite optimizer i's state before step t (``optax.inject_hyperparams``). Compiling
    dominates this file's time; LLVM's optimisation level 0 compiles ~35% faster and changes no
    floating-point semantics (XLA:CPU does not enable fast-math either way).
    """

    @partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
    def run(params, data):
        def body(carry, t):
            new = []
            for i, (tx, sign, (p, state)) in enumerate(zip(txs, signs, carry, strict=True)):
                if hyper is not None:
                    state = hyper(i, state, t)
                grads = jax.grad(lambda q, sign=sign: sign * loss(q, data))(p)
                updates, state = tx.update(grads, state, p)
                new.append((optax.apply_updates(p, updates), state))
            return tuple(new), tuple(p for p, _ in new)

        init = tuple((params, tx.init(params)) for tx in txs)
        final, trajectories = jax.lax.scan(body, init, jnp.arange(steps))
        return [(p, s, traj) for (p, s), traj in zip(final, trajectories, strict=True)]

    return run(jax.tree.map(jnp.asarray, params0), jax.tree.map(jnp.asarray, data))


def _run_torch(torch, name, kwargs, params0, data, steps: int, schedule=None, loss=_torch_loss, hyper=None):
    """torch.optim in plain Python; returns the per-step parameter trajectory, the optimizer and its
    tensors. ``hyper(t)`` -> {key: value} sets ``param_groups[0][key]`` before step t."""
    kwargs = dict(kwargs)
    maximize = kwargs.get("maximize", False)
    if schedule is not None:
        kwargs["lr"] = float(schedule(0))
    leaves, treedef = jax.tree.flatten(params0)
    tensors = [torch.tensor(leaf, requires_grad=True) for leaf in leaves]
    p = jax.tree.unflatten(treedef, tensors)
    tdata = {k: torch.as_tensor(v) for k, v in data.items()}
    opt = getattr(torch.optim, TORCH_NAME[name])(tensors, **kwargs)
    trajectory = []
    for t in range(steps):
        if schedule is not None:
            for group in opt.param_groups:
                group["lr"] = float(schedule(t))
        if hyper is not None:
            opt.param_groups[0].update(hyper(t))
        opt.zero_grad()
        value = loss(torch, p, tdata)
        (-value if maximize else value).backward()
        if name == "sparse_adam":  # torch's SparseAdam needs sparse grads: rows with any nonzero
            for tensor in tensors:
                tensor.grad = tensor.grad.to_sparse(1)
        opt.step()
        trajectory.append([tensor.detach().numpy().copy() for tensor in tensors])
    return trajectory, opt, tensors


@pytest.fixture
def torch64(torch):
    """torch with float64 default dtype (torch keeps ASGD's eta/mu and NAdam's mu_product in it)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield torch
    finally:
        torch.set_default_dtype(previous)


def _max_diff(jax_tree, torch_leaves) -> float:
    return max(
        float(np.max(np.abs(np.asarray(a) - b))) for a, b in zip(jax.tree.leaves(jax_tree), torch_leaves, strict=True)
    )


def _sign(kwargs) -> float:
    return -1.0 if kwargs.get("maximize", False) else 1.0


# ---------------------------------------------------------------------------------------------
# torch's optimizer database as extra cases

_KERNEL_SWITCHES = {"foreach", "fused", "capturable", "differentiable"}


@functools.cache
def _optim_db():
    from torch.testing._internal.common_optimizers import optim_db

    return {info.optim_cls.__name__: info for info in optim_db}


def _db_cases(torch, name: str) -> list[tuple[dict, dict]]:
    """(fnnet kwargs, torch kwargs) for optim_db's inputs of one optimizer: kernel switches dropped,
    a Tensor hyperparameter given to fnnet as a 0-d float64 NumPy array. Inputs without a Tensor whose
    every (keyword, value) some CASES row already has (e.g. ``maximize=True``) are left out: they add
    compilation time, not coverage."""
    info = _optim_db()[TORCH_NAME[name]]
    ours = [kwargs for n, kwargs in CASES if n == name] + (MUON_CASES if name == "muon" else [])
    covered = {(k, repr(v)) for kwargs in ours for k, v in kwargs.items()} | {("lr", repr(v)) for v in (0.01, 0.001)}
    pairs = []
    for inp in info.optim_inputs_func(device="cpu", dtype=torch.float64):
        theirs = {k: v for k, v in inp.kwargs.items() if k not in _KERNEL_SWITCHES}
        mine = {k: np.asarray(v.item(), np.float64) if torch.is_tensor(v) else v for k, v in theirs.items()}
        if (
            not any(torch.is_tensor(v) for v in theirs.values())
            and {(k, repr(v)) for k, v in theirs.items()} <= covered
        ):
            continue
        pairs.append((mine, theirs))
    return pairs


# ---------------------------------------------------------------------------------------------
# agreement with torch


def _check_float64(torch64, name, pairs, steps=50):
    problem = _problem(name)
    make, jax_loss, torch_loss = PROBLEMS[problem]
    params0, data = make(np.float64), _data(np.float64)
    txs = [getattr(optim, name)(**ours) for ours, _ in pairs]
    results = _run_jax(txs, [_sign(ours) for ours, _ in pairs], params0, data, steps, loss=jax_loss)
    worst = 0.0
    for (ours, theirs), (final, state, _) in zip(pairs, results, strict=True):
        trajectory, opt, tensors = _run_torch(torch64, name, theirs, params0, data, steps, loss=torch_loss)
        assert jax.tree.leaves(final)[0].dtype == jnp.float64
        diff = _max_diff(final, trajectory[-1])
        assert diff < 1e-10, f"{name}({ours}): max |fnnet - torch| = {diff}"
        moved = _max_diff(final, jax.tree.leaves(params0))
        assert moved > 1e-3, f"{name}({ours}) barely moved ({moved}); the case tests nothing"
        if name == "asgd":  # torch's averaged iterate state[p]["ax"]
            ax = [opt.state[t]["ax"].numpy() for t in tensors]
            assert _max_diff(state[-1].ax, ax) < 1e-10, f"asgd({ours}) ax"
        worst = max(worst, diff)
    return worst


@pytest.mark.parametrize("name", list(TORCH_NAME))
def test_float64_50_steps_match_torch(name, x64, torch64):
    """CASES (or MUON_CASES) and torch's optim_db inputs, 50 steps, final parameters within 1e-10."""
    cases = [kwargs for n, kwargs in CASES if n == name] + (MUON_CASES if name == "muon" else [])
    _check_float64(torch64, name, [(kwargs, kwargs) for kwargs in cases] + _db_cases(torch64, name))


@pytest.mark.parametrize("name", list(TORCH_NAME))
def test_float32_10_steps_match_torch(name, torch):
    cases = [kwargs for n, kwargs in CASES if n == name] + (MUON_CASES[:2] if name == "muon" else [])
    make, jax_loss, torch_loss = PROBLEMS[_problem(name)]
    params0, data = make(np.float32), _data(np.float32)
    txs = [getattr(optim, name)(**kwargs) for kwargs in cases]
    results = _run_jax(txs, [_sign(k) for k in cases], params0, data, 10, loss=jax_loss)
    for kwargs, (_, _, trajectory) in zip(cases, results, strict=True):
        reference, _, _ = _run_torch(torch, name, kwargs, params0, data, 10, loss=torch_loss)
        for step, torch_leaves in enumerate(reference):
            for ours, theirs in zip(jax.tree.leaves(trajectory), torch_leaves, strict=True):
                assert ours.dtype == jnp.float32
                scale = float(np.max(np.abs(theirs)))
                np.testing.assert_allclose(
                    np.asarray(ours[step]),
                    theirs,
                    rtol=1e-5,
                    atol=1e-5 * scale,
                    err_msg=f"{name}({kwargs}) step {step}",
                )


def test_schedule_lr_matches_torch(x64, torch64):
    params0, data = _init(np.float64), _data(np.float64)
    txs = [getattr(optim, n)(lr=SCHEDULES[s], **kw) for n, kw, s in SCHEDULE_CASES]
    results = _run_jax(txs, [1.0] * len(txs), params0, data, 50)
    for (name, kwargs, schedule_name), (final, _, _) in zip(SCHEDULE_CASES, results, strict=True):
        schedule = SCHEDULES[schedule_name]
        trajectory, _, _ = _run_torch(torch64, name, kwargs, params0, data, 50, schedule=schedule)
        diff = _max_diff(final, trajectory[-1])
        assert diff < 1e-10, f"{name}({kwargs}, lr={schedule_name}): {diff}"
        # the schedule mattered: torch with a constant lr = schedule(0) ends elsewhere
        constant, _, _ = _run_torch(torch64, name, {"lr": float(schedule(0))} | kwargs, params0, data, 50)
        assert _max_diff(final, constant[-1]) > 1e-4, f"{name} {schedule_name}"


def test_adafactor_factors_every_tensor_of_two_or_more_dims(x64, torch64):
    """0-d, 1-d (unfactored), 2-d and 3-d (factored over the last two dims) parameters, 50 steps."""
    rng = np.random.default_rng(3)
    params0 = {
        "s": np.asarray(0.7),
        "v": rng.normal(size=(5,)),
        "m": rng.normal(size=(4, 3)),
        "t": rng.normal(size=(2, 3, 4)),
    }
    target = jax.tree.map(lambda a: np.cos(3 * a), params0)

    def jax_loss(p, data):
        del data
        return sum(jnp.sum((jnp.tanh(p[k]) - target[k]) ** 2) for k in p)

    def torch_loss(torch, p, data):
        del data
        return sum(torch.sum((torch.tanh(p[k]) - torch.as_tensor(target[k])) ** 2) for k in p)

    cases = [{}, {"lr": 0.05, "weight_decay": 0.1, "eps": (1e-4, 1e-3)}]
    results = _run_jax([optim.adafactor(**c) for c in cases], [1.0, 1.0], params0, {}, 50, loss=jax_loss)
    for kwargs, (final, _, _) in zip(cases, results, strict=True):
        trajectory, _, _ = _run_torch(torch64, "adafactor", kwargs, params0, {}, 50, loss=torch_loss)
        assert _max_diff(final, trajectory[-1]) < 1e-10, kwargs
        assert _max_diff(final, jax.tree.leaves(params0)) > 1e-2
    inner = results[0][1][-1]  # the factored state: a row and a column factor for "m" and "t"
    assert inner.row_var["t"].shape == (2, 3, 1) and inner.col_var["t"].shape == (2, 1, 4)
    assert inner.variance["v"].shape == (5,) and inner.row_var["v"].shape == ()


def test_sparse_adam_leaves_untouched_rows_alone(x64):
    params0, data = _init(np.float64), _data(np.float64)
    ((final, state, _),) = _run_jax([optim.sparse_adam(lr=0.05)], [1.0], params0, data, 5)
    table0, table = params0["emb"]["table"], np.asarray(final["emb"]["table"])
    untouched = [1, 3, 4]
    np.testing.assert_array_equal(table[untouched], table0[untouched])
    assert np.all(np.abs(table[[0, 2, 5]] - table0[[0, 2, 5]]) > 1e-3)
    np.testing.assert_array_equal(np.asarray(state[1].exp_avg["emb"]["table"])[untouched], 0.0)


# ---------------------------------------------------------------------------------------------
# array hyperparameters, optax.inject_hyperparams

# (name, constructor keywords for inject_hyperparams (floats become its arrays), {key: {step: value}}):
# torch sets param_groups[0][key] = value before that step; fnnet sets opt_state.hyperparams[key].
INJECT_CASES = [
    ("sgd", {"lr": 0.02, "momentum": 0.0}, {"lr": {15: 0.005, 30: 0.03}, "momentum": {10: 0.9, 35: 0.0}}),
    ("sgd", {"lr": 0.02, "momentum": 0.5, "dampening": 0.2, "weight_decay": 0.0}, {"weight_decay": {12: 0.1}}),
    ("adam", {"lr": 0.01}, {"lr": {15: 0.002, 30: 0.02}, "weight_decay": {20: 0.1}}),
    ("adamw", {"lr": 0.01, "amsgrad": True}, {"lr": {15: 0.002, 30: 0.02}, "weight_decay": {25: 0.3}}),
    ("adagrad", {"lr": 0.05}, {"lr": {15: 0.01}, "lr_decay": {20: 0.05}}),
    ("adadelta", {"lr": 0.5}, {"lr": {15: 0.1}, "rho": {25: 0.8}}),
    ("adamax", {"lr": 0.01}, {"lr": {15: 0.002, 30: 0.02}}),
    ("asgd", {"lr": 0.01, "t0": 5.0}, {"lr": {15: 0.03}, "lambd": {20: 0.01}}),
    # torch creates RMSprop's buffer only if momentum > 0 at the first step (else a KeyError later)
    ("rmsprop", {"lr": 0.002, "momentum": 0.1, "centered": True}, {"lr": {15: 0.0005}, "momentum": {20: 0.5, 30: 0.0}}),
    ("rprop", {"lr": 0.01}, {"lr": {15: 0.1}}),  # read once, at init: a later lr changes nothing, in both
    ("sparse_adam", {"lr": 0.01}, {"lr": {15: 0.002, 30: 0.02}, "eps": {20: 1e-4}}),
    ("nadam", {"lr": 0.01}, {"lr": {15: 0.002}, "momentum_decay": {20: 0.01}}),
    ("radam", {"lr": 0.01, "decoupled_weight_decay": True}, {"lr": {15: 0.002}, "weight_decay": {20: 0.1}}),
    ("adafactor", {"lr": 0.01}, {"lr": {15: 0.002, 30: 0.05}, "d": {20: 2.0}}),
    ("muon", {"lr": 0.02}, {"lr": {15: 0.005}, "momentum": {20: 0.8}, "weight_decay": {30: 0.0}}),
]


def _inject(name: str):
    """``optax.inject_hyperparams`` of an optimizer (Muon's ``ns_steps`` unrolls a loop: static)."""
    static = ("ns_steps",) if name == "muon" else ()
    return optax.inject_hyperparams(getattr(optim, name), static_args=static)


def _values_at(changes: dict[int, float], initial: float, steps: int) -> np.ndarray:
    values, current = [], initial
    for t in range(steps):
        current = changes.get(t, current)
        values.append(current)
    return np.asarray(values)


def test_inject_hyperparams_changed_mid_run_match_torch(x64, torch64):
    """Every optimizer under optax.inject_hyperparams, its lr (and another hyperparameter) changed
    between steps inside one jit (traced hyperparameters), against torch changing param_groups."""
    steps = 40
    params0, data = _init_2d(np.float64), _data(np.float64)
    txs, tables = [], []
    for name, kwargs, changes in INJECT_CASES:
        tx = _inject(name)(**kwargs)
        initial = tx.init(jax.tree.map(jnp.asarray, params0)).hyperparams
        txs.append(tx)
        tables.append({k: _values_at(c, float(initial[k]), steps) for k, c in changes.items()})

    def hyper(i, state, t):
        hp = dict(state.hyperparams)
        for key, values in tables[i].items():
            hp[key] = jnp.asarray(values)[t]
        return state._replace(hyperparams=hp)

    results = _run_jax(txs, [1.0] * len(txs), params0, data, steps, loss=_jax_loss_2d, hyper=hyper)
    for (name, kwargs, changes), table, (final, _, _) in zip(INJECT_CASES, tables, results, strict=True):

        def torch_hyper(t, table=table):
            return {k: float(v[t]) for k, v in table.items()}

        trajectory, _, _ = _run_torch(
            torch64, name, kwargs, params0, data, steps, loss=_torch_loss_2d, hyper=torch_hyper
        )
        diff = _max_diff(final, trajectory[-1])
        assert diff < 1e-10, f"{name}({kwargs}) with {changes}: {diff}"
        if name != "rprop":  # the changes mattered: torch without them ends elsewhere
            plain, _, _ = _run_torch(torch64, name, kwargs, params0, data, steps, loss=_torch_loss_2d)
            assert _max_diff(final, plain[-1]) > 1e-6, f"{name}: the changes changed nothing"


def test_inject_hyperparams_keeps_its_defaults(x64, torch64):
    """``inject_hyperparams(optimizer)()`` (every numeric default injected as an array, concrete in
    ``init``, traced in the jitted ``update``) trains as torch's optimizer with its defaults, for every
    optimizer on the mixed 1-D/2-D problem (Muon's injected run is checked on the 2-D one above)."""
    params0, data = _init(np.float64), _data(np.float64)
    results = _run_jax([_inject(name)() for name in TABLE], [1.0] * len(TABLE), params0, data, 10)
    for name, (final, _, _) in zip(TABLE, results, strict=True):
        trajectory, _, _ = _run_torch(torch64, name, {}, params0, data, 10)
        assert _max_diff(final, trajectory[-1]) < 1e-10, name
        assert _max_diff(final, jax.tree.leaves(params0)) > 1e-5, name


def test_array_hyperparameters_validate_concrete_not_traced():
    """A concrete invalid array raises torch's ValueError; a traced one (inside jit) is not checked."""
    with pytest.raises(ValueError, match="Invalid learning rate: -0.1"):
        optim.adam(lr=jnp.asarray(-0.1))
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.5"):
        optim.nadam(betas=(np.asarray(1.5), 0.9))
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        optim.sgd(lr=np.array([0.1, 0.2]))
    params = {"w": jnp.ones((2, 2))}

    @jax.jit
    def step(lr, momentum):
        tx = optim.sgd(lr=lr, momentum=momentum, nesterov=True)
        updates, _ = tx.update(params, tx.init(params), params)
        return updates

    np.testing.assert_allclose(step(jnp.asarray(0.5), jnp.asarray(0.9))["w"], -0.5 * 1.9 * np.ones((2, 2)), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# compilation, params and validation

RECOMPILE_CASES = [
    ("sgd", {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.1}),
    ("adam", {"amsgrad": True, "weight_decay": 0.1}),
    ("adamw", {}),
    ("adagrad", {"lr_decay": 0.1}),
    ("adadelta", {"weight_decay": 0.1}),
    ("adamax", {}),
    ("asgd", {"lr": SCHEDULES["exp"]}),
    ("rmsprop", {"momentum": 0.9, "centered": True}),
    ("rprop", {}),
    ("sparse_adam", {"lr": SCHEDULES["cosine"]}),
    ("nadam", {"weight_decay": 0.1}),
    ("radam", {"lr": SCHEDULES["cosine"]}),
    ("adafactor", {}),
]


def test_jitted_update_does_not_recompile(compile_count):
    """One jitted step of every RECOMPILE_CASES optimizer side by side: traced once, cached once."""
    txs = [getattr(optim, name)(**kwargs) for name, kwargs in RECOMPILE_CASES]
    traces = []

    @jax.jit
    def step(params, states, grads):
        traces.append(1)  # runs only while tracing
        out = []
        for tx, p, state in zip(txs, params, states, strict=True):
            updates, state = tx.update(grads, state, p)
            out.append((optax.apply_updates(p, updates), state))
        return tuple(p for p, _ in out), tuple(s for _, s in out)

    p0 = jax.tree.map(jnp.asarray, _init(np.float32))
    rng = np.random.default_rng(0)
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), p0)
    params, states = tuple(p0 for _ in txs), tuple(tx.init(p0) for tx in txs)
    compiled = []
    for _ in range(3):
        params, states = step(params, states, grads)
        compiled.append(compile_count())
    assert len(traces) == 1
    assert compiled[0] >= 1 and compiled[1:] == [compiled[0]] * 2  # compiled by the first call only
    assert all(_max_diff(p, jax.tree.leaves(p0)) > 0 for p in params)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("sgd", {"weight_decay": 0.1}),
        ("adam", {"weight_decay": 0.1}),
        ("adamw", {}),
        ("asgd", {}),
        ("nadam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
        ("adafactor", {}),
        ("muon", {}),
    ],
)
def test_update_without_params_raises(name, kwargs):
    tx = getattr(optim, name)(**kwargs)
    params = {"w": jnp.ones((3, 2))}
    with pytest.raises(ValueError, match=f"fnnet.optim.{name}.*params"):
        tx.update(params, tx.init(params), None)


INVALID = [
    ("sgd", {"lr": -0.1}),
    ("sgd", {"momentum": -0.5}),
    ("sgd", {"weight_decay": -1.0}),
    ("sgd", {"nesterov": True}),
    ("sgd", {"momentum": 0.9, "dampening": 0.1, "nesterov": True}),
    ("adam", {"lr": -1e-3}),
    ("adam", {"eps": -1e-8}),
    ("adam", {"betas": (1.0, 0.999)}),
    ("adam", {"betas": (0.9, -0.1)}),
    ("adam", {"weight_decay": -0.1}),
    ("adamw", {"betas": (0.9, 1.0)}),
    ("adamw", {"weight_decay": -0.01}),
    ("adagrad", {"lr_decay": -0.1}),
    ("adagrad", {"initial_accumulator_value": -1.0}),
    ("adagrad", {"eps": -1.0}),
    ("adadelta", {"rho": 1.5}),
    ("adadelta", {"lr": -1.0}),
    ("adamax", {"betas": (-0.1, 0.999)}),
    ("adamax", {"weight_decay": -1.0}),
    ("asgd", {"lr": -0.01}),
    ("asgd", {"weight_decay": -0.01}),
    ("rmsprop", {"alpha": -0.9}),
    ("rmsprop", {"momentum": -0.1}),
    ("rmsprop", {"eps": -1.0}),
    ("rprop", {"etas": (1.2, 0.5)}),
    ("rprop", {"etas": (0.5, 1.0)}),
    ("rprop", {"lr": -0.01}),
    ("sparse_adam", {"lr": 0.0}),
    ("sparse_adam", {"eps": 0.0}),
    ("sparse_adam", {"betas": (0.9, 1.5)}),
    ("nadam", {"lr": -0.1}),
    ("nadam", {"momentum_decay": -0.2}),
    ("nadam", {"betas": (0.9, 1.0)}),
    ("nadam", {"weight_decay": -1.0}),
    ("radam", {"eps": -1.0}),
    ("radam", {"betas": (1.0, 0.9)}),
    ("radam", {"weight_decay": -1}),
    ("adafactor", {"lr": -0.1}),
    ("adafactor", {"beta2_decay": 0.8}),
    ("adafactor", {"eps": (-1e-30, 1e-3)}),
    ("adafactor", {"eps": (None, -1.0)}),
    ("adafactor", {"d": 0.5}),
    ("adafactor", {"weight_decay": -0.1}),
    ("muon", {"lr": -1.0}),
    ("muon", {"momentum": -0.5}),
    ("muon", {"weight_decay": -0.1}),
    ("muon", {"adjust_lr_fn": "arbitrary"}),
]


def _torch_params(torch, name):
    return [torch.zeros(2, 2, requires_grad=True)] if name == "muon" else [torch.zeros(2, requires_grad=True)]


@pytest.mark.parametrize("name,kwargs", INVALID, ids=[_case_id(c) for c in INVALID])
def test_invalid_hyperparameters_raise_like_torch(name, kwargs, torch):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, TORCH_NAME[name])(_torch_params(torch, name), **kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(optim, name)(**kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name", list(TORCH_NAME))
def test_optim_db_construction_errors(name, torch):
    """optim_db's construction ValueErrors that depend on hyperparameters only (not on params, param
    groups or kernel switches), Tensors given as NumPy arrays: the same message from fnnet."""
    errors = _optim_db()[TORCH_NAME[name]].optim_error_inputs_func(device="cpu", dtype=torch.float64)
    checked = 0
    for err in errors:
        kwargs = err.optimizer_error_input.kwargs
        if err.error_type is not ValueError or not kwargs or _KERNEL_SWITCHES & set(kwargs):
            continue
        if "betas" in kwargs and any(torch.is_tensor(b) for b in kwargs["betas"]):
            continue  # "betas must be either both floats or both Tensors": JAX arrays mix with floats
        ours = {k: np.asarray(v.tolist()) if torch.is_tensor(v) else v for k, v in kwargs.items() if k != "params"}
        with pytest.raises(ValueError, match=err.error_regex):
            getattr(optim, name)(**ours)
        checked += 1
    assert checked >= 1


def test_muon_rejects_non_2d_params_like_torch(torch):
    with pytest.raises(ValueError) as theirs:
        torch.optim.Muon([torch.zeros(3, requires_grad=True)])
    tx = optim.muon()
    with pytest.raises(ValueError) as ours:
        tx.init({"w": jnp.zeros((2, 2)), "b": jnp.zeros(3)})
    assert str(ours.value) == str(theirs.value)


def test_sparse_adam_rejects_complex_params_like_torch(torch):
    with pytest.raises(ValueError) as theirs:
        torch.optim.SparseAdam([torch.zeros(2), torch.zeros(2, dtype=torch.complex64)])
    with pytest.raises(ValueError) as ours:
        optim.sparse_adam().init([jnp.zeros(2), jnp.zeros(2, jnp.complex64)])
    assert str(ours.value) == str(theirs.value)


def test_defaults_match_torch_signatures(torch):
    """Every keyword torch has (minus its kernel switches) exists here with torch's default."""
    skipped = {"self", "params"} | _KERNEL_SWITCHES
    for name, torch_name in TORCH_NAME.items():
        theirs = inspect.signature(getattr(torch.optim, torch_name).__init__).parameters
        ours = inspect.signature(getattr(optim, name)).parameters
        expected = {k: v.default for k, v in theirs.items() if k not in skipped}
        assert {k: v.default for k, v in ours.items()} == expected, name
        assert list(ours) == list(expected), f"{name}: torch's argument order"


# ---------------------------------------------------------------------------------------------
# docs/rosetta.md, "Optimizers": one case per row (torch spelling -> case); each runs torch, fnnet
# and the optax spelling of the third column on a small problem, eagerly, in float64

ROSETTA_CASES: dict[str, Callable] = {}


def case(*spellings: str):
    def register(fn: Callable) -> Callable:
        for s in spellings:
            ROSETTA_CASES[s] = fn
        return fn

    return register


_RX = np.random.default_rng(11).normal(size=(12, 4))
_RY = np.tanh(_RX @ np.random.default_rng(12).normal(size=(4, 3)))


def _rosetta_params(shape=(4, 3)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(13)
    return {"w": rng.normal(size=shape) * 0.5, "b": rng.normal(size=(shape[1],)) * 0.1}


def _r_loss(p, t=0):
    del t
    return jnp.mean((jnp.tanh(_RX @ p["w"] + p["b"][None, :]) - _RY) ** 2)


def _r_torch_loss(torch, p, t=0):
    del t
    return torch.mean((torch.tanh(torch.as_tensor(_RX) @ p["w"] + p["b"]) - torch.as_tensor(_RY)) ** 2)


def _r_fnnet(tx, steps=20, params=None, loss=_r_loss, hyper=None):
    """``steps`` optax steps in one jit; ``hyper(state, t)`` may rewrite the state before step t."""
    p = jax.tree.map(jnp.asarray, _rosetta_params() if params is None else params)

    @partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
    def run(p):
        def body(carry, t):
            p, state = carry
            if hyper is not None:
                state = hyper(state, t)
            updates, state = tx.update(jax.grad(loss)(p, t), state, p)
            return (optax.apply_updates(p, updates), state), None

        return jax.lax.scan(body, (p, tx.init(p)), jnp.arange(steps))[0][0]

    return {k: np.asarray(v) for k, v in run(p).items()}


def _r_torch(torch, cls, kwargs, steps=20, params=None, loss=_r_torch_loss, hyper=None, sparse=False):
    p = {k: torch.tensor(v, requires_grad=True) for k, v in (_rosetta_params() if params is None else params).items()}
    opt = getattr(torch.optim, cls)(list(p.values()), **kwargs)
    for t in range(steps):
        if hyper is not None:
            opt.param_groups[0].update(hyper(t))
        opt.zero_grad()
        loss(torch, p, t).backward()
        if sparse:
            for v in p.values():
                v.grad = v.grad.to_sparse(1)
        opt.step()
    return {k: v.detach().numpy() for k, v in p.items()}


def _r_diff(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in b)


def _same(a, b, tol=1e-10):
    assert _r_diff(a, b) <= tol, _r_diff(a, b)


def _differs(a, b, tol=1e-6):
    assert _r_diff(a, b) > tol, _r_diff(a, b)


@case("torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov, maximize=)")
def _sgd_row(torch):
    theirs = _r_torch(torch, "SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01})
    _same(_r_fnnet(optim.sgd(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)), theirs)
    _differs(_r_fnnet(optax.sgd(0.1, momentum=0.9)), theirs)  # no dampening, no weight decay
    _same(_r_fnnet(optax.sgd(0.1, momentum=0.9)), _r_torch(torch, "SGD", {"lr": 0.1, "momentum": 0.9}))


@case("torch.optim.Adam(params, lr=1e-3, betas, eps, weight_decay, amsgrad, maximize=, decoupled_weight_decay=)")
def _adam_row(torch):
    theirs = _r_torch(torch, "Adam", {"lr": 0.01, "weight_decay": 0.1})
    _same(_r_fnnet(optim.adam(lr=0.01, weight_decay=0.1)), theirs)
    _differs(_r_fnnet(optax.adam(0.01)), theirs)
    _same(_r_fnnet(optax.adam(0.01)), _r_torch(torch, "Adam", {"lr": 0.01}))  # without weight decay
    amsgrad = _r_torch(torch, "Adam", {"lr": 0.01, "amsgrad": True})
    _same(_r_fnnet(optim.adam(lr=0.01, amsgrad=True)), amsgrad)
    _differs(_r_fnnet(optax.amsgrad(0.01)), amsgrad, tol=1e-8)


@case("torch.optim.AdamW(params, lr=1e-3, betas, eps, weight_decay=1e-2, amsgrad, maximize=)")
def _adamw_row(torch):
    theirs = _r_torch(torch, "AdamW", {"lr": 0.05})
    _same(_r_fnnet(optim.adamw(lr=0.05)), theirs)
    _differs(_r_fnnet(optax.adamw(0.05)), theirs)  # its weight_decay=1e-4
    _same(_r_fnnet(optax.adamw(0.05, weight_decay=1e-2)), theirs)


@case("torch.optim.Adagrad(params, lr=1e-2, lr_decay, weight_decay, initial_accumulator_value=0, eps=1e-10, maximize=)")
def _adagrad_row(torch):
    theirs = _r_torch(torch, "Adagrad", {"lr": 0.1, "lr_decay": 0.01})
    _same(_r_fnnet(optim.adagrad(lr=0.1, lr_decay=0.01)), theirs)
    _differs(_r_fnnet(optax.adagrad(0.1)), _r_torch(torch, "Adagrad", {"lr": 0.1}))


@case("torch.optim.Adadelta(params, lr=1.0, rho=0.9, eps=1e-6, weight_decay, maximize=)")
def _adadelta_row(torch):
    theirs = _r_torch(torch, "Adadelta", {"weight_decay": 0.1})
    _same(_r_fnnet(optim.adadelta(weight_decay=0.1)), theirs)
    _same(_r_fnnet(optax.adadelta(learning_rate=1.0, weight_decay=0.1)), theirs)
    ascent = _r_fnnet(optax.adadelta(weight_decay=0.1))  # learning_rate=None: no -lr, so it climbs
    assert float(_r_loss(ascent)) > float(_r_loss(_rosetta_params())) > float(_r_loss(theirs))


@case("torch.optim.Adamax(params, lr=2e-3, betas, eps, weight_decay, maximize=)")
def _adamax_row(torch):
    _same(_r_fnnet(optim.adamax(lr=0.02)), _r_torch(torch, "Adamax", {"lr": 0.02}))
    _same(_r_fnnet(optax.adamax(0.02)), _r_torch(torch, "Adamax", {"lr": 0.02}))
    theirs = _r_torch(torch, "Adamax", {"lr": 0.02, "weight_decay": 0.1})
    _same(_r_fnnet(optim.adamax(lr=0.02, weight_decay=0.1)), theirs)
    _differs(_r_fnnet(optax.adamax(0.02)), theirs)


@case("torch.optim.ASGD(params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay, maximize=)")
def _asgd_row(torch):
    theirs = _r_torch(torch, "ASGD", {"lr": 0.1, "lambd": 0.01, "t0": 5})
    _same(_r_fnnet(optim.asgd(lr=0.1, lambd=0.01, t0=5)), theirs)
    _differs(_r_fnnet(optax.sgd(0.1)), theirs)


@case("torch.optim.RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay, momentum, centered, maximize=)")
def _rmsprop_row(torch):
    theirs = _r_torch(torch, "RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True})
    _same(_r_fnnet(optim.rmsprop(lr=0.01, momentum=0.5, centered=True)), theirs)
    same = optax.rmsprop(0.01, decay=0.99, eps=1e-8, eps_in_sqrt=False, centered=True, momentum=0.5)
    _same(_r_fnnet(same), theirs)
    _differs(_r_fnnet(optax.rmsprop(0.01, centered=True, momentum=0.5)), theirs)


@case("torch.optim.Rprop(params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=)")
def _rprop_row(torch):
    theirs = _r_torch(torch, "Rprop", {})
    _same(_r_fnnet(optim.rprop()), theirs)
    _differs(_r_fnnet(optax.rprop(0.01)), theirs)
    _same(_r_fnnet(optax.rprop(0.01), steps=1), _rosetta_params(), tol=0)  # its first update is zero


def _emb_loss(p, t):
    rows = jnp.stack([t % 3, jnp.asarray(4, jnp.asarray(t).dtype)])  # rows 0-2 take turns, row 4 always
    return jnp.mean((jnp.tanh(p["w"][rows]) - 0.5) ** 2) + jnp.sum(p["b"] ** 2)


def _emb_torch_loss(torch, p, t):
    return torch.mean((torch.tanh(p["w"][torch.tensor([t % 3, 4])]) - 0.5) ** 2) + torch.sum(p["b"] ** 2)


@case("torch.optim.SparseAdam(params, lr=1e-3, betas, eps, maximize=) with nn.Embedding(sparse=True) gradients")
def _sparse_adam_row(torch):
    params = _rosetta_params((6, 3))
    theirs = _r_torch(torch, "SparseAdam", {"lr": 0.05}, params=params, loss=_emb_torch_loss, sparse=True)
    _same(_r_fnnet(optim.sparse_adam(lr=0.05), params=params, loss=_emb_loss), theirs)
    _differs(_r_fnnet(optax.adam(0.05), params=params, loss=_emb_loss), theirs)
    np.testing.assert_array_equal(theirs["w"][5], params["w"][5])  # a row no gradient touches stays


@case(
    "torch.optim.NAdam(params, lr=2e-3, betas, eps, weight_decay, momentum_decay=4e-3, decoupled_weight_decay=, "
    "maximize=)"
)
def _nadam_row(torch):
    theirs = _r_torch(torch, "NAdam", {"lr": 0.02})
    _same(_r_fnnet(optim.nadam(lr=0.02)), theirs)
    _differs(_r_fnnet(optax.nadam(0.02)), theirs)


@case("torch.optim.RAdam(params, lr=1e-3, betas, eps, weight_decay, decoupled_weight_decay=, maximize=)")
def _radam_row(torch):
    theirs = _r_torch(torch, "RAdam", {"lr": 0.02, "eps": 1e-3})
    _same(_r_fnnet(optim.radam(lr=0.02, eps=1e-3)), theirs)
    _differs(_r_fnnet(optax.radam(0.02, eps=1e-3)), theirs)


@case("torch.optim.Adafactor(params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, maximize=)")
def _adafactor_row(torch):
    theirs = _r_torch(torch, "Adafactor", {})
    _same(_r_fnnet(optim.adafactor()), theirs)
    _differs(_r_fnnet(optax.adafactor(1e-2)), theirs)


def _mat_loss(p, t=0):
    return jnp.sum(jnp.sin(p["w"] @ p["v"]) ** 2)


def _mat_torch_loss(torch, p, t=0):
    return torch.sum(torch.sin(p["w"] @ p["v"]) ** 2)


@case(
    "torch.optim.Muon(params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True, ns_coefficients, eps=1e-7, "
    "ns_steps=5, adjust_lr_fn=None)"
)
def _muon_row(torch):
    rng = np.random.default_rng(4)
    params = {"w": rng.normal(size=(5, 3)), "v": rng.normal(size=(3, 4))}
    theirs = _r_torch(torch, "Muon", {"lr": 0.02}, params=params, loss=_mat_torch_loss)
    _same(_r_fnnet(optim.muon(lr=0.02), params=params, loss=_mat_loss), theirs)
    _differs(_r_fnnet(optax.contrib.muon(0.02), params=params, loss=_mat_loss), theirs)


@case("torch.optim.LBFGS(params, lr=1, max_iter=20, ...); loss = opt.step(closure)")
def _lbfgs_row(torch):
    p = {k: torch.tensor(v, requires_grad=True) for k, v in _rosetta_params().items()}
    opt = torch.optim.LBFGS(list(p.values()), max_iter=5)

    def closure():
        opt.zero_grad()
        loss = _r_torch_loss(torch, p)
        loss.backward()
        return loss

    opt.step(closure)
    theirs = {k: v.detach().numpy() for k, v in p.items()}
    ours = optim.lbfgs(max_iter=5)
    params = jax.tree.map(jnp.asarray, _rosetta_params())
    params, _, _ = ours.step(_r_loss, params, ours.init(params))
    _same({k: np.asarray(v) for k, v in params.items()}, theirs)
    opt = optax.lbfgs()  # one update is one iteration, with its zoom line search
    start = jax.tree.map(jnp.asarray, _rosetta_params())
    value, grad = jax.value_and_grad(_r_loss)(start)
    updates, _ = opt.update(grad, opt.init(start), start, value=value, grad=grad, value_fn=_r_loss)
    _differs({k: np.asarray(v) for k, v in optax.apply_updates(start, updates).items()}, theirs)


@case("optimizer.zero_grad(); loss.backward(); optimizer.step()")
def _loop_row(torch):
    theirs = _r_torch(torch, "SGD", {"lr": 0.1})  # zero_grad each step: fresh gradients
    _same(_r_fnnet(optim.sgd(lr=0.1)), theirs)
    _same(_r_fnnet(optax.sgd(0.1)), theirs)


@case("torch.optim.Adam(params, lr=torch.tensor(1e-3))")
def _tensor_lr_row(torch):
    theirs = _r_torch(torch, "Adam", {"lr": torch.tensor(0.01), "betas": (torch.tensor(0.8), torch.tensor(0.99))})
    _same(_r_fnnet(optim.adam(lr=jnp.asarray(0.01), betas=(jnp.asarray(0.8), np.asarray(0.99)))), theirs)
    _same(_r_fnnet(optax.adam(jnp.asarray(0.01), b1=jnp.asarray(0.8), b2=0.99)), theirs)


@case('optimizer.param_groups[0]["lr"] = x')
def _param_groups_row(torch):
    lrs = [0.05] * 8 + [0.01] * 6 + [0.08] * 6

    def hyper(state, t, key="lr"):
        state.hyperparams[key] = jnp.asarray(lrs)[t]
        return state

    theirs = _r_torch(torch, "Adam", {"lr": 0.05, "weight_decay": 0.1}, hyper=lambda t: {"lr": lrs[t]})
    _same(_r_fnnet(optax.inject_hyperparams(optim.adam)(lr=0.05, weight_decay=0.1), hyper=hyper), theirs)
    without = _r_torch(torch, "Adam", {"lr": 0.05}, hyper=lambda t: {"lr": lrs[t]})
    optax_hyper = partial(hyper, key="learning_rate")
    _same(_r_fnnet(optax.inject_hyperparams(optax.adam)(learning_rate=0.05), hyper=optax_hyper), without)
    _differs(without, _r_torch(torch, "Adam", {"lr": 0.05}))  # the lr changes mattered


@pytest.mark.parametrize("spelling", sorted(ROSETTA_CASES))
def test_rosetta_row(spelling, x64, torch64):
    ROSETTA_CASES[spelling](torch64)
