"""``torch.nn`` on Flax NNX: torch's class names, constructor signatures, parameter names, layouts and init.

``import fnnet.nn as nn`` gives what a torch user looks for under ``torch.nn``: the layers (each an
``nnx.Module`` subclass of :class:`fnnet.nn.Module`), the loss modules, ``nn.functional``, and
:func:`state_dict` / :func:`load_state_dict`, which speak torch's keys. One file per torch file:
``linear.py`` (Linear, Identity), ``container.py`` (Sequential), ``activation.py``, ``dropout.py``,
``flatten.py``, ``loss.py``, ``conv.py``, ``batchnorm.py``, ``normalization.py``, ``pooling.py``,
``padding.py``, ``sparse.py`` (Embedding), ``module.py`` (the base class), ``state.py``, ``convert.py``
(``from_torch``). See ``fnnet.nn.module`` for the conventions (``rngs=``, ``train()``/``eval()``, buffers).
"""

from __future__ import annotations

from fnnet.nn import functional as functional
from fnnet.nn import init as init
from fnnet.nn.activation import *  # noqa: F403
from fnnet.nn.activation import __all__ as _activation_names
from fnnet.nn.batchnorm import *  # noqa: F403
from fnnet.nn.batchnorm import __all__ as _batchnorm_names
from fnnet.nn.container import *  # noqa: F403
from fnnet.nn.container import __all__ as _container_names
from fnnet.nn.conv import *  # noqa: F403
from fnnet.nn.conv import __all__ as _conv_names
from fnnet.nn.convert import from_torch as from_torch
from fnnet.nn.dropout import *  # noqa: F403
from fnnet.nn.dropout import __all__ as _dropout_names
from fnnet.nn.flatten import Flatten as Flatten
from fnnet.nn.flatten import Unflatten as Unflatten
from fnnet.nn.linear import Identity as Identity
from fnnet.nn.linear import Linear as Linear
from fnnet.nn.loss import *  # noqa: F403
from fnnet.nn.loss import __all__ as _loss_names
from fnnet.nn.module import Buffer as Buffer
from fnnet.nn.module import Module as Module
from fnnet.nn.normalization import *  # noqa: F403
from fnnet.nn.normalization import __all__ as _normalization_names
from fnnet.nn.padding import *  # noqa: F403
from fnnet.nn.padding import __all__ as _padding_names
from fnnet.nn.pooling import *  # noqa: F403
from fnnet.nn.pooling import __all__ as _pooling_names
from fnnet.nn.sparse import *  # noqa: F403
from fnnet.nn.sparse import __all__ as _sparse_names
from fnnet.nn.state import IncompatibleKeys as IncompatibleKeys
from fnnet.nn.state import StateDictError as StateDictError
from fnnet.nn.state import load_state_dict as load_state_dict
from fnnet.nn.state import named_parameters as named_parameters
from fnnet.nn.state import state_dict as state_dict

__all__ = sorted(
    {
        "functional",
        "init",
        "Buffer",
        "Flatten",
        "Identity",
        "IncompatibleKeys",
        "Linear",
        "Module",
        "StateDictError",
        "Unflatten",
        "from_torch",
        "load_state_dict",
        "named_parameters",
        "state_dict",
        *_activation_names,
        *_batchnorm_names,
        *_container_names,
        *_conv_names,
        *_dropout_names,
        *_normalization_names,
        *_padding_names,
        *_pooling_names,
        *_sparse_names,
        *(n for n in _loss_names if n != "loss_module"),
    }
)
