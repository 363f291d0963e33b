"""Timing probe for fnnet's CPU convolution lowering (run by hand; prints a table; not a test).

    python benchmarks/conv_probe.py [--repeats 7] [--scan-steps 10] [--full-batch 54000]
                                    [--only strong,full] [--impls fnnet,xla,torch] [--keep-freed-memory]

Times one training step (forward, cross-entropy, backward, Adam update written as plain arithmetic)
of two networks, in one process, float32:

* ``strong``: conv(1->32, 3, p1) -> ReLU -> maxpool2 -> conv(32->64, 3, p1) -> ReLU -> maxpool2 ->
  flatten -> Linear(64*7*7 -> 10), batch 128; as a jitted step called from Python AND as
  ``--scan-steps`` steps inside one jitted ``lax.scan`` (time per step);
* ``full``: the same shape with 4 channels (conv 1->4, 4->4, Linear(4*7*7 -> 10)) on one full batch of
  ``--full-batch`` images (54,000: the as-published CNN's step), one jitted step.

Implementations: ``fnnet`` (``fnnet.nn.functional.conv2d``: the matrix-product lowering on a CPU),
``xla`` (plain ``lax.conv_general_dilated`` differentiated by ``jax.grad``: XLA's own convolution) and
``torch`` (eager, default threads, ``torch.optim.Adam``). Pooling, ReLU, the Linear layer and the loss
are the same plain jnp/lax code for both JAX rows; max-pooling is ``lax.reduce_window`` with a one-pass
backward (a ``custom_vjp``): JAX's own reduce_window/max gradients cost more than the convolutions'
backward here (that is the pooling functionals' business, not this probe's).

Each row: first call (compile, excluded), then ``--repeats`` timed calls; median, min and max in ms.
The machine has 2 cores shared with other workers: repeat the run and read the spread.

``--keep-freed-memory``: glibc's allocator hands large freed blocks back to the kernel, so a jitted
step called from Python, whose XLA temporaries (~40 MB for the strong step, ~2 GB for the full batch)
are one fresh allocation per call, page-faults all of them again every call (~0.4 ms per MB on this
VM); a step inside a compiled scan allocates once. The flag calls ``mallopt`` (one arena, no ``mmap``
for large blocks, no trimming) before jax and torch are imported, so freed memory is reused by both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

STRONG = {"batch": 128, "c1": 32, "c2": 64}


def _stats(times: list[float]) -> dict[str, float]:
    ms = [t * 1e3 for t in times]
    return {"median": statistics.median(ms), "min": min(ms), "max": max(ms)}


def _time(call, repeats: int, per: int = 1) -> dict[str, float]:
    call()  # warm-up: compile / first allocation
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) / per)
    return _stats(times)


# ------------------------------------------------------------------------------------------- JAX
def _jax_step(conv_impl: str):
    import jax
    import jax.numpy as jnp
    from jax import lax

    import fnnet.nn.functional as F

    def conv(x, w, b):
        if conv_impl == "fnnet":
            return F.conv2d(x, w, b, padding=1)
        y = lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)))
        return y + b[None, :, None, None]

    @jax.custom_vjp
    def pool(x):  # 2x2 max-pooling, stride 2 (the forward of flax's max_pool)
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def pool_fwd(x):
        y = pool(x)
        return y, (x, y)

    def pool_bwd(res, g):
        # the gradient goes to every window element equal to the maximum: one fused elementwise pass (JAX's
        # own rules for max/reduce_window cost 1.5-2x the whole convolution backward here). Ties in this
        # network are ReLU's exact zeros, whose gradient ReLU zeroes anyway.
        x, y = res
        windows = x.reshape(x.shape[0], x.shape[1], y.shape[2], 2, y.shape[3], 2)

        def up(a):
            return jnp.broadcast_to(a[:, :, :, None, :, None], windows.shape)

        return (jnp.where(windows == up(y), up(g), 0).reshape(x.shape),)

    pool.defvjp(pool_fwd, pool_bwd)

    def loss(p, x, y):
        h = pool(jax.nn.relu(conv(x, p["w1"], p["b1"])))
        h = pool(jax.nn.relu(conv(h, p["w2"], p["b2"])))
        logits = h.reshape(h.shape[0], -1) @ p["wl"].T + p["bl"]
        return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * jax.nn.one_hot(y, 10, dtype=logits.dtype), axis=1))

    def step(state, batch):
        p, m, v, t = state
        value, g = jax.value_and_grad(loss)(p, *batch)
        t = t + 1
        m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
        v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
        c1, c2 = 1 - 0.9**t, 1 - 0.999**t
        p = jax.tree.map(lambda p, m, v: p - 1e-3 * (m / c1) / (jnp.sqrt(v / c2) + 1e-8), p, m, v)
        return (p, m, v, t), value

    return step


def _params(rng, c1: int, c2: int) -> dict[str, np.ndarray]:
    def uniform(shape, fan_in):
        bound = 1 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    return {
        "w1": uniform((c1, 1, 3, 3), 9),
        "b1": uniform((c1,), 9),
        "w2": uniform((c2, c1, 3, 3), 9 * c1),
        "b2": uniform((c2,), 9 * c1),
        "wl": uniform((10, c2 * 49), c2 * 49),
        "bl": uniform((10,), c2 * 49),
    }


def time_jax(impl: str, params, x, y, repeats: int, scan_steps: int) -> dict[str, dict]:
    import jax
    import jax.numpy as jnp
    from jax import lax

    step = _jax_step(impl)
    p = {k: jnp.asarray(v) for k, v in params.items()}
    zeros = jax.tree.map(jnp.zeros_like, p)
    state = (p, zeros, zeros, jnp.float32(0))
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    jitted = jax.jit(step)
    rows = {"jit step": _time(lambda: jax.block_until_ready(jitted(state, (xj, yj))), repeats)}
    if scan_steps:
        xs = jnp.broadcast_to(xj, (scan_steps,) + xj.shape)
        ys = jnp.broadcast_to(yj, (scan_steps,) + yj.shape)
        scanned = jax.jit(lambda s, b: lax.scan(step, s, b))
        rows[f"scan x{scan_steps}, per step"] = _time(
            lambda: jax.block_until_ready(scanned(state, (xs, ys))), repeats, per=scan_steps
        )
    return rows


# ----------------------------------------------------------------------------------------- torch
def time_torch(params, x, y, repeats: int) -> dict[str, dict]:
    import torch
    from torch import nn

    c1, c2 = params["w1"].shape[0], params["w2"].shape[0]
    model = nn.Sequential(
        nn.Conv2d(1, c1, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(c1, c2, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(c2 * 49, 10),
    )  # fmt: skip
    with torch.no_grad():
        for (name, value), param in zip(params.items(), model.parameters()):
            assert param.shape == value.shape, name
            param.copy_(torch.from_numpy(value))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()

    return {"eager step": _time(step, repeats)}


# ------------------------------------------------------------------------------------------ main
def _keep_freed_memory() -> None:
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # <malloc.h>
    for option, value in ((m_arena_max, 1), (m_mmap_max, 0), (m_trim_threshold, 2**31 - 1)):
        if libc.mallopt(option, value) != 1:
            raise OSError(f"mallopt({option}, {value}) failed")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--scan-steps", type=int, default=10)
    p.add_argument("--full-batch", type=int, default=54_000)
    p.add_argument("--full-repeats", type=int, default=3)
    p.add_argument("--only", default="strong,full")
    p.add_argument("--impls", default="fnnet,xla,torch")
    p.add_argument("--keep-freed-memory", action="store_true", help="mallopt before importing jax/torch")
    args = p.parse_args(argv)
    if args.keep_freed_memory:
        _keep_freed_memory()
    import jax
    import torch

    threads = torch.get_num_threads()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, torch {torch.__version__} ({threads} threads)")
    print(f"load average at start: {os.getloadavg()}")
    print(f"keep freed memory (mallopt): {args.keep_freed_memory}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    impls = args.impls.split(",")
    rng = np.random.default_rng(0)
    nets = {"strong": (STRONG["batch"], STRONG["c1"], STRONG["c2"]), "full": (args.full_batch, 4, 4)}
    print(f"{'network':<8} {'impl':<6} {'what':<22} {'median ms':>10} {'min':>9} {'max':>9}")
    for net in args.only.split(","):
        batch, c1, c2 = nets[net]
        params = _params(rng, c1, c2)
        x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, batch).astype(np.int32)
        repeats = args.repeats if net == "strong" else args.full_repeats
        scan_steps = args.scan_steps if net == "strong" else 0
        for impl in impls:
            rows = (
                time_torch(params, x, y, repeats)
                if impl == "torch"
                else time_jax(impl, params, x, y, repeats, scan_steps)
            )
            for what, s in rows.items():
                print(f"{net:<8} {impl:<6} {what:<22} {s['median']:10.1f} {s['min']:9.1f} {s['max']:9.1f}", flush=True)
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
