"""Per-epoch checkpoints of a ``TrainState`` with orbax: atomic, verified, and refused when they belong
to another run.

* **Atomic.** orbax writes each checkpoint into a temporary directory and renames it into place only
  once it is complete, so a process killed at any moment (SIGKILL included) leaves the previous
  checkpoints and possibly the new one, never a torn one; unfinished temporaries are ignored. The
  JSON ``meta`` item travels in the same atomic step as the arrays, so the run's history and the
  weights it describes cannot disagree.
* **Verified.** Each checkpoint holds a manifest of its files' SHA-256 (written last) and ``meta``
  carries the SHA-256 of every array's bytes; a checkpoint whose files were truncated or altered
  afterwards fails the file check (before orbax reads anything), the restore, or the array digest,
  and :meth:`Checkpointer.restore_latest` then says so (one line through ``log``) and falls back to
  the next newest intact one. A checkpoint without a manifest (the process stopped between orbax's
  rename and the manifest) is complete as far as orbax goes: the restore and the array digest alone
  check it, and it gets its manifest once it passes. The last
  ``max_to_keep`` (default 2) complete checkpoints are kept. Damaged ones newer than the one resumed
  from are renamed ``damaged-<epoch>`` (kept, out of the way). None intact: :class:`CheckpointError`.
* **Refused for another run.** A checkpoint records the ``run_config`` it was written with; resuming
  with a different one raises :class:`ConfigMismatchError`, listing each differing setting with both
  values, rather than silently training a different run.
* **Disk full.** A failed write raises ``OSError`` naming the checkpoint; earlier checkpoints stay.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import json
import logging
import os
import pathlib
import shutil
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from fnnet._io import atomic_write_text
from fnnet.train import TrainState

__all__ = ["CheckpointError", "Checkpointer", "ConfigMismatchError", "config_diff", "replace_from_tree", "state_tree"]

# orbax logs every save at INFO through absl; a training run prints its own progress instead.
logging.getLogger("absl").setLevel(logging.WARNING)


class CheckpointError(ValueError):
    """No usable checkpoint (all damaged, or one that does not fit this model and optimizer)."""


class ConfigMismatchError(ValueError):
    """The checkpoint was written by a run with other settings; ``differences`` maps each setting to
    ``(checkpoint value, this run's value)``."""

    def __init__(self, directory: pathlib.Path, differences: dict[str, tuple[Any, Any]]):
        self.directory, self.differences = directory, differences
        listed = "; ".join(f"{k}: checkpoint {a!r}, this run {b!r}" for k, (a, b) in differences.items())
        super().__init__(
            f"--resume refused: {directory} was written with other settings ({listed}); "
            "rerun with the same settings, or start a new run in another --out"
        )


def state_tree(state: TrainState) -> dict[str, Any]:
    """The array part of a ``TrainState`` that a checkpoint holds (not the layers' own PRNG keys)."""
    return {
        "step": state.step,
        "params": state.params,
        "buffers": state.buffers,
        "opt_state": state.opt_state,
        "key": state.key,
    }


def replace_from_tree(state: TrainState, tree: Mapping[str, Any]) -> TrainState:
    """``state`` with its arrays replaced by a restored :func:`state_tree`."""
    return state.replace(
        step=tree["step"],
        params=tree["params"],
        buffers=tree["buffers"],
        opt_state=tree["opt_state"],
        key=tree["key"],
    )


def digest(tree: Any) -> str:
    """SHA-256 over every leaf's dtype, shape and bytes, in tree order."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        a = np.asarray(jax.device_get(leaf))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def config_diff(saved: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{setting: (saved value, current value)}`` for every setting that differs (missing -> None).

    ``current`` is compared as it reads back from JSON (tuples become lists), as ``saved`` was stored.
    """
    current = json.loads(json.dumps(dict(current)))
    keys = list(saved) + [k for k in current if k not in saved]
    return {k: (saved.get(k), current.get(k)) for k in keys if saved.get(k) != current.get(k)}


class Checkpointer:
    """Keeps the last ``max_to_keep`` epoch checkpoints under ``directory``.

    ``save(epoch, state, meta)`` stores the state *after* ``epoch`` epochs (1-based) with a JSON-able
    ``meta`` dict (``history``, ``run_config``); ``restore_latest(state, run_config=...)`` returns
    ``(epoch, state, meta)`` from the newest intact checkpoint, or ``None`` when there is none at all.
    Saving is synchronous: when ``save`` returns, the checkpoint is on disk. ``log`` receives one line
    per damaged checkpoint skipped (default: a ``warnings.warn``).
    """

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int = 2, log: Callable[[str], None] | None = None):
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1, got {max_to_keep}")
        self.directory = pathlib.Path(directory).absolute()
        self._log = log or (lambda line: warnings.warn(line, stacklevel=3))
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=False)
        handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)

    def path(self, epoch: int) -> pathlib.Path:
        return self.directory / str(epoch)

    def save(self, epoch: int, state: TrainState, meta: Mapping[str, Any]) -> None:
        tree = state_tree(state)
        meta = {**meta, "digest": digest(tree)}
        args = ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta))
        absl = logging.getLogger("absl")
        level, absl.level = absl.level, logging.CRITICAL  # a failure is reported below, in one line
        held, sys.stderr = sys.stderr, io.StringIO()  # orbax's threads print their side of a failure
        try:
            self._manager.save(epoch, args=args, force=True)
            self._manager.wait_until_finished()
        except Exception as err:  # orbax wraps the OSError of a full disk in its own exceptions
            self._discard_partial(epoch)
            raise OSError(f"could not write checkpoint {self.path(epoch)}: {_first_line(err)}") from err
        else:
            held.write(sys.stderr.getvalue())  # a successful save's messages are shown after all
        finally:
            sys.stderr = held
            absl.setLevel(level)
        if jax.process_index() == 0:
            self._write_manifest(epoch)

    def _write_manifest(self, epoch: int) -> None:
        """The SHA-256 of every file of checkpoint ``epoch``, written (atomically) into it last: restore
        checks the files against it before orbax reads any of them. A checkpoint without one (the run
        stopped in between) is checked by :meth:`restore` alone, which then writes it."""
        root = self.path(epoch)
        files = {str(f.relative_to(root)): _file_sha256(f) for f in sorted(root.rglob("*")) if f.is_file()}
        atomic_write_text(root / MANIFEST, json.dumps(files, indent=0, sort_keys=True))

    def verify_files(self, epoch: int) -> bool:
        """``CheckpointError`` naming the first file of checkpoint ``epoch`` that is missing or altered;
        ``False`` when the checkpoint has no manifest yet (its save stopped after orbax's atomic rename:
        :meth:`restore` verifies it by the array digest), ``True`` when every file matched."""
        root = self.path(epoch)
        if not (root / MANIFEST).exists() and root.is_dir():
            return False
        try:
            manifest = json.loads((root / MANIFEST).read_text())
        except (OSError, ValueError) as err:
            raise CheckpointError(f"checkpoint {root} is damaged: its file manifest is unreadable ({err})") from err
        for name, expected in manifest.items():
            f = root / name
            if not f.is_file():
                raise CheckpointError(f"checkpoint {root} is damaged: {name} is missing")
            if _file_sha256(f) != expected:
                raise CheckpointError(f"checkpoint {root} is damaged: {name} fails its SHA-256 (truncated or altered)")
        return True

    def _discard_partial(self, epoch: int) -> None:
        """Remove what a failed save left behind (orbax's temporary folder); finished ones stay."""
        for partial in self.directory.glob(f"{epoch}.orbax-checkpoint-tmp*"):
            shutil.rmtree(partial, ignore_errors=True)

    def epochs(self) -> list[int]:
        """Epochs of the complete checkpoints on disk, oldest first."""
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def latest_epoch(self) -> int | None:
        epochs = self.epochs()
        return epochs[-1] if epochs else None

    def read_meta(self, epoch: int, *, verified: bool = False) -> dict[str, Any]:
        """The JSON ``meta`` of checkpoint ``epoch`` (``CheckpointError`` when it cannot be read), after
        checking every file of the checkpoint against its manifest (unless ``verified``: done already)."""
        if not verified:
            self.verify_files(epoch)
        try:
            restored = self._manager.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
            return dict(restored["meta"])
        except Exception as err:
            raise CheckpointError(f"checkpoint {self.path(epoch)} is damaged: {_first_line(err)}") from err

    def restore(self, epoch: int, state: TrainState) -> tuple[TrainState, dict[str, Any]]:
        """Restore and verify checkpoint ``epoch`` into the structure (and shardings) of ``state``.

        What the checkpoint holds (array names, shapes, dtypes: orbax's metadata) is compared with
        ``state`` first: a difference means another model or optimizer (:class:`CheckpointError`
        saying so). Any failure after that, or arrays that fail the SHA-256, means damaged files.
        """
        has_manifest = self.verify_files(epoch)
        return self._restore(epoch, state, self.read_meta(epoch, verified=True), has_manifest)

    def _restore(
        self, epoch: int, state: TrainState, meta: dict[str, Any], has_manifest: bool
    ) -> tuple[TrainState, dict[str, Any]]:
        """:meth:`restore` after its file check and ``meta`` read (``restore_latest`` does those first)."""
        tree = state_tree(state)
        try:
            saved = {m.name: (tuple(m.shape), np.dtype(m.dtype)) for m in jax.tree.leaves(
                self._manager.item_metadata(epoch)["state"])}  # fmt: skip
        except Exception as err:
            raise CheckpointError(f"checkpoint {self.path(epoch)} is damaged: {_first_line(err)}") from err
        ours = {_name(path): (tuple(np.shape(a)), np.dtype(a.dtype)) for path, a in _leaves_with_path(tree)}
        if saved != ours:
            differing = sorted(k for k in set(saved) | set(ours) if saved.get(k) != ours.get(k))
            first = differing[0]
            raise CheckpointError(
                f"checkpoint {self.path(epoch)} does not match this run's model and optimizer ({len(differing)} "
                f"arrays differ, e.g. {first}: checkpoint {saved.get(first)}, this run {ours.get(first)}); "
                "start without --resume or use another --out"
            )
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        try:
            restored = self._manager.restore(epoch, args=args)["state"]
        except Exception as err:
            _collect_quietly()
            raise CheckpointError(f"checkpoint {self.path(epoch)} is damaged: {_first_line(err)}") from err
        if meta.get("digest") != digest(restored):
            raise CheckpointError(f"checkpoint {self.path(epoch)} is damaged: its arrays fail the SHA-256 check")
        if not has_manifest and jax.process_index() == 0:
            self._write_manifest(epoch)  # the save that stopped before it, finished
        return replace_from_tree(state, restored), meta

    def restore_latest(
        self, state: TrainState, *, run_config: Mapping[str, Any] | None = None
    ) -> tuple[int, TrainState, dict[str, Any]] | None:
        """The newest intact checkpoint as ``(epoch, state, meta)``; ``None`` when there is none.

        A damaged checkpoint is reported through ``log`` and skipped. With ``run_config``, the
        newest readable checkpoint's must equal it (:class:`ConfigMismatchError` otherwise).
        """
        epochs = self.epochs()
        if not epochs:
            return None
        damaged = []
        for epoch in reversed(epochs):
            try:
                has_manifest = self.verify_files(epoch)  # once: each file hashed a single time
                meta = self.read_meta(epoch, verified=True)
                if run_config is not None:
                    differences = config_diff(meta.get("run_config", {}), run_config)
                    if differences:
                        raise ConfigMismatchError(self.path(epoch), differences)
                restored, meta = self._restore(epoch, state, meta, has_manifest)
            except ConfigMismatchError:
                raise
            except CheckpointError as err:
                if "does not match this run" in str(err):
                    raise
                damaged.append(str(err))
                older = [e for e in epochs if e < epoch]
                self._log(f"{err}; " + (f"trying checkpoint {older[-1]}" if older else "no older checkpoint"))
                continue
            for newer in (e for e in epochs if e > epoch):
                self._set_aside(newer)
            return epoch, restored, meta
        raise CheckpointError(
            f"no intact checkpoint in {self.directory} ({len(damaged)} damaged); "
            "delete the folder to start over, or choose another --out"
        )

    def _set_aside(self, epoch: int) -> None:
        """Rename a damaged checkpoint out of the way (``damaged-<epoch>``, kept for inspection), so the
        resumed run can write that epoch again."""
        target = self.directory / f"damaged-{epoch}"
        n = 1
        while target.exists():
            n += 1
            target = self.directory / f"damaged-{epoch}.{n}"
        self.path(epoch).rename(target)
        self._manager.reload()

    def close(self) -> None:
        self._manager.close()


MANIFEST = "fnnet_manifest.json"


def _file_sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _leaves_with_path(tree: Any) -> list:
    return jax.tree_util.tree_flatten_with_path(tree)[0]


def _name(path: tuple) -> str:
    """orbax's dotted name of a leaf (``opt_state.1.exp_avg.0.bias.value``)."""
    parts = []
    for key in path:
        for attr in ("key", "idx", "name"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
    return ".".join(parts)


def _collect_quietly() -> None:
    """After a failed restore, orbax's other pending reads fail too, as coroutines and callbacks that
    would print their tracebacks when collected; the failure is already reported in one line."""
    hooks = sys.unraisablehook, threading.excepthook
    sys.unraisablehook = threading.excepthook = lambda *args: None
    try:
        with contextlib.suppress(Exception):
            gc.collect()
    finally:
        sys.unraisablehook, threading.excepthook = hooks


def _first_line(err: BaseException) -> str:
    """The gist of an error for a one-line message (TensorStore appends pages of detail)."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    line = line.split(". See full TensorStore details")[0]
    return line if len(line) <= 200 else line[:197] + "..."
