"""The tutorials' three small networks as pure functions, each whole training run one ``jit``.

* **scratch** (first tutorial, "neural network from scratch"): a 4-3-1 sigmoid network trained by
  hand-written matrix calculus, no autodiff. ``scratch_train`` runs every epoch in one
  ``lax.fori_loop``; ``mode="corrected"`` is gradient descent on ``0.5 * sum((y - output)**2)``,
  ``mode="as-published"`` keeps the slips readers found in the article's update code.
* **hello** (third tutorial): the 1-1-1 ``HelloNet`` with the hand-set weights, ``nn.MSELoss`` and
  ``optim.SGD``; ``hello_train`` runs ``steps`` optimizer steps in one ``lax.scan``.
* **binary** (second tutorial): the 5-8-4-1 ``BinaryClassifier``, ``nn.BCELoss`` and
  ``optim.SGD`` full batch; ``binary_train`` scans the epochs, ``binary_snapshots`` also returns the
  probabilities every ``every`` epochs (the tutorial's figure).

This is principle 3 of DESIGN.md: a tiny network's torch loop pays Python and dispatch costs for
every operation of every epoch, while here the loop is one compiled program: the project's one scan,
:func:`fnnet.train.scan_batches`, in full-batch mode. Models go in and come out as ``fnnet.nn``
modules; inside, they run as pure functions of their state (``nnx.split``/``nnx.merge``). Each
function compiles once per static configuration (``epochs``/``steps``, ``mode``) and dtype; ``lr`` is
traced, so a new learning rate reuses the compiled program.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from fnnet.models import BinaryClassifier, HelloNet
from fnnet.nn.functional import binary_cross_entropy, mse_loss
from fnnet.optim import sgd
from fnnet.train import scan_batches

__all__ = [
    "SCRATCH_MODES",
    "scratch_data",
    "scratch_init",
    "scratch_step",
    "scratch_train",
    "hello_net",
    "hello_data",
    "hello_train",
    "binary_init",
    "binary_predict",
    "binary_train",
    "binary_snapshots",
]

Weights = dict[str, jax.Array]


def _check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_lr(lr: float) -> jax.Array:
    """A positive learning rate as a 0-d array (traced in the compiled run: no recompile per value)."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    return jnp.asarray(lr)


# ------------------------------------------------------------------------------------- scratch

SCRATCH_MODES = ("corrected", "as-published")
_SCRATCH_X = ((1.0, 0.0, 1.0, 0.0), (1.0, 0.0, 1.0, 1.0), (0.0, 1.0, 0.0, 1.0))
_SCRATCH_Y = ((1.0,), (1.0,), (0.0,))
_SCRATCH_HIDDEN = 3  # hiddenlayer_neurons


def scratch_data(dtype: Any = jnp.float32) -> tuple[jax.Array, jax.Array]:
    """The article's ``X`` (3, 4) ``[[1,0,1,0],[1,0,1,1],[0,1,0,1]]`` and ``y`` (3, 1) ``[[1],[1],[0]]``."""
    return jnp.asarray(_SCRATCH_X, dtype), jnp.asarray(_SCRATCH_Y, dtype)


def scratch_init(key: jax.Array, dtype: Any = jnp.float32) -> Weights:
    """``wh`` (4,3), ``bh`` (1,3), ``wout`` (3,1), ``bout`` (1,1), standard normal like ``torch.randn``.

    ``jax.random.normal`` and ``torch.randn`` draw different numbers from the same seed; feed both
    the same arrays to compare them. One compiled program (not one per draw).
    """
    return _scratch_init(key, jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnames=("dtype",))
def _scratch_init(key: jax.Array, dtype: Any) -> Weights:
    k_wh, k_bh, k_wout, k_bout = jax.random.split(key, 4)
    n_in, n_out = len(_SCRATCH_X[0]), len(_SCRATCH_Y[0])
    return {
        "wh": jax.random.normal(k_wh, (n_in, _SCRATCH_HIDDEN), dtype),
        "bh": jax.random.normal(k_bh, (1, _SCRATCH_HIDDEN), dtype),
        "wout": jax.random.normal(k_wout, (_SCRATCH_HIDDEN, n_out), dtype),
        "bout": jax.random.normal(k_bout, (1, n_out), dtype),
    }


def _derivatives_sigmoid(x: jax.Array) -> jax.Array:
    """The article's ``sigmoid(x) * (1 - sigmoid(x))``: the slope *at the input* ``x``."""
    s = jax.nn.sigmoid(x)
    return s * (1 - s)


def _mm(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a @ b`` for the article's tiny matrices as a broadcast product summed over the inner axis.

    Same products and sums (3 or 4 terms) as ``jnp.matmul``; hand-written because XLA:CPU runs each
    tiny ``dot`` as a kernel of its own, while this form fuses with the elementwise work around it:
    the epoch compiles to a few loop kernels and the 5,000-epoch run is ~2.5x faster.
    """
    return jnp.sum(a[:, :, None] * b[None, :, :], axis=1)


def scratch_step(
    w: Weights, X: jax.Array, y: jax.Array, lr: float | jax.Array, mode: str = "corrected"
) -> tuple[Weights, jax.Array]:
    """One epoch of the article's loop; returns (updated weights, this epoch's ``output``).

    ``"corrected"``: ``output = sigmoid(output_layer_input)``, slopes at the pre-activations, bias
    updates summed over the batch axis (equal to a ``jax.grad`` step of half the squared error).
    ``"as-published"``: the output uses the pre-bias input ``sigmoid(output_layer_input1)``, the slopes
    are ``derivatives_sigmoid`` of the activations (sigmoid applied twice), and ``bout``/``bh`` move
    by the sum of all deltas (a scalar added to every entry).
    """
    if mode not in SCRATCH_MODES:
        raise ValueError(f"mode must be one of {SCRATCH_MODES}, got {mode!r}")
    wh, bh, wout, bout = w["wh"], w["bh"], w["wout"], w["bout"]
    hidden_layer_input = _mm(X, wh) + bh  # bh is (1, 3): explicit rank, no promotion
    hidden_layer_activations = jax.nn.sigmoid(hidden_layer_input)
    output_layer_input1 = _mm(hidden_layer_activations, wout)
    output_layer_input = output_layer_input1 + bout
    if mode == "as-published":
        output = jax.nn.sigmoid(output_layer_input1)  # slip: the bias is left out
        slope_output_layer = _derivatives_sigmoid(output)  # slip: sigmoid'(sigmoid(z))
        slope_hidden_layer = _derivatives_sigmoid(hidden_layer_activations)  # slip, likewise
    else:
        output = jax.nn.sigmoid(output_layer_input)
        slope_output_layer = _derivatives_sigmoid(output_layer_input)
        slope_hidden_layer = _derivatives_sigmoid(hidden_layer_input)
    E = y - output
    d_output = E * slope_output_layer
    d_hiddenlayer = _mm(d_output, wout.T) * slope_hidden_layer
    wout = wout + _mm(hidden_layer_activations.T, d_output) * lr
    wh = wh + _mm(X.T, d_hiddenlayer) * lr
    if mode == "as-published":
        bout = bout + d_output.sum() * lr
        bh = bh + d_hiddenlayer.sum() * lr
    else:
        bout = bout + d_output.sum(axis=0, keepdims=True) * lr
        bh = bh + d_hiddenlayer.sum(axis=0, keepdims=True) * lr
    return {"wh": wh, "bh": bh, "wout": wout, "bout": bout}, output


@functools.partial(jax.jit, static_argnames=("epochs", "mode"))
def _scratch_run(
    w: Weights, X: jax.Array | None, y: jax.Array | None, lr: jax.Array, *, epochs: int, mode: str
) -> tuple[Weights, jax.Array]:
    if X is None:  # the article's data, as constants of the compiled program
        X, y = scratch_data(w["wh"].dtype)

    def step(w, batch):
        return scratch_step(w, batch.x, batch.y, lr, mode)

    w, outputs = scan_batches(step, w, X, y, steps=epochs)
    return w, outputs[-1]


def scratch_train(
    w: Weights,
    X: jax.Array | None = None,
    y: jax.Array | None = None,
    *,
    epochs: int,
    lr: float = 0.1,
    mode: str = "corrected",
) -> tuple[Weights, jax.Array]:
    """``epochs`` epochs of :func:`scratch_step` in one ``lax.scan`` under one ``jit``.

    Returns (final weights, the last epoch's ``output``: the forward pass *before* the last update,
    which is what the article prints after its loop). ``X``/``y`` default to :func:`scratch_data` in
    the weights' dtype. ``lr`` is traced (a new value does not recompile); ``epochs`` and ``mode`` are
    static.
    """
    _check_count(epochs, "epochs")
    if mode not in SCRATCH_MODES:
        raise ValueError(f"mode must be one of {SCRATCH_MODES}, got {mode!r}")
    if (X is None) != (y is None):
        raise ValueError("pass both X and y, or neither (the article's data)")
    return _scratch_run(w, X, y, jnp.asarray(lr, w["wh"].dtype), epochs=epochs, mode=mode)


# --------------------------------------------------------------------------------------- hello

_HELLO_INPUT, _HELLO_TARGET = 0.8, 1.0


def hello_net(dtype: Any = None) -> HelloNet:
    """The tutorial's network with its hand-set weights w_l1=1.58, b_l1=-0.14, w_l2=2.45, b_l2=-0.11."""
    return HelloNet.published(dtype)


def hello_data(dtype: Any = jnp.float32) -> tuple[jax.Array, jax.Array]:
    """The tutorial's input ``[[0.8]]`` and target ``[[1.0]]``."""
    return jnp.full((1, 1), _HELLO_INPUT, dtype), jnp.full((1, 1), _HELLO_TARGET, dtype)


def _sgd_run(graphdef, params, rest, x, y, lr, loss_fn, steps: int, every: int = 0):
    """``steps`` full-batch ``torch.optim.SGD(lr)`` steps of ``loss_fn(model(x), y)`` through
    :func:`scan_batches`; with ``every`` > 0, the model's outputs after every ``every`` steps too."""
    tx = sgd(lr=lr)

    def step(carry, batch):
        p, opt_state = carry

        def objective(p):
            return loss_fn(nnx.merge(graphdef, p, rest)(batch.x), batch.y)

        loss, grads = jax.value_and_grad(objective)(p)  # zero_grad(); loss.backward(): fresh gradients
        updates, opt_state = tx.update(grads, opt_state, p)  # optimizer.step()
        return (optax.apply_updates(p, updates), opt_state), loss

    carry = (params, tx.init(params))
    if not every:
        (params, _), losses = scan_batches(step, carry, x, y, steps=steps)
        return params, losses

    def block(carry, _):
        carry, _ = scan_batches(step, carry, x, y, steps=every)
        return carry, nnx.merge(graphdef, carry[0], rest)(x)

    return jax.lax.scan(block, carry, length=steps // every)[1]


def _hello_loss(out: jax.Array, target: jax.Array) -> jax.Array:
    return mse_loss(out, target)  # nn.MSELoss(): mean of squares, no 1/2


@functools.partial(jax.jit, static_argnames=("steps",))
def _hello_run(net, x, y, lr, *, steps: int):
    # The module itself is the jitted argument (NNX modules are pytrees): splitting it here, at trace
    # time, keeps nnx.split/merge out of every call (they cost ~10x the compiled 1,000-step run).
    graphdef, params, rest = nnx.split(net, nnx.Param, ...)
    if x is None:  # the tutorial's data, as constants of the compiled program
        x, y = hello_data(jax.tree.leaves(params)[0].dtype)
    params, losses = _sgd_run(graphdef, params, rest, x, y, lr, _hello_loss, steps)
    return nnx.merge(graphdef, params, rest), losses


def hello_train(
    net: HelloNet, x: jax.Array | None = None, y: jax.Array | None = None, *, steps: int, lr: float = 0.1
) -> tuple[HelloNet, jax.Array]:
    """``steps`` iterations of ``net.zero_grad(); loss.backward(); optim.SGD(lr).step()`` in one scan.

    Returns (a new ``HelloNet`` holding the weights after the last step, the ``nn.MSELoss`` of every
    step before its update, shape ``(steps,)``); ``net`` itself is unchanged. ``x``/``y`` default to
    :func:`hello_data` in the weights' dtype. No gradient buffers exist, so there is nothing to zero:
    ``jax.value_and_grad`` returns fresh gradients.
    """
    _check_count(steps, "steps")
    lr = _check_lr(lr)
    if (x is None) != (y is None):
        raise ValueError("pass both x and y, or neither (the tutorial's 0.8 -> 1)")
    return _hello_run(net, x, y, lr, steps=steps)


# -------------------------------------------------------------------------------------- binary

_BINARY_FEATURES = 5


def binary_init(key: jax.Array | int, dtype: Any = None) -> BinaryClassifier:
    """A fresh ``Network(5, 8, 4, 1)``, initialised like ``nn.Linear`` from ``key`` (an int seed or a
    key; other numbers than torch's)."""
    seed = key if isinstance(key, int) else jax.random.key_data(key) if _typed(key) else jnp.asarray(key)
    return BinaryClassifier(dtype=dtype, rngs=nnx.Rngs(seed))


def _typed(key: Any) -> bool:
    return hasattr(key, "dtype") and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


@jax.jit
def binary_predict(model: BinaryClassifier, X: jax.Array) -> jax.Array:
    """The network's probabilities as an ``[N]`` vector (its ``[N, 1]`` output, reshaped)."""
    return model(X).reshape(X.shape[0])


def _binary_loss(out: jax.Array, target: jax.Array) -> jax.Array:
    return binary_cross_entropy(out.reshape(target.shape), target)  # nn.BCELoss() (mean), [N,1] -> [N]


def _check_binary_data(X: jax.Array, y: jax.Array) -> None:
    if getattr(X, "ndim", None) != 2 or X.shape[1] != _BINARY_FEATURES:
        raise ValueError(f"X must have shape (N, {_BINARY_FEATURES}), got {getattr(X, 'shape', type(X))}")
    if getattr(y, "shape", None) != (X.shape[0],):
        raise ValueError(
            f"y must have shape ({X.shape[0]},) (one 0/1 label per row of X), got {getattr(y, 'shape', type(y))}"
        )


@functools.partial(jax.jit, static_argnames=("steps", "every"))
def _binary_run(model, X, y, lr, *, steps: int, every: int):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)  # at trace time (see _hello_run)
    if every:
        return _sgd_run(graphdef, params, rest, X, y, lr, _binary_loss, steps, every)
    params, losses = _sgd_run(graphdef, params, rest, X, y, lr, _binary_loss, steps)
    return nnx.merge(graphdef, params, rest), losses


def binary_train(
    model: BinaryClassifier, X: jax.Array, y: jax.Array, *, epochs: int, lr: float = 0.1
) -> tuple[BinaryClassifier, jax.Array]:
    """``epochs`` full-batch ``optim.SGD(lr)`` steps on ``nn.BCELoss`` in one scan.

    Returns (a new trained model, the loss of every epoch before its update, shape ``(epochs,)``);
    ``model`` is unchanged. ``X`` is ``(N, 5)``, ``y`` is ``(N,)`` (the model's ``[N, 1]`` output is
    reshaped to match: torch 2.13 rejects the tutorial's mismatched shapes).
    """
    _check_count(epochs, "epochs")
    lr = _check_lr(lr)
    _check_binary_data(X, y)
    return _binary_run(model, X, y, lr, steps=epochs, every=0)


def binary_snapshots(
    model: BinaryClassifier, X: jax.Array, y: jax.Array, *, snapshots: int, every: int, lr: float = 0.1
) -> jax.Array:
    """Train ``snapshots * every`` epochs as :func:`binary_train`; the probabilities after every
    ``every`` epochs, shape ``(snapshots, N)`` (the tutorial plots them every 20 of 200 epochs)."""
    _check_count(snapshots, "snapshots")
    _check_count(every, "every")
    lr = _check_lr(lr)
    _check_binary_data(X, y)
    probs = _binary_run(model, X, y, lr, steps=snapshots * every, every=every)
    return probs.reshape(snapshots, X.shape[0])
