"""fnnet.optim.lr_scheduler against live torch.optim.lr_scheduler 2.13.

* Every scheduler in many configurations (the edge ones included: ``eta_min``, ``T_mult > 1``,
  ``three_phase``, ``anneal_strategy="linear"``, ``triangular2``, ``exp_range``, a ``scale_fn``, milestones
  out of order and repeated, ``SequentialLR`` of three, chained products): ``sched(count)`` for counts
  0..400 (one jit, count traced) against torch's ``get_last_lr()[0]`` after ``count`` steps, float64,
  1e-12 relative; the momentum of the cycling ones against the optimizer's ``momentum``/``betas[0]``.
* Momentum cycling: SGD, RMSprop and the Adam family with ``lr=sched, momentum=sched.momentum`` (or
  ``betas=(sched.momentum, b2)``) train 200 steps as torch with that scheduler, float64, 1e-10.
* ReduceLROnPlateau over metric sequences (both modes, both threshold modes, cooldown, min_lr, eps),
  and fed to ``optax.inject_hyperparams``; constructor errors with torch's messages.
* ``ROSETTA_CASES``: the "Learning-rate schedulers" rows of docs/rosetta.md.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import pathlib
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnnet.optim.lr_scheduler as F
from fnnet import optim

LR = 0.1
COUNTS = 400


def _cyclic_sin(x):
    return 0.5 * (1 + jnp.sin(x * jnp.pi / 2.0))


def _cyclic_sin_torch(x):
    return 0.5 * (1 + math.sin(x * math.pi / 2.0))


# (id, fnnet scheduler, torch builder(lr_scheduler module, optimizer), torch optimizer kind)
CONFIGS: list[tuple[str, Callable, Callable, str]] = [
    ("LambdaLR-pow", lambda: F.LambdaLR(LR, lambda e: 0.97**e), lambda T, o: T.LambdaLR(o, lambda e: 0.97**e), "sgd"),
    (
        "LambdaLR-warmup",
        lambda: F.LambdaLR(LR, lambda e: jnp.minimum(1.0, (e + 1) / 10)),
        lambda T, o: T.LambdaLR(o, lambda e: min(1.0, (e + 1) / 10)),
        "sgd",
    ),
    (
        "MultiplicativeLR",
        lambda: F.MultiplicativeLR(LR, lambda e: 0.99),
        lambda T, o: T.MultiplicativeLR(o, lambda e: 0.99),
        "sgd",
    ),
    (
        "MultiplicativeLR-epoch",
        lambda: F.MultiplicativeLR(LR, lambda e: 1 - 0.001 * e),
        lambda T, o: T.MultiplicativeLR(o, lambda e: 1 - 0.001 * e),
        "sgd",
    ),
    ("StepLR", lambda: F.StepLR(LR, 30), lambda T, o: T.StepLR(o, 30), "sgd"),
    ("StepLR-7-0.5", lambda: F.StepLR(LR, 7, 0.5), lambda T, o: T.StepLR(o, 7, 0.5), "sgd"),
    ("MultiStepLR", lambda: F.MultiStepLR(LR, [30, 80]), lambda T, o: T.MultiStepLR(o, [30, 80]), "sgd"),
    (
        "MultiStepLR-unordered-repeated-0",
        lambda: F.MultiStepLR(LR, [200, 30, 30, 0, 120], 0.5),
        lambda T, o: T.MultiStepLR(o, [200, 30, 30, 0, 120], 0.5),
        "sgd",
    ),
    ("ConstantLR", lambda: F.ConstantLR(LR), lambda T, o: T.ConstantLR(o), "sgd"),
    ("ConstantLR-0.5-40", lambda: F.ConstantLR(LR, 0.5, 40), lambda T, o: T.ConstantLR(o, 0.5, 40), "sgd"),
    ("ConstantLR-total0", lambda: F.ConstantLR(LR, 0.5, 0), lambda T, o: T.ConstantLR(o, 0.5, 0), "sgd"),
    ("LinearLR", lambda: F.LinearLR(LR), lambda T, o: T.LinearLR(o), "sgd"),
    ("LinearLR-to-0", lambda: F.LinearLR(LR, 1.0, 0.0, 100), lambda T, o: T.LinearLR(o, 1.0, 0.0, 100), "sgd"),
    ("LinearLR-0.2-0-3", lambda: F.LinearLR(LR, 0.2, 0.0, 3), lambda T, o: T.LinearLR(o, 0.2, 0.0, 3), "sgd"),
    ("LinearLR-long", lambda: F.LinearLR(LR, 0.25, 0.75, 300), lambda T, o: T.LinearLR(o, 0.25, 0.75, 300), "sgd"),
    ("ExponentialLR", lambda: F.ExponentialLR(LR, 0.99), lambda T, o: T.ExponentialLR(o, 0.99), "sgd"),
    ("PolynomialLR", lambda: F.PolynomialLR(LR), lambda T, o: T.PolynomialLR(o), "sgd"),
    ("PolynomialLR-100-2", lambda: F.PolynomialLR(LR, 100, 2.0), lambda T, o: T.PolynomialLR(o, 100, 2.0), "sgd"),
    ("PolynomialLR-300-0.5", lambda: F.PolynomialLR(LR, 300, 0.5), lambda T, o: T.PolynomialLR(o, 300, 0.5), "sgd"),
    ("CosineAnnealingLR", lambda: F.CosineAnnealingLR(LR, 50), lambda T, o: T.CosineAnnealingLR(o, 50), "sgd"),
    (
        "CosineAnnealingLR-eta_min",
        lambda: F.CosineAnnealingLR(LR, 137, 0.001),
        lambda T, o: T.CosineAnnealingLR(o, 137, 0.001),
        "sgd",
    ),
    ("CosineAnnealingLR-T1", lambda: F.CosineAnnealingLR(LR, 1), lambda T, o: T.CosineAnnealingLR(o, 1), "sgd"),
    (
        "CosineAnnealingLR-7-0.02",
        lambda: F.CosineAnnealingLR(LR, 7, 0.02),
        lambda T, o: T.CosineAnnealingLR(o, 7, 0.02),
        "sgd",
    ),
    ("CyclicLR", lambda: F.CyclicLR(0.01, LR, 20), lambda T, o: T.CyclicLR(o, 0.01, LR, 20), "sgd"),
    (
        "CyclicLR-triangular2",
        lambda: F.CyclicLR(0.01, LR, 13, 7, mode="triangular2"),
        lambda T, o: T.CyclicLR(o, 0.01, LR, 13, 7, mode="triangular2"),
        "sgd",
    ),
    (
        "CyclicLR-exp_range",
        lambda: F.CyclicLR(0.01, LR, 10, mode="exp_range", gamma=0.99),
        lambda T, o: T.CyclicLR(o, 0.01, LR, 10, mode="exp_range", gamma=0.99),
        "sgd",
    ),
    (
        "CyclicLR-scale_fn",
        lambda: F.CyclicLR(0.01, LR, 10, scale_fn=_cyclic_sin),
        lambda T, o: T.CyclicLR(o, 0.01, LR, 10, scale_fn=_cyclic_sin_torch),
        "sgd",
    ),
    (
        "CyclicLR-scale_fn-iterations",
        lambda: F.CyclicLR(0.01, LR, 10, scale_fn=lambda x: 1 / (x + 1.0), scale_mode="iterations"),
        lambda T, o: T.CyclicLR(o, 0.01, LR, 10, scale_fn=lambda x: 1 / (x + 1.0), scale_mode="iterations"),
        "sgd",
    ),
    (
        "CyclicLR-adam-no-momentum",
        lambda: F.CyclicLR(0.001, 0.01, 5, cycle_momentum=False),
        lambda T, o: T.CyclicLR(o, 0.001, 0.01, 5, cycle_momentum=False),
        "adam",
    ),
    (
        "CyclicLR-adam",
        lambda: F.CyclicLR(0.001, 0.01, 15, 25, base_momentum=0.85, max_momentum=0.95),
        lambda T, o: T.CyclicLR(o, 0.001, 0.01, 15, 25, base_momentum=0.85, max_momentum=0.95),
        "adam",
    ),
    (
        "OneCycleLR",
        lambda: F.OneCycleLR(LR, total_steps=COUNTS),
        lambda T, o: T.OneCycleLR(o, LR, total_steps=COUNTS),
        "sgd",
    ),
    (
        "OneCycleLR-linear",
        lambda: F.OneCycleLR(LR, total_steps=COUNTS, anneal_strategy="linear"),
        lambda T, o: T.OneCycleLR(o, LR, total_steps=COUNTS, anneal_strategy="linear"),
        "sgd",
    ),
    (
        "OneCycleLR-three_phase",
        lambda: F.OneCycleLR(LR, total_steps=COUNTS, three_phase=True),
        lambda T, o: T.OneCycleLR(o, LR, total_steps=COUNTS, three_phase=True),
        "adam",
    ),
    (
        "OneCycleLR-three_phase-linear",
        lambda: F.OneCycleLR(LR, total_steps=COUNTS, pct_start=0.25, anneal_strategy="linear", three_phase=True),
        lambda T, o: T.OneCycleLR(
            o, LR, total_steps=COUNTS, pct_start=0.25, anneal_strategy="linear", three_phase=True
        ),
        "sgd",
    ),
    (
        "OneCycleLR-epochs",
        lambda: F.OneCycleLR(LR, epochs=8, steps_per_epoch=50, div_factor=10.0, final_div_factor=100.0),
        lambda T, o: T.OneCycleLR(o, LR, epochs=8, steps_per_epoch=50, div_factor=10.0, final_div_factor=100.0),
        "adam",
    ),
    (
        "OneCycleLR-no-momentum",
        lambda: F.OneCycleLR(LR, total_steps=COUNTS, pct_start=0.5, cycle_momentum=False),
        lambda T, o: T.OneCycleLR(o, LR, total_steps=COUNTS, pct_start=0.5, cycle_momentum=False),
        "sgd",
    ),
    (
        "CosineAnnealingWarmRestarts",
        lambda: F.CosineAnnealingWarmRestarts(LR, 10),
        lambda T, o: T.CosineAnnealingWarmRestarts(o, 10),
        "sgd",
    ),
    (
        "CosineAnnealingWarmRestarts-T_mult2",
        lambda: F.CosineAnnealingWarmRestarts(LR, 7, 2),
        lambda T, o: T.CosineAnnealingWarmRestarts(o, 7, 2),
        "sgd",
    ),
    (
        "CosineAnnealingWarmRestarts-T_mult3-eta_min",
        lambda: F.CosineAnnealingWarmRestarts(LR, 3, 3, 0.001),
        lambda T, o: T.CosineAnnealingWarmRestarts(o, 3, 3, 0.001),
        "sgd",
    ),
    (
        "SequentialLR-warmup-cosine",
        lambda: F.SequentialLR([F.LinearLR(LR, 0.1, 1.0, 10), F.CosineAnnealingLR(LR, 50, 0.001)], [10]),
        lambda T, o: T.SequentialLR(o, [T.LinearLR(o, 0.1, 1.0, 10), T.CosineAnnealingLR(o, 50, 0.001)], [10]),
        "sgd",
    ),
    (
        "SequentialLR-three",
        lambda: F.SequentialLR([F.ConstantLR(LR, 0.5, 4), F.ExponentialLR(LR, 0.95), F.StepLR(LR, 7, 0.5)], [5, 40]),
        lambda T, o: T.SequentialLR(
            o, [T.ConstantLR(o, 0.5, 4), T.ExponentialLR(o, 0.95), T.StepLR(o, 7, 0.5)], [5, 40]
        ),
        "sgd",
    ),
    (
        "SequentialLR-multiplicative",  # restarts from the lr the exponential phase left
        lambda: F.SequentialLR([F.ExponentialLR(LR, 0.9), F.MultiplicativeLR(LR, lambda e: 0.99)], [20]),
        lambda T, o: T.SequentialLR(o, [T.ExponentialLR(o, 0.9), T.MultiplicativeLR(o, lambda e: 0.99)], [20]),
        "sgd",
    ),
    (
        "SequentialLR-milestone-0",
        lambda: F.SequentialLR([F.ExponentialLR(LR, 0.9), F.LinearLR(LR), F.MultiStepLR(LR, [3, 1, -2])], [0, 20]),
        lambda T, o: T.SequentialLR(o, [T.ExponentialLR(o, 0.9), T.LinearLR(o), T.MultiStepLR(o, [3, 1, -2])], [0, 20]),
        "sgd",
    ),
    (
        "SequentialLR-repeated-milestone",
        lambda: F.SequentialLR([F.ExponentialLR(LR, 0.9), F.LinearLR(LR), F.PolynomialLR(LR, 30, 2.0)], [15, 15]),
        lambda T, o: T.SequentialLR(o, [T.ExponentialLR(o, 0.9), T.LinearLR(o), T.PolynomialLR(o, 30, 2.0)], [15, 15]),
        "sgd",
    ),
    (
        "SequentialLR-lambda-warm-restarts",
        lambda: F.SequentialLR([F.LambdaLR(LR, lambda e: (e + 1) / 10), F.CosineAnnealingWarmRestarts(LR, 5, 2)], [9]),
        lambda T, o: T.SequentialLR(
            o, [T.LambdaLR(o, lambda e: (e + 1) / 10), T.CosineAnnealingWarmRestarts(o, 5, 2)], [9]
        ),
        "sgd",
    ),
    (
        "ChainedScheduler-constant-exponential",
        lambda: F.ChainedScheduler([F.ConstantLR(LR, 0.1, 2), F.ExponentialLR(LR, 0.9)]),
        lambda T, o: T.ChainedScheduler([T.ConstantLR(o, 0.1, 2), T.ExponentialLR(o, 0.9)]),
        "sgd",
    ),
    (
        "ChainedScheduler-step-linear-multistep",
        lambda: F.ChainedScheduler([F.StepLR(LR, 10, 0.5), F.LinearLR(LR, 0.2, 1.0, 30), F.MultiStepLR(LR, [50, 100])]),
        lambda T, o: T.ChainedScheduler(
            [T.StepLR(o, 10, 0.5), T.LinearLR(o, 0.2, 1.0, 30), T.MultiStepLR(o, [50, 100])]
        ),
        "sgd",
    ),
    (
        "ChainedScheduler-lambda-sets-then-step",
        lambda: F.ChainedScheduler(
            [F.ExponentialLR(LR, 0.99), F.LambdaLR(LR, lambda e: 1.0 / (1 + e)), F.StepLR(LR, 5, 0.5)]
        ),
        lambda T, o: T.ChainedScheduler(
            [T.ExponentialLR(o, 0.99), T.LambdaLR(o, lambda e: 1.0 / (1 + e)), T.StepLR(o, 5, 0.5)]
        ),
        "sgd",
    ),
    (
        "ChainedScheduler-cosine-exponential",  # CosineAnnealingLR is affine on the lr: torch's recursion
        lambda: F.ChainedScheduler([F.CosineAnnealingLR(LR, 20, 0.001), F.ExponentialLR(LR, 0.99)]),
        lambda T, o: T.ChainedScheduler([T.CosineAnnealingLR(o, 20, 0.001), T.ExponentialLR(o, 0.99)]),
        "sgd",
    ),
    (
        "ChainedScheduler-multiplicative-polynomial",
        lambda: F.ChainedScheduler([F.MultiplicativeLR(LR, lambda e: 0.995), F.PolynomialLR(LR, 50, 1.5)]),
        lambda T, o: T.ChainedScheduler([T.MultiplicativeLR(o, lambda e: 0.995), T.PolynomialLR(o, 50, 1.5)]),
        "sgd",
    ),
]


def _torch_optimizer(torch, kind: str, lr: float = LR):
    p = torch.zeros(1, requires_grad=True)
    if kind == "adam":
        return torch.optim.Adam([p], lr=lr)
    return torch.optim.SGD([p], lr=lr, momentum=0.9)


def _torch_momentum(opt) -> float:
    group = opt.param_groups[0]
    return group["betas"][0] if "betas" in group else group["momentum"]


def torch_schedule(torch, build, kind: str, steps: int, lr: float = LR) -> tuple[np.ndarray, np.ndarray]:
    """torch's get_last_lr()[0] and the optimizer's momentum (or beta1) after 0..steps steps."""
    opt = _torch_optimizer(torch, kind, lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "the epoch parameter is deprecated" from nested steps
        sched = build(torch.optim.lr_scheduler, opt)
        lrs, moms = [sched.get_last_lr()[0]], [_torch_momentum(opt)]
        for _ in range(steps):
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr()[0])
            moms.append(_torch_momentum(opt))
    return np.asarray(lrs, np.float64), np.asarray(moms, np.float64)


def _all_counts(fn, n: int) -> np.ndarray:
    """fn at counts 0..n, in one jit (the count traced)."""
    return np.asarray(jax.jit(jax.vmap(fn))(jnp.arange(n + 1)))


def _max_rel(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Largest |ours - theirs| / |theirs| (exact zeros must be matched exactly)."""
    diff = np.abs(ours - theirs)
    return float(np.max(np.where(diff == 0, 0.0, diff / np.maximum(np.abs(theirs), np.finfo(np.float64).tiny))))


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_scheduler_matches_torch(config, x64, torch):
    name, ours, theirs, kind = config
    sched = ours()
    lrs, moms = torch_schedule(torch, theirs, kind, COUNTS)
    values = _all_counts(sched, COUNTS)
    assert values.dtype == np.float64
    rel = _max_rel(values, lrs)
    assert rel <= 1e-12, f"{name}: lr max relative difference {rel}"
    assert np.ptp(lrs) > 0 or name.startswith("ConstantLR-total0"), f"{name}: torch's lr never moved"
    if sched.momentum is None:
        assert getattr(sched, "cycle_momentum", False) is False
    else:
        rel = _max_rel(_all_counts(sched.momentum, COUNTS), moms)
        assert rel <= 1e-12, f"{name}: momentum max relative difference {rel}"
        assert np.ptp(moms) > 0


def test_jit_traced_count_compiles_once(x64, torch):
    """One compilation serves every count, Python ints, int64 and optax's int32 counts alike."""
    sched = F.SequentialLR([F.LinearLR(LR, 0.1, 1.0, 10), F.CosineAnnealingLR(LR, 50, 0.001)], [10])
    lrs, _ = torch_schedule(
        torch, lambda T, o: T.SequentialLR(o, [T.LinearLR(o, 0.1, 1.0, 10), T.CosineAnnealingLR(o, 50, 0.001)], [10]),
        "sgd", 400,
    )  # fmt: skip
    traces = []

    @jax.jit
    def at(count):
        traces.append(1)
        return sched(count)

    counts = (0, 5, 10, 77, 399)
    values = np.asarray([at(jnp.asarray(c)) for c in counts])
    assert len(traces) == 1
    assert _max_rel(values, lrs[list(counts)]) <= 1e-12
    int32 = sched(jnp.asarray(77, jnp.int32))
    assert int32.dtype == jnp.float64 and _max_rel(np.asarray([int32]), lrs[[77]]) <= 1e-12
    with pytest.raises(TypeError, match="integer"):
        sched(1.5)


def test_without_x64_float32(torch):
    """x64 off: float32 values (counts int32), within float32 rounding of torch's."""
    sched = F.OneCycleLR(LR, total_steps=100, three_phase=True)
    lrs, moms = torch_schedule(torch, lambda T, o: T.OneCycleLR(o, LR, total_steps=100, three_phase=True), "sgd", 100)
    values = _all_counts(sched, 100)
    assert values.dtype == np.float32
    np.testing.assert_allclose(values, lrs, rtol=1e-5)
    np.testing.assert_allclose(_all_counts(sched.momentum, 100), moms, rtol=1e-5)


def test_one_cycle_past_total_steps(x64, torch):
    """torch raises past total_steps; fnnet keeps returning the value for total_steps."""
    sched = F.OneCycleLR(LR, total_steps=20)
    lrs, _ = torch_schedule(torch, lambda T, o: T.OneCycleLR(o, LR, total_steps=20), "sgd", 20)
    opt = _torch_optimizer(torch, "sgd")
    theirs = torch.optim.lr_scheduler.OneCycleLR(opt, LR, total_steps=20)
    for _ in range(20):
        opt.step()
        theirs.step()
    with pytest.raises(ValueError, match="Tried to step 21 times"):
        theirs.step()
    assert float(sched(20)) == pytest.approx(lrs[20], rel=1e-12)
    assert [float(sched(c)) for c in (21, 50, 10**6)] == [float(sched(20))] * 3
    assert float(sched.momentum(10**6)) == float(sched.momentum(20))


# ---------------------------------------------------------------------------------------------
# training with schedulers: momentum cycling, per-epoch stepping


def _problem():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(24, 3))
    y = np.tanh(x @ rng.normal(size=(3, 2))) + 0.1 * rng.normal(size=(24, 2))
    params = {"w": rng.normal(size=(3, 2)) * 0.5, "b": rng.normal(size=(2,)) * 0.1}
    return x, y, params


def _jax_loss(p, x, y):
    return jnp.mean((jnp.tanh(x @ p["w"] + p["b"][None, :]) - y) ** 2)


def _torch_loss(torch, p, x, y):
    return torch.mean((torch.tanh(x @ p["w"] + p["b"]) - y) ** 2)


# (id, fnnet optimizer from a scheduler, torch optimizer class and keywords, scheduler pair, steps per
# scheduler step). The fnnet scheduler steps once per update through lr=/momentum=, or every k updates.
TRAIN_CASES = [
    (
        "sgd-OneCycleLR",
        lambda s: optim.sgd(lr=s, momentum=s.momentum),
        ("SGD", {"momentum": 0.9}),
        (lambda: F.OneCycleLR(0.5, total_steps=200), lambda T, o: T.OneCycleLR(o, 0.5, total_steps=200)),
    ),
    (
        "sgd-nesterov-CyclicLR",
        lambda s: optim.sgd(lr=s, momentum=s.momentum, nesterov=True, weight_decay=0.01),
        ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
        (
            lambda: F.CyclicLR(0.05, 0.5, 25, mode="triangular2"),
            lambda T, o: T.CyclicLR(o, 0.05, 0.5, 25, mode="triangular2"),
        ),
    ),
    (
        "rmsprop-OneCycleLR",
        lambda s: optim.rmsprop(lr=s, momentum=s.momentum),
        ("RMSprop", {}),
        (
            lambda: F.OneCycleLR(0.01, total_steps=200, three_phase=True),
            lambda T, o: T.OneCycleLR(o, 0.01, total_steps=200, three_phase=True),
        ),
    ),
    (
        "adam-OneCycleLR",
        lambda s: optim.adam(lr=s, betas=(s.momentum, 0.999)),
        ("Adam", {}),
        (lambda: F.OneCycleLR(0.05, total_steps=200), lambda T, o: T.OneCycleLR(o, 0.05, total_steps=200)),
    ),
    (
        "adamw-CyclicLR",
        lambda s: optim.adamw(lr=s, betas=(s.momentum, 0.99), amsgrad=True),
        ("AdamW", {"betas": (0.9, 0.99), "amsgrad": True}),
        (
            lambda: F.CyclicLR(0.005, 0.05, 20, mode="exp_range", gamma=0.995, base_momentum=0.8, max_momentum=0.95),
            lambda T, o: T.CyclicLR(
                o, 0.005, 0.05, 20, mode="exp_range", gamma=0.995, base_momentum=0.8, max_momentum=0.95
            ),
        ),
    ),
    (
        "nadam-OneCycleLR",
        lambda s: optim.nadam(lr=s, betas=(s.momentum, 0.999)),
        ("NAdam", {}),
        (
            lambda: F.OneCycleLR(0.05, total_steps=200, anneal_strategy="linear"),
            lambda T, o: T.OneCycleLR(o, 0.05, total_steps=200, anneal_strategy="linear"),
        ),
    ),
    (
        "radam-CyclicLR",
        lambda s: optim.radam(lr=s, betas=(s.momentum, 0.999)),
        ("RAdam", {}),
        (lambda: F.CyclicLR(0.005, 0.05, 30), lambda T, o: T.CyclicLR(o, 0.005, 0.05, 30)),
    ),
    (
        "adamax-OneCycleLR",
        lambda s: optim.adamax(lr=s, betas=(s.momentum, 0.999)),
        ("Adamax", {}),
        (
            lambda: F.OneCycleLR(0.05, total_steps=200, pct_start=0.2),
            lambda T, o: T.OneCycleLR(o, 0.05, total_steps=200, pct_start=0.2),
        ),
    ),
    (
        "sgd-StepLR-per-update",
        lambda s: optim.sgd(lr=s, momentum=0.9),
        ("SGD", {"lr": 0.3, "momentum": 0.9}),
        (lambda: F.StepLR(0.3, 30, 0.5), lambda T, o: T.StepLR(o, 30, 0.5)),
    ),
    (
        "adam-CosineAnnealingLR-per-epoch-of-5",
        lambda s: optim.adam(lr=lambda count: s(count // 5)),
        ("Adam", {"lr": 0.05}),
        (lambda: F.CosineAnnealingLR(0.05, 12, 0.001), lambda T, o: T.CosineAnnealingLR(o, 12, 0.001)),
    ),
]


def _train_torch(torch, optimizer, build, steps: int, every: int):
    x, y, params0 = _problem()
    tx, ty = torch.as_tensor(x), torch.as_tensor(y)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params0.items()}
    cls, kwargs = optimizer
    opt = getattr(torch.optim, cls)(list(p.values()), **({"lr": 0.1} | kwargs))
    sched = build(torch.optim.lr_scheduler, opt)
    for t in range(steps):
        opt.zero_grad()
        _torch_loss(torch, p, tx, ty).backward()
        opt.step()
        if (t + 1) % every == 0:
            sched.step()
    return {k: v.detach().numpy() for k, v in p.items()}


def test_training_with_schedulers_matches_torch(x64, torch64):
    """200 steps of every TRAIN_CASES optimizer side by side in one jit, parameters within 1e-10."""
    steps = 200
    x, y, params0 = _problem()
    txs = [make(sched()) for _, make, _, (sched, _) in TRAIN_CASES]

    @partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
    def run(params):
        def body(carry, _):
            out = []
            for tx, (p, state) in zip(txs, carry, strict=True):
                grads = jax.grad(_jax_loss)(p, x, y)
                updates, state = tx.update(grads, state, p)
                out.append((optax.apply_updates(p, updates), state))
            return tuple(out), None

        final, _ = jax.lax.scan(body, tuple((params, tx.init(params)) for tx in txs), None, length=steps)
        return [p for p, _ in final]

    finals = run(jax.tree.map(jnp.asarray, params0))
    for (name, _, optimizer, (_, build)), final in zip(TRAIN_CASES, finals, strict=True):
        every = 5 if "per-epoch" in name else 1
        theirs = _train_torch(torch64, optimizer, build, steps, every)
        diff = max(float(np.max(np.abs(np.asarray(final[k]) - theirs[k]))) for k in theirs)
        assert diff < 1e-10, f"{name}: max |fnnet - torch| = {diff}"
        moved = max(float(np.max(np.abs(np.asarray(final[k]) - params0[k]))) for k in theirs)
        assert moved > 1e-2, name


@pytest.fixture
def torch64(torch):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield torch
    finally:
        torch.set_default_dtype(previous)


# ---------------------------------------------------------------------------------------------
# ReduceLROnPlateau


def _metrics(mode: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    m = np.concatenate(
        [np.linspace(1, 0.5, 20), 0.5 + 0.01 * rng.normal(size=60), np.linspace(0.5, 0.2, 20), np.full(50, 0.2)]
    )
    m[[30, 95]] = np.nan  # a NaN metric is never an improvement
    return m if mode == "min" else -m


PLATEAU_CASES = [
    {},
    {"patience": 3},
    {"patience": 2, "cooldown": 3, "factor": 0.5},
    {"mode": "max", "patience": 2},
    {"mode": "max", "threshold": 0.05, "cooldown": 1, "patience": 1},
    {"threshold_mode": "abs", "threshold": 0.01, "patience": 2},
    {"mode": "max", "threshold_mode": "abs", "threshold": 0.01, "patience": 1, "cooldown": 2, "min_lr": 0.003},
    {"patience": 0, "factor": 0.5, "min_lr": 0.01, "eps": 0.004},  # eps stops the last reduction
]


@pytest.mark.parametrize("kwargs", PLATEAU_CASES, ids=str)
def test_reduce_lr_on_plateau_matches_torch(kwargs, x64, torch):
    metrics = _metrics(kwargs.get("mode", "min"))
    opt = _torch_optimizer(torch, "sgd")
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    expected = []
    for m in metrics:
        theirs.step(float(m))
        expected.append((theirs.get_last_lr()[0], theirs.best, theirs.num_bad_epochs, theirs.cooldown_counter))
    p = F.ReduceLROnPlateau(LR, **kwargs)

    def body(state, m):
        state = p.step(state, m)
        return state, (p.lr(state), state.best, state.num_bad_epochs, state.cooldown_counter)

    _, got = jax.jit(lambda ms: jax.lax.scan(body, p.init(), ms))(jnp.asarray(metrics))
    lrs = np.asarray(got[0])
    np.testing.assert_array_equal(lrs, [e[0] for e in expected])
    np.testing.assert_array_equal(np.asarray(got[1]), [e[1] for e in expected])
    np.testing.assert_array_equal(np.asarray(got[2]), [e[2] for e in expected])
    np.testing.assert_array_equal(np.asarray(got[3]), [e[3] for e in expected])
    assert len(set(lrs.tolist())) > 1, "no reduction: the case tests nothing"


def test_reduce_lr_on_plateau_drives_inject_hyperparams(x64, torch64):
    """The docstring's loop: SGD under optax.inject_hyperparams, one full-batch step per epoch, the
    plateau scheduler stepped on a validation loss, 40 epochs, against torch's loop."""
    x, y, params0 = _problem()
    xv, yv = x[::2] + 0.3, y[::2]
    p = F.ReduceLROnPlateau(lr=0.5, patience=2, factor=0.5, threshold=0.01)
    tx = optax.inject_hyperparams(optim.sgd)(lr=0.5, momentum=0.9)

    @jax.jit
    def epoch(params, opt_state, pstate):
        grads = jax.grad(_jax_loss)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        pstate = p.step(pstate, _jax_loss(params, xv, yv))
        opt_state.hyperparams["lr"] = p.lr(pstate)
        return params, opt_state, pstate

    params = jax.tree.map(jnp.asarray, params0)
    opt_state, pstate = tx.init(params), p.init()
    ours = []
    for _ in range(40):
        params, opt_state, pstate = epoch(params, opt_state, pstate)
        ours.append(float(p.lr(pstate)))

    tp = {k: torch64.tensor(v, requires_grad=True) for k, v in params0.items()}
    opt = torch64.optim.SGD(list(tp.values()), lr=0.5, momentum=0.9)
    sched = torch64.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=2, factor=0.5, threshold=0.01)
    theirs = []
    for _ in range(40):
        opt.zero_grad()
        _torch_loss(torch64, tp, torch64.as_tensor(x), torch64.as_tensor(y)).backward()
        opt.step()
        with torch64.no_grad():
            sched.step(_torch_loss(torch64, tp, torch64.as_tensor(xv), torch64.as_tensor(yv)))
        theirs.append(sched.get_last_lr()[0])
    assert ours == theirs
    assert len(set(theirs)) > 2, "the lr was never reduced twice: the case tests little"
    diff = max(float(np.max(np.abs(np.asarray(params[k]) - tp[k].detach().numpy()))) for k in tp)
    assert diff < 1e-10


# ---------------------------------------------------------------------------------------------
# construction errors

# (fnnet constructor, torch constructor (T, opt)): both raise ValueError with the same message
ERRORS = [
    (lambda: F.ConstantLR(LR, factor=1.5), lambda T, o: T.ConstantLR(o, factor=1.5)),
    (lambda: F.LinearLR(LR, start_factor=0), lambda T, o: T.LinearLR(o, start_factor=0)),
    (lambda: F.LinearLR(LR, end_factor=1.5), lambda T, o: T.LinearLR(o, end_factor=1.5)),
    (lambda: F.CyclicLR(0.1, 1.0, mode="square"), lambda T, o: T.CyclicLR(o, 0.1, 1.0, mode="square")),
    (lambda: F.CosineAnnealingWarmRestarts(LR, 0), lambda T, o: T.CosineAnnealingWarmRestarts(o, 0)),
    (lambda: F.CosineAnnealingWarmRestarts(LR, 5, 0), lambda T, o: T.CosineAnnealingWarmRestarts(o, 5, 0)),
    (lambda: F.CosineAnnealingWarmRestarts(LR, 5, 2.0), lambda T, o: T.CosineAnnealingWarmRestarts(o, 5, 2.0)),
    (lambda: F.CosineAnnealingWarmRestarts(LR, 5, 1, "0"), lambda T, o: T.CosineAnnealingWarmRestarts(o, 5, 1, "0")),
    (lambda: F.OneCycleLR(LR), lambda T, o: T.OneCycleLR(o, LR)),
    (lambda: F.OneCycleLR(LR, total_steps=0), lambda T, o: T.OneCycleLR(o, LR, total_steps=0)),
    (
        lambda: F.OneCycleLR(LR, epochs=0, steps_per_epoch=3),
        lambda T, o: T.OneCycleLR(o, LR, epochs=0, steps_per_epoch=3),
    ),
    (
        lambda: F.OneCycleLR(LR, epochs=2, steps_per_epoch=-1),
        lambda T, o: T.OneCycleLR(o, LR, epochs=2, steps_per_epoch=-1),
    ),
    (lambda: F.OneCycleLR(LR, 10, pct_start=1.5), lambda T, o: T.OneCycleLR(o, LR, 10, pct_start=1.5)),
    (lambda: F.OneCycleLR(LR, 10, pct_start=1), lambda T, o: T.OneCycleLR(o, LR, 10, pct_start=1)),
    (lambda: F.OneCycleLR(LR, 10, anneal_strategy="exp"), lambda T, o: T.OneCycleLR(o, LR, 10, anneal_strategy="exp")),
    (lambda: F.ReduceLROnPlateau(LR, factor=1.0), lambda T, o: T.ReduceLROnPlateau(o, factor=1.0)),
    (lambda: F.ReduceLROnPlateau(LR, mode="up"), lambda T, o: T.ReduceLROnPlateau(o, mode="up")),
    (lambda: F.ReduceLROnPlateau(LR, threshold_mode="x"), lambda T, o: T.ReduceLROnPlateau(o, threshold_mode="x")),
    (lambda: F.SequentialLR([], []), lambda T, o: T.SequentialLR(o, [], [])),
    (
        lambda: F.SequentialLR([F.StepLR(LR, 3), F.ExponentialLR(LR, 0.9)], [2, 4]),
        lambda T, o: T.SequentialLR(o, [T.StepLR(o, 3), T.ExponentialLR(o, 0.9)], [2, 4]),
    ),
    (
        lambda: F.SequentialLR([F.StepLR(LR, 3), F.ReduceLROnPlateau(LR)], [2]),
        lambda T, o: T.SequentialLR(o, [T.StepLR(o, 3), T.ReduceLROnPlateau(o)], [2]),
    ),
    (lambda: F.ChainedScheduler([]), lambda T, o: T.ChainedScheduler([], o)),
    (
        lambda: F.ChainedScheduler([F.ReduceLROnPlateau(LR)]),
        lambda T, o: T.ChainedScheduler([T.ReduceLROnPlateau(o)]),
    ),
]


@pytest.mark.parametrize("pair", ERRORS, ids=range(len(ERRORS)))
def test_construction_errors_match_torch(pair, torch):
    ours, theirs = pair
    with pytest.raises(ValueError) as got:
        ours()
    with pytest.raises(ValueError) as expected:
        theirs(torch.optim.lr_scheduler, _torch_optimizer(torch, "sgd"))
    assert str(got.value) == str(expected.value)


def test_signatures_match_torch(torch):
    """torch's arguments, order and defaults, the optimizer replaced by ``lr`` (none for the two that
    set their own lrs and the composites), ``last_epoch`` dropped."""
    own_lr = {"CyclicLR", "OneCycleLR", "SequentialLR", "ChainedScheduler"}
    names = [n for n in F.__all__ if n not in ("LRScheduler", "PlateauState")]
    assert len(names) == 15
    for name in names:
        theirs = inspect.signature(getattr(torch.optim.lr_scheduler, name).__init__).parameters
        expected = {k: p.default for k, p in theirs.items() if k not in ("self", "optimizer", "last_epoch")}
        if name not in own_lr:
            expected = {"lr": inspect.Parameter.empty} | expected
        ours = inspect.signature(getattr(F, name)).parameters
        assert {k: p.default for k, p in ours.items()} == expected, name
        assert list(ours) == list(expected), name


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: F.SequentialLR([F.StepLR(0.1, 3), F.StepLR(0.2, 3)], [5]), "same lr"),
        (lambda: F.SequentialLR([F.StepLR(0.1, 3), F.StepLR(0.1, 3), F.StepLR(0.1, 3)], [5, 2]), "must not decrease"),
        (lambda: F.ChainedScheduler([F.OneCycleLR(0.1, 10), F.StepLR(0.004, 3)]), "sets the optimizer's learning rate"),
        (lambda: F.ChainedScheduler([F.ChainedScheduler([F.StepLR(0.1, 3)])]), "nesting"),
        (lambda: F.OneCycleLR(0.1, total_steps=10, pct_start=0.1), "ZeroDivisionError"),
        (lambda: F.ConstantLR(0.1, factor=0.0, total_iters=3), "ZeroDivisionError"),
        (lambda: F.StepLR(0.1, 0), "step_size"),
    ],
)
def test_fnnet_only_errors(make, match):
    """Where torch accepts an input and then fails (or does what fnnet does not reproduce), fnnet
    raises ValueError when the scheduler is built."""
    with pytest.raises(ValueError, match=match):
        make()


# ---------------------------------------------------------------------------------------------
# docs/rosetta.md, "Learning-rate schedulers": one case per row; each checks fnnet against torch and
# the third column's optax spelling (same: within optax's float32 rounding; differs: beyond it)

ROSETTA_CASES: dict[str, Callable] = {}


def case(*spellings: str):
    def register(fn: Callable) -> Callable:
        for s in spellings:
            ROSETTA_CASES[s] = fn
        return fn

    return register


N = 120


def _vs_torch(torch, sched, build, kind="sgd", n=N) -> np.ndarray:
    lrs, moms = torch_schedule(torch, build, kind, n)
    assert _max_rel(_all_counts(sched, n), lrs) <= 1e-12
    if sched.momentum is not None:
        assert _max_rel(_all_counts(sched.momentum, n), moms) <= 1e-12
    return lrs


def _optax_same(schedule, lrs, rtol=1e-6):
    np.testing.assert_allclose(_all_counts(schedule, len(lrs) - 1), lrs, rtol=rtol, atol=0)


def _optax_differs(schedule, lrs, rtol=1e-3):
    values = _all_counts(schedule, len(lrs) - 1)
    assert np.max(np.abs(values - lrs) / np.abs(lrs)) > rtol


@case("LambdaLR(opt, lr_lambda)")
def _lambda_row(torch):
    lrs = _vs_torch(torch, F.LambdaLR(LR, lambda e: 0.97**e), lambda T, o: T.LambdaLR(o, lambda e: 0.97**e))
    _optax_same(lambda c: LR * 0.97**c, lrs, rtol=1e-12)


@case("MultiplicativeLR(opt, lr_lambda)")
def _multiplicative_row(torch):
    def fn(e):
        return 1 - 0.002 * e

    lrs = _vs_torch(torch, F.MultiplicativeLR(LR, fn), lambda T, o: T.MultiplicativeLR(o, fn))
    _optax_differs(lambda c: LR * fn(c) ** c, lrs)
    const = _vs_torch(torch, F.MultiplicativeLR(LR, lambda e: 0.98), lambda T, o: T.MultiplicativeLR(o, lambda e: 0.98))
    _optax_same(lambda c: LR * 0.98**c, const, rtol=1e-12)  # a constant factor: the power is the product


@case("StepLR(opt, step_size, gamma=0.1)")
def _step_row(torch):
    lrs = _vs_torch(torch, F.StepLR(LR, 7, 0.5), lambda T, o: T.StepLR(o, 7, 0.5))
    _optax_same(optax.exponential_decay(LR, 7, 0.5, staircase=True), lrs)


@case("MultiStepLR(opt, milestones, gamma=0.1)")
def _multistep_row(torch):
    lrs = _vs_torch(torch, F.MultiStepLR(LR, [80, 30]), lambda T, o: T.MultiStepLR(o, [80, 30]))
    _optax_same(optax.piecewise_constant_schedule(LR, {30: 0.1, 80: 0.1}), lrs)
    repeated = _vs_torch(torch, F.MultiStepLR(LR, [30, 30, 80]), lambda T, o: T.MultiStepLR(o, [30, 30, 80]))
    _optax_differs(optax.piecewise_constant_schedule(LR, {30: 0.1, 80: 0.1}), repeated)


@case("ConstantLR(opt, factor=1/3, total_iters=5)")
def _constant_row(torch):
    lrs = _vs_torch(torch, F.ConstantLR(LR, 0.25, 40), lambda T, o: T.ConstantLR(o, 0.25, 40))
    _optax_same(optax.piecewise_constant_schedule(LR * 0.25, {40: 4.0}), lrs)


@case("LinearLR(opt, start_factor=1/3, end_factor=1.0, total_iters=5)")
def _linear_row(torch):
    lrs = _vs_torch(torch, F.LinearLR(LR, 0.2, 0.9, 60), lambda T, o: T.LinearLR(o, 0.2, 0.9, 60))
    _optax_same(optax.linear_schedule(LR * 0.2, LR * 0.9, 60), lrs)


@case("ExponentialLR(opt, gamma)")
def _exponential_row(torch):
    lrs = _vs_torch(torch, F.ExponentialLR(LR, 0.97), lambda T, o: T.ExponentialLR(o, 0.97))
    _optax_same(optax.exponential_decay(LR, 1, 0.97), lrs)


@case("PolynomialLR(opt, total_iters=5, power=1.0)")
def _polynomial_row(torch):
    lrs = _vs_torch(torch, F.PolynomialLR(LR, 80, 2.0), lambda T, o: T.PolynomialLR(o, 80, 2.0))
    _optax_same(optax.polynomial_schedule(LR, 0.0, 2.0, 80), lrs[:80])
    assert lrs[80] == 0.0 and float(optax.polynomial_schedule(LR, 0.0, 2.0, 80)(80)) == 0.0


@case("CosineAnnealingLR(opt, T_max, eta_min=0.0)")
def _cosine_row(torch):
    lrs = _vs_torch(torch, F.CosineAnnealingLR(LR, 30, 0.001), lambda T, o: T.CosineAnnealingLR(o, 30, 0.001))
    optax_cosine = optax.cosine_decay_schedule(LR, 30, alpha=0.001 / LR)
    _optax_same(optax_cosine, lrs[:31])
    _optax_differs(optax_cosine, lrs)  # past T_max torch climbs back, optax stays at eta_min


@case("CosineAnnealingWarmRestarts(opt, T_0, T_mult=1, eta_min=0.0)")
def _warm_restarts_row(torch):
    lrs = _vs_torch(
        torch,
        F.CosineAnnealingWarmRestarts(LR, 5, 2, 0.001),
        lambda T, o: T.CosineAnnealingWarmRestarts(o, 5, 2, 0.001),
    )
    cycles = [dict(init_value=LR, peak_value=LR, warmup_steps=0, decay_steps=t, end_value=0.001) for t in (5, 10, 20)]
    sgdr = optax.sgdr_schedule(cycles)
    _optax_same(sgdr, lrs[:35])  # while its three cycles last
    _optax_differs(sgdr, lrs)  # then it stays at eta_min; torch restarts


@case('CyclicLR(opt, base_lr, max_lr, step_size_up=2000, mode="triangular", ...)')
def _cyclic_row(torch):
    _vs_torch(
        torch,
        F.CyclicLR(0.01, LR, 10, mode="triangular2"),
        lambda T, o: T.CyclicLR(o, 0.01, LR, 10, mode="triangular2"),
    )
    assert not [n for n in dir(optax) if "cycl" in n.lower() and "onecycle" not in n.lower()]  # nothing cyclic


@case("OneCycleLR(opt, max_lr, total_steps)")
def _one_cycle_row(torch):
    lrs = _vs_torch(torch, F.OneCycleLR(LR, total_steps=N), lambda T, o: T.OneCycleLR(o, LR, total_steps=N))
    _optax_differs(optax.cosine_onecycle_schedule(N, LR, 0.3, 25.0, 1e4), lrs)


@case("SequentialLR(opt, schedulers, milestones)")
def _sequential_row(torch):
    closed = _vs_torch(
        torch,
        F.SequentialLR([F.LinearLR(LR, 0.1, 1.0, 10), F.CosineAnnealingLR(LR, 50)], [10]),
        lambda T, o: T.SequentialLR(o, [T.LinearLR(o, 0.1, 1.0, 10), T.CosineAnnealingLR(o, 50)], [10]),
    )
    twins = [optax.linear_schedule(LR * 0.1, LR, 10), optax.cosine_decay_schedule(LR, 50)]
    _optax_same(optax.join_schedules(twins, [10]), closed[:61])
    product = _vs_torch(
        torch,
        F.SequentialLR([F.ExponentialLR(LR, 0.9), F.MultiplicativeLR(LR, lambda e: 0.99)], [20]),
        lambda T, o: T.SequentialLR(o, [T.ExponentialLR(o, 0.9), T.MultiplicativeLR(o, lambda e: 0.99)], [20]),
    )
    twins = [optax.exponential_decay(LR, 1, 0.9), lambda c: LR * 0.99**c]
    _optax_differs(optax.join_schedules(twins, [20]), product)


@case("ChainedScheduler(schedulers)")
def _chained_row(torch):
    lrs = _vs_torch(
        torch,
        F.ChainedScheduler([F.ConstantLR(LR, 0.5, 10), F.ExponentialLR(LR, 0.97)]),
        lambda T, o: T.ChainedScheduler([T.ConstantLR(o, 0.5, 10), T.ExponentialLR(o, 0.97)]),
    )
    constant, exponential = optax.piecewise_constant_schedule(LR * 0.5, {10: 2.0}), optax.exponential_decay(LR, 1, 0.97)
    _optax_same(lambda c: constant(c) * exponential(c) / LR, lrs)
    with_lambda = _vs_torch(
        torch,
        F.ChainedScheduler([F.LambdaLR(LR, lambda e: 1 / (1 + 0.1 * e)), F.ExponentialLR(LR, 0.97)]),
        lambda T, o: T.ChainedScheduler([T.LambdaLR(o, lambda e: 1 / (1 + 0.1 * e)), T.ExponentialLR(o, 0.97)]),
    )
    _optax_differs(lambda c: LR / (1 + 0.1 * c) * exponential(c) / LR, with_lambda)


@case('ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=10, threshold=1e-4, ...); scheduler.step(metric)')
def _plateau_row(torch):
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85]
    opt = _torch_optimizer(torch, "sgd")
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    p = F.ReduceLROnPlateau(LR, factor=0.5, patience=2)
    tx = optax.contrib.reduce_on_plateau(factor=0.5, patience=2)
    state, tx_state = p.init(), tx.init({"w": jnp.zeros(1)})
    ours, torch_lrs, optax_lrs = [], [], []
    for m in metrics:
        theirs.step(m)
        state = p.step(state, m)
        _, tx_state = tx.update({"w": jnp.zeros(1)}, tx_state, value=m)
        torch_lrs.append(theirs.get_last_lr()[0])
        ours.append(float(p.lr(state)))
        optax_lrs.append(LR * float(tx_state.scale))
    assert ours == torch_lrs and len(set(ours)) == 3
    assert optax_lrs != torch_lrs  # it reduces after `patience` bad steps, torch after patience + 1
    assert optax_lrs.index(LR * 0.5) == torch_lrs.index(LR * 0.5) - 1


@case("scheduler.step() once per epoch of n updates")
def _per_epoch_row(torch):
    sched = F.StepLR(0.2, 3, 0.5)
    x, y, params0 = _problem()
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params0.items()}
    opt = torch.optim.SGD(list(p.values()), lr=0.2)
    theirs_sched = torch.optim.lr_scheduler.StepLR(opt, 3, 0.5)
    used = []
    for t in range(40):
        used.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        _torch_loss(torch, p, torch.as_tensor(x), torch.as_tensor(y)).backward()
        opt.step()
        if (t + 1) % 4 == 0:  # an epoch of 4 updates
            theirs_sched.step()
    per_epoch = jax.vmap(lambda count: sched(count // 4))(jnp.arange(40))
    np.testing.assert_array_equal(np.asarray(per_epoch), used)
    for tx in (optim.sgd(lr=lambda count: sched(count // 4)), optax.sgd(lambda count: sched(count // 4))):
        params, state = jax.tree.map(jnp.asarray, params0), None
        state = tx.init(params)
        for _ in range(40):
            updates, state = tx.update(jax.grad(_jax_loss)(params, x, y), state, params)
            params = optax.apply_updates(params, updates)
        assert max(float(np.max(np.abs(np.asarray(params[k]) - p[k].detach().numpy()))) for k in p) < 1e-10


@case("SGD(params, momentum=0.9) with OneCycleLR(opt, max_lr, total_steps) cycling the momentum")
def _momentum_row(torch):
    x, y, params0 = _problem()
    theirs = _train_torch(torch, ("SGD", {"momentum": 0.9}), lambda T, o: T.OneCycleLR(o, 0.5, total_steps=60), 60, 1)
    sched = F.OneCycleLR(0.5, total_steps=60)
    finals = {}
    for name, tx in {"fnnet": optim.sgd(lr=sched, momentum=sched.momentum), "optax": optax.sgd(sched, 0.9)}.items():
        params = jax.tree.map(jnp.asarray, params0)
        state = tx.init(params)
        for _ in range(60):
            updates, state = tx.update(jax.grad(_jax_loss)(params, x, y), state, params)
            params = optax.apply_updates(params, updates)
        finals[name] = max(float(np.max(np.abs(np.asarray(params[k]) - theirs[k]))) for k in theirs)
    assert finals["fnnet"] < 1e-10 and finals["optax"] > 1e-4, finals


@pytest.mark.parametrize("spelling", sorted(ROSETTA_CASES))
def test_rosetta_row(spelling, x64, torch64):
    ROSETTA_CASES[spelling](torch64)


# ---------------------------------------------------------------------------------------------
# experiments/lr_schedulers.py

EXPERIMENTS = pathlib.Path(__file__).resolve().parent.parent / "experiments"
SCHEDULER_NAMES = [
    "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
    "SequentialLR", "CosineAnnealingLR", "ChainedScheduler", "ReduceLROnPlateau", "CyclicLR",
    "CosineAnnealingWarmRestarts", "OneCycleLR", "PolynomialLR",
]  # fmt: skip


def test_lr_schedulers_experiment_matches_torch(tmp_path):
    """The script as a user runs it: every scheduler's max |fnnet - torch| printed below 1e-12
    (float64), the figure written."""
    result = subprocess.run(
        [sys.executable, "lr_schedulers.py", "--steps", "40", "--out", str(tmp_path)],
        cwd=EXPERIMENTS,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[:15]] == SCHEDULER_NAMES
    for line in lines[:15]:
        diffs = [float(v) for v in re.findall(r"(?:lr|momentum) (\S+?)(?:,|$)", line)]
        assert diffs and max(diffs) < 1e-12, line
    assert "momentum" in lines[SCHEDULER_NAMES.index("OneCycleLR")]
    assert lines[15] == f"saved {tmp_path / 'lr_schedulers.png'}"
    assert (tmp_path / "lr_schedulers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr_schedulers.png"]  # no temporary left


@pytest.fixture
def lr_script():
    spec = importlib.util.spec_from_file_location("_experiment_lr_schedulers", EXPERIMENTS / "lr_schedulers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    sys.path.insert(0, str(EXPERIMENTS))  # its sibling ``reports``, as when run from experiments/
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(EXPERIMENTS))
        sys.modules.pop(spec.name, None)


def test_lr_schedulers_experiment_without_torch(lr_script, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    assert lr_script.main(["--steps", "20", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:15]] == SCHEDULER_NAMES
    assert all(line.endswith("max |fnnet - torch|: -") for line in lines[:15])
    assert lines[15].startswith("note: torch is not installed: fnnet alone")
    assert (tmp_path / "lr_schedulers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, culprit", [(["--steps", "ten"], "--steps"), (["--steps", "5"], "--steps")])
def test_lr_schedulers_experiment_bad_input(lr_script, tmp_path, capsys, argv, culprit):
    assert lr_script.main(argv + ["--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and culprit in lines[0]
    assert captured.out == "" and not (tmp_path / "out").exists()


def test_lr_schedulers_experiment_out_is_a_file(lr_script, tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    assert lr_script.main(["--steps", "20", "--out", str(tmp_path / "taken")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: --out must be a folder, {tmp_path / 'taken'} is a file"
    ]
