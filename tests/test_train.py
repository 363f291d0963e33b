"""fnnet.train: the pure step, scanned epochs, evaluation, and the no-zero_grad transform."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnnet
from fnnet import train


def _mlp_problem(dtype, n=64, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(dtype)
    y = rng.integers(0, 3, size=n).astype(np.int32)
    model = fnnet.MLP((5, 3), param_dtype=jnp.float64 if dtype == np.float64 else jnp.float32)
    params = model.init(jax.random.PRNGKey(seed), jnp.asarray(x[:1]))
    return model, params, x, y


def test_accumulate_gradients_matches_torch_without_zero_grad(x64, torch):
    """optax.chain(accumulate_gradients(), adam) == torch Adam stepped with .grad never zeroed."""
    model, params, x, y = _mlp_problem(np.float64)
    loss = functools.partial(fnnet.losses.cross_entropy)
    tx = optax.chain(fnnet.accumulate_gradients(), fnnet.optim.adam(lr=0.01))
    state = fnnet.create_train_state(model, params, tx, jax.random.PRNGKey(0))
    step = jax.jit(fnnet.make_train_step(loss))
    batch = fnnet.Batch(x=jnp.asarray(x), y=jnp.asarray(y), idx=jnp.arange(x.shape[0]))
    ours = []
    for _ in range(6):
        state, metrics = step(state, batch)
        ours.append(float(metrics["loss"]))

    sd = fnnet.flax_to_torch(params, prefixes=["0", "2"])
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).double()
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sd.items()})
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    theirs = []
    for _ in range(6):
        out = torch.nn.functional.cross_entropy(net(xt), yt)
        out.backward()  # no zero_grad: .grad accumulates, as in the published tutorial loop
        opt.step()
        theirs.append(out.item())
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    final = fnnet.flax_to_torch(state.params, prefixes=["0", "2"])
    for k, v in net.state_dict().items():
        np.testing.assert_allclose(final[k], v.numpy(), rtol=1e-10, atol=1e-12)


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


def test_epoch_scan_equals_python_loop_of_steps_and_compiles_once(x64):
    model, params, x, y = _mlp_problem(np.float64, n=40)
    tx = optax.sgd(0.1)
    step = fnnet.make_train_step(fnnet.losses.cross_entropy)
    state0 = fnnet.create_train_state(model, params, tx, jax.random.PRNGKey(1))
    run_epoch = fnnet.make_epoch_fn(step, batch_size=8)
    data_key = jax.random.PRNGKey(5)
    xs, ys = jnp.asarray(x), jnp.asarray(y)
    state, metrics = run_epoch(state0, xs, ys, data_key, 0)
    state, _ = run_epoch(state, xs, ys, data_key, 1)
    assert run_epoch._cache_size() == 1  # the second epoch reused the compiled program

    manual = state0
    jstep = jax.jit(step)
    losses = []
    for epoch in range(2):
        for idx in np.asarray(train.epoch_permutation(data_key, epoch, 40, 8)):
            manual, m = jstep(manual, fnnet.Batch(x=xs[idx], y=ys[idx], idx=jnp.asarray(idx)))
            if epoch == 0:
                losses.append(float(m["loss"]))
    np.testing.assert_allclose(np.asarray(metrics["loss"]), losses, rtol=1e-12)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(manual.params)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert int(state.step) == 10


def test_evaluate_chunking_is_exact():
    model, params, x, y = _mlp_problem(np.float32, n=53)
    ev = functools.partial(
        fnnet.evaluate, model.apply, params, jnp.asarray(x), jnp.asarray(y), fnnet.losses.cross_entropy
    )
    whole, chunked = ev(chunk=1000), ev(chunk=7)  # 7 does not divide 53: the last chunk is padded
    logits = model.apply(params, jnp.asarray(x))
    np.testing.assert_array_equal(chunked["predictions"], np.argmax(np.asarray(logits), axis=1))
    np.testing.assert_array_equal(whole["predictions"], chunked["predictions"])
    np.testing.assert_allclose(
        float(chunked["loss"]), float(fnnet.losses.cross_entropy(logits, jnp.asarray(y))), rtol=1e-6
    )
    correct = int(np.sum(np.argmax(np.asarray(logits), 1) == y))
    assert round(float(chunked["accuracy"]) * 53) == correct
    np.testing.assert_array_equal(fnnet.predict(model.apply, params, jnp.asarray(x), chunk=10), whole["predictions"])


def test_dropout_keys_are_per_example(x64):
    """Splitting a batch in two gives the same per-example masks: what makes N devices equal 1.

    float64: a float32 matmul of 4 rows and of 8 rows may round differently (other BLAS blocking).
    """
    model = fnnet.MLP((16, 3), dropout_rate=0.5, param_dtype=jnp.float64)
    x = np.random.default_rng(0).normal(size=(8, 4))
    params = model.init(jax.random.PRNGKey(0), jnp.asarray(x[:1]))
    keys = train.example_keys(jax.random.PRNGKey(9), jnp.asarray(4), jnp.arange(8))
    whole = model.apply(params, jnp.asarray(x), dropout_keys=keys)
    halves = [model.apply(params, jnp.asarray(x[s]), dropout_keys=keys[s]) for s in (slice(0, 4), slice(4, 8))]
    np.testing.assert_allclose(whole, np.concatenate(halves), rtol=1e-12, atol=1e-15)
    assert not np.allclose(whole, model.apply(params, jnp.asarray(x)))  # dropout did act


@pytest.mark.parametrize("recipe_name", ["tutorial", "tutorial-fixed", "strong"])
def test_make_run_fn_equals_fit(recipe_name, x64):
    """One jit over all epochs computes what fit's per-epoch loop computes (float64, 1e-12)."""
    rng = np.random.default_rng(1)
    n = 512
    recipe = fnnet.RECIPES[recipe_name].with_overrides(epochs=3, batch_size=None if recipe_name != "strong" else 128)
    splits = fnnet.Splits(
        train_x=rng.random((n, 784)),
        train_y=rng.integers(0, 10, n).astype(np.int32),
        val_x=rng.random((64, 784)),
        val_y=rng.integers(0, 10, 64).astype(np.int32),
        test_x=rng.random((8, 784)),
        test_y=None,
        test_ids=np.arange(8),
    )
    state = fnnet.build_state(recipe, 0, n, dtype=jnp.float64)
    fitted, history = fnnet.fit(state, splits, recipe, seed=0)
    run = fnnet.make_run_fn(
        fnnet.apparel.make_step(recipe), batch_size=recipe.batch_size or n, epochs=3, loss_fn=fnnet.make_loss(recipe)
    )
    data_key = jax.random.fold_in(jax.random.PRNGKey(0), 2)
    ran, rows = run(
        state,
        jnp.asarray(splits.train_x),
        jnp.asarray(splits.train_y),
        jnp.asarray(splits.val_x),
        jnp.asarray(splits.val_y),
        data_key,
    )
    for key in ["train_loss", "val_loss", "val_accuracy"]:
        np.testing.assert_allclose(np.asarray(rows[key]), [r[key] for r in history], rtol=1e-12, err_msg=key)
    for a, b in zip(jax.tree.leaves(fitted.params), jax.tree.leaves(ran.params)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_make_evaluator_equals_evaluate_for_any_split_size(x64):
    """Fixed-size chunks (the last padded and masked) give evaluate's numbers; one compiled program."""
    model, params, x, y = _mlp_problem(np.float64, n=53)
    evaluator = fnnet.train.make_evaluator(model.apply, fnnet.losses.cross_entropy, chunk=8)
    for n in (53, 16, 5):
        ref = fnnet.evaluate(model.apply, params, jnp.asarray(x[:n]), jnp.asarray(y[:n]), fnnet.losses.cross_entropy)
        got = evaluator(params, x[:n], y[:n])
        np.testing.assert_allclose(got["loss"], float(ref["loss"]), rtol=1e-12)
        assert got["accuracy"] == np.mean(np.asarray(ref["predictions"]) == y[:n])
        np.testing.assert_array_equal(got["predictions"], ref["predictions"])
        np.testing.assert_array_equal(evaluator(params, x[:n])["predictions"], ref["predictions"])
