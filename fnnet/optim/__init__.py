"""torch.optim-faithful optimizers as optax ``GradientTransformation`` s, and its schedulers.

Each ``fnnet.optim.<name>(...)`` takes the keywords and defaults of ``torch.optim.<Name>`` (torch 2.13)
and returns an ``optax.GradientTransformation`` built as an ``optax.chain`` of small transforms: optax's
own where their arithmetic is torch's, a literal port of torch's ``_single_tensor_<name>`` otherwise.
The files mirror torch's (``torch/optim/adam.py`` -> ``fnnet/optim/adam.py``). Use it the optax way::

    tx = fnnet.optim.adam(lr=5e-4)
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)   # params: needed for weight decay, ASGD, ...
    params = optax.apply_updates(params, updates)

Shared conventions (all optimizers):

* ``lr`` is a float, a 0-d array or an optax schedule (any ``fnnet.optim.lr_scheduler`` scheduler but
  ``ReduceLROnPlateau`` is one); the schedule is evaluated at torch's step count minus one (step 1
  uses ``lr(0)``, as ``optax.scale_by_learning_rate``), counted in JAX's default integer dtype so
  that a schedule's value stays float64 under ``jax_enable_x64``. A scheduler passed as ``lr`` steps
  once per update; ``lr=lambda count: sched(count // steps_per_epoch)`` steps it once per epoch.
* Every float hyperparameter accepts a 0-d JAX or NumPy array (torch: a Tensor), so every optimizer
  works under ``optax.inject_hyperparams``: ``opt_state.hyperparams["lr"] = x`` between steps trains
  as torch's ``param_groups[0]["lr"] = x``. SGD/RMSprop's ``momentum`` and the Adam family's betas
  also accept a schedule (``OneCycleLR``/``CyclicLR``'s ``.momentum``). Under ``inject_hyperparams``
  every numeric default becomes an array too (``weight_decay=0`` included), so pass ``params`` to
  ``update``; Muon's ``ns_steps`` must stay static (``static_args=("ns_steps",)``).
* ``maximize`` negates the gradient first, exactly as torch; it is keyword-only here (in some torch
  classes it is positional).
* torch's implementation switches ``foreach``, ``fused``, ``capturable`` and ``differentiable`` are
  omitted: they select kernels, not arithmetic; passing one raises ``TypeError``.
* Invalid hyperparameters raise ``ValueError`` with torch's message text, for Python numbers and
  concrete arrays (traced values and schedules are not range-checked).
* Optimizers that read parameters (``weight_decay != 0``, ASGD, Adafactor, Muon) raise ``ValueError``
  when ``update`` gets ``params=None``.

``lbfgs`` is closure-style (``step(loss_fn, params, state)``), as ``torch.optim.LBFGS``.
"""

from __future__ import annotations

from fnnet.optim import lr_scheduler as lr_scheduler
from fnnet.optim.adadelta import adadelta as adadelta
from fnnet.optim.adafactor import adafactor as adafactor
from fnnet.optim.adagrad import adagrad as adagrad
from fnnet.optim.adam import adam as adam
from fnnet.optim.adamax import adamax as adamax
from fnnet.optim.adamw import adamw as adamw
from fnnet.optim.asgd import asgd as asgd
from fnnet.optim.lbfgs import LBFGSOptimizer as LBFGSOptimizer
from fnnet.optim.lbfgs import LBFGSState as LBFGSState
from fnnet.optim.lbfgs import lbfgs as lbfgs
from fnnet.optim.muon import muon as muon
from fnnet.optim.nadam import nadam as nadam
from fnnet.optim.radam import radam as radam
from fnnet.optim.rmsprop import rmsprop as rmsprop
from fnnet.optim.rprop import rprop as rprop
from fnnet.optim.sgd import sgd as sgd
from fnnet.optim.sparse_adam import sparse_adam as sparse_adam

__all__ = [
    "lr_scheduler",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "asgd",
    "lbfgs",
    "LBFGSOptimizer",
    "LBFGSState",
    "muon",
    "nadam",
    "radam",
    "rmsprop",
    "rprop",
    "sgd",
    "sparse_adam",
]
