"""Data-parallel layouts: the same ``train_step`` and the same scan on one device, under ``pmap``, or sharded.

A layout is what :func:`fnnet.train.fit` takes as ``layout=``; each builds the epoch function from the
one loop primitive, :func:`fnnet.train.scan_batches`, and places the data and the state:

* :func:`single` — one device (the default).
* :func:`pmap` — the state is replicated; every device computes the epoch's order, takes its slice of
  each global batch and averages gradients with ``lax.pmean`` over the axis ``"batch"`` inside the
  step (``make_train_step(..., axis_name="batch")``, which also makes BatchNorm use global batch
  statistics, as torch's ``SyncBatchNorm``); the epoch is a scan inside the pmapped function.
  ``jax.pmap`` is in maintenance mode since JAX 0.8 (it runs on ``jit`` + ``shard_map``); JAX
  recommends the sharding path for new code.
* :func:`sharding` — ``jit`` over a one-axis device ``Mesh``; each global batch is constrained to
  ``NamedSharding(mesh, P("batch"))`` and the parameters stay replicated, so XLA inserts the gradient
  all-reduce itself. After :func:`initialize_distributed` the mesh spans every process's devices, and
  each process places only its own rows of the training set.

Every layout gives the same global batches as one device (the order is drawn from the seed and the
epoch only; random layers' keys from each example's index), so the runs are the same computation:
in float64 they agree to ~1e-15; in float32 the per-device partial sums are added in another order,
which Adam amplifies over hundreds of steps (about 4e-7 relative over 50 steps, 2% by step 420).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from fnnet.train import epoch_permutation, make_epoch_fn, scan_batches

__all__ = [
    "AXIS",
    "Layout",
    "PeerWatch",
    "initialize_distributed",
    "local_copy",
    "pmap",
    "put_row_sharded",
    "sharding",
    "single",
]

AXIS = "batch"


def _check_divisible(batch_size: int, n_dev: int) -> None:
    if batch_size % n_dev:
        raise ValueError(
            f"the global batch ({batch_size}) is not divisible by the {n_dev} devices; "
            f"choose a batch size that is a multiple of {n_dev}"
        )


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where a training run's steps execute. ``mode`` is ``"none"``, ``"pmap"`` or ``"sharding"``."""

    mode: str
    devices: tuple
    axis_name: str | None = None

    def epoch_fn(self, train_step, *, batch_size: int, n_examples: int):
        """``run_epoch(state, x, y, data_key, epoch) -> (state, metrics)`` for this layout."""
        if self.mode == "none":
            return make_epoch_fn(train_step, batch_size=batch_size)
        _check_divisible(min(batch_size, n_examples), len(self.devices))
        if self.mode == "pmap":
            return _pmap_epoch_fn(train_step, min(batch_size, n_examples), self.devices)
        return _sharded_epoch_fn(train_step, min(batch_size, n_examples), self.mesh, n_examples)

    @property
    def mesh(self) -> Mesh:
        return Mesh(np.asarray(self.devices), (AXIS,))

    @property
    def multiprocess(self) -> bool:
        return any(d.process_index != jax.process_index() for d in self.devices)

    def put(self, array: Any) -> jax.Array:
        """Place one training array (``x`` or ``y``) as this layout's epoch function expects it."""
        if self.mode == "none":
            return jax.device_put(np.asarray(array), self.devices[0])
        if self.mode == "pmap":
            stacked = NamedSharding(self.mesh, P(AXIS))
            return jax.device_put(np.stack([np.asarray(array)] * len(self.devices)), stacked)
        if self.multiprocess:
            # Each process places only its own rows; the step's global gather x[idx] fetches the rest.
            return put_row_sharded(array, sharding=NamedSharding(self.mesh, P(AXIS)))
        return jax.device_put(np.asarray(array), NamedSharding(self.mesh, P()))

    def prepare(self, state):
        """The state placed for this layout (replicated over the mesh for sharding)."""
        if self.mode == "sharding":
            return jax.device_put(state, NamedSharding(self.mesh, P()))
        return state

    def describe(self) -> str:
        platform = self.devices[0].platform
        if self.mode == "none":
            return f"1 device ({platform})"
        processes = len({d.process_index for d in self.devices})
        across = f" in {processes} processes" if processes > 1 else ""
        return f"{self.mode} over {len(self.devices)} {platform} devices{across}"


def single(device: Any = None) -> Layout:
    """One device (default: the first local one)."""
    return Layout("none", (device if device is not None else jax.local_devices()[0],))


def pmap(devices: Any = None) -> Layout:
    """``jax.pmap`` over ``devices`` (default: every local device), gradients meeting on axis ``"batch"``."""
    devices = tuple(devices) if devices is not None else tuple(jax.local_devices())
    return Layout("pmap", devices, AXIS)


def sharding(devices: Any = None) -> Layout:
    """``jit`` over a one-axis mesh of ``devices`` (default: every device of every process)."""
    devices = tuple(devices) if devices is not None else tuple(jax.devices())
    return Layout("sharding", devices)


def _pmap_epoch_fn(train_step, batch_size: int, devices: tuple):
    """The pmap epoch: each device scans its slice of every global batch; ``x``/``y`` replicated."""
    n_dev = len(devices)
    local = batch_size // n_dev

    def device_epoch(state, x, y, data_key, epoch):
        order = epoch_permutation(data_key, epoch, jax.tree.leaves(x)[0].shape[0], batch_size)
        mine = jax.lax.dynamic_slice_in_dim(order, jax.lax.axis_index(AXIS) * local, local, axis=1)
        return scan_batches(train_step, state, x, y, mine)

    pmapped = jax.pmap(device_epoch, axis_name=AXIS, in_axes=(0, 0, 0, None, None), devices=list(devices))
    stacked = NamedSharding(Mesh(np.asarray(devices), (AXIS,)), P(AXIS))

    def run_epoch(state, x, y, data_key, epoch):
        replicated = jax.tree.map(lambda a: jax.device_put(jnp.stack([a] * n_dev), stacked), state)
        state, metrics = pmapped(replicated, x, y, data_key, jnp.asarray(epoch, jnp.int32))
        return jax.tree.map(lambda a: a[0], state), jax.tree.map(lambda a: a[0], metrics)

    return run_epoch


def _sharded_epoch_fn(train_step, batch_size: int, mesh: Mesh, n_examples: int):
    """The sharding epoch: global batches constrained to the mesh's batch axis, state replicated."""
    batch_spec = NamedSharding(mesh, P(AXIS))
    replicated = NamedSharding(mesh, P())

    def place(batch):
        constrain = functools.partial(jax.lax.with_sharding_constraint, shardings=batch_spec)
        return batch._replace(
            x=jax.tree.map(constrain, batch.x), y=jax.tree.map(constrain, batch.y), idx=constrain(batch.idx)
        )

    def run_epoch(state, x, y, data_key, epoch):
        order = epoch_permutation(data_key, epoch, n_examples, batch_size)
        return scan_batches(train_step, state, x, y, order, place=place)

    jitted = jax.jit(run_epoch, out_shardings=(replicated, replicated))

    def call(state, x, y, data_key, epoch):
        return jitted(jax.device_put(state, replicated), x, y, jax.device_put(data_key, replicated), epoch)

    return call


def local_copy(tree: Any) -> Any:
    """``tree`` with every array replaced by this process's own copy of it (NumPy).

    A state replicated over a mesh that spans several processes cannot be used by one process
    alone (a jitted call on it would wait for the others); its local copy can, e.g. to evaluate and
    export on process 0 after training.
    """

    def local(a: Any) -> Any:
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            return np.asarray(a.addressable_data(0))
        return a

    return jax.tree.map(local, tree)


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


def initialize_distributed(
    coordinator: str,
    num_processes: int,
    process_id: int,
    timeout_s: int = 60,
    heartbeat_timeout_s: int = 30,
    on_lost: Callable[[int, str], None] | None = None,
) -> PeerWatch:
    """``jax.distributed.initialize`` with CPU collectives (gloo), bounded waits, and a watch on the peers.

    * A coordinator that never answers becomes a ``RuntimeError`` after ``timeout_s`` seconds rather
      than a hang (or jaxlib's process abort).
    * ``heartbeat_timeout_s`` is jax.distributed's heartbeat timeout: the coordination service
      declares a process that stopped answering lost after that long, and ends the others.
    * That end is jaxlib's fatal abort (a C++ ``LOG(FATAL)`` with a stack trace; its Python hook,
      ``missed_heartbeat_callback``, cannot be used: jaxlib 0.10 fails converting the status). So
      fnnet also watches the peers itself (:class:`PeerWatch`): a process that dies (SIGKILL
      included) is noticed within about a second and ``on_lost(process, reason)`` runs; by default
      it prints one ``error:`` line naming the lost process and ends this process with status 1,
      before any collective or barrier can hang on it.
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
            heartbeat_timeout_seconds=heartbeat_timeout_s,
        )
    except Exception as err:  # jaxlib raises XlaRuntimeError / JaxRuntimeError here
        raise RuntimeError(
            f"could not start the distributed runtime at {coordinator} "
            f"(process {process_id} of {num_processes}): {str(err).splitlines()[0]}"
        ) from None
    return PeerWatch(host, process_id, num_processes, heartbeat_timeout_s, timeout_s, on_lost or _exit_on_lost)


def _exit_on_lost(process: int, reason: str) -> None:
    sys.stderr.write(f"error: lost process {process} ({reason}); stopping process {jax.process_index()}\n")
    sys.stderr.flush()
    os._exit(1)


def _kv_client():
    """jax's coordination-service client (its key-value store); private in jax, used by orbax too."""
    from jax._src.distributed import global_state

    return global_state.client


class PeerWatch:
    """Notices a lost peer process within about a second, so nothing waits on it.

    Every process listens on a TCP port of its own and publishes ``host:port`` in the coordination
    service's key-value store; a thread connects to every peer's port twice a second. A refused
    connection means the peer process is gone (the kernel closed its port: it was killed or
    crashed); no answer for ``timeout_s`` means it is unreachable. Either calls ``on_lost(process,
    reason)``, once. :meth:`done` stops the watch when this process has finished its share: a
    finished process then waits in jax.distributed's shutdown barrier for the others, so its port
    stays open until every process is done.
    """

    INTERVAL_S = 0.5

    def __init__(self, coordinator_host: str, process_id: int, num_processes: int, timeout_s: float,
                 init_timeout_s: float, on_lost: Callable[[int, str], None]):  # fmt: skip
        self.process_id, self.num_processes, self.timeout_s = process_id, num_processes, timeout_s
        self._on_lost, self._fired, self._stop = on_lost, False, threading.Event()
        self._client = _kv_client()
        self._server = socket.create_server(("", 0), backlog=64)
        address = f"{_local_address(coordinator_host)}:{self._server.getsockname()[1]}"
        self._client.key_value_set(f"fnnet/peer/{process_id}", address)
        self._peers: dict[int, tuple[str, int]] = {}
        self._last_seen: dict[int, float] = {}
        for peer in range(num_processes):
            if peer != process_id:
                text = self._client.blocking_key_value_get(f"fnnet/peer/{peer}", int(init_timeout_s * 1000))
                peer_host, _, port = text.rpartition(":")
                self._peers[peer] = (peer_host, int(port))
                self._last_seen[peer] = time.monotonic()
        threading.Thread(target=self._serve, name="fnnet-peer-listen", daemon=True).start()
        threading.Thread(target=self._watch, name="fnnet-peer-watch", daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
                connection.close()
            except OSError:
                return

    def check(self) -> None:
        """Probe every watched peer once now (``on_lost`` runs for a lost one)."""
        if self._stop.is_set():
            return
        now = time.monotonic()
        for peer, (host, port) in list(self._peers.items()):
            try:
                with socket.create_connection((host, port), timeout=min(2.0, self.timeout_s)):
                    self._last_seen[peer] = now
            except ConnectionRefusedError:
                self._lost(peer, f"process {peer} is gone: its port {host}:{port} refused the connection")
                self._peers.pop(peer, None)
            except OSError as err:
                if now - self._last_seen.get(peer, now) > self.timeout_s:
                    self._lost(peer, f"process {peer} did not answer for {self.timeout_s:g}s ({err})")
                    self._peers.pop(peer, None)

    def _watch(self) -> None:
        while not self._stop.wait(self.INTERVAL_S) and self._peers:
            self.check()

    def _lost(self, peer: int, reason: str) -> None:
        if not self._fired:
            self._fired = True
            self._on_lost(peer, reason)

    def done(self) -> None:
        """This process finished its share normally: stop watching the others."""
        self._stop.set()


def _local_address(coordinator_host: str) -> str:
    """The address of this host on the route to the coordinator (what peers can connect to)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((coordinator_host, 9))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"
