"""``torch.nn.functional`` in JAX: torch's names, argument order, keywords and defaults.

The functions live in private modules by family (torch keeps them in one file of 6,000 lines);
this module is the namespace a torch user looks in: ``import fnnet.nn.functional as F``.
"""

from __future__ import annotations

from fnnet.nn._activations import *  # noqa: F401,F403
from fnnet.nn._activations import __all__ as _activations_all
from fnnet.nn._activations_more import *  # noqa: F401,F403
from fnnet.nn._activations_more import __all__ as _activations_more_all
from fnnet.nn._conv import *  # noqa: F401,F403
from fnnet.nn._conv import __all__ as _conv_all
from fnnet.nn._ctc import *  # noqa: F401,F403
from fnnet.nn._ctc import __all__ as _ctc_all
from fnnet.nn._dropout import *  # noqa: F401,F403
from fnnet.nn._dropout import __all__ as _dropout_all
from fnnet.nn._linear import linear as linear
from fnnet.nn._losses import *  # noqa: F401,F403
from fnnet.nn._losses import __all__ as _losses_all
from fnnet.nn._losses_embedding import *  # noqa: F401,F403
from fnnet.nn._losses_embedding import __all__ as _losses_embedding_all
from fnnet.nn._losses_extra import *  # noqa: F401,F403
from fnnet.nn._losses_extra import __all__ as _losses_extra_all
from fnnet.nn._normalization import *  # noqa: F401,F403
from fnnet.nn._normalization import __all__ as _normalization_all
from fnnet.nn._padding import *  # noqa: F401,F403
from fnnet.nn._padding import __all__ as _padding_all
from fnnet.nn._pooling import *  # noqa: F401,F403
from fnnet.nn._pooling import __all__ as _pooling_all
from fnnet.nn._sparse import *  # noqa: F401,F403
from fnnet.nn._sparse import __all__ as _sparse_all

__all__ = sorted(
    set(
        _activations_all
        + _activations_more_all
        + _conv_all
        + _ctc_all
        + _dropout_all
        + _losses_all
        + _losses_embedding_all
        + _losses_extra_all
        + _normalization_all
        + _padding_all
        + _pooling_all
        + _sparse_all
    )
)
