"""Compiled training: one pure ``train_step`` and whole epochs under ``lax.scan``.

The shape follows Flax's ``examples/imagenet/train.py``: ``train_step(state, batch) -> (state,
metrics)`` holds ``value_and_grad``, the optax update and ``apply_gradients`` in one jit region;
``fnnet.parallel`` wraps that *same* function for pmap / sharding (principle 2 of DESIGN.md).

An epoch is one jitted call: the data already sits on the device, the epoch's order is a
permutation drawn from ``fold_in(data_key, epoch)`` (so epoch k's order depends only on the seed and
k, which is what makes a resumed run bitwise equal to an uninterrupted one), and ``lax.scan`` runs
every step of the epoch with no Python in the loop.

Randomness inside a step (dropout, augmentation) is drawn per *example*: the key of example ``i`` at
optimizer step ``s`` is ``fold_in(fold_in(state.key, s), i)`` where ``i`` is the example's index in
the training set. One device or N devices therefore draw the same numbers for the same example.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

__all__ = [
    "TrainState",
    "accumulate_gradients",
    "create_train_state",
    "make_train_step",
    "make_epoch_fn",
    "make_run_fn",
    "epoch_permutation",
    "evaluate",
    "make_evaluator",
    "predict",
    "enable_compilation_cache",
    "Batch",
]

LossFn = Callable[[jax.Array, jax.Array], jax.Array]
AugmentFn = Callable[[jax.Array, jax.Array], jax.Array]


class TrainState(train_state.TrainState):
    """Flax's TrainState (step, params, opt_state; apply_fn and tx static) plus a base PRNG key.

    ``key`` is a raw ``uint32[2]`` key (``jax.random.PRNGKey``) so it checkpoints as a plain array.
    """

    key: jax.Array


class Batch(NamedTuple):
    """A training batch: inputs, integer labels, and each example's index in the training set."""

    x: jax.Array
    y: jax.Array
    idx: jax.Array


def create_train_state(model, params, tx: optax.GradientTransformation, key: jax.Array) -> TrainState:
    """A ``TrainState`` for a Flax module's ``apply`` (``model.apply(params, x, dropout_keys=...)``).

    ``step`` starts as an int32 array (not Flax's Python ``0``) so the first and later steps share
    one compiled program.
    """
    state = TrainState.create(apply_fn=model.apply, params=params, tx=tx, key=key)
    return state.replace(step=jnp.zeros((), jnp.int32))


def accumulate_gradients() -> optax.GradientTransformation:
    """Gradients that are never zeroed: update_t = g_1 + ... + g_t.

    This is what a torch loop without ``optimizer.zero_grad()`` feeds its optimizer, because
    ``loss.backward()`` adds into ``.grad``. The apparel tutorial's published loop has exactly this
    slip (DESIGN.md); chain this before the optimizer to reproduce it. optax has no such transform
    (``optax.MultiSteps`` accumulates and then *resets*), hence the few lines here.
    """

    def init_fn(params):
        return jax.tree.map(jnp.zeros_like, params)

    def update_fn(updates, state, params=None):
        del params
        total = jax.tree.map(jnp.add, state, updates)
        return total, total

    return optax.GradientTransformation(init_fn, update_fn)


def example_keys(key: jax.Array, step: jax.Array, idx: jax.Array) -> jax.Array:
    """Per-example raw keys ``fold_in(fold_in(key, step), idx[b])``; shape ``(batch, 2)``."""
    step_key = jax.random.fold_in(key, step)
    return jax.vmap(lambda i: jax.random.fold_in(step_key, i))(idx)


def make_train_step(
    loss_fn: LossFn,
    *,
    dropout: bool = False,
    augment: AugmentFn | None = None,
    axis_name: str | None = None,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """Build the pure step ``train_step(state, batch) -> (state, metrics)``.

    ``loss_fn(logits, labels)`` returns the mean loss of the batch (e.g.
    ``fnnet.losses.cross_entropy``). With ``axis_name`` set, the step is meant to run under
    ``pmap``/``shard_map`` over that axis: gradients and metrics are averaged with ``lax.pmean``
    (each device holds an equal share of the global batch, so the mean of means is the global mean).
    """

    def train_step(state: TrainState, batch: Batch):
        keys = example_keys(state.key, state.step, batch.idx)
        x = batch.x
        if augment is not None:
            aug_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
            x = augment(aug_keys, x)
        drop_keys = jax.vmap(lambda k: jax.random.fold_in(k, 2))(keys) if dropout else None

        def objective(params):
            if drop_keys is None:
                logits = state.apply_fn(params, x)
            else:
                logits = state.apply_fn(params, x, dropout_keys=drop_keys)
            return loss_fn(logits, batch.y), logits

        (loss, logits), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == batch.y)
        metrics = {"loss": loss, "accuracy": accuracy}
        if axis_name is not None:
            grads = jax.lax.pmean(grads, axis_name)
            metrics = jax.lax.pmean(metrics, axis_name)
        return state.apply_gradients(grads=grads), metrics

    return train_step


def scan_batches(
    step,
    carry,
    x,
    y,
    order: jax.Array | None = None,
    *,
    steps: int | None = None,
    place: Callable[[Batch], Batch] | None = None,
):
    """THE loop of fnnet: ``lax.scan`` of ``step(carry, batch) -> (carry, metrics)`` over batches.

    Every training loop in fnnet is this function with another ``step`` and placement: an epoch of
    mini-batches, a whole run, the pmap and sharding epochs, the small networks and the optimizer
    zoo (DESIGN.md principle 11).

    * ``order`` ``(steps, batch)`` int array: step ``k`` gets ``Batch(x[order[k]], y[order[k]],
      order[k])``; ``x``/``y`` are pytrees of arrays with a leading example axis (``None`` allowed).
    * ``order=None`` (full batch): each of ``steps`` steps gets the whole ``Batch(x, y, arange(n))``
      itself (no gather), as a torch loop that feeds the same tensors every iteration.
    * ``place`` maps each gathered batch before the step (the sharding path constrains it to the
      device mesh there).

    Returns ``(carry, metrics)`` with every leaf of ``metrics`` stacked along a leading ``steps`` axis.
    """
    if order is None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive int when order is None (full batch), got {steps!r}")
        leaves = jax.tree.leaves((x, y))
        n = leaves[0].shape[0] if leaves else 0
        batch = Batch(x=x, y=y, idx=jnp.arange(n, dtype=jnp.int32))
        if place is not None:
            batch = place(batch)
        return jax.lax.scan(lambda c, _: step(c, batch), carry, length=steps)

    def body(c, idx):
        batch = Batch(x=jax.tree.map(lambda a: a[idx], x), y=jax.tree.map(lambda a: a[idx], y), idx=idx)
        return step(c, place(batch) if place is not None else batch)

    return jax.lax.scan(body, carry, order)


def epoch_permutation(data_key: jax.Array, epoch: jax.Array | int, n: int, batch_size: int) -> jax.Array:
    """The example indices of epoch ``epoch``, shaped ``(steps, batch_size)``.

    ``batch_size >= n`` is full-batch mode: one step over all examples in their stored order (the
    tutorial's loop). Otherwise a permutation drawn from ``fold_in(data_key, epoch)``; the last
    ``n % batch_size`` examples of the permutation are dropped (``DataLoader(drop_last=True)``), so
    every step has the same shape and the scan compiles once.
    """
    if batch_size >= n:
        return jnp.arange(n, dtype=jnp.int32).reshape(1, n)
    steps = n // batch_size
    perm = jax.random.permutation(jax.random.fold_in(data_key, epoch), n)
    return perm[: steps * batch_size].astype(jnp.int32).reshape(steps, batch_size)


def make_epoch_fn(train_step, *, batch_size: int, donate: bool = False):
    """``run_epoch(state, x, y, data_key, epoch) -> (state, metrics)``: one jitted call per epoch.

    ``x``/``y`` are the whole training set already on the device; ``metrics`` holds per-step arrays
    (``loss``, ``accuracy``) of shape ``(steps,)``.
    """

    def run_epoch(state: TrainState, x: jax.Array, y: jax.Array, data_key: jax.Array, epoch):
        order = epoch_permutation(data_key, epoch, x.shape[0], batch_size)

        def body(state, idx):
            return train_step(state, Batch(x=x[idx], y=y[idx], idx=idx))

        return jax.lax.scan(body, state, order)

    return jax.jit(run_epoch, donate_argnums=(0,) if donate else ())


def _chunked_logits(apply_fn, params, x: jax.Array, chunk: int) -> jax.Array:
    """``apply_fn(params, x)`` computed over fixed-size chunks (the last one zero-padded)."""
    n = x.shape[0]
    chunk = max(1, min(chunk, n))
    count = -(-n // chunk)
    pad = chunk * count - n
    xp = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)], axis=0) if pad else x
    logits = jax.lax.map(lambda xc: apply_fn(params, xc), xp.reshape((count, chunk) + x.shape[1:]))
    return logits.reshape((count * chunk,) + logits.shape[2:])[:n]


def evaluate(apply_fn, params, x: jax.Array, y: jax.Array, loss_fn: LossFn, *, chunk: int = 10_000):
    """Mean loss, accuracy and predictions of ``apply_fn(params, .)`` on ``(x, y)``.

    Pure: jit it with ``apply_fn``/``loss_fn`` bound (``jax.jit(functools.partial(evaluate, ...))``).
    The forward pass runs in chunks so a whole split fits in memory on any device.
    """
    logits = _chunked_logits(apply_fn, params, x, chunk)
    predictions = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return {
        "loss": loss_fn(logits, y),
        "accuracy": jnp.mean(predictions == y),
        "predictions": predictions,
    }


def predict(apply_fn, params, x: jax.Array, *, chunk: int = 10_000) -> jax.Array:
    """Class predictions (argmax of the logits) for ``x``, computed in fixed-size chunks."""
    return jnp.argmax(_chunked_logits(apply_fn, params, x, chunk), axis=-1).astype(jnp.int32)


def make_evaluator(apply_fn, loss_fn: LossFn, *, chunk: int = 2_000):
    """``evaluate(params, x, y=None) -> {"loss", "accuracy", "predictions"}`` with ONE compiled program.

    Every split (train, validation, test, any size) is cut on the host into chunks of exactly
    ``chunk`` rows (the last one zero-padded and masked), so one jitted per-chunk function serves
    them all: a second run of an experiment finds it in the persistent cache instead of tracing and
    compiling one evaluation per split size. The loss is the mean of per-example losses (``loss_fn``
    applied to one example at a time), summed on the host in float64. With ``y=None`` only
    ``predictions`` is returned.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")

    @jax.jit
    def chunk_stats(params, xc, yc, valid):
        logits = apply_fn(params, xc)
        per_example = jax.vmap(lambda l, t: loss_fn(l[None, :], t[None]))(logits, yc)
        pred = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return jnp.sum(jnp.where(valid, per_example, 0)), jnp.sum(valid & (pred == yc)), pred

    def evaluate(params, x, y=None):
        x = np.asarray(x)
        n = x.shape[0]
        labels = np.zeros(n, np.int32) if y is None else np.asarray(y, np.int32)
        total, correct, preds = 0.0, 0, []
        for start in range(0, n, chunk):
            xc, yc = x[start : start + chunk], labels[start : start + chunk]
            m = xc.shape[0]
            if m < chunk:
                xc = np.concatenate([xc, np.zeros((chunk - m,) + xc.shape[1:], xc.dtype)])
                yc = np.concatenate([yc, np.zeros(chunk - m, np.int32)])
            loss_sum, hits, pred = chunk_stats(params, xc, yc, np.arange(chunk) < m)
            total += float(loss_sum)
            correct += int(hits)
            preds.append(np.asarray(pred)[:m])
        out = {"predictions": np.concatenate(preds) if preds else np.zeros(0, np.int32)}
        if y is not None:
            out["loss"] = total / n
            out["accuracy"] = correct / n
        return out

    return evaluate


def default_cache_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/fnnet`` or ``~/.cache/fnnet``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "fnnet"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> pathlib.Path:
    """Turn on JAX's persistent compilation cache (default ``~/.cache/fnnet/jax-cache``).

    Every compiled program is stored, however quick its compile, so a second run of an experiment
    skips XLA compilation entirely.
    """
    cache = pathlib.Path(path) if path is not None else default_cache_dir() / "jax-cache"
    cache.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return cache


def tree_to_numpy(tree: Any) -> Any:
    """Device arrays to NumPy (for metrics and checkpoints)."""
    return jax.tree.map(np.asarray, tree)


def make_run_fn(
    train_step, *, batch_size: int, epochs: int, loss_fn: LossFn, eval_chunk: int = 10_000, donate: bool = False
):
    """``run(state, x, y, val_x, val_y, data_key, start_epoch=0) -> (state, history)``: a whole run in ONE jit.

    ``epochs`` epochs of ``train_step``, each followed by the validation loss and accuracy, as one
    ``lax.scan`` over epochs (of a ``lax.scan`` over steps): the computation of ``fnnet.fit`` without
    a checkpointer (epoch k's order from ``fold_in(data_key, k)``, k counted from ``start_epoch``), with
    no Python between epochs and one compile per ``run`` object. ``history`` holds arrays of shape
    ``(epochs,)``: ``train_loss``/``train_accuracy`` (means over the epoch's steps, in the metrics'
    dtype; ``fit`` averages on the host in float64, which differs only in the last float32 bits when
    an epoch has many steps) and ``val_loss``/``val_accuracy``. In full-batch mode (``batch_size >=
    len(x)``) the step takes ``x`` itself rather than the copy ``x[arange(n)]`` (same values).
    Use it when a run needs no checkpoint or per-epoch callback (benchmarks, sweeps); ``fit`` is the
    resumable loop.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")

    def run(state: TrainState, x, y, val_x, val_y, data_key, start_epoch=0):
        n = x.shape[0]
        full = batch_size >= n

        def one_epoch(state, epoch):
            if full:
                state, metrics = train_step(state, Batch(x=x, y=y, idx=jnp.arange(n, dtype=jnp.int32)))
                metrics = jax.tree.map(lambda m: m[None], metrics)
            else:

                def body(st, idx):
                    return train_step(st, Batch(x=x[idx], y=y[idx], idx=idx))

                state, metrics = jax.lax.scan(body, state, epoch_permutation(data_key, epoch, n, batch_size))
            val = evaluate(state.apply_fn, state.params, val_x, val_y, loss_fn, chunk=eval_chunk)
            row = {
                "train_loss": jnp.mean(metrics["loss"]),
                "train_accuracy": jnp.mean(metrics["accuracy"]),
                "val_loss": val["loss"],
                "val_accuracy": val["accuracy"],
            }
            return state, row

        first = jnp.asarray(start_epoch, jnp.int32)
        return jax.lax.scan(one_epoch, state, first + jnp.arange(epochs, dtype=jnp.int32))

    return jax.jit(run, donate_argnums=(0,) if donate else ())
