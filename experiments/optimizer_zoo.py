"""Every fnnet optimizer next to torch.optim, training the same small MLP from the same weights.

    python experiments/optimizer_zoo.py [--steps 100] [--seed 0] [--dtype float32|float64]
                                        [--optimizers sgd,adam,...] [--out DIR]

A 2-16-1 ReLU MLP (``fnnet.models.mlp((2, 16, 1))``: ``Sequential(Linear(2, 16), ReLU(), Linear(16,
1))`` with torch's ``nn.Linear`` init) fits ``y = sin(x0) * cos(x1)`` on 64 points drawn uniformly from
[-2, 2]^2 (NumPy generator seeded by ``--seed``), full batch, ``fnnet.nn.functional.mse_loss``. Each of
the fifteen ``torch.optim`` optimizers trains it for ``--steps`` steps in fnnet, all steps under one
``jax.jit`` (``fnnet.train.scan_batches``, the project's one loop, in full-batch mode); torch trains
the same ``nn.Sequential`` loaded with the same initial weights (``fnnet.nn.state_dict``) with the
matching ``torch.optim`` class. The printed table gives the final loss of each and the largest
difference between their final parameters: in float64 these agree to ~1e-15 (the same arithmetic in
the same order); in float32 they drift apart by float32 rounding (sums in another order), most for
optimizers that divide by small running averages, and for Muon, whose bfloat16 orthogonalisation turns a
float32 ulp into a bfloat16 one now and then (~1e-3). L-BFGS is the exception: its inner iterations
amplify rounding differences on this ReLU network (float64: 1e-14 after 5 steps, 1e-9 after 20,
visibly different trajectories by 100), so its row shows two different, equally valid runs rather
than a disagreement in the algorithm (tests/test_lbfgs.py checks it against torch where it is not
chaotic).

``lbfgs`` takes a closure: one step is one ``torch.optim.LBFGS.step(closure)`` (up to ``max_iter``
inner iterations). ``sparse_adam`` gets torch a sparse gradient (``grad.to_sparse(1)``: the rows with
a nonzero entry); the dense JAX gradient counts a row as touched when it is not all zero. ``muon``
takes 2-D parameters only: as torch's documentation advises, the weights get Muon and the biases
AdamW (``optax.partition`` here, two optimizers stepping together in torch).

torch is optional: without it only fnnet's columns are filled and a note says so. ``--out DIR``
(default ``outputs/optimizer_zoo/``) receives ``results.txt`` (the printed table) and
``loss_curves.png`` (one panel per optimizer; skipped with a note when matplotlib is missing).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from reports import atomic_write_bytes, atomic_write_text, have_matplotlib

import fnnet.nn.functional as F
from fnnet import nn, optim
from fnnet.models import mlp
from fnnet.train import scan_batches


@dataclasses.dataclass(frozen=True)
class Config:
    n_points: int = 64
    hidden: int = 16
    # one lr per optimizer, each chosen so that 100 steps make visible progress on this problem
    # (torch's defaults are kept where they already do, e.g. Adadelta's lr=1.0, Rprop's 0.01)
    optimizers: tuple[tuple[str, str, dict[str, Any]], ...] = (
        ("sgd", "SGD", {"lr": 0.05, "momentum": 0.9}),
        ("adam", "Adam", {"lr": 0.01}),
        ("adamw", "AdamW", {"lr": 0.01}),
        ("adagrad", "Adagrad", {"lr": 0.05}),
        ("adadelta", "Adadelta", {"lr": 1.0}),
        ("adamax", "Adamax", {"lr": 0.02}),
        ("asgd", "ASGD", {"lr": 0.05}),
        ("rmsprop", "RMSprop", {"lr": 0.005}),
        ("rprop", "Rprop", {"lr": 0.01}),
        ("sparse_adam", "SparseAdam", {"lr": 0.01}),
        ("nadam", "NAdam", {"lr": 0.01}),
        ("radam", "RAdam", {"lr": 0.01}),
        ("adafactor", "Adafactor", {"lr": 0.05}),  # lr caps Adafactor's relative step min(lr, 1/sqrt(t))
        ("muon", "Muon", {"lr": 0.02}),  # the weights; the biases get AdamW(lr=0.01), see MUON_BIASES
        ("lbfgs", "LBFGS", {"lr": 1.0, "max_iter": 5}),  # up to 5 inner iterations per step
    )


MUON_BIASES = ("adamw", "AdamW", {"lr": 0.01})  # torch's Muon docs: AdamW for the non-2-D parameters


def make_data(seed: int, cfg: Config, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """64 points uniform in [-2, 2]^2 and their targets sin(x0) * cos(x1), shape (n, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, size=(cfg.n_points, 2))
    y = np.sin(x[:, :1]) * np.cos(x[:, 1:])
    return x.astype(dtype), y.astype(dtype)


def init_model(seed: int, cfg: Config, dtype: str) -> nn.Sequential:
    """The MLP with torch's nn.Linear init, drawn from ``--seed``."""
    return mlp((2, cfg.hidden, 1), dtype=jnp.dtype(dtype), rngs=seed)


def _transform(name: str, kwargs: dict, params: Any) -> optax.GradientTransformation:
    if name != "muon":
        return getattr(optim, name)(**kwargs)
    labels = jax.tree.map(lambda p: "muon" if p.ndim == 2 else "biases", params)
    biases = getattr(optim, MUON_BIASES[0])(**MUON_BIASES[2])
    return optax.partition({"muon": optim.muon(**kwargs), "biases": biases}, labels)


def train_fnnet(
    name: str, kwargs: dict, model: nn.Sequential, x: np.ndarray, y: np.ndarray, steps: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``steps`` full-batch steps under one jit; returns (loss before each step, final state_dict)."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss_fn(p, batch):
        return F.mse_loss(nnx.merge(graphdef, p, rest)(batch.x), batch.y)

    if name == "lbfgs":
        opt = optim.lbfgs(**kwargs)

        def step(carry, batch):
            p, state = carry
            p, state, loss = opt.step(lambda q: loss_fn(q, batch), p, state)
            return (p, state), loss

        init = (params, opt.init(params))
    else:
        tx = _transform(name, kwargs, params)

        def step(carry, batch):
            p, state = carry
            loss, grads = jax.value_and_grad(loss_fn)(p, batch)  # zero_grad(); backward(): fresh grads
            updates, state = tx.update(grads, state, p)
            return (optax.apply_updates(p, updates), state), loss

        init = (params, tx.init(params))

    @jax.jit
    def run(init, x, y):
        (p, _), losses = scan_batches(step, init, x, y, order=None, steps=steps)
        return p, losses

    final, losses = run(init, jnp.asarray(x), jnp.asarray(y))
    return np.asarray(losses), nn.state_dict(nnx.merge(graphdef, final, rest))


def torch_trainer() -> Callable[..., tuple[np.ndarray, dict[str, np.ndarray]]] | None:
    """A function training the torch twin, or None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)

    def train_torch(
        torch_name: str,
        kwargs: dict,
        weights: dict[str, np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        cfg: Config,
        steps: int,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        dtype = getattr(torch, str(x.dtype))
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)  # torch keeps ASGD's eta and mu, NAdam's mu_product in it
        try:
            return _train(torch_name, kwargs, weights, x, y, cfg, steps, dtype)
        finally:
            torch.set_default_dtype(previous)

    def _train(torch_name, kwargs, weights, x, y, cfg, steps, dtype):
        net = torch.nn.Sequential(torch.nn.Linear(2, cfg.hidden), torch.nn.ReLU(), torch.nn.Linear(cfg.hidden, 1))
        net = net.to(dtype)
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
        if torch_name == "Muon":
            matrices = [p for p in net.parameters() if p.ndim == 2]
            others = [p for p in net.parameters() if p.ndim != 2]
            opts = [
                torch.optim.Muon(matrices, **kwargs),
                getattr(torch.optim, MUON_BIASES[1])(others, **MUON_BIASES[2]),
            ]
        else:
            opts = [getattr(torch.optim, torch_name)(net.parameters(), **kwargs)]
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def closure():
            for opt in opts:
                opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(tx), ty)
            loss.backward()
            if torch_name == "SparseAdam":  # SparseAdam takes sparse gradients only
                for p in net.parameters():
                    p.grad = p.grad.to_sparse(1)
            return loss

        losses = []
        for _ in range(steps):
            if torch_name == "LBFGS":
                losses.append(opts[0].step(closure).item())
            else:
                losses.append(closure().item())
                for opt in opts:
                    opt.step()
        return np.array(losses), {k: v.detach().numpy() for k, v in net.state_dict().items()}

    return train_torch


def loss_figure(curves: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> bytes:
    """One panel per optimizer: fnnet solid, torch dashed, log-scale loss against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 5
    rows = -(-len(curves) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, (name, (ours, theirs)) in zip(axes.flat, curves.items()):
        ax.plot(np.arange(1, len(ours) + 1), ours, label="fnnet")
        if theirs is not None:
            ax.plot(np.arange(1, len(theirs) + 1), theirs, "--", label="torch")
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(curves) :]:
        ax.set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def format_table(rows: list[tuple[str, float, float | None, float | None]]) -> list[str]:
    def num(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    lines = [f"{'optimizer':<12} {'final loss fnnet':>17} {'final loss torch':>17} {'max |param diff|':>17}"]
    for name, ours, theirs, diff in rows:
        lines.append(f"{name:<12} {ours:>17.8e} {num(theirs, '.8e'):>17} {num(diff, '.3e'):>17}")
    return lines


def select(names: str | None, cfg: Config) -> tuple[tuple[str, str, dict[str, Any]], ...]:
    """The configured optimizers named in the comma-separated ``names`` (all when None)."""
    if names is None:
        return cfg.optimizers
    known = {entry[0]: entry for entry in cfg.optimizers}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown or not wanted:
        raise ValueError(f"--optimizers: unknown {unknown or names!r}; choose from {', '.join(known)}")
    return tuple(known[n] for n in wanted)


def run(
    steps: int, seed: int, dtype: str, out: pathlib.Path, names: str | None = None, cfg: Config = Config()
) -> list[str]:
    if steps < 1:
        raise ValueError(f"--steps must be a positive integer, got {steps}")
    optimizers = select(names, cfg)
    x, y = make_data(seed, cfg, dtype)
    model = init_model(seed, cfg, dtype)
    weights = nn.state_dict(model)
    train_torch = torch_trainer()
    rows, curves = [], {}
    for name, torch_name, kwargs in optimizers:
        losses, final = train_fnnet(name, kwargs, model, x, y, steps)
        theirs = diff = None
        torch_losses = None
        if train_torch is not None:
            torch_losses, torch_state = train_torch(torch_name, kwargs, weights, x, y, cfg, steps)
            diff = max(float(np.max(np.abs(final[k] - torch_state[k]))) for k in torch_state)
            theirs = float(torch_losses[-1])
        rows.append((name, float(losses[-1]), theirs, diff))
        curves[name] = (losses, torch_losses)
    lines = [f"{steps} steps, {dtype}, seed {seed}; loss = MSE before the last step"]
    lines += format_table(rows)
    if train_torch is None:
        lines.append("note: torch is not installed: fnnet only (pip install torch for the reference)")
    atomic_write_text(out / "results.txt", "\n".join(lines) + "\n")
    if have_matplotlib():
        atomic_write_bytes(out / "loss_curves.png", loss_figure(curves))
        lines.append(f"saved {out / 'loss_curves.png'}")
    else:
        lines.append("matplotlib is not installed: figures skipped")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", help="float32 or float64")
    parser.add_argument("--optimizers", default=None, help="comma-separated subset (default: all)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/optimizer_zoo"))
    args = parser.parse_args(argv)
    previous_x64 = jax.config.jax_enable_x64
    try:
        if args.dtype not in ("float32", "float64"):
            raise ValueError(f"--dtype must be float32 or float64, got {args.dtype!r}")
        jax.config.update("jax_enable_x64", args.dtype == "float64")
        for line in run(args.steps, args.seed, args.dtype, args.out, args.optimizers):
            print(line)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        jax.config.update("jax_enable_x64", previous_x64)
    return 0


if __name__ == "__main__":
    sys.exit(main())
