"""Download of the four official Fashion-MNIST files into the user cache, MD5-verified.

Mirrors ``torchvision.datasets.utils.download_url`` + ``check_integrity``: stream to ``<name>.part``,
check the MD5 Zalando publishes, then rename; a mismatch deletes the file and raises ``DataError``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from pathlib import Path

from fnnet._idx import DataError, md5_file

__all__ = [
    "OFFICIAL_MD5",
    "DEFAULT_DOWNLOAD_URL",
    "default_cache_dir",
    "resolve_cache_dir",
    "download_fashion_mnist",
    "download_url",
    "bad_md5s",
]

# MD5s published by Zalando (github zalandoresearch/fashion-mnist README; torchvision uses the same).
OFFICIAL_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
DEFAULT_DOWNLOAD_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DOWNLOAD_TIMEOUT_S = 10.0


def _say(message: str, verbose: bool) -> None:
    if verbose:
        print(f"fnnet.data: {message}", file=sys.stderr, flush=True)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/fnnet`` or ``~/.cache/fnnet``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "fnnet"


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    """``cache_dir`` (``~`` expanded) if given, else :func:`default_cache_dir`."""
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def download_url() -> str:
    """``$FNNET_DOWNLOAD_URL`` if set, else the official base URL."""
    return os.environ.get("FNNET_DOWNLOAD_URL") or DEFAULT_DOWNLOAD_URL


def _download_one(url: str, dest: Path, expected_md5: str, verbose: bool) -> None:
    """Stream ``url`` into ``<dest>.<pid>.part``, check its MD5, then rename to ``dest``.

    On an MD5 mismatch the partial file is deleted and ``DataError`` raised; network errors
    (``URLError``, ``OSError``, timeouts) propagate after the partial file is deleted.
    """
    part = dest.with_name(f"{dest.name}.{os.getpid()}.part")  # per process: parallel workers may race
    h = hashlib.md5()
    _say(f"downloading {url}", verbose)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(part, "wb") as f:
            while block := response.read(1 << 20):
                h.update(block)
                f.write(block)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    got = h.hexdigest()
    if got != expected_md5:
        part.unlink(missing_ok=True)
        raise DataError(
            f"{dest}: MD5 mismatch for download from {url}: expected {expected_md5}, got {got}; "
            f"the file was deleted and not used"
        )
    os.replace(part, dest)


def download_fashion_mnist(
    cache_dir: str | os.PathLike[str] | None = None, *, base_url: str | None = None, verbose: bool = True
) -> Path:
    """Make sure ``<cache>/fashion-mnist/`` holds the four official .gz files with their MD5s.

    Like ``torchvision.datasets.FashionMNIST(download=True)``. Files already there are checked and
    kept when their MD5 matches (otherwise deleted and fetched again). The base URL is ``base_url``,
    else ``$FNNET_DOWNLOAD_URL``, else the official one. Returns the folder.
    """
    folder = resolve_cache_dir(cache_dir) / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    base = base_url or download_url()
    for name, md5 in OFFICIAL_MD5.items():
        dest = folder / name
        if dest.is_file():
            if md5_file(dest) == md5:
                continue
            _say(f"{dest}: cached file has the wrong MD5; deleting it and downloading again", verbose)
            dest.unlink()
        _download_one(base.rstrip("/") + "/" + name, dest, md5, verbose)
    return folder


def bad_md5s(folder: Path) -> list[tuple[Path, str, str]]:
    """``(path, expected, got)`` for each official file in ``folder`` whose MD5 differs."""
    out = []
    for name, expected in OFFICIAL_MD5.items():
        got = md5_file(folder / name)
        if got != expected:
            out.append((folder / name, expected, got))
    return out
