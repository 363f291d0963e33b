"""Command-line pieces shared by the experiment scripts: argument types, the parallel/dtype flags with
their ``FNNET_*`` variables, and the one-line error convention.

The library never parses a command line (DESIGN.md); this module turns flags into library calls:
``--parallel``/``--devices``/``--coordinator``... into a ``fnnet.parallel`` layout.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import re
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np

from fnnet import parallel

DTYPES = {"float32": (np.float32, jnp.float32), "float64": (np.float64, jnp.float64)}


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_parallel_arguments(parser: argparse.ArgumentParser) -> None:
    """``--parallel --devices --dtype --coordinator --num-processes --process-id`` (+ ``FNNET_*``)."""
    env = os.environ
    parser.add_argument("--parallel", choices=("none", "pmap", "sharding"), default="none")
    parser.add_argument("--devices", type=int, default=None, help="local devices to use (default: all)")
    parser.add_argument(
        "--dtype", choices=tuple(DTYPES), default="float32", help="float64 turns on jax_enable_x64 (torch's .double())"
    )
    parser.add_argument("--coordinator", default=env.get("FNNET_COORDINATOR"), help="HOST:PORT of process 0")
    parser.add_argument("--num-processes", type=int, default=int(env.get("FNNET_NUM_PROCESSES", "1")))
    parser.add_argument("--process-id", type=int, default=int(env.get("FNNET_PROCESS_ID", "0")))
    parser.add_argument("--coordinator-timeout", type=int, default=60, help="seconds to wait for all processes")
    parser.add_argument(
        "--heartbeat-timeout",
        type=positive_int,
        default=int(env.get("FNNET_HEARTBEAT_TIMEOUT", "30")),
        metavar="SECONDS",
        help="a process silent this long is declared lost and the others stop (default 30)",
    )


@dataclasses.dataclass(frozen=True)
class ParallelSetup:
    layout: parallel.Layout
    num_processes: int
    process_index: int
    dtype_name: str
    watch: parallel.PeerWatch | None = None  # multi-process runs: the watch on the other processes

    @property
    def np_dtype(self):
        return DTYPES[self.dtype_name][0]

    @property
    def jnp_dtype(self):
        return DTYPES[self.dtype_name][1]

    def describe(self) -> str:
        return f"{self.layout.describe()}, {self.dtype_name}"


def setup_parallel(args: argparse.Namespace) -> ParallelSetup:
    """Validate the flags, start the distributed runtime if asked, and pick the layout."""
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    if args.num_processes < 1:
        raise ValueError(f"--num-processes must be >= 1, got {args.num_processes}")
    if args.num_processes > 1:
        if args.parallel != "sharding":
            raise ValueError("--num-processes > 1 needs --parallel sharding (one global mesh over every process)")
        if not args.coordinator:
            raise ValueError("--num-processes > 1 needs --coordinator HOST:PORT (or FNNET_COORDINATOR)")
        watch = parallel.initialize_distributed(
            args.coordinator,
            args.num_processes,
            args.process_id,
            args.coordinator_timeout,
            args.heartbeat_timeout,
            on_lost=_lost_process,
        )
        _filter_native_stderr(watch)
    else:
        watch = None
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
        layout = parallel.single(local[0])
    elif args.num_processes > 1:
        if args.devices is not None and args.devices != len(local):
            raise ValueError("--devices cannot be combined with --num-processes > 1 (every local device is used)")
        layout = parallel.sharding(jax.devices())
    else:
        devices = local[: args.devices or len(local)]
        layout = parallel.pmap(devices) if args.parallel == "pmap" else parallel.sharding(devices)
    return ParallelSetup(layout, jax.process_count(), jax.process_index(), args.dtype, watch)


_FATAL = re.compile(r"^F\d{4} .*Terminating process because the JAX distributed service detected fatal errors")


def _filter_native_stderr(watch) -> None:
    """Multi-process runs: keep jaxlib's native log spam (absl I/W/E records, gRPC details, stack
    traces) off the terminal, so a failure reads as one line.

    File descriptor 2 becomes a pipe read by a thread; Python's own ``sys.stderr`` keeps writing to
    the real stderr, so everything in the pipe is native output. It is kept (the last 200 lines) and
    shown only if the process fails in a way fnnet does not explain. When jaxlib announces its fatal
    abort because a peer died, the thread checks the peers at once, so the line naming the lost
    process is printed (and the process ends) first.
    """
    read_fd, write_fd = os.pipe()
    real = os.dup(2)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sys.stderr = os.fdopen(real, "w", buffering=1)
    recent: collections.deque[str] = collections.deque(maxlen=200)
    _NATIVE_LINES.append(recent)

    def pump() -> None:
        with os.fdopen(read_fd, errors="replace") as pipe:
            for line in pipe:
                recent.append(line)
                if _FATAL.match(line):
                    watch.check()  # a lost peer: its line, then exit 1 (before jaxlib's abort)
                    sys.stderr.write("".join(recent))

    threading.Thread(target=pump, name="fnnet-native-stderr", daemon=True).start()


_NATIVE_LINES: list = []


def _lost_process(process: int, reason: str) -> None:
    """A peer died: one line, then end at once (no barrier or collective may wait on it)."""
    sys.stderr.write(f"error: lost process {process}: {reason}; relaunch every process with --resume\n")
    sys.stderr.flush()
    os._exit(1)


def finish(setup: ParallelSetup | None, status: int, message: str = "") -> int:
    """Print ``message`` (one line, stderr) and return the exit status of a successful run.

    A failed run ends here at once (``os._exit``) once its line is out: everything it wrote is
    already complete (writes are atomic), and nothing after the line may add to it (orbax's abandoned
    reads and writes print tracebacks of the same failure when collected at exit). In a multi-process
    run a lost peer explains a failure better (its own line, exit 1), and ending at once lets the
    others notice through their watch instead of waiting in a collective or a shutdown barrier.
    """
    watch = None if setup is None else setup.watch
    if watch is not None and status != 0:
        watch.check()
    if message:
        print(message, file=sys.stderr, flush=True)
    if status == 0:
        if watch is not None:
            watch.done()
        return status
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
