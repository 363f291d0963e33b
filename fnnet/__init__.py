"""fnnet: the PyTorch tutorials' tensors, autodiff, losses, optimizers and networks in functional JAX.

Submodules (each also importable on its own): ``tensor``, ``losses``, ``optim``, ``interop``,
``models``, ``data``, ``train``, ``parallel``, ``checkpoint``, ``export``, ``apparel``, ``reports``,
``smallnets`` (the tutorials' small networks, each whole run one ``jit``), ``toy_data``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from fnnet import apparel as apparel
from fnnet import checkpoint as checkpoint
from fnnet import data as data
from fnnet import export as export
from fnnet import interop as interop
from fnnet import losses as losses
from fnnet import models as models
from fnnet import optim as optim
from fnnet import parallel as parallel
from fnnet import reports as reports
from fnnet import smallnets as smallnets
from fnnet import tensor as tensor
from fnnet import toy_data as toy_data
from fnnet import train as train
from fnnet.apparel import RECIPES as RECIPES
from fnnet.apparel import Recipe as Recipe
from fnnet.apparel import Splits as Splits
from fnnet.apparel import build_state as build_state
from fnnet.apparel import fit as fit
from fnnet.apparel import make_loss as make_loss
from fnnet.apparel import make_optimizer as make_optimizer
from fnnet.apparel import prepare_splits as prepare_splits
from fnnet.checkpoint import Checkpointer as Checkpointer
from fnnet.data import CLASS_NAMES as CLASS_NAMES
from fnnet.data import DataError as DataError
from fnnet.data import FashionMNIST as FashionMNIST
from fnnet.data import load_fashion_mnist as load_fashion_mnist
from fnnet.data import read_idx as read_idx
from fnnet.data import stratified_split as stratified_split
from fnnet.data import to_features as to_features
from fnnet.data import write_csv_png as write_csv_png
from fnnet.export import export_classifier as export_classifier
from fnnet.export import load_exported as load_exported
from fnnet.interop import flax_to_torch as flax_to_torch
from fnnet.interop import torch_to_flax as torch_to_flax
from fnnet.models import MLP as MLP
from fnnet.models import BinaryClassifier as BinaryClassifier
from fnnet.models import HelloNet as HelloNet
from fnnet.toy_data import load_binary_classification as load_binary_classification
from fnnet.train import Batch as Batch
from fnnet.train import TrainState as TrainState
from fnnet.train import accumulate_gradients as accumulate_gradients
from fnnet.train import create_train_state as create_train_state
from fnnet.train import enable_compilation_cache as enable_compilation_cache
from fnnet.train import evaluate as evaluate
from fnnet.train import make_epoch_fn as make_epoch_fn
from fnnet.train import make_run_fn as make_run_fn
from fnnet.train import make_train_step as make_train_step
from fnnet.train import predict as predict

__all__ = [
    "__version__",
    "apparel",
    "checkpoint",
    "data",
    "export",
    "interop",
    "losses",
    "models",
    "optim",
    "parallel",
    "reports",
    "smallnets",
    "tensor",
    "toy_data",
    "train",
    "RECIPES",
    "Recipe",
    "Splits",
    "build_state",
    "fit",
    "make_loss",
    "make_optimizer",
    "prepare_splits",
    "Checkpointer",
    "CLASS_NAMES",
    "DataError",
    "FashionMNIST",
    "load_fashion_mnist",
    "read_idx",
    "stratified_split",
    "to_features",
    "write_csv_png",
    "export_classifier",
    "load_exported",
    "flax_to_torch",
    "torch_to_flax",
    "MLP",
    "BinaryClassifier",
    "HelloNet",
    "load_binary_classification",
    "Batch",
    "TrainState",
    "accumulate_gradients",
    "create_train_state",
    "enable_compilation_cache",
    "evaluate",
    "make_epoch_fn",
    "make_run_fn",
    "make_train_step",
    "predict",
]
