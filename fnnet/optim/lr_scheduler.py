"""``torch.optim.lr_scheduler`` as optax schedules: every scheduler of torch 2.13, torch's values.

Each scheduler takes torch's arguments and defaults with the optimizer replaced by ``lr=`` (the
optimizer's initial learning rate; ``last_epoch`` and ``verbose`` are dropped). ``OneCycleLR`` and
``CyclicLR`` set their own learning rates and take no ``lr``; ``SequentialLR`` and
``ChainedScheduler`` take fnnet schedulers; ``LambdaLR`` and ``MultiplicativeLR`` take a function of
the count written with jnp or Python arithmetic.

Every scheduler but ``ReduceLROnPlateau`` is an optax schedule: ``sched(count)`` is the lr torch's
``get_last_lr()[0]`` reports after ``count`` calls of ``scheduler.step()`` (count 0: right after
construction), jit-able with a traced count, in the default float dtype (float64 under x64, where it
equals torch's recursion to ~1e-14 relative)::

    sched = StepLR(lr=0.1, step_size=30, gamma=0.1)
    tx = fnnet.optim.sgd(lr=sched)                                  # steps once per update
    tx = fnnet.optim.sgd(lr=lambda count: sched(count // steps_per_epoch))   # once per epoch

``OneCycleLR`` and ``CyclicLR`` (``cycle_momentum=True``) also cycle the momentum: pass
``sched.momentum`` on, ``fnnet.optim.sgd(lr=sched, momentum=sched.momentum)`` or
``fnnet.optim.adam(lr=sched, betas=(sched.momentum, 0.999))``, to train as torch does.

``ReduceLROnPlateau`` reads a metric: ``state = p.init()``, ``state = p.step(state, metric)``,
``p.lr(state)``; it feeds an optimizer built with ``optax.inject_hyperparams`` (see its docstring).
"""

from __future__ import annotations

from fnnet.optim._lr_base import LRScheduler as LRScheduler
from fnnet.optim._lr_composite import ChainedScheduler as ChainedScheduler
from fnnet.optim._lr_composite import SequentialLR as SequentialLR
from fnnet.optim._lr_cyclic import CosineAnnealingWarmRestarts as CosineAnnealingWarmRestarts
from fnnet.optim._lr_cyclic import CyclicLR as CyclicLR
from fnnet.optim._lr_cyclic import OneCycleLR as OneCycleLR
from fnnet.optim._lr_plateau import PlateauState as PlateauState
from fnnet.optim._lr_plateau import ReduceLROnPlateau as ReduceLROnPlateau
from fnnet.optim._lr_simple import ConstantLR as ConstantLR
from fnnet.optim._lr_simple import CosineAnnealingLR as CosineAnnealingLR
from fnnet.optim._lr_simple import ExponentialLR as ExponentialLR
from fnnet.optim._lr_simple import LambdaLR as LambdaLR
from fnnet.optim._lr_simple import LinearLR as LinearLR
from fnnet.optim._lr_simple import MultiplicativeLR as MultiplicativeLR
from fnnet.optim._lr_simple import MultiStepLR as MultiStepLR
from fnnet.optim._lr_simple import PolynomialLR as PolynomialLR
from fnnet.optim._lr_simple import StepLR as StepLR

__all__ = [
    "LRScheduler",
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "SequentialLR",
    "CosineAnnealingLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
    "PlateauState",
    "CyclicLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "PolynomialLR",
]
