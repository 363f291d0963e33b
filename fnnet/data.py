"""Fashion-MNIST for fnnet: IDX and CSV+PNG loaders, verified download, shipped sample, split.

Mirrors ``torchvision.datasets.FashionMNIST`` (IDX files, MD5-checked download) plus the first
tutorial's layout (``train.csv`` of ``id,label`` and ``train/<id>.png``), and sklearn's
``train_test_split(..., stratify=y)`` for the validation split. Where the data comes from, in order:
an explicit ``data_dir``, ``$FNNET_DATA_DIR``, the user cache, a download of the four official files,
and when offline the genuine sample shipped in ``fnnet/_sample`` (with a notice on stderr).
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import sys
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fnnet._csv_png import is_csv_png_dir, read_split, write_split
from fnnet._download import (
    DEFAULT_DOWNLOAD_URL,
    OFFICIAL_MD5,
    bad_md5s,
    default_cache_dir,
    download_fashion_mnist,
    download_url,
    resolve_cache_dir,
)
from fnnet._idx import DataError, idx_magic, read_idx, write_idx
from fnnet._split import stratified_split

__all__ = [
    "CLASS_NAMES",
    "DataError",
    "FashionMNIST",
    "IDX_FILES",
    "OFFICIAL_MD5",
    "DEFAULT_DOWNLOAD_URL",
    "load_fashion_mnist",
    "load_dir",
    "load_idx_dir",
    "load_csv_png",
    "write_csv_png",
    "read_idx",
    "write_idx",
    "download_fashion_mnist",
    "make_sample",
    "sample_dir",
    "default_cache_dir",
    "stratified_split",
    "to_features",
]

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (28, 28)
TEST_ID_OFFSET = 60000  # IDX test ids are 60000 + i, as the converter writes them.

# Official file names (role -> name); the .gz is preferred, the raw (decompressed) name also works.
IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


@dataclass(frozen=True, eq=False)  # eq=False: compare/hash by identity, arrays have no truth value
class FashionMNIST:
    """Fashion-MNIST as numpy arrays (like torchvision's ``.data``/``.targets``, both splits at once).

    ``test_labels`` is ``None`` for a CSV+PNG test set without a label column. ``ids`` are the CSV
    ids, or for IDX files ``0..N-1`` (train) and ``60000 + i`` (test), the ids the converter writes.
    """

    train_images: np.ndarray  # (N, 28, 28) uint8
    train_labels: np.ndarray  # (N,) int32
    train_ids: np.ndarray  # (N,) int64
    test_images: np.ndarray  # (M, 28, 28) uint8
    test_labels: np.ndarray | None  # (M,) int32 or None
    test_ids: np.ndarray  # (M,) int64
    source: str
    is_sample: bool = False

    def __repr__(self) -> str:
        labels = "unlabelled" if self.test_labels is None else "labelled"
        return (
            f"FashionMNIST(train={self.train_images.shape[0]}, test={self.test_images.shape[0]} "
            f"({labels}), source={self.source!r}, is_sample={self.is_sample})"
        )


def _notice(message: str, verbose: bool) -> None:
    if verbose:
        print(f"fnnet.data: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------- IDX dir


def _idx_path(directory: Path, name: str) -> Path | None:
    """``name`` (a .gz) or its decompressed twin in ``directory``; ``None`` if neither exists."""
    for candidate in (directory / name, directory / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _has_idx_files(directory: Path) -> bool:
    return all(_idx_path(directory, n) is not None for n in IDX_FILES.values())


def _check_images(path: Path, images: np.ndarray) -> np.ndarray:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(
            f"{path}: expected an IDX image file of uint8 N x 28 x 28 (magic 0x00000803), "
            f"found magic 0x{idx_magic(images):08x}: {images.dtype} with shape {images.shape}"
        )
    return images


def _check_labels(path: Path, labels: np.ndarray) -> np.ndarray:
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(
            f"{path}: expected an IDX label file of uint8 N (magic 0x00000801), "
            f"found magic 0x{idx_magic(labels):08x}: {labels.dtype} with shape {labels.shape}"
        )
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DataError(
            f"{path}: record {int(bad[0])}: label {int(labels[bad[0]])} outside 0..9 ({bad.size} bad labels in all)"
        )
    return labels.astype(np.int32)


def _load_idx_pair(directory: Path, images_name: str, labels_name: str) -> tuple[np.ndarray, np.ndarray]:
    paths = []
    for name in (images_name, labels_name):
        p = _idx_path(directory, name)
        if p is None:
            raise DataError(f"{directory / name}: file not found (nor {name.removesuffix('.gz')})")
        paths.append(p)
    images = _check_images(paths[0], read_idx(paths[0]))
    labels = _check_labels(paths[1], read_idx(paths[1]))
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{paths[0]} has {images.shape[0]} images but {paths[1]} has {labels.shape[0]} labels")
    return images, labels


def load_idx_dir(
    directory: str | os.PathLike[str], *, source: str | None = None, is_sample: bool = False
) -> FashionMNIST:
    """Load the four standard IDX files (gzip or raw) of ``directory``.

    Like ``torchvision.datasets.FashionMNIST(root, download=False)`` but for a plain folder of the
    official names, returning both splits. Train ids are ``0..N-1``, test ids ``60000 + i``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    train_x, train_y = _load_idx_pair(directory, IDX_FILES["train_images"], IDX_FILES["train_labels"])
    test_x, test_y = _load_idx_pair(directory, IDX_FILES["test_images"], IDX_FILES["test_labels"])
    return FashionMNIST(
        train_images=train_x,
        train_labels=train_y,
        train_ids=np.arange(train_x.shape[0], dtype=np.int64),
        test_images=test_x,
        test_labels=test_y,
        test_ids=TEST_ID_OFFSET + np.arange(test_x.shape[0], dtype=np.int64),
        source=source if source is not None else f"IDX files in {directory}",
        is_sample=is_sample,
    )


def load_dir(
    directory: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None, verbose: bool = True
) -> FashionMNIST:
    """Load ``directory`` in whichever layout it holds: IDX files, or CSV+PNG. No fallback."""
    directory = Path(directory).expanduser()
    if not directory.exists():
        raise DataError(f"{directory}: data directory not found")
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    if _has_idx_files(directory):
        if directory.resolve() == sample_dir():
            return _sample_dataset()
        return load_idx_dir(directory)
    if is_csv_png_dir(directory):
        return load_csv_png(directory, cache_dir=resolve_cache_dir(cache_dir), verbose=verbose)
    if any(_idx_path(directory, n) is not None for n in IDX_FILES.values()):
        return load_idx_dir(directory)  # some IDX files but not all: the error names the missing one
    raise DataError(
        f"{directory}: no Fashion-MNIST found: expected the four IDX files "
        f"({', '.join(IDX_FILES.values())}, gzip or raw) or the CSV+PNG layout "
        f"(train.csv + train/<id>.png, test.csv + test/<id>.png)"
    )


# ------------------------------------------------------------------------------------- CSV+PNG


def load_csv_png(
    directory: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    verbose: bool = True,
    workers: int | None = None,
) -> FashionMNIST:
    """Load the tutorial's layout: ``train.csv`` (``id,label``) + ``train/<id>.png`` and
    ``test.csv`` (``id`` and optionally ``label``) + ``test/<id>.png``.

    Every row and image is checked (``DataError`` naming the file and CSV line). Decoded arrays are
    cached as ``.npy`` in ``<directory>/.fnnet_cache/`` (or, if that is read-only, under
    ``<cache>/png-cache/``), invalidated when the CSV bytes or any PNG's size or mtime change.
    """
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise DataError(f"{directory}: data directory not found")
    user_cache = resolve_cache_dir(cache_dir)
    train_x, train_y, train_ids, how_train = read_split(
        directory, "train", require_labels=True, user_cache=user_cache, workers=workers
    )
    test_x, test_y, test_ids, how_test = read_split(
        directory, "test", require_labels=False, user_cache=user_cache, workers=workers
    )
    _notice(f"CSV+PNG in {directory}: train {how_train}, test {how_test}", verbose)
    return FashionMNIST(
        train_images=train_x,
        train_labels=train_y,
        train_ids=train_ids,
        test_images=test_x,
        test_labels=test_y,
        test_ids=test_ids,
        source=f"CSV+PNG in {directory}",
        is_sample=False,
    )


def _as_arrays(dataset_or_arrays) -> tuple[np.ndarray, ...]:
    if isinstance(dataset_or_arrays, FashionMNIST):
        d = dataset_or_arrays
        return d.train_images, d.train_labels, d.train_ids, d.test_images, d.test_labels, d.test_ids
    try:
        train_x, train_y, test_x, test_y = dataset_or_arrays
    except (TypeError, ValueError):
        raise TypeError(
            "write_csv_png: expected a FashionMNIST or a 4-tuple (train_images, train_labels, "
            f"test_images, test_labels), got {type(dataset_or_arrays).__name__}"
        ) from None
    train_x, test_x = np.asarray(train_x), np.asarray(test_x)
    return (
        train_x,
        train_y,
        np.arange(train_x.shape[0], dtype=np.int64),
        test_x,
        test_y,
        TEST_ID_OFFSET + np.arange(test_x.shape[0], dtype=np.int64),
    )


def write_csv_png(
    dataset_or_arrays, out_dir: str | os.PathLike[str], *, test_labels: bool = False, progress=None
) -> Path:
    """Write the tutorial's CSV+PNG layout (the converter): ``train.csv`` + ``train/<id>.png``,
    ``test.csv`` + ``test/<id>.png``; ``test.csv`` gets a label column only with ``test_labels``.

    Takes a ``FashionMNIST`` (its ids are kept) or ``(train_images, train_labels, test_images,
    test_labels)`` (ids as for IDX: ``0..N-1`` and ``60000 + i``). ``progress(split, done, total)``
    is called every 10,000 images. Returns ``out_dir``.
    """
    train_x, train_y, train_ids, test_x, test_y, test_ids = _as_arrays(dataset_or_arrays)
    for name, images in (("train images", train_x), ("test images", test_x)):
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"write_csv_png: {name} must be uint8 (N, 28, 28), got {images.dtype} {images.shape}")
    if test_labels and test_y is None:
        raise ValueError("write_csv_png: test_labels=True but the dataset has no test labels")
    for name, labels, images in (("train", train_y, train_x), ("test", test_y, test_x)):
        if labels is not None and np.asarray(labels).shape != (images.shape[0],):
            raise ValueError(f"write_csv_png: {name} labels shape {np.shape(labels)}, expected ({images.shape[0]},)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_split(out, "train", train_x, np.asarray(train_y), np.asarray(train_ids), progress=progress)
    write_split(
        out, "test", test_x, np.asarray(test_y) if test_labels else None, np.asarray(test_ids), progress=progress
    )
    return out


# ---------------------------------------------------------------------------------------- sample


def sample_dir() -> Path:
    """The folder of the shipped sample (gzip IDX with the official names)."""
    return Path(__file__).resolve().parent / "_sample"


def make_sample(
    src_dir: str | os.PathLike[str], dst_dir: str | os.PathLike[str], *, n_train: int = 10000, n_test: int = 2000
) -> None:
    """Write the first ``n_train`` train and ``n_test`` test images+labels of the IDX files in
    ``src_dir`` to ``dst_dir`` as gzip IDX (official names, reproducible bytes: gzip mtime 0)."""
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"make_sample: {name} must be a positive int, got {value!r}")
    data = load_idx_dir(src_dir)
    if n_train > data.train_images.shape[0] or n_test > data.test_images.shape[0]:
        raise ValueError(
            f"make_sample: asked for {n_train} train / {n_test} test, but {src_dir} has "
            f"{data.train_images.shape[0]} / {data.test_images.shape[0]}"
        )
    dst = Path(dst_dir)
    dst.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": data.train_images[:n_train],
        "train_labels": data.train_labels[:n_train].astype(np.uint8),
        "test_images": data.test_images[:n_test],
        "test_labels": data.test_labels[:n_test].astype(np.uint8),
    }
    for role, name in IDX_FILES.items():
        write_idx(dst / name, arrays[role])


def _sample_dataset() -> FashionMNIST:
    data = load_idx_dir(sample_dir(), is_sample=True)
    source = f"shipped sample ({data.train_images.shape[0]:,} train / {data.test_images.shape[0]:,} test)"
    return dataclasses.replace(data, source=source)


def _load_sample(reason: str, cache_dir: Path, verbose: bool) -> FashionMNIST:
    data = _sample_dataset()
    _notice(
        f"the full Fashion-MNIST set was not found ({reason}); using the {data.source} in {sample_dir()}. "
        f"To use the full 60,000/10,000 set: pass --data-dir DIR (data_dir=DIR) with the four IDX "
        f"files or the CSV+PNG layout, set FNNET_DATA_DIR=DIR, or allow the download "
        f"(download=True) into {cache_dir / 'fashion-mnist'}.",
        verbose,
    )
    return data


# --------------------------------------------------------------------------------- entry point


def load_fashion_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    verbose: bool = True,
) -> FashionMNIST:
    """Fashion-MNIST from the first place that has it.

    Order: ``data_dir``; ``$FNNET_DATA_DIR``; ``<cache>/fashion-mnist`` (cache: ``cache_dir``, else
    ``$XDG_CACHE_HOME/fnnet`` or ``~/.cache/fnnet``); a download of the official files (MD5 checked,
    when ``download``); the shipped sample, with a notice on stderr. An explicit ``data_dir`` or
    ``$FNNET_DATA_DIR`` that is missing or invalid raises ``DataError`` (no silent fallback); so does
    a download whose MD5 does not match. Network failures fall back to the sample.
    """
    cache = resolve_cache_dir(cache_dir)
    if data_dir is not None:
        return load_dir(data_dir, cache_dir=cache, verbose=verbose)
    env_dir = os.environ.get("FNNET_DATA_DIR")
    if env_dir:
        try:
            return load_dir(env_dir, cache_dir=cache, verbose=verbose)
        except DataError as e:
            raise DataError(f"FNNET_DATA_DIR={env_dir}: {e}") from None
    folder = cache / "fashion-mnist"
    if all((folder / name).is_file() for name in OFFICIAL_MD5):
        bad = bad_md5s(folder)
        if not bad:
            return load_idx_dir(folder, source=f"IDX files in {folder} (user cache)")
        if not download:
            path, expected, got = bad[0]
            raise DataError(
                f"{path}: MD5 {got} differs from the official {expected}; delete it or "
                f"allow the download to fetch it again"
            )
    if not download:
        return _load_sample(f"no data dir given and {folder} is incomplete; download=False", cache, verbose)
    try:
        folder = download_fashion_mnist(cache, verbose=verbose)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:  # offline, timeout, ...
        detail = e if isinstance(e, urllib.error.HTTPError) else (getattr(e, "reason", None) or e)
        return _load_sample(f"download from {download_url()} failed: {detail}", cache, verbose)
    return load_idx_dir(folder, source=f"downloaded to {folder}")


# ------------------------------------------------------------------------------------ features


def to_features(images: np.ndarray) -> np.ndarray:
    """``(N, 28, 28)`` uint8 -> ``(N, 784)`` float32 in [0, 1].

    The tutorial divides by ``train_x.max()``; that is 255 for Fashion-MNIST (both splits and the
    sample), so a fixed 255 is the same and does not depend on the batch.
    """
    images = np.asarray(images)
    return images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0)
