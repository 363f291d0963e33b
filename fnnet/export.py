"""A trained classifier as a ``jax.export`` artifact plus a JSON input contract.

Mirrors ``torch.export.save`` / TorchScript's ``torch.jit.save`` for deployment: the model is
written as serialized StableHLO (``jax.export.Exported.serialize``) with the trained parameters
baked in as constants and a *symbolic* batch dimension, so any batch size works. Loading it needs
only jax and numpy (and the ``flatbuffers`` package that ``jax.export`` serialization uses): no
fnnet, no flax. ``experiments/predict.py`` repeats the few lines of :func:`load_exported` so that
a deployment needs nothing else.

Where torch and this differ: a torch export is run by the torch runtime of the same or newer
version; a jax artifact is run by any jax whose *calling convention* range
(``jax.export.minimum/maximum_supported_calling_convention_version``) covers the artifact's,
which jax keeps readable for months, not forever. The contract records the writer's versions so a
refusal can say which jax wrote the file. Normalisation is *not* baked in: it is data in the
contract (``x = (pixels - subtract) / divide_by``) that the caller applies, as the tutorial does.

Files in ``out_dir``: ``model.jaxexport`` (the bytes of ``Exported.serialize()``) and
``model.json`` (input shape with ``"batch"`` for the symbolic dimension, its ``layout`` (``"flat"``
pixels or torch's ``"NCHW"``), dtype, normalisation,
class names, versions, the artifact's size and SHA-256). The flatbuffer format has no checksum
and can parse a truncated file, so the SHA-256 in the contract is what catches a truncated or
corrupt artifact.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax import export as jax_export

from fnnet._io import atomic_write_bytes
from fnnet.data import CLASS_NAMES
from fnnet.train import TrainState

ARTIFACT_NAME = "model.jaxexport"
CONTRACT_NAME = "model.json"
CONTRACT_FORMAT = "fnnet.export/1"
BATCH_DIM = "batch"

_KNOWN_PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
_NORMALISATION_KEYS = ("divide_by", "subtract")


def _check_normalisation(normalisation: Any, where: str) -> dict[str, float]:
    if not isinstance(normalisation, Mapping):
        raise ValueError(f"{where}: normalisation must be a dict like {{'divide_by': 255.0}}, got {normalisation!r}")
    unknown = sorted(set(normalisation) - set(_NORMALISATION_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown normalisation keys {unknown}; expected only {list(_NORMALISATION_KEYS)}")
    out = {"divide_by": normalisation.get("divide_by"), "subtract": normalisation.get("subtract", 0.0)}
    for key, value in out.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{where}: normalisation[{key!r}] must be a finite number, got {value!r}")
    if out["divide_by"] == 0:
        raise ValueError(f"{where}: normalisation['divide_by'] must be non-zero")
    return {k: float(v) for k, v in out.items()}


def _check_class_names(class_names: Any, where: str) -> list[str]:
    if isinstance(class_names, str) or not isinstance(class_names, Sequence) or not class_names:
        raise ValueError(f"{where}: class_names must be a non-empty list of strings, got {class_names!r}")
    if not all(isinstance(c, str) for c in class_names) or len(set(class_names)) != len(class_names):
        raise ValueError(f"{where}: class_names must be distinct strings, got {list(class_names)!r}")
    return list(class_names)


def export_classifier(
    model: Any,
    out_dir: str | os.PathLike[str],
    *,
    input_shape: Sequence[int] = (784,),
    dtype: str = "float32",
    normalisation: Mapping[str, float] | None = None,
    class_names: Sequence[str] = CLASS_NAMES,
    platforms: Sequence[str] = ("cpu", "cuda"),
) -> tuple[pathlib.Path, pathlib.Path]:
    """Export ``x -> model(x)`` (logits, eval mode) to ``out_dir``; return (artifact, contract) paths.

    ``model`` is an ``fnnet.nn`` model (any ``nnx.Module``; a copy runs in eval mode, the caller's
    is not changed), a ``fnnet.train.TrainState``, or a function ``x -> logits``. Its state is closed
    over, so it becomes constants of the StableHLO module and the artifact is self-contained. The
    batch dimension is symbolic (``jax.export.symbolic_shape("batch")``).
    Lowering for ``cuda`` works on a CPU-only machine, so the default artifact runs on either.
    ``normalisation`` defaults to ``{"divide_by": 255.0}`` (pixels 0..255 to 0..1);
    ``class_names`` to the ten Fashion-MNIST classes (``fnnet.data.CLASS_NAMES``).
    """
    forward = _forward(model)
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f"input_shape must be a non-empty tuple of positive ints (no batch dim), got {input_shape!r}")
    shape = tuple(int(d) for d in shape)
    try:
        np_dtype = np.dtype(dtype)
    except TypeError as e:
        raise ValueError(f"dtype must name a floating dtype like 'float32', got {dtype!r}") from e
    if not np.issubdtype(np_dtype, np.floating):
        raise ValueError(f"dtype must name a floating dtype like 'float32', got {dtype!r}")
    norm = _check_normalisation({"divide_by": 255.0} if normalisation is None else normalisation, "export_classifier")
    names = _check_class_names(class_names, "export_classifier")
    plats = tuple(platforms)
    if not plats or any(p not in _KNOWN_PLATFORMS for p in plats) or len(set(plats)) != len(plats):
        raise ValueError(f"platforms must be distinct names from {_KNOWN_PLATFORMS}, got {platforms!r}")

    (batch,) = jax_export.symbolic_shape(BATCH_DIM)
    spec = jax.ShapeDtypeStruct((batch, *shape), np_dtype)
    exported = jax_export.export(jax.jit(forward), platforms=plats)(spec)
    if len(exported.out_avals) != 1:
        raise ValueError(f"the model must return one logits array, got {len(exported.out_avals)} outputs")
    out = exported.out_avals[0]
    if out.ndim != 2 or out.shape[1] != len(names) or not np.issubdtype(out.dtype, np.floating):
        raise ValueError(
            f"model(x) must return float logits of shape (batch, "
            f"{len(names)}) to match class_names, got {out.dtype}{list(out.shape)}"
        )
    blob = bytes(exported.serialize())

    from fnnet import __version__ as fnnet_version  # here, not at the top: fnnet/__init__ imports us

    contract = {
        "format": CONTRACT_FORMAT,
        "artifact": ARTIFACT_NAME,
        "artifact_bytes": len(blob),
        "artifact_sha256": hashlib.sha256(blob).hexdigest(),
        "input": {"shape": [BATCH_DIM, *shape], "dtype": np_dtype.name, "layout": _layout(shape)},
        "normalisation": norm,
        "output": "logits",
        "class_names": names,
        "platforms": list(exported.platforms),
        "calling_convention_version": int(exported.calling_convention_version),
        "jax_version": jax.__version__,
        "fnnet_version": fnnet_version,
    }
    directory = pathlib.Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    artifact_path, contract_path = directory / ARTIFACT_NAME, directory / CONTRACT_NAME
    atomic_write_bytes(artifact_path, blob)
    atomic_write_bytes(contract_path, (json.dumps(contract, indent=2) + "\n").encode())
    return artifact_path, contract_path


def _layout(shape: tuple[int, ...]) -> str:
    """How an image is laid out in one example: ``"flat"`` (H*W pixels, row-major), ``"NCHW"`` (torch's
    channels-first ``(C, H, W)``), else ``"(d0, d1, ...)"``."""
    if len(shape) == 1:
        return "flat"
    if len(shape) == 3:
        return "NCHW"
    return "(" + ", ".join(f"d{i}" for i in range(len(shape))) + ")"


def _forward(model: Any) -> Callable[[jax.Array], jax.Array]:
    """``x -> logits`` of a model in eval mode, as a pure function of its state."""
    if isinstance(model, TrainState):
        graphdef, state = model.graphdef, (model.params, model.buffers, model.rest)
    elif isinstance(model, nnx.Module):
        graphdef, *state = nnx.split(model)
    elif callable(model):
        return model
    else:
        raise TypeError(f"model must be an nnx.Module, a TrainState or a function x -> logits, got {model!r}")

    def forward(x: jax.Array) -> jax.Array:
        module = nnx.merge(graphdef, *state)
        module.eval()
        return module(x)

    return forward


def _read_contract(path: pathlib.Path) -> dict[str, Any]:
    """Parse and check ``model.json``; every problem is a ValueError naming the file."""
    if not path.is_file():
        raise ValueError(f"{path}: contract file not found (expected {CONTRACT_NAME} beside {ARTIFACT_NAME})")
    try:
        contract = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(contract, dict) or contract.get("format") != CONTRACT_FORMAT:
        raise ValueError(f"{path}: not an fnnet export contract (expected format {CONTRACT_FORMAT!r})")
    inp = contract.get("input")
    shape = inp.get("shape") if isinstance(inp, dict) else None
    if (
        not isinstance(shape, list)
        or len(shape) < 2
        or shape[0] != BATCH_DIM
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape[1:])
    ):
        raise ValueError(f"{path}: input.shape must be ['batch', positive ints...], got {shape!r}")
    try:
        dtype = np.dtype(inp.get("dtype"))
    except TypeError as e:
        raise ValueError(f"{path}: input.dtype {inp.get('dtype')!r} is not a dtype") from e
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"{path}: input.dtype must be floating, got {dtype}")
    _check_normalisation(contract.get("normalisation"), str(path))
    _check_class_names(contract.get("class_names"), str(path))
    for key in ("artifact_bytes", "calling_convention_version"):
        if not isinstance(contract.get(key), int):
            raise ValueError(f"{path}: {key} must be an int, got {contract.get(key)!r}")
    if not isinstance(contract.get("artifact_sha256"), str):
        raise ValueError(f"{path}: artifact_sha256 missing")
    return contract


def _check_calling_convention(version: int, path: pathlib.Path, writer: str) -> None:
    lo = jax_export.minimum_supported_calling_convention_version
    hi = jax_export.maximum_supported_calling_convention_version
    if not lo <= version <= hi:
        raise ValueError(
            f"{path}: artifact uses jax.export calling convention {version} (written by "
            f"jax {writer}); this jax {jax.__version__} reads only {lo}..{hi}: re-export "
            f"it with a jax in that range or upgrade jax"
        )


def load_exported(
    model_dir: str | os.PathLike[str],
) -> tuple[Callable[[Any], jax.Array], dict[str, Any]]:
    """Load ``model.jaxexport`` + ``model.json``; return ``(logits_fn, contract)``.

    ``logits_fn(x)`` takes an already normalised array of shape ``(n, *input_shape)`` and the
    contract's dtype and returns ``(n, len(class_names))`` logits; it is jitted, one compile per
    batch size. The artifact is run once on a zero batch here, so an artifact this jax or this
    platform cannot run is refused now, not at the first prediction. Every problem (missing file,
    truncated or corrupt artifact, contract that disagrees with the artifact, unreadable calling
    convention) is a ValueError naming the file.
    """
    directory = pathlib.Path(model_dir)
    contract_path, artifact_path = directory / CONTRACT_NAME, directory / ARTIFACT_NAME
    contract = _read_contract(contract_path)
    writer = str(contract.get("jax_version", "unknown"))
    _check_calling_convention(contract["calling_convention_version"], artifact_path, writer)
    if not artifact_path.is_file():
        raise ValueError(f"{artifact_path}: artifact file not found")
    blob = artifact_path.read_bytes()
    if len(blob) != contract["artifact_bytes"]:
        raise ValueError(
            f"{artifact_path}: truncated or corrupt artifact: {len(blob)} bytes, "
            f"{contract_path.name} says {contract['artifact_bytes']}"
        )
    if hashlib.sha256(blob).hexdigest() != contract["artifact_sha256"]:
        raise ValueError(f"{artifact_path}: corrupt artifact: SHA-256 differs from {contract_path.name}")
    try:
        exported = jax_export.deserialize(bytearray(blob))
    except Exception as e:  # flatbuffers raises struct.error, IndexError, ... on bad bytes
        raise ValueError(
            f"{artifact_path}: cannot deserialize (written by jax {writer}, this is jax "
            f"{jax.__version__}): {type(e).__name__}: {e}"
        ) from e
    _check_calling_convention(exported.calling_convention_version, artifact_path, writer)

    shape = tuple(contract["input"]["shape"][1:])
    dtype = np.dtype(contract["input"]["dtype"])
    n_classes = len(contract["class_names"])
    ins, outs = exported.in_avals, exported.out_avals
    if (
        len(ins) != 1
        or len(outs) != 1
        or tuple(ins[0].shape[1:]) != shape
        or ins[0].dtype != dtype
        or not jax_export.is_symbolic_dim(ins[0].shape[0])
        or len(outs[0].shape) != 2
        or outs[0].shape[1] != n_classes
    ):
        raise ValueError(
            f"{contract_path}: contract (input {dtype}[batch, {', '.join(map(str, shape))}], "
            f"{n_classes} classes) does not match {artifact_path.name} (inputs "
            f"{[str(a) for a in ins]}, outputs {[str(a) for a in outs]})"
        )
    if dtype == np.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            f"{contract_path}: the model takes float64 input; enable "
            "jax.config.update('jax_enable_x64', True) before loading it"
        )
    call = jax.jit(exported.call)

    def logits_fn(x: Any) -> jax.Array:
        """Logits of the exported classifier for a normalised batch ``x``."""
        if tuple(np.shape(x)[1:]) != shape or np.ndim(x) != len(shape) + 1:
            raise ValueError(f"x must have shape (n, {', '.join(map(str, shape))}), got {np.shape(x)}")
        if np.result_type(x) != dtype:
            raise ValueError(f"x must have dtype {dtype}, got {np.result_type(x)}")
        return call(x)

    try:
        logits_fn(np.zeros((1, *shape), dtype)).block_until_ready()
    except Exception as e:  # an MLIR/VHLO version error or a platform the artifact lacks
        raise ValueError(
            f"{artifact_path}: cannot run on this jax {jax.__version__} "
            f"({jax.default_backend()}; artifact written by jax {writer} for "
            f"{contract.get('platforms')}): {type(e).__name__}: {e}"
        ) from e
    return logits_fn, contract
