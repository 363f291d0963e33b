"""Atomic file writes: a temporary file beside the target, then ``os.replace``.

A crash (or SIGKILL) never leaves a half-written file where a finished one was: readers see the old
file or the new one. The temporary is opened with mode ``"xb"`` rather than ``tempfile.mkstemp`` so
the result gets the umask's usual permissions (mkstemp's are 0600).
"""

from __future__ import annotations

import os
import pathlib
import secrets

__all__ = ["atomic_write_bytes", "atomic_write_text"]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> pathlib.Path:
    """Write ``data`` to ``path`` atomically (parent folders are created); returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a file-size limit: name the file (write errors carry no name)
        tmp.unlink(missing_ok=True)
        raise OSError(err.errno, f"could not write {path}: {err.strerror or err}") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> pathlib.Path:
    return atomic_write_bytes(path, text.encode("utf-8"))
