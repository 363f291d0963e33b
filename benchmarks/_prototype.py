"""A hand-written jit + scan JAX prototype of the apparel MLP workloads: the bar for fnnet's overhead.

Issue 6 sets the CPU targets from such a prototype ("fnnet's public API must come within 1.2x of
it"), so ``mlp_mini.py`` and ``mlp_full.py`` time one next to fnnet (``--impls ...,prototype``): if
fnnet is within 1.2x of the prototype, whatever is left between torch and fnnet is the machine's,
not fnnet's API. Nothing from fnnet runs inside these programs: plain ``jnp`` for the 784-500-10
MLP, ``log_softmax`` cross entropy and torch's Adam update written out (the arithmetic of
``torch.optim.Adam``: ``lerp`` first moment, ``sqrt(v)/sqrt(bc2) + eps``, bias corrections as exact
as torch's double-precision ones), the whole epoch or run under one ``jit`` with ``lax.scan``.
Weights come in as a plain dict ``{"w1": (500, 784), "b1", "w2": (10, 500), "b2"}`` in torch's
``(out, in)`` layout (``x @ w.T``, as ``nn.Linear`` and fnnet compute it) taken from fnnet's initial
state, so both start from the same numbers and their results are compared.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp


def params_from_state(state: Any) -> dict[str, jax.Array]:
    """The weights of fnnet's ``TrainState`` of ``mlp((784, 500, 10))`` as the prototype's plain dict."""
    from fnnet.nn import state_dict

    sd = state_dict(state.model())
    return {
        "w1": jnp.asarray(sd["0.weight"]),
        "b1": jnp.asarray(sd["0.bias"]),
        "w2": jnp.asarray(sd["2.weight"]),
        "b2": jnp.asarray(sd["2.bias"]),
    }


def _logits(p, x):
    return jnp.maximum(x @ p["w1"].T + p["b1"], 0.0) @ p["w2"].T + p["b2"]


def _loss(p, x, y):
    logp = jax.nn.log_softmax(_logits(p, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _adam(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    def init(p):
        zeros = jax.tree.map(jnp.zeros_like, p)
        return zeros, zeros, jnp.zeros((), jnp.int32)

    def step(p, g, state):
        m, v, t = state
        t = t + 1
        tf = t.astype(jnp.float32)
        m = jax.tree.map(lambda m, g: m + (g - m) * (1 - b1), m, g)
        v = jax.tree.map(lambda v, g: v * b2 + (1 - b2) * g * g, v, g)
        # torch computes 1 - beta**t in Python doubles; in float32 1 - 0.999**t would cancel to a few
        # significant bits, so the same value is taken as -expm1(t * log(beta)), log in double.
        step_size = lr / -jnp.expm1(tf * math.log(b1))
        bc2_sqrt = jnp.sqrt(-jnp.expm1(tf * math.log(b2)))
        p = jax.tree.map(lambda p, m, v: p - step_size * (m / (jnp.sqrt(v) / bc2_sqrt + eps)), p, m, v)  # addcdiv_
        return p, (m, v, t)

    return init, step


def make_minibatch_epoch(*, lr: float, batch_size: int):
    """``epoch(p, x, y, key) -> (p, losses)``: one shuffled epoch of ``batch_size`` mini-batches.

    The order is ``jax.random.permutation(key, n)`` cut into ``n // batch_size`` batches (the last
    examples dropped), drawn inside the program as fnnet does.
    """
    init, adam_step = _adam(lr)

    @jax.jit
    def epoch(p, x, y, key):
        n = x.shape[0]
        steps = n // batch_size
        order = jax.random.permutation(key, n)[: steps * batch_size].reshape(steps, batch_size)

        def body(carry, idx):
            p, opt = carry
            loss, g = jax.value_and_grad(_loss)(p, x[idx], y[idx])
            p, opt = adam_step(p, g, opt)
            return (p, opt), loss

        (p, _), losses = jax.lax.scan(body, (p, init(p)), order)
        return p, losses

    return epoch


def make_full_batch_run(*, lr: float, epochs: int, accumulate: bool):
    """``run(p, x, y, vx, vy) -> (p, val_losses)``: the tutorial's full-batch loop, all epochs in one scan.

    ``accumulate=True`` is the published loop without ``zero_grad`` (each step uses the running sum
    of all gradients so far).
    """
    init, adam_step = _adam(lr)

    @jax.jit
    def run(p, x, y, vx, vy):
        def body(carry, _):
            p, opt, acc = carry
            g = jax.grad(_loss)(p, x, y)
            acc = jax.tree.map(jnp.add, acc, g) if accumulate else g
            p, opt = adam_step(p, acc, opt)
            return (p, opt, acc), _loss(p, vx, vy)

        zeros = jax.tree.map(jnp.zeros_like, p)
        (p, _, _), val_losses = jax.lax.scan(body, (p, init(p), zeros), length=epochs)
        return p, val_losses

    return run
