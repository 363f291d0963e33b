"""Port a torch model to fnnet with ``fnnet.nn.from_torch`` and show that both compute the same thing.

    python experiments/port_torch_model.py --model FILE:NAME --input-shape C,H,W [--batch 4] [--seed 0]
                                           [--steps 5] [--lr 0.01] [--momentum 0.9] [--dtype float64|float32]
                                           [--int-input HIGH] [--loss auto|mse|cross-entropy]

``FILE`` is a Python file defining a torch model (``experiments/models/lenet.py`` is one); ``NAME`` is a
class in it (built with no arguments) or a function of no arguments returning an ``nn.Module``. The model
is built under ``torch.manual_seed(--seed)``, cast to ``--dtype`` (default float64, where equal
arithmetic agrees to ~1e-15 and any real difference stands out; float32 differences are rounding,
~1e-6) and converted with ``fnnet.nn.from_torch``. Inputs are ``--batch`` rows of shape
``--input-shape`` (the batch dimension is added), standard normal from a NumPy generator seeded by
``--seed``, or integers in ``[0, HIGH)`` with ``--int-input HIGH`` (token ids for an ``Embedding``).

Printed: the largest difference between torch's and fnnet's outputs, and between their gradients of
``sum(output * c)`` (``c`` a fixed random array) with respect to the input and to every parameter;
then ``--steps`` SGD steps side by side (``torch.optim.SGD`` and ``fnnet.optim.sgd`` with ``--lr`` and
``--momentum``, one jitted step in fnnet) on the same batch and random targets: each step's two losses
and the largest parameter difference. The loss is cross-entropy for ``(N, classes)`` outputs, else MSE
(``--loss`` chooses). A model with dropout is compared and trained in eval mode (the masks come from
different generators); any other model in training mode (BatchNorm uses batch statistics and updates
its running ones, which are compared too).

Bad input (a missing file, no such NAME, a layer or op ``from_torch`` does not support) prints one
``error:`` line and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from cli import positive_float, positive_int
from flax import nnx

import fnnet.nn as fnn
import fnnet.nn.functional as F
from fnnet import optim
from fnnet.nn.module import RandomModule


@dataclasses.dataclass(frozen=True)
class Config:
    batch: int = 4  # a few rows: enough for BatchNorm statistics, quick on a CPU
    steps: int = 5
    lr: float = 0.01
    momentum: float = 0.9  # torch.optim.SGD(momentum=0.9): the momentum buffer is compared too, through the params


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}") from None
    if not shape or any(s <= 0 for s in shape):
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}")
    return shape


def load_model(spec: str, torch: Any) -> Any:
    """``FILE:NAME`` -> the torch module ``NAME()`` built from the file (a class or a factory)."""
    file, sep, name = spec.rpartition(":")
    if not sep or not file or not name:
        raise ValueError(f"--model must be FILE:NAME (e.g. experiments/models/lenet.py:LeNet5), got {spec!r}")
    path = pathlib.Path(file)
    if not path.is_file():
        raise FileNotFoundError(f"--model: no such file: {file}")
    module_spec = importlib.util.spec_from_file_location(f"_ported_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"--model: {file} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:  # the user's file: any failure is reported on one line
        raise ValueError(f"--model: running {file} failed: {type(err).__name__}: {err}") from None
    if not hasattr(module, name):
        raise ValueError(f"--model: {file} defines no {name!r}")
    factory = getattr(module, name)
    if not callable(factory):
        raise ValueError(f"--model: {name} in {file} is neither a class nor a function")
    try:
        model = factory()
    except Exception as err:
        raise ValueError(f"--model: {name}() failed: {type(err).__name__}: {err}") from None
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"--model: {name}() returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _max_diff(a: Any, b: Any) -> tuple[float, float]:
    """Largest absolute and relative difference (relative to the largest magnitude of ``b``)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0, 0.0
    d = float(np.max(np.abs(a - b)))
    return d, d / max(float(np.max(np.abs(b))), 1e-300)


def _loss_fns(kind: str, torch: Any):
    if kind == "cross-entropy":
        return F.cross_entropy, torch.nn.functional.cross_entropy
    return F.mse_loss, torch.nn.functional.mse_loss


def compare_gradients(torch_model: Any, model: Any, x: np.ndarray, cotangent: np.ndarray, torch: Any) -> dict:
    """Outputs and gradients (input, every parameter) of both models on ``x`` in their current mode."""
    xt = torch.from_numpy(x.copy())
    if xt.is_floating_point():
        xt.requires_grad_(True)
    torch_model.zero_grad(set_to_none=True)
    initial = {k: v.clone() for k, v in torch_model.state_dict().items()}
    out_t = torch_model(xt)
    (out_t * torch.from_numpy(cotangent)).sum().backward()
    torch_model.load_state_dict(initial)  # undo a training forward's buffer updates
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    floating = np.issubdtype(x.dtype, np.floating)

    def objective(params, x):
        out = nnx.merge(graphdef, params, rest, copy=True)(x)
        return jnp.sum(out * cotangent), out

    grad_fn = jax.jit(jax.value_and_grad(objective, argnums=(0, 1) if floating else 0, has_aux=True))
    (_, out), grads = grad_fn(params, jnp.asarray(x))
    p_grads, x_grad = grads if floating else (grads, None)
    result = {"output": _max_diff(out, out_t.detach().numpy())}
    if x_grad is not None:
        result["input gradient"] = _max_diff(x_grad, xt.grad.numpy())
    t_params = dict(torch_model.named_parameters())
    worst = ("", (0.0, 0.0))
    for path, var in nnx.to_flat_state(p_grads):
        key = ".".join(map(str, path))
        t_grad = t_params[key].grad
        expected = np.zeros(var.get_value().shape) if t_grad is None else t_grad.numpy()
        diff = _max_diff(var.get_value(), expected)
        if diff[0] >= worst[1][0]:
            worst = (key, diff)
    result[f"parameter gradients (largest: {worst[0]})"] = worst[1]
    return result


def train_side_by_side(torch_model: Any, model: Any, x: np.ndarray, y: np.ndarray, loss: str, cfg: Config, torch: Any):
    """``cfg.steps`` SGD steps in both; yields ``(step, torch loss, fnnet loss, max |param diff|)``."""
    f_loss, t_loss = _loss_fns(loss, torch)
    tx = optim.sgd(lr=cfg.lr, momentum=cfg.momentum)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, rest, opt_state, x, y):
        def objective(params):
            m = nnx.merge(graphdef, params, rest, copy=True)
            value = f_loss(m(x), y)
            return value, nnx.split(m, nnx.Param, ...)[2]

        (value, new_rest), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return jax.tree.map(jnp.add, params, updates), new_rest, opt_state, value

    t_opt = torch.optim.SGD(torch_model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    xt, yt = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    for i in range(1, cfg.steps + 1):
        t_opt.zero_grad()
        value_t = t_loss(torch_model(xt), yt)
        value_t.backward()
        t_opt.step()
        params, rest, opt_state, value = step(params, rest, opt_state, xj, yj)
        nnx.update(model, params, rest)
        sd = fnn.state_dict(model)
        diff = max(_max_diff(v, torch_model.state_dict()[k].numpy())[0] for k, v in sd.items())
        yield i, value_t.item(), float(value), diff


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, metavar="FILE:NAME", help="a torch model: file and class/function")
    parser.add_argument("--input-shape", type=_shape, required=True, metavar="D1,D2,...", help="one example's shape")
    parser.add_argument("--batch", type=positive_int, default=Config.batch)
    parser.add_argument(
        "--int-input", type=positive_int, default=None, metavar="HIGH", help="integer inputs in [0, HIGH)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=Config.steps, help="SGD steps side by side (0: none)")
    parser.add_argument("--lr", type=positive_float, default=Config.lr)
    parser.add_argument("--momentum", type=float, default=Config.momentum)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--loss", choices=("auto", "mse", "cross-entropy"), default="auto")
    args = parser.parse_args(argv)
    try:
        if args.steps < 0:
            raise ValueError(f"--steps must be >= 0, got {args.steps}")
        try:
            import torch
        except ImportError:
            raise ValueError("this script needs torch (pip install torch)") from None
        torch.set_num_threads(1)
        if args.dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        np_dtype = np.float64 if args.dtype == "float64" else np.float32
        cfg = Config(batch=args.batch, steps=args.steps, lr=args.lr, momentum=args.momentum)
        torch.manual_seed(args.seed)
        torch_model = load_model(args.model, torch).to(getattr(torch, args.dtype))
        model = fnn.from_torch(torch_model)
        random = any(isinstance(m, RandomModule) for _, m in nnx.iter_modules(model))
        if random:
            torch_model.eval()
            model.eval()
        mode = "eval" if not torch_model.training else "train"
        rng = np.random.default_rng(args.seed)
        shape = (cfg.batch, *args.input_shape)
        if args.int_input is not None:
            x = rng.integers(0, args.int_input, shape).astype(np.int64)
        else:
            x = rng.standard_normal(shape).astype(np_dtype)
        initial = {k: v.clone() for k, v in torch_model.state_dict().items()}
        try:
            with torch.no_grad():
                probe = torch_model(torch.from_numpy(x.copy()))
        except Exception as err:
            raise ValueError(f"the torch model fails on an input of shape {list(shape)}: {err}") from None
        torch_model.load_state_dict(initial)  # a training-mode probe moved BatchNorm's running statistics
        if not isinstance(probe, torch.Tensor) or not probe.is_floating_point():
            raise ValueError("the model must return one floating-point tensor")
        n_params = sum(p.numel() for p in torch_model.parameters())
        print(f"{type(torch_model).__name__}: {n_params} parameters, {args.dtype}, input {list(shape)}, {mode} mode")
        print(f"converted: {type(model).__module__}.{type(model).__qualname__}")
        cotangent = rng.standard_normal(tuple(probe.shape)).astype(np_dtype)
        print("largest difference torch vs fnnet (absolute, relative):")
        for name, (d_abs, d_rel) in compare_gradients(torch_model, model, x, cotangent, torch).items():
            print(f"  {name}: {d_abs:.3e}  {d_rel:.3e}")
        loss = args.loss
        if loss == "auto":
            loss = "cross-entropy" if probe.ndim == 2 and probe.shape[1] > 1 else "mse"
        if loss == "cross-entropy":
            y = rng.integers(0, probe.shape[1], cfg.batch).astype(np.int64)
        else:
            y = rng.standard_normal(tuple(probe.shape)).astype(np_dtype)
        if cfg.steps:
            print(f"{cfg.steps} SGD steps (lr={cfg.lr}, momentum={cfg.momentum}, {loss} loss, random targets):")
            worst = 0.0
            for i, value_t, value, diff in train_side_by_side(torch_model, model, x, y, loss, cfg, torch):
                worst = max(worst, diff)
                print(f"  step {i}: loss torch {value_t:.12g}  fnnet {value:.12g}  max |param diff| {diff:.3e}")
            print(f"largest parameter difference after {cfg.steps} steps: {worst:.3e}")
    except (ValueError, TypeError, NotImplementedError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
