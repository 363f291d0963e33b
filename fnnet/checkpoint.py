"""Per-epoch checkpoints of a ``TrainState`` with orbax, and resume.

orbax writes each checkpoint into a temporary directory and renames it into place only once it is
complete, so a process killed at any moment (SIGKILL included) leaves either the previous
checkpoint or the new one, never a torn one; unfinished temporaries are ignored on restore. The
JSON ``meta`` item travels in the same atomic step as the arrays, so the run's history and the
weights it describes can never disagree.
"""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

from fnnet.train import TrainState

__all__ = ["Checkpointer", "state_tree", "replace_from_tree"]

# orbax logs every save at INFO through absl; a training run prints its own progress instead.
logging.getLogger("absl").setLevel(logging.WARNING)


def state_tree(state: TrainState) -> dict[str, Any]:
    """The array part of a ``TrainState`` (what a checkpoint holds)."""
    return {"step": state.step, "params": state.params, "opt_state": state.opt_state, "key": state.key}


def replace_from_tree(state: TrainState, tree: dict[str, Any]) -> TrainState:
    """``state`` with its arrays replaced by a restored ``state_tree``."""
    return state.replace(step=tree["step"], params=tree["params"], opt_state=tree["opt_state"], key=tree["key"])


class Checkpointer:
    """Keeps the last ``max_to_keep`` epoch checkpoints under ``directory``.

    ``save(epoch, state, meta)`` stores the state *after* ``epoch`` epochs (1-based) together with a
    JSON-able ``meta`` dict; ``restore_latest(state)`` returns ``(epoch, state, meta)`` or ``None``.
    Saving is synchronous: when ``save`` returns, the checkpoint is on disk.
    """

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int = 2):
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1, got {max_to_keep}")
        self.directory = pathlib.Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, epoch: int, state: TrainState, meta: dict[str, Any]) -> None:
        args = ocp.args.Composite(state=ocp.args.StandardSave(state_tree(state)), meta=ocp.args.JsonSave(meta))
        self._manager.save(epoch, args=args, force=True)
        self._manager.wait_until_finished()

    def latest_epoch(self) -> int | None:
        self._manager.reload()
        return self._manager.latest_step()

    def restore(self, epoch: int, state: TrainState) -> tuple[TrainState, dict[str, Any]]:
        """Restore checkpoint ``epoch`` into the structure (and shardings) of ``state``."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_tree(state))
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
        try:
            restored = self._manager.restore(epoch, args=args)
        except (ValueError, KeyError, FileNotFoundError) as err:
            raise ValueError(
                f"checkpoint {self.directory / str(epoch)} does not match this run's model and optimizer "
                f"({type(err).__name__}: {err}); start without --resume or use another --out"
            ) from err
        return replace_from_tree(state, restored["state"]), dict(restored["meta"])

    def restore_latest(self, state: TrainState) -> tuple[int, TrainState, dict[str, Any]] | None:
        epoch = self.latest_epoch()
        if epoch is None:
            return None
        restored, meta = self.restore(epoch, state)
        return epoch, restored, meta

    def close(self) -> None:
        self._manager.close()
