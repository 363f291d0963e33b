"""Small helpers shared by the PyTorch reference scripts (no fnnet import: they stand alone)."""

from __future__ import annotations

import io
import os
import pathlib
import secrets


def write_atomic(path: pathlib.Path, data: bytes | str) -> None:
    """A temporary file beside ``path``, then ``os.replace`` (what fnnet's experiments do)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with open(tmp, "xb") as f:
        f.write(payload)
    os.replace(tmp, path)


def save_figure(fig, path: pathlib.Path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, buf.getvalue())
