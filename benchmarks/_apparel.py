"""The apparel MLP benchmarks' shared parts: data, and the PyTorch loops they are compared with.

The torch side is the tutorial's model ``Sequential(Linear(784, 500), ReLU(), Linear(500, 10))``,
``CrossEntropyLoss`` and ``torch.optim.Adam(lr=0.0005)`` (torch's default ``foreach`` kernels), loaded
with fnnet's initial weights (``fnnet.nn.state_dict``: torch's keys) so both libraries compute the same
run. The recipes come from ``experiments/apparel_recipes.py`` (:func:`recipes`).
Mini-batches index the training tensors directly with the order fnnet draws
(``fnnet.train.epoch_permutation``): the fastest idiomatic torch (a ``DataLoader`` over a
``TensorDataset`` collates example by example and is several times slower).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

import numpy as np

QUICK_TRAIN, QUICK_VAL = 5_400, 600  # --quick: a tenth of the tutorial's split
EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / "experiments"


def recipes():
    """``experiments/apparel_recipes.py``: the apparel application's recipes live beside its script."""
    if str(EXPERIMENTS) not in sys.path:
        sys.path.insert(0, str(EXPERIMENTS))
    import apparel_recipes

    return apparel_recipes


def load_splits(args: argparse.Namespace, quick: tuple[int, int] = (QUICK_TRAIN, QUICK_VAL), **prepare):
    """(splits, data description) with fnnet's loader and the tutorial's 90/10 stratified split (seed 0);
    ``quick``: the (train, validation) sizes kept under ``--quick``; ``prepare``: further keywords of the
    recipes' ``prepare_splits`` (normalisation, input shape)."""
    from fnnet.data import load_fashion_mnist

    data = load_fashion_mnist(args.data_dir, verbose=False)
    splits = recipes().prepare_splits(data, seed=0, **prepare)
    if args.quick:
        splits = splits._replace(
            train_x=splits.train_x[: quick[0]],
            train_y=splits.train_y[: quick[0]],
            val_x=splits.val_x[: quick[1]],
            val_y=splits.val_y[: quick[1]],
        )
    info = {
        "data": data.source,
        "is_sample": bool(data.is_sample),
        "n_train": int(splits.train_x.shape[0]),
        "n_val": int(splits.val_x.shape[0]),
    }
    return splits, info


def torch_model(torch, state: Any, device):
    """The tutorial's ``nn.Sequential`` holding the weights of fnnet's ``TrainState`` ``state``."""
    from fnnet.nn import state_dict

    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 500), nn.ReLU(), nn.Linear(500, 10))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict(state.model()).items()})
    return model.to(device)


def torch_tensors(torch, splits, device):
    """Training/validation features (float32) and labels (int64, as ``CrossEntropyLoss`` wants)."""
    return (
        torch.from_numpy(np.array(splits.train_x)).to(device),
        torch.from_numpy(np.asarray(splits.train_y, np.int64)).to(device),
        torch.from_numpy(np.array(splits.val_x)).to(device),
        torch.from_numpy(np.asarray(splits.val_y, np.int64)).to(device),
    )


def torch_minibatch_epoch(torch, model, optimizer, x, y, order, *, compiled_step=None):
    """One epoch: for each row of ``order`` (batch indices) ``zero_grad, forward, loss, backward, step``.

    Returns the per-step losses as one tensor (no host sync per step).
    """
    criterion = torch.nn.CrossEntropyLoss()
    losses = []
    for idx in order:
        if compiled_step is not None:
            losses.append(compiled_step(x[idx], y[idx]))
            continue
        optimizer.zero_grad()
        loss = criterion(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return torch.stack(losses)


def torch_compiled_step(torch, model, optimizer):
    """``zero_grad, forward, loss, backward, step`` as one ``torch.compile``d function."""
    criterion = torch.nn.CrossEntropyLoss()

    @torch.compile
    def step(xb, yb):
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def torch_full_batch(torch, model, optimizer, x, y, val_x, val_y, epochs: int, *, accumulate: bool, forward=None):
    """The tutorial's loop: ``epochs`` full-batch steps, the validation loss after each.

    ``accumulate=True`` is the published code, which never calls ``optimizer.zero_grad()`` (each step
    uses the sum of all gradients so far: fnnet's ``tutorial`` recipe).
    """
    criterion = torch.nn.CrossEntropyLoss()
    forward = forward or model
    train_losses, val_losses = [], []
    for _ in range(epochs):
        model.train()
        if not accumulate:
            optimizer.zero_grad()
        loss_train = criterion(forward(x), y)
        loss_train.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            loss_val = criterion(forward(val_x), val_y)
        train_losses.append(loss_train.item())
        val_losses.append(loss_val.item())
    return np.array(train_losses), np.array(val_losses)


def time_torch_minibatch(args, impls, splits, state, lr: float, order_np):
    """Time one torch mini-batch epoch per impl (``torch`` or ``torch-compile``) over ``order_np``.

    Yields ``(impl, device description, timing, mean loss of the epoch)``; both ``mlp_mini`` and
    ``mlp_parallel`` compare fnnet against this.
    """
    if not impls:
        return
    import _harness as h
    import torch

    device, desc = h.torch_device(args.torch_threads)
    tx, ty, _, _ = torch_tensors(torch, splits, device)
    order = torch.from_numpy(np.asarray(order_np, np.int64)).to(device)
    for impl in impls:
        model = torch_model(torch, state, device)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        setup = h.torch_resetter(model, optimizer)
        step = torch_compiled_step(torch, model, optimizer) if impl == "torch-compile" else None

        def loop(model, optimizer, _step=step):
            return torch_minibatch_epoch(torch, model, optimizer, tx, ty, order, compiled_step=_step)

        t = h.time_calls(loop, repeats=args.repeats, setup=setup, finish=lambda out: out.cpu().numpy())
        yield impl, desc, t, float(np.mean(t["out"].astype(np.float64)))
