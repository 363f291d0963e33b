"""Every learning-rate scheduler of fnnet.optim.lr_scheduler drawn over torch's, one panel each.

    python experiments/lr_schedulers.py [--steps 300] [--out DIR]

Each of torch 2.13's fifteen schedulers, in one configuration scaled to ``--steps`` (Config below),
as fnnet's optax schedule (all counts 0..steps in one ``jit``, the count traced) and as torch's
``scheduler.get_last_lr()[0]`` after each ``scheduler.step()`` on an SGD optimizer; OneCycleLR and
CyclicLR also cycle the momentum (drawn on a second axis). ReduceLROnPlateau has no schedule: both
step it on the same synthetic validation loss (a noisy decay that flattens out). Everything runs in
float64 (``jax_enable_x64`` on, as torch's Python floats), where fnnet equals torch to ~1e-15.

Prints one line per scheduler with the largest |fnnet - torch| over the counts (lr, and momentum
where it cycles) and saves ``lr_schedulers.png`` (written atomically) under ``--out`` (default
``outputs/lr_schedulers/``). torch is optional: without it the panels show fnnet alone and one line
says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from reports import have_matplotlib, save_figure

import fnnet.optim.lr_scheduler as F


@dataclasses.dataclass(frozen=True)
class Config:
    steps: int = 300  # counts drawn: 0..steps
    min_steps: int = 20  # the configurations below divide the steps into up to 10 parts
    lr: float = 0.1  # the optimizer's initial learning rate
    plateau_patience: int = 10
    plateau_seed: int = 0  # the synthetic validation loss's noise


def _inverse_time(epoch: Any) -> Any:
    """LambdaLR's factor, written with Python arithmetic: works on torch's ints and JAX arrays alike."""
    return 1 / (1 + 0.05 * epoch)


def _factor(epoch: Any) -> float:
    """MultiplicativeLR's factor per step."""
    del epoch
    return 0.99


def schedulers(n: int, lr: float) -> list[tuple[str, Any, Callable]]:
    """(name, fnnet scheduler, torch builder(lr_scheduler module, optimizer)) for ``n`` steps."""
    gamma = 0.01 ** (1 / n)  # decays to 1% of lr over the run
    warmup = max(1, n // 10)
    return [
        (
            "LambdaLR",
            F.LambdaLR(lr, lambda e: 1 / (1 + 0.05 * e)),
            lambda T, o: T.LambdaLR(o, lambda e: 1 / (1 + 0.05 * e)),
        ),
        (
            "MultiplicativeLR",
            F.MultiplicativeLR(lr, lambda e: 0.99),
            lambda T, o: T.MultiplicativeLR(o, lambda e: 0.99),
        ),
        ("StepLR", F.StepLR(lr, n // 6, 0.5), lambda T, o: T.StepLR(o, n // 6, 0.5)),
        (
            "MultiStepLR",
            F.MultiStepLR(lr, [n // 4, n // 2, 3 * n // 4], 0.5),
            lambda T, o: T.MultiStepLR(o, [n // 4, n // 2, 3 * n // 4], 0.5),
        ),
        ("ConstantLR", F.ConstantLR(lr, 0.25, n // 5), lambda T, o: T.ConstantLR(o, 0.25, n // 5)),
        ("LinearLR", F.LinearLR(lr, 0.1, 1.0, n // 3), lambda T, o: T.LinearLR(o, 0.1, 1.0, n // 3)),
        ("ExponentialLR", F.ExponentialLR(lr, gamma), lambda T, o: T.ExponentialLR(o, gamma)),
        (
            "SequentialLR",
            F.SequentialLR([F.LinearLR(lr, 0.1, 1.0, warmup), F.CosineAnnealingLR(lr, n - warmup)], [warmup]),
            lambda T, o: T.SequentialLR(
                o, [T.LinearLR(o, 0.1, 1.0, warmup), T.CosineAnnealingLR(o, n - warmup)], [warmup]
            ),
        ),
        (
            "CosineAnnealingLR",  # T_max = n/2: past it torch's recursion climbs back
            F.CosineAnnealingLR(lr, n // 2, lr / 100),
            lambda T, o: T.CosineAnnealingLR(o, n // 2, lr / 100),
        ),
        (
            "ChainedScheduler",
            F.ChainedScheduler([F.ConstantLR(lr, 0.5, n // 5), F.ExponentialLR(lr, gamma)]),
            lambda T, o: T.ChainedScheduler([T.ConstantLR(o, 0.5, n // 5), T.ExponentialLR(o, gamma)]),
        ),
        ("ReduceLROnPlateau", F.ReduceLROnPlateau(lr, factor=0.5, patience=10), None),
        (
            "CyclicLR",
            F.CyclicLR(lr / 10, lr, n // 8, mode="triangular2"),
            lambda T, o: T.CyclicLR(o, lr / 10, lr, n // 8, mode="triangular2"),
        ),
        (
            "CosineAnnealingWarmRestarts",
            F.CosineAnnealingWarmRestarts(lr, n // 10, 2, lr / 100),
            lambda T, o: T.CosineAnnealingWarmRestarts(o, n // 10, 2, lr / 100),
        ),
        ("OneCycleLR", F.OneCycleLR(lr, total_steps=n), lambda T, o: T.OneCycleLR(o, lr, total_steps=n)),
        ("PolynomialLR", F.PolynomialLR(lr, 3 * n // 4, 2.0), lambda T, o: T.PolynomialLR(o, 3 * n // 4, 2.0)),
    ]


def validation_losses(n: int, seed: int) -> np.ndarray:
    """A synthetic validation loss for ReduceLROnPlateau: a noisy decay that flattens out."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, n + 1)
    return 0.2 + 1.0 / (1 + t / 10) + 0.01 * rng.normal(size=n)


def fnnet_curves(sched: Any, n: int, metrics: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """lr (and momentum) after 0..n steps, every count in one jit."""
    if isinstance(sched, F.ReduceLROnPlateau):

        def body(state, metric):
            state = sched.step(state, metric)
            return state, sched.lr(state)

        _, lrs = jax.jit(lambda ms: jax.lax.scan(body, sched.init(), ms))(jnp.asarray(metrics))
        return np.concatenate([[sched.base_lr], np.asarray(lrs)]), None
    counts = jnp.arange(n + 1)
    lrs = np.asarray(jax.jit(jax.vmap(sched))(counts))
    moms = None if sched.momentum is None else np.asarray(jax.jit(jax.vmap(sched.momentum))(counts))
    return lrs, moms


def torch_curves(torch: Any, build: Callable | None, n: int, lr: float, metrics: np.ndarray, cfg: Config):
    """torch's get_last_lr()[0] (and the optimizer's momentum) after 0..n scheduler steps."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=0.9)
    T = torch.optim.lr_scheduler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = T.ReduceLROnPlateau(opt, factor=0.5, patience=cfg.plateau_patience) if build is None else build(T, opt)
        lrs, moms = [sched.get_last_lr()[0]], [opt.param_groups[0]["momentum"]]
        for t in range(n):
            opt.step()
            sched.step(float(metrics[t])) if build is None else sched.step()
            lrs.append(sched.get_last_lr()[0])
            moms.append(opt.param_groups[0]["momentum"])
    return np.asarray(lrs), np.asarray(moms)


def figure(out: pathlib.Path, panels: list[tuple[str, np.ndarray, np.ndarray | None, Any]]) -> pathlib.Path:
    """One panel per scheduler: fnnet solid, torch dashed; momentum (where it cycles) on a right axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 5
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.7 * rows), squeeze=False)
    for ax, (name, lrs, moms, theirs) in zip(axes.flat, panels):
        counts = np.arange(len(lrs))
        ax.plot(counts, lrs, color="C0", label="fnnet lr")
        if theirs is not None:
            ax.plot(counts, theirs[0], "--", color="C1", label="torch lr")
        if moms is not None:
            twin = ax.twinx()
            twin.plot(counts, moms, color="C2", lw=0.8, label="fnnet momentum")
            if theirs is not None:
                twin.plot(counts, theirs[1], ":", color="C3", lw=0.8, label="torch momentum")
            twin.tick_params(labelsize=6)
        ax.set_title(name + ("  (momentum: right axis)" if moms is not None else ""), fontsize=9)
        ax.set_xlabel("scheduler.step() calls", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper right")
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return save_figure(fig, out / "lr_schedulers.png")


def run(steps: int, out: pathlib.Path, cfg: Config = Config()) -> list[str]:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    metrics = validation_losses(steps, cfg.plateau_seed)
    lines, panels = [], []
    for name, sched, build in schedulers(steps, cfg.lr):
        lrs, moms = fnnet_curves(sched, steps, metrics)
        theirs = None
        if torch is None:
            lines.append(f"{name:<28} max |fnnet - torch|: -")
        else:
            theirs = torch_curves(torch, build, steps, cfg.lr, metrics, cfg)
            diff = float(np.max(np.abs(lrs - theirs[0])))
            text = f"{name:<28} max |fnnet - torch|: lr {diff:.3e}"
            if moms is not None:
                text += f", momentum {float(np.max(np.abs(moms - theirs[1]))):.3e}"
            lines.append(text)
        panels.append((name, lrs, moms, theirs))
    if torch is None:
        lines.append("note: torch is not installed: fnnet alone (pip install torch to overlay torch's values)")
    if have_matplotlib():
        lines.append(f"saved {figure(out, panels)}")
    else:
        lines.append("matplotlib is not installed: figure skipped")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default=str(Config.steps), help=f"scheduler steps drawn (default {Config.steps})")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/lr_schedulers"))
    args = parser.parse_args(argv)
    previous_x64 = jax.config.jax_enable_x64
    try:
        try:
            steps = int(args.steps)
        except ValueError:
            raise ValueError(f"--steps must be an integer, got {args.steps!r}") from None
        if steps < Config.min_steps:
            raise ValueError(f"--steps must be at least {Config.min_steps}, got {steps}")
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out must be a folder, {args.out} is a file")
        jax.config.update("jax_enable_x64", True)  # torch's schedulers compute in Python floats
        for line in run(steps, args.out):
            print(line)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        jax.config.update("jax_enable_x64", previous_x64)
    return 0


if __name__ == "__main__":
    sys.exit(main())
