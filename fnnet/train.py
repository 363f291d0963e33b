"""Compiled training of ``fnnet.nn`` models: one pure step, the one scan, one evaluator, a generic fit.

NNX at the edge, pure functions in the core (DESIGN.md principle 10): a model is split once,
``graphdef, params, buffers, rest = nnx.split(model, nnx.Param, fnnet.nn.Buffer, ...)``, into a
:class:`TrainState`, and every compiled function runs ``nnx.merge(graphdef, params, buffers, rest)``
inside ``jit``/``lax.scan``. (NNX's own transforms, ``nnx.jit``/``nnx.scan``, compile the same
program but re-split the module object on every Python call; the split once/merge inside form keeps
state a plain pytree that ``lax.scan`` carries, orbax saves and ``pmap``/sharding place.)

* :func:`make_train_step` builds the pure ``train_step(state, batch) -> (state, metrics)``: forward in
  training mode, ``value_and_grad``, the optax update, the buffers the forward pass updated (BatchNorm's
  running statistics), all in one jit region. ``fnnet.parallel`` wraps this same function.
* :func:`scan_batches` is THE loop: every loop in fnnet (an epoch, a whole run, pmap, sharding, the
  small networks, the optimizer zoo) is ``lax.scan`` of a step over batches through it.
* :func:`make_evaluator` is the one evaluation API: loss, accuracy and predictions of any split, with
  one compiled program per model; :func:`evaluation_stats` is its pure per-chunk core.
* :func:`fit` trains any model with any optax optimizer: epochs, batch size, checkpoints with resume,
  an evaluation callback and a parallel layout; nothing in it knows about a data set.

Randomness is per example (principle 5): the key of example ``i`` at optimizer step ``s`` is
``fold_in(fold_in(state.key, s), i)``, bound to every random layer (``Dropout``) for the step, so one
device or N devices draw the same numbers for the same example. Epoch ``k``'s order is a permutation
drawn from ``fold_in(data_key, k)``: a resumed run computes bitwise what an uninterrupted one does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pathlib
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from fnnet._download import default_cache_dir
from fnnet.nn.module import Buffer, RandomModule, bind_example_keys

__all__ = [
    "Batch",
    "EpochLog",
    "FitResult",
    "Interrupted",
    "NonFiniteLossError",
    "TrainState",
    "accumulate_gradients",
    "enable_compilation_cache",
    "epoch_permutation",
    "evaluation_stats",
    "example_keys",
    "fit",
    "forward",
    "keep_freed_memory",
    "make_epoch_fn",
    "make_evaluator",
    "make_run_fn",
    "make_train_step",
    "scan_batches",
]

LossFn = Callable[[jax.Array, jax.Array], jax.Array]
AugmentFn = Callable[[jax.Array, jax.Array], jax.Array]


class Batch(NamedTuple):
    """A training batch: inputs, targets, and each example's index in the training set."""

    x: Any
    y: Any
    idx: jax.Array


class TrainState(struct.PyTreeNode):
    """A model, its optimizer state and the run's counters as one pytree.

    ``params`` (``nnx.Param``), ``buffers`` (``fnnet.nn.Buffer``: running statistics, counters) and
    ``rest`` (anything else the model holds, e.g. its layers' own PRNG keys) are the ``nnx.State``
    parts of the model; ``graphdef`` (its structure and static attributes) and ``tx`` are static.
    ``key`` is a raw ``uint32[2]`` key (it checkpoints as a plain array) from which every step's
    per-example keys derive; ``step`` counts optimizer updates.
    """

    step: jax.Array
    params: Any
    buffers: Any
    rest: Any
    opt_state: Any
    key: jax.Array
    graphdef: Any = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)

    @classmethod
    def create(cls, model: nnx.Module, tx: optax.GradientTransformation, key: jax.Array | int = 0) -> TrainState:
        """Split ``model`` and initialise ``tx`` on its parameters. ``key``: an int seed or a raw key."""
        if not isinstance(model, nnx.Module):
            raise TypeError(f"model must be an nnx.Module (an fnnet.nn model), got {type(model).__name__}")
        if not isinstance(tx, optax.GradientTransformation):
            raise TypeError(f"tx must be an optax.GradientTransformation (e.g. fnnet.optim.adam()), got {tx!r}")
        graphdef, params, buffers, rest = nnx.split(model, nnx.Param, Buffer, ...)
        raw = jax.random.PRNGKey(key) if isinstance(key, (int, np.integer)) else jnp.asarray(key)
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            buffers=buffers,
            rest=rest,
            opt_state=tx.init(params),
            key=raw,
            graphdef=graphdef,
            tx=tx,
        )

    def model(self, *, training: bool | None = None) -> nnx.Module:
        """A module object holding this state (``nnx.merge``); ``training`` sets its mode."""
        model = nnx.merge(self.graphdef, self.params, self.buffers, self.rest, copy=True)
        if training is not None:
            model.train() if training else model.eval()
        return model

    def write_to(self, model: nnx.Module) -> None:
        """Copy the parameters and buffers into a live module (a torch user's trained-in-place model)."""
        nnx.update(model, self.params, self.buffers)


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


def _has_random_layers(model: nnx.Module) -> bool:
    return any(isinstance(m, RandomModule) for _, m in nnx.iter_modules(model))


def _accuracy(out: jax.Array, y: jax.Array) -> jax.Array | None:
    """Classification accuracy when ``out`` holds class scores for integer targets ``y``."""
    y = jnp.asarray(y)
    if not jnp.issubdtype(y.dtype, jnp.integer) or out.ndim != y.ndim + 1:
        return None
    return jnp.mean(jnp.argmax(out, axis=-1) == y)


def forward(state: TrainState, x: Any, *, training: bool, keys: jax.Array | None = None, axis_name=None):
    """``(output, buffers)`` of the model in ``state`` on ``x``: the pure forward pass both the train
    step and evaluation run. ``keys`` (one per example) drive the random layers in training mode;
    ``axis_name`` is set on layers that reduce over the batch (BatchNorm) under pmap."""
    model = state.model(training=training)
    if axis_name is not None:
        model.set_attributes(axis_name=axis_name, raise_if_not_found=False)
    if training and keys is not None and _has_random_layers(model):
        bind_example_keys(model, keys)
    out = model(x)
    return out, nnx.state(model, Buffer)


def make_train_step(
    loss_fn: LossFn, *, augment: AugmentFn | None = None, axis_name: str | None = None
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """The pure step ``train_step(state, batch) -> (state, metrics)``.

    ``loss_fn(output, target)`` returns the batch's mean loss (e.g. ``fnnet.nn.functional.cross_entropy``).
    The forward pass runs in training mode with per-example keys; the buffers it updates become the
    new state's. ``metrics`` holds ``loss`` and, when the targets are class indices, ``accuracy``.
    ``augment(keys, x)`` transforms the inputs per example first. With ``axis_name``, the step is
    meant to run under ``pmap``/``shard_map`` over that axis: gradients and metrics are averaged with
    ``lax.pmean`` (equal local batches, so the mean of means is the global mean) and BatchNorm layers
    compute global batch statistics.
    """

    def train_step(state: TrainState, batch: Batch):
        keys = example_keys(state.key, state.step, batch.idx)
        x = batch.x
        if augment is not None:
            x = augment(jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys), x)
        layer_keys = jax.vmap(lambda k: jax.random.fold_in(k, 2))(keys)

        def objective(params):
            out, buffers = forward(state.replace(params=params), x, training=True, keys=layer_keys, axis_name=axis_name)
            return loss_fn(out, batch.y), (out, buffers)

        (loss, (out, buffers)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        metrics = {"loss": loss}
        accuracy = _accuracy(out, batch.y)
        if accuracy is not None:
            metrics["accuracy"] = accuracy
        if axis_name is not None:
            grads = jax.lax.pmean(grads, axis_name)
            metrics = jax.lax.pmean(metrics, axis_name)
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
        new = state.replace(
            step=state.step + 1, params=optax.apply_updates(state.params, updates), buffers=buffers, opt_state=opt_state
        )
        return new, metrics

    return train_step


def scan_batches(
    step, carry, x, y, order: jax.Array | None = None, *, steps: int | None = None, place: Callable | None = None
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

    A permutation drawn from ``fold_in(data_key, epoch)``; the last ``n % batch_size`` examples of the
    permutation are dropped (``DataLoader(drop_last=True)``), so every step has the same shape and the
    scan compiles once. ``batch_size >= n`` gives one step over all examples in their stored order.
    """
    if batch_size >= n:
        return jnp.arange(n, dtype=jnp.int32).reshape(1, n)
    steps = n // batch_size
    perm = jax.random.permutation(jax.random.fold_in(data_key, epoch), n)
    return perm[: steps * batch_size].astype(jnp.int32).reshape(steps, batch_size)


def _epoch(train_step, state, x, y, data_key, epoch, batch_size: int, n: int):
    """One epoch through :func:`scan_batches`: mini-batches in epoch order, or one full-batch step."""
    if batch_size >= n:
        return scan_batches(train_step, state, x, y, steps=1)
    return scan_batches(train_step, state, x, y, epoch_permutation(data_key, epoch, n, batch_size))


def make_epoch_fn(train_step, *, batch_size: int, donate: bool = False):
    """``run_epoch(state, x, y, data_key, epoch) -> (state, metrics)``: one jitted call per epoch.

    ``x``/``y`` are the whole training set already on the device; ``metrics`` holds per-step arrays of
    shape ``(steps,)``. ``batch_size >= len(x)`` is full-batch mode (one step on ``x`` itself).
    """
    _check_positive(batch_size, "batch_size")

    def run_epoch(state: TrainState, x, y, data_key, epoch):
        return _epoch(train_step, state, x, y, data_key, epoch, batch_size, jax.tree.leaves(x)[0].shape[0])

    return jax.jit(run_epoch, donate_argnums=(0,) if donate else ())


# ----------------------------------------------------------------------------------------- evaluation
def evaluation_stats(state: TrainState, x, y, valid, loss_fn: LossFn | None, *, training: bool = False):
    """Per-chunk sums: ``(loss_sum, correct, predictions, buffers)`` of rows where ``valid`` is true.

    The pure core of :func:`make_evaluator` (one program per chunk size) and of the whole-run
    function. The loss is ``loss_fn`` applied to one example at a time, so padded rows drop out of
    the sum exactly. ``training=True`` runs the forward pass in training mode (BatchNorm on batch
    statistics, updating the returned buffers), as a torch loop that evaluates inside ``model.train()``.
    """
    out, buffers = forward(state, x, training=training)
    predictions = jnp.argmax(out, axis=-1).astype(jnp.int32) if out.ndim > 1 else out
    loss_sum = jnp.zeros((), out.dtype)
    correct = jnp.zeros((), jnp.int32)
    if y is not None:
        if loss_fn is not None:
            per_example = jax.vmap(lambda o, t: loss_fn(o[None], t[None]))(out, y)
            loss_sum = jnp.sum(jnp.where(valid, per_example, 0))
        if out.ndim > 1 and jnp.issubdtype(jnp.asarray(y).dtype, jnp.integer):
            correct = jnp.sum(valid & (predictions == y))
    return loss_sum, correct, predictions, buffers


def make_evaluator(loss_fn: LossFn | None = None, *, chunk: int = 2_000):
    """``evaluate(state, x, y=None) -> {"loss", "accuracy", "predictions"}``, ONE compiled program.

    The one evaluation API of fnnet. ``state`` is a :class:`TrainState` or a model (``nnx.Module``);
    the model runs in eval mode. Every split (train, validation, test, any size) is cut on the host
    into chunks of exactly ``chunk`` rows (the last zero-padded and masked), so one jitted per-chunk
    function serves them all and a second run finds it in the persistent cache. The loss is the mean
    of per-example ``loss_fn`` values summed on the host in float64; ``accuracy`` needs integer
    targets. With ``y=None`` only ``predictions`` (argmax of the output) is returned.
    """
    _check_positive(chunk, "chunk")

    @jax.jit
    def chunk_stats(state, xc, yc, valid):
        loss_sum, correct, predictions, _ = evaluation_stats(state, xc, yc, valid, loss_fn)
        return loss_sum, correct, predictions

    def evaluate(state: TrainState | nnx.Module, x, y=None):
        if isinstance(state, nnx.Module):
            state = _model_state(state)
        x = np.asarray(x)
        n = x.shape[0]
        labels = None if y is None else np.asarray(y)
        total, correct, preds = 0.0, 0, []
        for start in range(0, n, chunk):
            xc = x[start : start + chunk]
            m = xc.shape[0]
            yc = None if labels is None else labels[start : start + chunk]
            if m < chunk:
                xc = np.concatenate([xc, np.zeros((chunk - m,) + xc.shape[1:], xc.dtype)])
                if yc is not None:
                    yc = np.concatenate([yc, np.zeros((chunk - m,) + yc.shape[1:], yc.dtype)])
            loss_sum, hits, pred = chunk_stats(state, xc, yc, np.arange(chunk) < m)
            total += float(loss_sum)
            correct += int(hits)
            preds.append(np.asarray(pred)[:m])
        out = {"predictions": np.concatenate(preds) if preds else np.zeros(0, np.int32)}
        if y is not None:
            if loss_fn is not None:
                out["loss"] = total / n
            out["accuracy"] = correct / n
        return out

    return evaluate


_NO_OPTIMIZER = optax.identity()  # one object: ``tx`` is static, so a fresh one per call would recompile


def _model_state(model: nnx.Module) -> TrainState:
    """A TrainState with no optimizer around ``model``, for evaluation."""
    return TrainState.create(model, _NO_OPTIMIZER, 0)


# ----------------------------------------------------------------------------------------- whole run
def make_run_fn(
    train_step,
    *,
    batch_size: int,
    epochs: int,
    loss_fn: LossFn,
    eval_chunk: int = 10_000,
    donate: bool = False,
):
    """``run(state, x, y, val_x, val_y, data_key, start_epoch=0) -> (state, history)``: a run in ONE jit.

    ``epochs`` epochs of ``train_step`` through :func:`scan_batches`, each followed by the validation
    loss and accuracy (:func:`evaluation_stats` over ``eval_chunk``-row chunks under ``lax.map``), as one
    ``lax.scan`` over epochs: the computation of :func:`fit` without a checkpointer, with no Python
    between epochs. ``history`` holds arrays of shape ``(epochs,)``: ``train_loss``/``train_accuracy``
    (means over the epoch's steps) and ``val_loss``/``val_accuracy``. Use it for benchmarks and sweeps;
    ``fit`` is the resumable loop.
    """
    _check_positive(epochs, "epochs")
    _check_positive(batch_size, "batch_size")

    def validate(state, val_x, val_y):
        n = val_x.shape[0]
        size = max(1, min(eval_chunk, n))
        count = -(-n // size)
        pad = size * count - n
        xs = jnp.concatenate([val_x, jnp.zeros((pad,) + val_x.shape[1:], val_x.dtype)]) if pad else val_x
        ys = jnp.concatenate([val_y, jnp.zeros((pad,) + val_y.shape[1:], val_y.dtype)]) if pad else val_y
        valid = jnp.arange(size * count) < n
        stats = jax.lax.map(
            lambda c: evaluation_stats(state, c[0], c[1], c[2], loss_fn)[:2],
            (
                xs.reshape((count, size) + xs.shape[1:]),
                ys.reshape((count, size) + ys.shape[1:]),
                valid.reshape(count, size),
            ),
        )
        return jnp.sum(stats[0]) / n, jnp.sum(stats[1]) / n

    def run(state: TrainState, x, y, val_x, val_y, data_key, start_epoch=0):
        n = jax.tree.leaves(x)[0].shape[0]

        def one_epoch(state, epoch):
            state, metrics = _epoch(train_step, state, x, y, data_key, epoch, batch_size, n)
            val_loss, val_accuracy = validate(state, val_x, val_y)
            row = {"train_loss": jnp.mean(metrics["loss"]), "val_loss": val_loss, "val_accuracy": val_accuracy}
            if "accuracy" in metrics:
                row["train_accuracy"] = jnp.mean(metrics["accuracy"])
            return state, row

        first = jnp.asarray(start_epoch, jnp.int32)
        return jax.lax.scan(one_epoch, state, first + jnp.arange(epochs, dtype=jnp.int32))

    return jax.jit(run, donate_argnums=(0,) if donate else ())


# ----------------------------------------------------------------------------------------------- fit
class EpochLog(NamedTuple):
    """One finished epoch: its history row and the seconds it took (training + evaluation)."""

    epoch: int
    row: dict[str, float]
    seconds: float


class FitResult(NamedTuple):
    state: TrainState
    history: list[dict[str, float]]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; ``epoch`` (1-based) and ``step`` (1-based within it)
    locate the first such step. Nothing from the diverged state was saved."""

    def __init__(self, epoch: int, step: int, steps: int):
        self.epoch, self.step, self.steps = epoch, step, steps
        super().__init__(f"the training loss became non-finite at epoch {epoch}, step {step} of {steps}")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during :func:`fit`: the epoch that was running finished and was checkpointed;
    ``epoch`` (1-based) is the last complete one. A ``KeyboardInterrupt``, so code that handles
    those handles this."""

    def __init__(self, epoch: int):
        self.epoch = epoch
        super().__init__(f"interrupted at epoch {epoch}")


@contextlib.contextmanager
def _stop_after_epoch_on_sigint():
    """While training, the first SIGINT only asks to stop after the current epoch; the handler then
    restores SIGINT's default action, so a second Ctrl-C ends the process at once (even inside a
    long compiled call). Writes are atomic, so neither leaves a half-written file."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    requested = threading.Event()

    def handler(signum, frame):
        requested.set()
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _arrays(data: Any) -> tuple[Any, Any]:
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    if hasattr(data, "x") and hasattr(data, "y"):
        return data.x, data.y
    raise TypeError(f"data must be a pair (x, y) of arrays or have .x and .y, got {type(data).__name__}")


def _mean(values: Any) -> float:
    return float(np.mean(np.asarray(values, np.float64)))


def fit(
    model: nnx.Module | TrainState,
    tx: optax.GradientTransformation | None,
    data: Any,
    *,
    loss_fn: LossFn | None = None,
    epochs: int,
    batch_size: int | None = None,
    seed: int = 0,
    make_step: Callable[[str | None], Callable] | None = None,
    evaluate: Callable[[TrainState], Mapping[str, float]] | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
    checkpointer: Any = None,
    resume: bool = False,
    run_config: Mapping[str, Any] | None = None,
    layout: Any = None,
    check_finite: bool = True,
) -> FitResult:
    """Train ``model`` with ``tx`` on ``data = (x, y)`` for ``epochs`` epochs; returns ``(state, history)``.

    * ``model``: an ``fnnet.nn`` model (any ``nnx.Module``), trained in place like torch's (its
      parameters and buffers hold the result when ``fit`` returns), or a :class:`TrainState` (then
      ``tx`` is ``None``) to continue from.
    * ``loss_fn(output, target)``: the batch's mean loss; or ``make_step(axis_name) -> train_step`` for
      a step of one's own (default ``make_train_step(loss_fn, axis_name=axis_name)``).
    * ``batch_size``: ``None`` (or ``>= len(x)``) is full batch, one step per epoch, as the tutorials.
    * ``seed``: the state's key (when ``model`` is a module) and the data order: epoch ``k``'s order is
      drawn from ``fold_in(fold_in(PRNGKey(seed), 2), k)``.
    * ``evaluate(state) -> {name: value}`` after each epoch (e.g. validation loss, with
      :func:`make_evaluator`); the values join the epoch's history row.
    * ``on_epoch(EpochLog)`` after each epoch (printing, plotting); ``checkpointer`` (a
      ``fnnet.checkpoint.Checkpointer``) saves the state and history after each epoch, and with
      ``resume`` training continues from its newest checkpoint, whose ``run_config`` must equal this one.
    * ``layout``: a ``fnnet.parallel`` layout (``single()``, ``pmap(...)``, ``sharding(...)``); default
      one device.
    * ``check_finite``: a non-finite training loss stops the run at the end of its epoch with
      :class:`NonFiniteLossError`, before anything from that epoch is saved (the epoch's losses are
      already on the host for the history row, so this costs no extra transfer).
    * Ctrl-C (SIGINT, in the main thread): the running epoch finishes and is checkpointed, then
      :class:`Interrupted` is raised; a second Ctrl-C ends the process at once (SIGINT's default).

    ``history`` has one row per epoch: ``epoch``, ``train_loss`` (and ``train_accuracy`` for class
    targets: means over the epoch's steps, what the model saw in training mode; a step's other
    metrics become ``train_<name>``, or keep their name when it starts with ``val_``) and
    ``evaluate``'s values.
    """
    from fnnet import parallel as _parallel  # parallel builds on train: imported at call time

    epochs = _check_positive(epochs, "epochs")
    x, y = _arrays(data)
    n = jax.tree.leaves(x)[0].shape[0]
    batch = n if batch_size is None else min(_check_positive(batch_size, "batch_size"), n)
    live_model = None
    if isinstance(model, TrainState):
        if tx is not None:
            raise ValueError("pass tx=None when continuing from a TrainState (it holds its optimizer)")
        state = model
    else:
        live_model = model
        state = TrainState.create(model, tx, jax.random.fold_in(jax.random.PRNGKey(seed), 1))
    if make_step is None:
        if loss_fn is None:
            raise ValueError("fit needs loss_fn (or make_step)")
        make_step = _default_step(loss_fn)
    layout = layout if layout is not None else _parallel.single()
    run_config = dict(run_config or {})
    history: list[dict[str, float]] = []
    start = 0
    state = layout.prepare(state)  # placed first: a checkpoint restores straight into the layout's sharding
    if resume and checkpointer is not None:
        restored = checkpointer.restore_latest(state, run_config=run_config)
        if restored is not None:
            start, state, meta = restored
            history = list(meta["history"])
    epoch_fn = layout.epoch_fn(make_step(layout.axis_name), batch_size=batch, n_examples=n)
    xs, ys = jax.tree.map(layout.put, x), jax.tree.map(layout.put, y)
    data_key = jax.random.fold_in(jax.random.PRNGKey(seed), 2)
    with _stop_after_epoch_on_sigint() as interrupted:
        for epoch in range(start, epochs):
            t0 = time.perf_counter()
            new_state, metrics = epoch_fn(state, xs, ys, data_key, epoch)
            losses = np.asarray(jax.device_get(metrics["loss"]), np.float64)
            if check_finite and not np.isfinite(losses).all():
                raise NonFiniteLossError(epoch + 1, int(np.argmin(np.isfinite(losses))) + 1, losses.shape[0])
            state = new_state
            row: dict[str, float] = {"epoch": epoch + 1, "train_loss": float(np.mean(losses))}
            for name, values in metrics.items():  # means over the epoch's steps
                if name != "loss":
                    row[name if name.startswith("val_") else f"train_{name}"] = _mean(jax.device_get(values))
            if evaluate is not None:
                row.update({k: float(v) for k, v in evaluate(state).items()})
            history.append(row)
            if checkpointer is not None:
                checkpointer.save(epoch + 1, state, {"history": history, "run_config": run_config})
            if on_epoch is not None:
                on_epoch(EpochLog(epoch + 1, dict(row), time.perf_counter() - t0))
            if interrupted() and epoch + 1 < epochs:
                raise Interrupted(epoch + 1)
    if live_model is not None:
        state.write_to(live_model)
    return FitResult(state, history)


def _default_step(loss_fn: LossFn) -> Callable[[str | None], Callable]:
    def make_step(axis_name: str | None):
        return make_train_step(loss_fn, axis_name=axis_name)

    return make_step


# --------------------------------------------------------------------------------------- compile cache
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


def keep_freed_memory() -> bool:
    """Have glibc's allocator keep freed memory for reuse instead of returning it to the system.

    XLA:CPU gives each call of a compiled program fresh buffers; glibc serves large ones with ``mmap``
    and unmaps them on free, so every call of a jitted training step faults its activations in again,
    page by page (measured before ``Sequential`` fused its first block: the strong CNN's jitted step at
    batch 128 took 45-55 ms, 33-37 ms with this on). A compiled epoch (``lax.scan``) allocates once and
    does not need it. Process-wide (torch's eager steps in the same process gain too: 34 -> 31 ms for the
    same network) and not undoable, so it is opt-in, like preloading tcmalloc: call it first thing in a
    program that loops over a jitted step from Python (``benchmarks/cnn_mini.py --keep-freed-memory``).
    Returns False (and changes nothing) where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # glibc malloc.h: M_TRIM_THRESHOLD -1, M_MMAP_MAX -4, M_ARENA_MAX -8.
    settings = ((-8, 1), (-4, 0), (-1, 2**31 - 1))  # one arena, never mmap, never trim
    return all(mallopt(option, value) == 1 for option, value in settings)
