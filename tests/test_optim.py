"""fnnet.optim against live torch.optim 2.13.

Each case runs three problems side by side in one optimizer: a small Flax MLP regression, a 4-d
Rosenbrock function and an embedding lookup whose gradient has all-zero rows (SparseAdam's
untouched rows). Every torch optimizer here treats each parameter tensor on its own, so summing the
three losses over their disjoint parameters is the same as three separate runs, for torch and fnnet
alike. float64: final parameters after 50 steps equal torch's within 1e-10 (JAX: one jit, lax.scan
over the steps). float32: every one of the first 10 steps within 1e-5 of torch relative to the
tensor's largest entry (float32 sums of the same terms in another order, in a few ulp per step).
"""

from __future__ import annotations

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
}

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


# ---------------------------------------------------------------------------------------------
# runners


def _run_jax(txs, signs, params0, data, steps: int):
    """Run several optimizers side by side, all steps under ONE jit (lax.scan over the steps).

    Returns one (final params, final opt state, per-step params) triple per optimizer. Compiling
    dominates this file's time; LLVM's optimisation level 0 compiles ~35% faster and changes no
    floating-point semantics (XLA:CPU does not enable fast-math either way).
    """

    @partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
    def run(params, data):
        def body(carry, _):
            new = []
            for tx, sign, (p, state) in zip(txs, signs, carry, strict=True):
                grads = jax.grad(lambda q, sign=sign: sign * _jax_loss(q, data))(p)
                updates, state = tx.update(grads, state, p)
                new.append((optax.apply_updates(p, updates), state))
            return tuple(new), tuple(p for p, _ in new)

        init = tuple((params, tx.init(params)) for tx in txs)
        final, trajectories = jax.lax.scan(body, init, None, length=steps)
        return [(p, s, traj) for (p, s), traj in zip(final, trajectories, strict=True)]

    return run(jax.tree.map(jnp.asarray, params0), jax.tree.map(jnp.asarray, data))


def _run_torch(torch, name, kwargs, params0, data, steps: int, schedule=None):
    """torch.optim in plain Python; returns the per-step parameter trajectory and the optimizer."""
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
        opt.zero_grad()
        loss = _torch_loss(torch, p, tdata)
        (-loss if maximize else loss).backward()
        if name == "sparse_adam":  # torch's SparseAdam needs sparse grads: rows with any nonzero
            for tensor in tensors:
                tensor.grad = tensor.grad.to_sparse(1)
        opt.step()
        trajectory.append([tensor.detach().numpy().copy() for tensor in tensors])
    return trajectory, opt, tensors


@pytest.fixture
def torch64(torch):
    """torch with float64 default dtype (torch keeps ASGD's eta/mu in the default dtype)."""
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


# ---------------------------------------------------------------------------------------------
# agreement with torch


def _sign(kwargs) -> float:
    return -1.0 if kwargs.get("maximize", False) else 1.0


@pytest.mark.parametrize("name", list(TORCH_NAME))
def test_float64_50_steps_match_torch(name, x64, torch64):
    cases = [kwargs for n, kwargs in CASES if n == name]
    params0, data = _init(np.float64), _data(np.float64)
    txs = [getattr(optim, name)(**kwargs) for kwargs in cases]
    results = _run_jax(txs, [_sign(k) for k in cases], params0, data, 50)
    for kwargs, (final, state, _) in zip(cases, results, strict=True):
        trajectory, opt, tensors = _run_torch(torch64, name, kwargs, params0, data, 50)
        assert jax.tree.leaves(final)[0].dtype == jnp.float64
        diff = _max_diff(final, trajectory[-1])
        assert diff < 1e-10, f"{name}({kwargs}): max |fnnet - torch| = {diff}"
        moved = _max_diff(final, jax.tree.leaves(params0))
        assert moved > 1e-3, f"{name}({kwargs}) barely moved ({moved}); the case tests nothing"
        if name == "asgd":  # torch's averaged iterate state[p]["ax"]
            ax = [opt.state[t]["ax"].numpy() for t in tensors]
            assert _max_diff(state[-1].ax, ax) < 1e-10, f"asgd({kwargs}) ax"


@pytest.mark.parametrize("name", list(TORCH_NAME))
def test_float32_10_steps_match_torch(name, torch):
    cases = [kwargs for n, kwargs in CASES if n == name]
    params0, data = _init(np.float32), _data(np.float32)
    txs = [getattr(optim, name)(**kwargs) for kwargs in cases]
    results = _run_jax(txs, [_sign(k) for k in cases], params0, data, 10)
    for kwargs, (_, _, trajectory) in zip(cases, results, strict=True):
        reference, _, _ = _run_torch(torch, name, kwargs, params0, data, 10)
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


def test_sparse_adam_leaves_untouched_rows_alone(x64):
    params0, data = _init(np.float64), _data(np.float64)
    ((final, state, _),) = _run_jax([optim.sparse_adam(lr=0.05)], [1.0], params0, data, 5)
    table0, table = params0["emb"]["table"], np.asarray(final["emb"]["table"])
    untouched = [1, 3, 4]
    np.testing.assert_array_equal(table[untouched], table0[untouched])
    assert np.all(np.abs(table[[0, 2, 5]] - table0[[0, 2, 5]]) > 1e-3)
    np.testing.assert_array_equal(np.asarray(state[1].exp_avg["emb"]["table"])[untouched], 0.0)


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
]


@pytest.mark.parametrize("case", RECOMPILE_CASES, ids=_case_id)
def test_jitted_update_does_not_recompile(case):
    name, kwargs = case
    tx = getattr(optim, name)(**kwargs)
    traces = []

    @jax.jit
    def step(params, state, grads):
        traces.append(1)  # runs only while tracing
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params = jax.tree.map(jnp.asarray, _init(np.float32))
    rng = np.random.default_rng(0)
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params)
    state = tx.init(params)
    params, state = step(params, state, grads)
    params, state = step(params, state, grads)
    params, state = step(params, state, grads)
    assert len(traces) == 1
    assert step._cache_size() == 1


@pytest.mark.parametrize(
    "name,kwargs",
    [("sgd", {"weight_decay": 0.1}), ("adam", {"weight_decay": 0.1}), ("adamw", {}), ("asgd", {})],
)
def test_update_without_params_raises(name, kwargs):
    tx = getattr(optim, name)(**kwargs)
    params = {"w": jnp.ones(3)}
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
]


@pytest.mark.parametrize("name,kwargs", INVALID, ids=[_case_id(c) for c in INVALID])
def test_invalid_hyperparameters_raise_like_torch(name, kwargs, torch):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, TORCH_NAME[name])([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(optim, name)(**kwargs)
    assert str(ours.value) == str(theirs.value)


def test_defaults_match_torch_signatures(torch):
    """Every keyword torch has (minus its kernel switches) exists here with torch's default."""
    import inspect

    skipped = {"self", "params", "foreach", "fused", "capturable", "differentiable"}
    for name, torch_name in TORCH_NAME.items():
        theirs = inspect.signature(getattr(torch.optim, torch_name).__init__).parameters
        ours = inspect.signature(getattr(optim, name)).parameters
        expected = {k: v.default for k, v in theirs.items() if k not in skipped}
        assert {k: v.default for k, v in ours.items()} == expected, name
