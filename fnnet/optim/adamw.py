"""``torch.optim.AdamW`` as an optax ``GradientTransformation``."""

from __future__ import annotations

from typing import Any

from fnnet.optim._base import Hyper, ScalarOrSchedule, Tx
from fnnet.optim.adam import adam

__all__ = ["adamw"]


def adamw(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Hyper = 1e-8,
    weight_decay: Hyper = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
) -> Tx:
    """``torch.optim.AdamW``: Adam whose weight decay shrinks the parameters, ``p -= lr * wd * p``.

    Plain ``optax.adamw`` has the same decoupled form but its default ``weight_decay`` is 1e-4
    (torch: 1e-2), its ``amsgrad`` does not exist and its moment arithmetic is ordered differently.
    Hyperparameters as in ``fnnet.optim.adam`` (arrays everywhere, schedules for ``lr`` and betas).
    """
    return adam(lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decoupled_weight_decay=True)
