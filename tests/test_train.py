"""fnnet.train: the pure step, the one scan, scanned epochs, the one evaluator, the no-zero_grad
transform, the whole-run function and the generic fit (torch's loop, checkpoints and resume)."""

from __future__ import annotations

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import fnnet
import fnnet.nn.functional as F
from fnnet import train

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "experiments"))
import apparel_recipes as recipes  # noqa: E402


def _mlp_problem(dtype, n=64, d=6, seed=0, dropout=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(dtype)
    y = rng.integers(0, 3, size=n).astype(np.int32)
    model = fnnet.models.mlp((d, 5, 3), dropout=dropout, dtype=dtype, rngs=nnx.Rngs(seed))
    return model, x, y


def _torch_twin(torch, model):
    """``Sequential(Linear(6, 5), ReLU(), Linear(5, 3))`` in float64 holding ``model``'s weights."""
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).double()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in fnnet.nn.state_dict(model).items()})
    return net


def _torch_losses(torch, net, x, y, steps, *, lr, zero_grad):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    losses = []
    for _ in range(steps):
        if zero_grad:
            opt.zero_grad()
        out = torch.nn.functional.cross_entropy(net(xt), yt)
        out.backward()  # without zero_grad, .grad accumulates, as in the published tutorial loop
        opt.step()
        losses.append(out.item())
    return losses


def _assert_same_weights(model, net, rtol=1e-10, atol=1e-12):
    ours = fnnet.nn.state_dict(model)
    for k, v in net.state_dict().items():
        np.testing.assert_allclose(ours[k], v.numpy(), rtol=rtol, atol=atol, err_msg=k)


def test_accumulate_gradients_matches_torch_without_zero_grad(x64, torch):
    """optax.chain(accumulate_gradients(), adam) == torch Adam stepped with .grad never zeroed."""
    model, x, y = _mlp_problem(np.float64)
    net = _torch_twin(torch, model)
    tx = optax.chain(train.accumulate_gradients(), fnnet.optim.adam(lr=0.01))
    state = fnnet.TrainState.create(model, tx, 0)
    step = jax.jit(train.make_train_step(F.cross_entropy))
    batch = train.Batch(x=jnp.asarray(x), y=jnp.asarray(y), idx=jnp.arange(x.shape[0]))
    ours = []
    for _ in range(6):
        state, metrics = step(state, batch)
        ours.append(float(metrics["loss"]))
    theirs = _torch_losses(torch, net, x, y, 6, lr=0.01, zero_grad=False)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    _assert_same_weights(state.model(), net)
    assert int(state.step) == 6


def test_train_state_create_checks_its_arguments():
    model, _, _ = _mlp_problem(np.float32)
    with pytest.raises(TypeError, match="model must be an nnx.Module"):
        fnnet.TrainState.create({"w": jnp.zeros(3)}, optax.sgd(0.1))
    with pytest.raises(TypeError, match="tx must be an optax.GradientTransformation"):
        fnnet.TrainState.create(model, 0.1)
    # an int seed and the raw key it stands for give the same state key
    a, b = (
        fnnet.TrainState.create(model, optax.sgd(0.1), 7),
        fnnet.TrainState.create(model, optax.sgd(0.1), jax.random.PRNGKey(7)),
    )
    np.testing.assert_array_equal(a.key, b.key)


def test_epoch_permutation_depends_only_on_key_and_epoch():
    key = jax.random.PRNGKey(3)
    a = train.epoch_permutation(key, 2, 100, 32)
    b = train.epoch_permutation(key, 2, 100, 32)
    c = train.epoch_permutation(key, 3, 100, 32)
    assert a.shape == (3, 32)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(np.unique(np.asarray(a))) == 96  # a permutation: no index twice
    np.testing.assert_array_equal(train.epoch_permutation(key, 0, 10, 10), np.arange(10)[None, :])


def test_scan_batches_full_batch_and_order_modes():
    """Full batch: every step sees ``Batch(x, y, arange(n))``; an order: step k gathers ``order[k]``."""
    x, y = jnp.arange(10.0), jnp.arange(10) * 2

    def step(total, batch):
        return total + jnp.sum(batch.x), (batch.idx, jnp.sum(batch.y))

    total, (idx, ys) = train.scan_batches(step, jnp.zeros(()), x, y, steps=3)
    assert float(total) == 3 * 45.0 and idx.shape == (3, 10)
    np.testing.assert_array_equal(idx[2], np.arange(10))
    order = jnp.asarray([[3, 1], [0, 9]])
    total, (idx, ys) = train.scan_batches(step, jnp.zeros(()), x, y, order)
    assert float(total) == 13.0
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_array_equal(ys, [8, 18])
    for bad in (0, None, 2.0, True):
        with pytest.raises(ValueError, match="steps must be a positive int when order is None"):
            train.scan_batches(step, jnp.zeros(()), x, y, steps=bad)


def test_epoch_scan_equals_python_loop_of_steps_and_compiles_once(x64, compile_count):
    model, x, y = _mlp_problem(np.float64, n=40)
    step = train.make_train_step(F.cross_entropy)
    state0 = fnnet.TrainState.create(model, optax.sgd(0.1), 1)
    run_epoch = train.make_epoch_fn(step, batch_size=8)
    data_key = jax.random.PRNGKey(5)
    xs, ys = jnp.asarray(x), jnp.asarray(y)
    state, metrics = run_epoch(state0, xs, ys, data_key, 0)
    compiled = compile_count()
    state, _ = run_epoch(state, xs, ys, data_key, 1)
    assert compile_count() == compiled >= 1  # the second epoch reused the compiled program

    manual = state0
    jstep = jax.jit(step)
    losses = []
    for epoch in range(2):
        for idx in np.asarray(train.epoch_permutation(data_key, epoch, 40, 8)):
            manual, m = jstep(manual, train.Batch(x=xs[idx], y=ys[idx], idx=jnp.asarray(idx)))
            if epoch == 0:
                losses.append(float(m["loss"]))
    np.testing.assert_allclose(np.asarray(metrics["loss"]), losses, rtol=1e-12)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(manual.params)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert int(state.step) == 10


def test_evaluator_chunking_is_exact():
    """Chunks of 7 (which do not divide 53: the last is padded and masked) give the unchunked numbers."""
    model, x, y = _mlp_problem(np.float32, n=53)
    logits = np.asarray(model.eval()(jnp.asarray(x)))
    whole = train.make_evaluator(F.cross_entropy, chunk=1000)(model, x, y)
    chunked = train.make_evaluator(F.cross_entropy, chunk=7)(model, x, y)
    np.testing.assert_array_equal(chunked["predictions"], np.argmax(logits, axis=1))
    np.testing.assert_array_equal(whole["predictions"], chunked["predictions"])
    # float32 per-example losses summed on the host in float64 vs torch-style mean: 1e-6
    expected_loss = float(F.cross_entropy(jnp.asarray(logits), jnp.asarray(y)))
    np.testing.assert_allclose(chunked["loss"], expected_loss, rtol=1e-6)
    np.testing.assert_allclose(whole["loss"], expected_loss, rtol=1e-6)
    assert chunked["accuracy"] == np.sum(np.argmax(logits, 1) == y) / 53
    only = train.make_evaluator(F.cross_entropy, chunk=10)(model, x)
    assert list(only) == ["predictions"]
    np.testing.assert_array_equal(only["predictions"], whole["predictions"])


def test_evaluator_any_split_size_one_program_and_a_state_or_a_module(x64):
    """Fixed-size chunks: every split size reuses one program (the loss is traced once); a module
    evaluates in eval mode like the TrainState holding it (one more program: no optimizer in it)."""
    model, x, y = _mlp_problem(np.float64, n=53, dropout=0.5)
    traces = []

    def loss_fn(out, target):
        traces.append(1)  # runs only while tracing
        return F.cross_entropy(out, target)

    evaluator = train.make_evaluator(loss_fn, chunk=8)
    state = fnnet.TrainState.create(model, optax.sgd(0.1), 0)
    results = {}
    for n in (53, 16, 5):
        logits = state.model(training=False)(jnp.asarray(x[:n]))  # eval mode: no dropout
        got = results[n] = evaluator(state, x[:n], y[:n])
        np.testing.assert_allclose(got["loss"], float(F.cross_entropy(logits, jnp.asarray(y[:n]))), rtol=1e-12)
        np.testing.assert_array_equal(got["predictions"], np.argmax(np.asarray(logits), 1))
        assert got["accuracy"] == np.mean(got["predictions"] == y[:n])
    assert len(traces) == 1
    for n in (53, 16, 5):
        of_module = evaluator(model, x[:n], y[:n])  # the module is in training mode: evaluated in eval mode
        np.testing.assert_array_equal(of_module.pop("predictions"), results[n].pop("predictions"))
        assert of_module == results[n]
    assert len(traces) == 2 and model.training


def test_dropout_keys_are_per_example(x64):
    """Splitting a batch in two gives the same per-example masks: what makes N devices equal 1.

    float64: a float32 matmul of 4 rows and of 8 rows may round differently (other BLAS blocking).
    """
    model, x, _ = _mlp_problem(np.float64, n=8, d=4, dropout=0.5)
    state = fnnet.TrainState.create(model, optax.sgd(0.1), 9)
    keys = train.example_keys(state.key, jnp.asarray(4), jnp.arange(8))
    x = jnp.asarray(x)
    whole, _ = train.forward(state, x, training=True, keys=keys)
    halves = [train.forward(state, x[s], training=True, keys=keys[s])[0] for s in (slice(0, 4), slice(4, 8))]
    np.testing.assert_allclose(whole, np.concatenate(halves), rtol=1e-12, atol=1e-15)
    assert not np.allclose(whole, train.forward(state, x, training=False)[0])  # dropout did act


def _splits(rng, n, dtype=np.float64, width=784):
    return recipes.Splits(
        train_x=rng.random((n, width)).astype(dtype),
        train_y=rng.integers(0, 10, n).astype(np.int32),
        val_x=rng.random((64, width)).astype(dtype),
        val_y=rng.integers(0, 10, 64).astype(np.int32),
        test_x=rng.random((8, width)).astype(dtype),
        test_y=None,
        test_ids=np.arange(8),
    )


@pytest.mark.parametrize("recipe_name", ["tutorial", "tutorial-fixed", "strong"])
def test_make_run_fn_equals_fit(recipe_name, x64):
    """One jit over all epochs computes what fit's per-epoch loop computes (float64, 1e-12), with each
    recipe's optimizer (accumulated gradients, schedule), step (label smoothing) and dropout, on a
    narrower MLP than the apparel one (a faster compile; the programs are the same)."""
    n = 256
    splits = _splits(np.random.default_rng(1), n, width=20)
    recipe = recipes.RECIPES[recipe_name].with_overrides(epochs=3, batch_size=None if recipe_name != "strong" else 64)
    model = fnnet.models.mlp((20, 32, 10), dropout=recipe.dropout, dtype=jnp.float64, rngs=nnx.Rngs(0))
    state = fnnet.TrainState.create(model, recipes.make_optimizer(recipe, n), 0)
    evaluator = train.make_evaluator(recipes.make_loss(recipe))

    def validate(st):
        val = evaluator(st, splits.val_x, splits.val_y)
        return {"val_loss": val["loss"], "val_accuracy": val["accuracy"]}

    fitted, history = fnnet.fit(
        state,
        None,
        (splits.train_x, splits.train_y),
        make_step=recipes.make_step(recipe),
        epochs=3,
        batch_size=recipe.batch_size,
        seed=0,
        evaluate=validate,
    )
    run = train.make_run_fn(
        recipes.make_step(recipe)(None), batch_size=recipe.batch_size or n, epochs=3, loss_fn=recipes.make_loss(recipe)
    )
    data_key = jax.random.fold_in(jax.random.PRNGKey(0), 2)  # fit's data key for seed 0
    ran, rows = run(
        state,
        jnp.asarray(splits.train_x),
        jnp.asarray(splits.train_y),
        jnp.asarray(splits.val_x),
        jnp.asarray(splits.val_y),
        data_key,
    )
    assert [r["epoch"] for r in history] == [1, 2, 3]
    for key in ["train_loss", "train_accuracy", "val_loss", "val_accuracy"]:
        np.testing.assert_allclose(np.asarray(rows[key]), [r[key] for r in history], rtol=1e-12, err_msg=key)
    for a, b in zip(jax.tree.leaves(fitted.params), jax.tree.leaves(ran.params)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------------------------- fit
def test_fit_trains_a_module_in_place_like_a_torch_loop(x64, torch):
    """``fit(model, adam, (x, y), loss_fn=..., epochs=5)`` full batch is torch's zero_grad/backward/step
    loop (float64, 1e-10); the module passed in holds the trained weights, as torch's would."""
    model, x, y = _mlp_problem(np.float64, n=32)
    net = _torch_twin(torch, model)
    seen = []
    result = fnnet.fit(
        model,
        fnnet.optim.adam(lr=0.01),
        (x, y),
        loss_fn=F.cross_entropy,
        epochs=5,
        evaluate=lambda st: {"val_loss": train.make_evaluator(F.cross_entropy)(st, x, y)["loss"]},
        on_epoch=seen.append,
    )
    theirs = _torch_losses(torch, net, x, y, 5, lr=0.01, zero_grad=True)
    assert [list(r) for r in result.history] == [["epoch", "train_loss", "train_accuracy", "val_loss"]] * 5
    np.testing.assert_allclose([r["train_loss"] for r in result.history], theirs, rtol=1e-10)
    _assert_same_weights(model, net)  # trained in place
    _assert_same_weights(result.state.model(), net)
    # evaluate ran after each epoch's step: its loss is the next step's training loss (full batch)
    np.testing.assert_allclose([r["val_loss"] for r in result.history[:-1]], theirs[1:], rtol=1e-10)
    assert [e.epoch for e in seen] == [1, 2, 3, 4, 5] and seen[2].row == result.history[2]


def test_fit_arguments_are_checked():
    model, x, y = _mlp_problem(np.float32, n=8)
    state = fnnet.TrainState.create(model, optax.sgd(0.1))
    cases = [
        (
            lambda: fnnet.fit(model, optax.sgd(0.1), (x, y), loss_fn=F.cross_entropy, epochs=0),
            "epochs must be a positive int",
        ),
        (lambda: fnnet.fit(model, optax.sgd(0.1), (x, y), epochs=1), "fit needs loss_fn"),
        (lambda: fnnet.fit(state, optax.sgd(0.1), (x, y), loss_fn=F.cross_entropy, epochs=1), "pass tx=None"),
        (
            lambda: fnnet.fit(model, optax.sgd(0.1), (x, y), loss_fn=F.cross_entropy, epochs=1, batch_size=0),
            "batch_size must be a positive int",
        ),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError, match="data must be a pair"):
        fnnet.fit(model, optax.sgd(0.1), x, loss_fn=F.cross_entropy, epochs=1)


def test_fit_stops_at_a_non_finite_loss():
    model, x, y = _mlp_problem(np.float32, n=16)
    history = []
    with pytest.raises(train.NonFiniteLossError, match="epoch 1, step 2 of 2") as info:
        # the first step's loss is finite; its 1e30-sized update makes the second one NaN
        fnnet.fit(
            model, optax.sgd(1e30), (x, y), loss_fn=F.cross_entropy, epochs=4, batch_size=8, on_epoch=history.append
        )
    assert (info.value.epoch, info.value.step, info.value.steps) == (1, 2, 2)
    assert history == []  # stopped before the epoch was reported (or saved)


def _fit(state, data, tmp, *, epochs, run_config=None, resume=False):
    return fnnet.fit(
        state,
        None,
        data,
        loss_fn=F.cross_entropy,
        epochs=epochs,
        batch_size=16,
        seed=3,
        checkpointer=fnnet.Checkpointer(tmp),
        resume=resume,
        run_config=run_config or {"run": "a"},
    )


def test_fit_resume_is_bitwise_an_uninterrupted_run(tmp_path):
    """Stop after 1 of 3 epochs, resume from the checkpoint: the same bits as 3 epochs in one go
    (dropout's keys and the data order derive from the seed, the step and the epoch only)."""
    model, x, y = _mlp_problem(np.float32, n=64, dropout=0.3)
    fresh = fnnet.TrainState.create(model, fnnet.optim.adamw(lr=0.01), 5)
    full = _fit(fresh, (x, y), tmp_path / "full", epochs=3)
    _fit(fresh, (x, y), tmp_path / "cut", epochs=1)
    resumed = _fit(fresh, (x, y), tmp_path / "cut", epochs=3, resume=True)
    assert resumed.history == full.history and len(full.history) == 3
    trees = (fnnet.checkpoint.state_tree(full.state), fnnet.checkpoint.state_tree(resumed.state))
    for a, b in zip(*map(jax.tree.leaves, trees)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(resumed.state.step) == 3 * 4

    # another run's settings are refused, naming the setting and both values
    with pytest.raises(fnnet.checkpoint.ConfigMismatchError, match="run: checkpoint 'a', this run 'b'"):
        _fit(fresh, (x, y), tmp_path / "cut", epochs=3, resume=True, run_config={"run": "b"})

    # a damaged newest checkpoint (its JSON meta: history, run_config, digest) is reported and the
    # previous one used
    (tmp_path / "full" / "3" / "meta" / "metadata").write_bytes(b"\0" * 16)
    lines = []
    epoch, _, meta = fnnet.Checkpointer(tmp_path / "full", log=lines.append).restore_latest(fresh)
    assert epoch == 2 and meta["history"] == full.history[:2]
    assert len(lines) == 1 and "is damaged" in lines[0] and "trying checkpoint 2" in lines[0]


def test_keep_freed_memory_sets_glibc_malloc_options():
    """Process-wide, so it runs in a child process; this machine's C library is glibc."""
    import subprocess

    code = "import fnnet.train as t; print(t.keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
