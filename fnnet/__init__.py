"""fnnet: PyTorch's tensors, autodiff, ``torch.nn``, ``torch.optim`` and training, in functional JAX.

The library mirrors torch's namespace: ``fnnet.nn`` (layers on Flax NNX with torch's names, layouts
and init; ``fnnet.nn.functional``; ``state_dict``/``load_state_dict``), ``fnnet.optim`` (torch.optim
as optax transforms, ``fnnet.optim.lr_scheduler``), ``fnnet.tensor`` (torch's tensor vocabulary), and
around them ``data`` (Fashion-MNIST), ``train`` (the compiled step, the one scan, evaluation, ``fit``),
``parallel`` (pmap / sharding / many processes), ``checkpoint``, ``export`` (``jax.export``),
``models`` (the tutorials' networks) and ``smallnets`` (their whole training runs in one ``jit``).
Recipes, command lines and output writing live in ``experiments/``, not here.
"""

from __future__ import annotations

__version__ = "0.2.0"

from fnnet import checkpoint as checkpoint
from fnnet import data as data
from fnnet import export as export
from fnnet import models as models
from fnnet import nn as nn
from fnnet import optim as optim
from fnnet import parallel as parallel
from fnnet import smallnets as smallnets
from fnnet import tensor as tensor
from fnnet import toy_data as toy_data
from fnnet import train as train
from fnnet.checkpoint import Checkpointer as Checkpointer
from fnnet.data import CLASS_NAMES as CLASS_NAMES
from fnnet.data import DataError as DataError
from fnnet.data import load_fashion_mnist as load_fashion_mnist
from fnnet.export import export_classifier as export_classifier
from fnnet.export import load_exported as load_exported
from fnnet.train import TrainState as TrainState
from fnnet.train import enable_compilation_cache as enable_compilation_cache
from fnnet.train import fit as fit

__all__ = [
    "__version__",
    "checkpoint",
    "data",
    "export",
    "models",
    "nn",
    "optim",
    "parallel",
    "smallnets",
    "tensor",
    "toy_data",
    "train",
    "CLASS_NAMES",
    "Checkpointer",
    "DataError",
    "TrainState",
    "enable_compilation_cache",
    "export_classifier",
    "fit",
    "load_exported",
    "load_fashion_mnist",
]
