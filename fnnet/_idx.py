"""IDX file reading/writing (the format of the official MNIST/Fashion-MNIST files).

Mirrors what ``torchvision.datasets.mnist.read_image_file``/``read_label_file`` do, with strict
checks: magic, dimensions and payload length are validated and every failure is a ``DataError``
naming the file. Hand-written because no library in our stack (numpy, pandas, pillow) reads IDX.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

from fnnet._io import atomic_write_bytes

__all__ = ["DataError", "read_idx", "write_idx", "idx_magic", "md5_file", "atomic_write_bytes"]


class DataError(ValueError):
    """Bad input data (missing/corrupt file, wrong format, bad row). The message names the file and,
    where there is one, the row or record."""

    __module__ = "fnnet.data"


# IDX type codes (third magic byte) -> big-endian numpy dtype.
_IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
_DTYPE_CODES: dict[np.dtype, int] = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The decompressed bytes of ``path`` (gzip detected by its magic bytes, not by the name)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected an IDX file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except EOFError:
            raise DataError(f"{path}: truncated gzip stream (file ended before the end marker)") from None
        except (gzip.BadGzipFile, zlib.error) as e:
            raise DataError(f"{path}: corrupt gzip data ({e})") from None
    if path.name.endswith(".gz"):
        raise DataError(f"{path}: named .gz but is not gzip data (first bytes {raw[:4].hex()})")
    return raw


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a native-endian numpy array.

    Checks the magic (two zero bytes, a known type code, ``ndim >= 1``), that the header holds all
    dimensions and that the payload is exactly ``prod(dims) * itemsize`` bytes. Raises ``DataError``
    naming the file otherwise.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes, need at least 4)")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if zero0 != 0 or zero1 != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(
            f"{path}: wrong IDX magic 0x{magic:08x} (expected 0x0000TTDD with type TT in "
            f"{{08,09,0b,0c,0d,0e}} and DD >= 1 dimensions, e.g. 0x00000803 for images)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: header truncated: {ndim} dimensions need {header} bytes, file has {len(data)}")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        what = "truncated" if found < expected else "trailing bytes"
        raise DataError(
            f"{path}: {what}: dimensions {dims} need {expected} bytes of data after the header, found {found}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def idx_magic(array: np.ndarray) -> int:
    """The IDX magic number an array of this dtype and rank has (e.g. 0x00000803 for uint8 3-D)."""
    return (_DTYPE_CODES.get(np.dtype(array.dtype).newbyteorder("="), 0) << 8) | array.ndim


def _idx_bytes(array: np.ndarray) -> bytes:
    native = np.dtype(array.dtype).newbyteorder("=")
    if native not in _DTYPE_CODES:
        raise TypeError(
            f"write_idx: array dtype {array.dtype} has no IDX type code; "
            f"expected one of uint8, int8, int16, int32, float32, float64"
        )
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: array must have 1..255 dimensions, got {array.ndim}")
    code = _DTYPE_CODES[native]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike[str], array: np.ndarray, *, compresslevel: int = 6) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when the name ends in ``.gz``.

    The gzip header has mtime 0 and no file name, so the bytes are reproducible. Written atomically.
    """
    path = Path(path)
    payload = _idx_bytes(np.asarray(array))
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=compresslevel, mtime=0)
    atomic_write_bytes(path, payload)


def md5_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file (the checksum Zalando publishes for the official files)."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
