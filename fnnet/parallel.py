"""Data-parallel training: the same ``train_step`` under ``pmap`` or under ``jit`` with shardings.

* **pmap** (the design's path): the state is replicated, every device computes the epoch's order,
  takes its slice of each global batch and averages gradients with ``lax.pmean`` over the axis
  ``"batch"`` inside the step (``make_train_step(..., axis_name="batch")``); the whole epoch is a
  ``lax.scan`` inside the pmapped function. ``jax.pmap`` is in maintenance mode since JAX 0.8: it
  now runs on ``jit`` + ``shard_map``, and JAX recommends the sharding path for new code.
* **sharding** (JAX's recommended path): ``jit`` over a one-axis device ``Mesh``; each global batch
  is constrained to ``NamedSharding(mesh, P("batch"))`` and the parameters stay replicated, so XLA
  inserts the gradient all-reduce itself.
* **many processes**: ``jax.distributed.initialize`` (``--coordinator --num-processes
  --process-id``) makes the devices of every process one global mesh for the sharding path.

Both paths give the same global batches as one device (the order is drawn from the seed and the
epoch only, and dropout/augmentation keys from each example's index), so the runs are the same
computation. In float64 they agree to ~1e-15; in float32 the per-device partial sums are added in
another order, which Adam amplifies over hundreds of steps (about 4e-7 relative over 50 steps, 2%
by step 420), so float32 layouts agree closely but not bitwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import socket
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from fnnet.train import Batch, TrainState, epoch_permutation, make_epoch_fn

__all__ = [
    "ParallelContext",
    "add_arguments",
    "setup",
    "epoch_runner",
    "make_pmap_epoch_fn",
    "make_sharded_epoch_fn",
    "initialize_distributed",
]

AXIS = "batch"
DTYPES = {"float32": (np.float32, jnp.float32), "float64": (np.float64, jnp.float64)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The parallel, dtype and multi-process flags of ``experiments/apparel_classifier.py``."""
    env = os.environ
    parser.add_argument("--parallel", choices=("none", "pmap", "sharding"), default="none")
    parser.add_argument("--devices", type=int, default=None, help="local devices to use (default: all)")
    parser.add_argument(
        "--dtype",
        choices=tuple(DTYPES),
        default="float32",
        help="float64 turns on jax_enable_x64 for the run (torch's .double())",
    )
    parser.add_argument("--coordinator", default=env.get("FNNET_COORDINATOR"), help="HOST:PORT of process 0")
    parser.add_argument("--num-processes", type=int, default=int(env.get("FNNET_NUM_PROCESSES", "1")))
    parser.add_argument("--process-id", type=int, default=int(env.get("FNNET_PROCESS_ID", "0")))
    parser.add_argument("--coordinator-timeout", type=int, default=60, help="seconds to wait for all processes")


@dataclasses.dataclass(frozen=True)
class ParallelContext:
    mode: str
    devices: tuple
    num_processes: int
    process_index: int
    dtype_name: str

    @property
    def np_dtype(self):
        return DTYPES[self.dtype_name][0]

    @property
    def jnp_dtype(self):
        return DTYPES[self.dtype_name][1]

    def describe(self) -> str:
        if self.mode == "none":
            return f"1 device ({self.devices[0].platform}), {self.dtype_name}"
        procs = f" in {self.num_processes} processes" if self.num_processes > 1 else ""
        return f"{self.mode} over {len(self.devices)} {self.devices[0].platform} devices{procs}, {self.dtype_name}"


def _wait_for_coordinator(host: str, port: int, timeout_s: float) -> None:
    """Process > 0: wait until the coordinator accepts TCP connections, or raise after ``timeout_s``.

    jaxlib aborts the whole process (a C++ fatal error, no Python exception) when the coordinator
    never answers, so reachability is checked here first to fail with one clear line instead.
    """
    deadline = time.monotonic() + timeout_s
    last: OSError | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=min(2.0, max(0.1, deadline - time.monotonic()))):
                return
        except OSError as err:
            last = err
            time.sleep(0.2)
    raise RuntimeError(
        f"could not reach the coordinator {host}:{port} within {timeout_s:g}s ({last}); "
        f"start process 0 first, or check --coordinator"
    )


def initialize_distributed(coordinator: str, num_processes: int, process_id: int, timeout_s: int = 60) -> None:
    """``jax.distributed.initialize`` with CPU collectives (gloo) and a bounded wait.

    A coordinator that never answers becomes a ``RuntimeError`` after ``timeout_s`` seconds rather
    than a hang (or jaxlib's process abort).
    """
    host, sep, port_text = coordinator.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"--coordinator must be HOST:PORT, got {coordinator!r}")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id must be in [0, {num_processes}), got {process_id}")
    if process_id > 0:
        _wait_for_coordinator(host, int(port_text), timeout_s)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=timeout_s,
        )
    except Exception as err:  # jaxlib raises XlaRuntimeError / JaxRuntimeError here
        raise RuntimeError(
            f"could not start the distributed runtime at {coordinator} "
            f"(process {process_id} of {num_processes}): {str(err).splitlines()[0]}"
        ) from None


def setup(args: argparse.Namespace) -> ParallelContext:
    """Validate the flags, start the distributed runtime if asked, and pick the devices."""
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    if args.num_processes < 1:
        raise ValueError(f"--num-processes must be >= 1, got {args.num_processes}")
    if args.num_processes > 1:
        if args.parallel != "sharding":
            raise ValueError("--num-processes > 1 needs --parallel sharding (one global mesh over every process)")
        if not args.coordinator:
            raise ValueError("--num-processes > 1 needs --coordinator HOST:PORT (or FNNET_COORDINATOR)")
        initialize_distributed(args.coordinator, args.num_processes, args.process_id, args.coordinator_timeout)
    local = jax.local_devices()
    if args.devices is not None:
        if args.devices < 1:
            raise ValueError(f"--devices must be >= 1, got {args.devices}")
        if args.devices > len(local):
            raise ValueError(
                f"--devices {args.devices}: only {len(local)} {local[0].platform} device(s) exist here "
                f"(on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N gives N)"
            )
        if args.parallel == "none" and args.devices != 1:
            raise ValueError(f"--devices {args.devices} needs --parallel pmap or sharding")
    if args.parallel == "none":
        devices = (local[0],)
    elif args.num_processes > 1:
        if args.devices is not None and args.devices != len(local):
            raise ValueError("--devices cannot be combined with --num-processes > 1 (every local device is used)")
        devices = tuple(jax.devices())
    else:
        devices = tuple(local[: args.devices or len(local)])
    return ParallelContext(args.parallel, devices, jax.process_count(), jax.process_index(), args.dtype)


def make_pmap_epoch_fn(train_step, *, batch_size: int, devices) -> Callable:
    """``run_epoch(state, x, y, data_key, epoch)`` on ``pmap``; ``train_step`` must use ``axis_name="batch"``.

    Takes and returns an unreplicated state (replicated on entry, device 0's copy on exit, which
    every device holds identically after ``pmean``); ``x``/``y`` must come from ``put_replicated``.
    """
    n_dev = len(devices)
    local = batch_size // n_dev

    def device_epoch(state, x, y, data_key, epoch):
        order = epoch_permutation(data_key, epoch, x.shape[0], batch_size)
        mine = jax.lax.dynamic_slice_in_dim(order, jax.lax.axis_index(AXIS) * local, local, axis=1)

        def body(st, idx):
            return train_step(st, Batch(x=x[idx], y=y[idx], idx=idx))

        return jax.lax.scan(body, state, mine)

    pmapped = jax.pmap(device_epoch, axis_name=AXIS, in_axes=(0, 0, 0, None, None), devices=list(devices))
    sharding = NamedSharding(Mesh(np.asarray(devices), (AXIS,)), P(AXIS))

    def run_epoch(state, x, y, data_key, epoch):
        replicated = jax.tree.map(lambda a: jax.device_put(jnp.stack([a] * n_dev), sharding), state)
        state, metrics = pmapped(replicated, x, y, data_key, jnp.asarray(epoch, jnp.int32))
        return jax.tree.map(lambda a: a[0], state), jax.tree.map(lambda a: a[0], metrics)

    return run_epoch


def make_sharded_epoch_fn(train_step, *, batch_size: int, mesh: Mesh, n_examples: int | None = None) -> Callable:
    """``run_epoch(state, x, y, data_key, epoch)`` under ``jit`` with each global batch sharded on ``mesh``.

    ``n_examples`` is the true training-set size when ``x`` carries padding rows (``put_row_sharded``).
    """
    batch_sharding = NamedSharding(mesh, P(AXIS))
    replicated = NamedSharding(mesh, P())

    def run_epoch(state, x, y, data_key, epoch):
        order = epoch_permutation(data_key, epoch, n_examples or x.shape[0], batch_size)

        def body(st, idx):
            idx = jax.lax.with_sharding_constraint(idx, batch_sharding)
            xb = jax.lax.with_sharding_constraint(x[idx], NamedSharding(mesh, P(AXIS, None)))
            yb = jax.lax.with_sharding_constraint(y[idx], batch_sharding)
            return train_step(st, Batch(x=xb, y=yb, idx=idx))

        return jax.lax.scan(body, state, order)

    jitted = jax.jit(run_epoch, out_shardings=(replicated, replicated))

    def call(state, x, y, data_key, epoch):
        state = jax.device_put(state, replicated)
        return jitted(state, x, y, jax.device_put(data_key, replicated), epoch)

    return call


def put_row_sharded(array, *, sharding: NamedSharding) -> jax.Array:
    """A global array split by rows over ``sharding``'s devices; this process supplies only its rows.

    Rows are zero-padded to a multiple of the device count (the padding is never indexed: epoch
    orders only draw indices below the true length).
    """
    array = np.asarray(array)
    n_dev = sharding.mesh.size
    pad = (-array.shape[0]) % n_dev
    shape = (array.shape[0] + pad,) + array.shape[1:]

    def rows(index):
        block = array[index]
        missing = (index[0].stop or shape[0]) - (index[0].start or 0) - block.shape[0]
        if missing:
            block = np.concatenate([block, np.zeros((missing,) + block.shape[1:], block.dtype)])
        return block

    return jax.make_array_from_callback(shape, sharding, rows)


def epoch_runner(ctx: ParallelContext, recipe, state: TrainState, n_train: int):
    """``(epoch_fn, put_data, state)`` for ``fnnet.fit`` on the context's devices."""
    from fnnet.apparel import make_step  # apparel builds on train; parallel is chosen by the caller

    batch = n_train if recipe.batch_size is None else recipe.batch_size
    n_dev = len(ctx.devices)
    if ctx.mode == "none":
        return make_epoch_fn(make_step(recipe), batch_size=batch), jnp.asarray, state
    if batch % n_dev:
        raise ValueError(
            f"the global batch ({batch}) is not divisible by the {n_dev} devices; "
            f"choose --batch-size a multiple of {n_dev}"
        )
    mesh = Mesh(np.asarray(ctx.devices), (AXIS,))
    replicated = NamedSharding(mesh, P())
    if ctx.mode == "pmap":
        stacked = NamedSharding(mesh, P(AXIS))
        put = lambda a: jax.device_put(np.stack([np.asarray(a)] * n_dev), stacked)  # noqa: E731
        fn = make_pmap_epoch_fn(make_step(recipe, axis_name=AXIS), batch_size=batch, devices=ctx.devices)
        return fn, put, state
    if ctx.num_processes > 1:
        # Each process places only its own rows of the training set on its devices; the global
        # gather x[idx] of each step fetches examples from whichever process holds them.
        put = functools.partial(put_row_sharded, sharding=NamedSharding(mesh, P(AXIS)))
    else:
        put = lambda a: jax.device_put(np.asarray(a), replicated)  # noqa: E731
    fn = make_sharded_epoch_fn(make_step(recipe), batch_size=batch, mesh=mesh, n_examples=n_train)
    return fn, put, state
