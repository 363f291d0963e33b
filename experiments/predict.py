"""Classify Fashion-MNIST-style images with an exported model alone: prints ``id,label`` rows.

    python experiments/predict.py --model outputs/apparel_classifier --images data/test [--out sub.csv]

The JAX twin of the apparel tutorial's last step (``model(test_x).argmax`` written into
``sample_submission`` as ``id,label``), but run from the ``model.jaxexport`` + ``model.json`` that
``fnnet.export.export_classifier`` wrote, as ``torch.jit.load`` runs a saved TorchScript model.

This is a deployment script: it needs only jax, numpy and pillow (plus ``flatbuffers``, which
``jax.export`` deserialization uses), and deliberately imports no fnnet, flax or optax module. So
the ~100 lines it needs are repeated here rather than imported: the artifact loader (same checks
as ``fnnet.export.load_exported``) and the PNG / CSV+PNG / IDX readers (as in ``fnnet.data``).

``--images PATH`` may be
  * a folder with ``test.csv`` + ``test/`` (or ``train.csv`` + ``train/``): ids from the CSV's
    ``id`` column, image ``<folder>/<id>.png`` (the tutorial's layout);
  * a folder of ``*.png``: ids are the file stems, sorted numerically when all are numbers;
  * an IDX images file (``*-images-idx3-ubyte``, gzipped or raw): ids 0..N-1.
Pixels are read as grayscale 0..255, normalised as the contract says, reshaped to its input
shape and classified in batches of ``--batch-size``. Rows go to stdout, or atomically to
``--out FILE``. Any error is one ``error: ...`` line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import pathlib
import secrets
import struct
import sys
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

ARTIFACT_NAME = "model.jaxexport"
CONTRACT_NAME = "model.json"
CONTRACT_FORMAT = "fnnet.export/1"


def load_model(model_dir: pathlib.Path) -> tuple[Callable[[np.ndarray], Any], dict[str, Any]]:
    """``fnnet.export.load_exported`` repeated with jax + numpy only; errors are ValueErrors."""
    contract_path, artifact_path = model_dir / CONTRACT_NAME, model_dir / ARTIFACT_NAME
    if not contract_path.is_file():
        raise ValueError(f"{contract_path}: contract file not found")
    try:
        contract = json.loads(contract_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{contract_path}: not valid JSON ({e})") from e
    if not isinstance(contract, dict) or contract.get("format") != CONTRACT_FORMAT:
        raise ValueError(f"{contract_path}: not an fnnet export contract (format {CONTRACT_FORMAT!r})")
    try:
        shape = tuple(int(d) for d in contract["input"]["shape"][1:])
        dtype = np.dtype(contract["input"]["dtype"])
        n_classes = len(contract["class_names"])
        norm = contract["normalisation"]
        divide_by, subtract = float(norm["divide_by"]), float(norm.get("subtract", 0.0))
        size, digest = int(contract["artifact_bytes"]), str(contract["artifact_sha256"])
        version = int(contract["calling_convention_version"])
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise ValueError(f"{contract_path}: malformed contract ({type(e).__name__}: {e})") from e
    if not (np.isfinite(divide_by) and np.isfinite(subtract) and divide_by != 0):
        raise ValueError(f"{contract_path}: normalisation must be finite with divide_by != 0, got {norm}")
    import jax
    from jax import export as jax_export

    if dtype == np.float64:  # before jax makes any array
        jax.config.update("jax_enable_x64", True)

    writer = contract.get("jax_version", "unknown")
    lo = jax_export.minimum_supported_calling_convention_version
    hi = jax_export.maximum_supported_calling_convention_version

    def check_version(v: int) -> None:
        if not lo <= v <= hi:
            raise ValueError(
                f"{artifact_path}: artifact uses jax.export calling convention {v} "
                f"(written by jax {writer}); this jax {jax.__version__} reads only "
                f"{lo}..{hi}"
            )

    check_version(version)
    if not artifact_path.is_file():
        raise ValueError(f"{artifact_path}: artifact file not found")
    blob = artifact_path.read_bytes()
    if len(blob) != size or hashlib.sha256(blob).hexdigest() != digest:
        raise ValueError(
            f"{artifact_path}: truncated or corrupt artifact: {len(blob)} bytes whose "
            f"size or SHA-256 differs from {CONTRACT_NAME} ({size} bytes)"
        )
    try:
        exported = jax_export.deserialize(bytearray(blob))
    except Exception as e:  # flatbuffers raises struct.error, IndexError, ... on bad bytes
        raise ValueError(
            f"{artifact_path}: cannot deserialize (written by jax {writer}, this is "
            f"jax {jax.__version__}): {type(e).__name__}: {e}"
        ) from e
    check_version(exported.calling_convention_version)
    ins, outs = exported.in_avals, exported.out_avals
    if (
        len(ins) != 1
        or len(outs) != 1
        or tuple(ins[0].shape[1:]) != shape
        or ins[0].dtype != dtype
        or len(outs[0].shape) != 2
        or outs[0].shape[1] != n_classes
    ):
        raise ValueError(
            f"{contract_path}: contract does not match {ARTIFACT_NAME} "
            f"(inputs {[str(a) for a in ins]}, outputs {[str(a) for a in outs]})"
        )
    call = jax.jit(exported.call)

    def predict(pixels: np.ndarray) -> np.ndarray:
        """Class indices for uint8/float pixels of shape (n, H, W) or (n, H*W)."""
        x = pixels.astype(dtype).reshape((len(pixels), *shape))
        x = (x - dtype.type(subtract)) / dtype.type(divide_by)
        return np.asarray(call(x.astype(dtype))).argmax(axis=1)

    try:
        predict(np.zeros((1, int(np.prod(shape))), np.uint8))
    except Exception as e:  # an MLIR/VHLO version error or a platform the artifact lacks
        raise ValueError(
            f"{artifact_path}: cannot run on this jax {jax.__version__} "
            f"({jax.default_backend()}; written by jax {writer} for "
            f"{contract.get('platforms')}): {type(e).__name__}: {e}"
        ) from e
    return predict, contract


def _read_png(path: pathlib.Path) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise ValueError(f"{path}: image file not found")
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8)


def _stack(images: list[np.ndarray], paths: Sequence[pathlib.Path]) -> np.ndarray:
    for im, p in zip(images, paths):
        if im.shape != images[0].shape:
            raise ValueError(
                f"{p}: image is {im.shape[1]}x{im.shape[0]}, "
                f"{paths[0].name} is {images[0].shape[1]}x{images[0].shape[0]}"
            )
    return np.stack(images)


def _read_idx(path: pathlib.Path) -> np.ndarray:
    """An IDX uint8 array, gzipped or raw (the format of the Fashion-MNIST files)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip ({e})") from e
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX uint8 file (magic {raw[:4].hex()}, expected 000008nn)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: IDX header truncated")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    if ndim != 3:
        raise ValueError(f"{path}: expected an IDX images file (3 dims: n, rows, cols), got dims {dims}")
    body = raw[4 + 4 * ndim :]
    if len(body) != int(np.prod(dims)):
        raise ValueError(f"{path}: IDX body has {len(body)} bytes, header {dims} needs {int(np.prod(dims))}")
    return np.frombuffer(body, np.uint8).reshape(dims)


def read_images(path: pathlib.Path) -> tuple[list[str], np.ndarray]:
    """``(ids, uint8 pixels (n, H, W))`` from a CSV+PNG folder, a PNG folder or an IDX file."""
    if path.is_file():
        images = _read_idx(path)
        return [str(i) for i in range(len(images))], images
    if not path.is_dir():
        raise ValueError(f"--images {path}: no such file or folder")
    for split in ("test", "train"):
        csv_path, folder = path / f"{split}.csv", path / split
        if csv_path.is_file() and folder.is_dir():
            try:
                with open(csv_path, newline="", encoding="utf-8") as f:
                    reader = csv.DictReader(f)
                    if reader.fieldnames is None or "id" not in reader.fieldnames:
                        raise ValueError(f"{csv_path}: needs an 'id' column, header is {reader.fieldnames}")
                    ids = [row["id"] for row in reader]
            except csv.Error as e:
                raise ValueError(f"{csv_path}: bad CSV ({e})") from e
            if not ids:
                raise ValueError(f"{csv_path}: no rows")
            paths = [folder / f"{i}.png" for i in ids]
            return ids, _stack([_read_png(p) for p in paths], paths)
    paths = list(path.glob("*.png"))
    if not paths:
        raise ValueError(f"--images {path}: no *.png files and no test.csv+test/ or train.csv+train/")
    numeric = all(p.stem.isdigit() for p in paths)
    paths.sort(key=lambda p: (int(p.stem), p.stem) if numeric else (0, p.stem))
    return [p.stem for p in paths], _stack([_read_png(p) for p in paths], paths)


def _write_atomic(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:  # "x" mode, not mkstemp: the CSV gets the umask's permissions, not 0600
        with open(tmp, "x", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", required=True, type=pathlib.Path, help=f"folder holding {ARTIFACT_NAME} and {CONTRACT_NAME}"
    )
    parser.add_argument(
        "--images",
        required=True,
        type=pathlib.Path,
        help="CSV+PNG folder, folder of *.png, or IDX images file (.gz or raw)",
    )
    parser.add_argument(
        "--out", type=pathlib.Path, default=None, help="write the id,label CSV here (atomically) instead of stdout"
    )
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args(argv)
    try:
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
        predict, contract = load_model(args.model)
        ids, pixels = read_images(args.images)
        if len(pixels) == 0:
            raise ValueError(f"--images {args.images}: holds no images")
        want = int(np.prod(contract["input"]["shape"][1:]))
        if pixels[0].size != want:
            raise ValueError(
                f"--images {args.images}: images are {pixels.shape[2]}x{pixels.shape[1]}"
                f" ({pixels[0].size} pixels), the model takes {want}"
            )
        labels = np.concatenate(
            [predict(pixels[i : i + args.batch_size]) for i in range(0, len(pixels), args.batch_size)]
        )
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["id", "label"])
        writer.writerows(zip(ids, labels.tolist()))
        if args.out is None:
            sys.stdout.write(buf.getvalue())
        else:
            _write_atomic(args.out, buf.getvalue())
            print(f"wrote {len(ids)} predictions to {args.out}")
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
