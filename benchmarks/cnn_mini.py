"""Benchmark ``cnn_mini``: one epoch of the strong CNN, mini-batches of 128 (421 steps on 54,000 images).

    python benchmarks/cnn_mini.py [--repeats 5] [--quick] [--data-dir DIR] [--keep-freed-memory]
                                  [--impls fnnet,fnnet-step,torch,torch-compile,jax-plain]

The ``cnn`` recipe's network and step (conv 1->32 and 32->64 with BatchNorm, ReLU and max-pooling,
dropout 0.25, Linear(3136, 128), Linear(128, 10); AdamW, label smoothing 0.1) without its input
augmentation, which torch's loop would not share (about 3.2 GFLOP a step).

* fnnet (variant ``epoch``): ``fnnet.train.make_epoch_fn``: the epoch's order and all steps in one
  ``jit`` (``lax.scan``), the data on the device.
* fnnet-step (variant ``step``): the same ``train_step`` jitted alone and called from Python for each
  batch (what a torch-style loop over a jitted step costs).
* torch: ``zero_grad, forward, loss, backward, step`` per batch over the same order (torch's default
  threads); torch-compile: that step through ``torch.compile``.
* jax-plain: the same network in plain Flax NNX (``nnx.Conv`` on NHWC, XLA's convolution and its
  gradient) in the same ``lax.scan`` epoch: what fnnet's convolution lowering buys.

All start from the same weights (jax-plain from its own draw) and the mean loss of the epoch is reported.
Ratios: ``torch / fnnet`` (target >= 1 on a CPU, aim 1.3) and ``jax-plain / fnnet`` (target >= 5).

Every row runs under glibc's default allocator, as users get it. ``--keep-freed-memory`` first calls
``fnnet.train.keep_freed_memory()`` (glibc keeps freed memory for reuse; every row then runs under it,
torch's too; each record says ``"malloc"``): a jitted step then stops mapping and faulting in its
block of XLA temporaries on every call (it did with ~65 MB before ``Sequential`` fused the first
Conv-BatchNorm-ReLU-MaxPool block, 32.5 MB since), and torch's eager step gains too.
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _apparel  # noqa: E402
import _cnn  # noqa: E402
import _harness as h  # noqa: E402

WORKLOAD = "cnn_mini"
BATCH = 128
IMPLS = ("fnnet", "fnnet-step", "torch", "torch-compile", "jax-plain")


def main(argv=None) -> int:
    p = h.parser(
        __doc__.splitlines()[0], data=True, impls=IMPLS, default_impls=("fnnet", "fnnet-step", "torch", "jax-plain")
    )
    p.add_argument(
        "--plain-steps",
        type=int,
        default=None,
        metavar="K",
        help="jax-plain runs only the epoch's first K steps (about 0.9 s each here; ratios are per step)",
    )
    p.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="call fnnet.train.keep_freed_memory() first (for every row, torch's too); default: glibc as it is",
    )
    args = h.parse(p, argv)
    import dataclasses

    from fnnet.train import Batch, epoch_permutation, keep_freed_memory, make_epoch_fn, scan_batches

    kept = args.keep_freed_memory and keep_freed_memory()  # before any large allocation

    import jax
    import jax.numpy as jnp
    import numpy as np

    recipes = _apparel.recipes()
    recipe = dataclasses.replace(recipes.RECIPES["cnn"], augment=False, epochs=1, batch_size=BATCH)
    splits, info = _cnn.load_splits(args, recipe)
    n = info["n_train"]
    steps = n // BATCH
    state0 = recipes.build_state(recipe, 0, n)
    data_key = jax.random.fold_in(jax.random.PRNGKey(0), 2)
    order = epoch_permutation(data_key, 0, n, BATCH)
    x, y = jnp.asarray(splits.train_x), jnp.asarray(splits.train_y)
    meter = h.CompileMeter()
    records, means = [], {}
    malloc = "keep_freed_memory" if kept else "default"
    common = {"batch_size": BATCH, "steps": steps, "malloc": malloc, **info, **_cnn.conv_flops(BATCH, "cnn")}
    train_step = recipes.make_step(recipe)(None)

    if "fnnet" in args.impl_list:
        epoch_fn = make_epoch_fn(train_step, batch_size=BATCH)
        t = h.time_calls(
            lambda: epoch_fn(state0, x, y, data_key, 0),
            repeats=args.repeats,
            finish=h.block,
            meter=meter,
            first_only=args.first_call_only or args.populate_cache,
        )
        means["fnnet"] = float(np.mean(np.asarray(t["out"][1]["loss"], np.float64)))
        rec = h.record(WORKLOAD, "fnnet", h.jax_device(), t, args, variant="epoch", result=means["fnnet"], **common)
        records.append(rec)
        h.emit(args, rec)
    if "fnnet-step" in args.impl_list:
        jstep = jax.jit(train_step)
        batches = [Batch(x[idx], y[idx], idx) for idx in order]

        def loop():
            st, losses = state0, []
            for b in batches:
                st, m = jstep(st, b)
                losses.append(m["loss"])
            return st, jnp.stack(losses)

        t = h.time_calls(
            loop,
            repeats=args.repeats,
            finish=h.block,
            meter=meter,
            first_only=args.first_call_only or args.populate_cache,
        )
        rec = h.record(WORKLOAD, "fnnet", h.jax_device(), t, args, variant="step",
                       result=float(np.mean(np.asarray(t["out"][1], np.float64))), **common)  # fmt: skip
        records.append(rec)
        h.emit(args, rec)
    if "jax-plain" in args.impl_list:
        from flax import nnx

        model = _cnn.plain_jax_model("cnn", dropout=recipe.dropout)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        tx = recipes.make_optimizer(recipe, n)
        step = _cnn.plain_jax_step(recipes.make_loss(recipe), tx)
        xh = jnp.transpose(x, (0, 2, 3, 1))  # Flax's NHWC

        plain_order = order if args.plain_steps is None else order[: max(1, args.plain_steps)]

        @jax.jit
        def plain_epoch(params, rest, opt_state):
            return scan_batches(step, (graphdef, params, rest, opt_state), xh, y, plain_order)

        opt0 = tx.init(params)
        t = h.time_calls(lambda: plain_epoch(params, rest, opt0), repeats=args.repeats, finish=h.block)
        rec = h.record(WORKLOAD, "jax-plain", h.jax_device(), t, args, variant="epoch",
                       result=float(np.mean(np.asarray(t["out"][1], np.float64))),
                       **dict(common, steps=len(plain_order)))  # fmt: skip
        records.append(rec)
        h.emit(args, rec)

    torch_impls = [i for i in args.impl_list if i.startswith("torch")]
    if torch_impls:
        import torch

        device, desc = h.torch_device(args.torch_threads)
        tx_, ty_, _, _ = _apparel.torch_tensors(torch, splits, device)
        torder = torch.from_numpy(np.asarray(order, np.int64)).to(device)
        for impl in torch_impls:
            model = _cnn.torch_model(torch, "cnn", state0, device, recipe.dropout)
            model.train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
            criterion = torch.nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
            setup = h.torch_resetter(model, optimizer)

            def one(xb, yb, model=model, optimizer=optimizer, criterion=criterion):
                optimizer.zero_grad()
                loss = criterion(model(xb), yb)
                loss.backward()
                optimizer.step()
                return loss.detach()

            step_fn = torch.compile(one) if impl == "torch-compile" else one

            def loop(model, optimizer, step_fn=step_fn):
                return torch.stack([step_fn(tx_[idx], ty_[idx]) for idx in torder])

            t = h.time_calls(loop, repeats=args.repeats, setup=setup, finish=lambda out: out.cpu().numpy())
            rec = h.record(WORKLOAD, impl, desc, t, args, result=float(np.mean(t["out"].astype(np.float64))), **common)
            records.append(rec)
            h.emit(args, rec)
    emit_cnn_ratios(args, WORKLOAD, records)
    return 0


def per_step(rec) -> float:
    """Median seconds per training step."""
    return rec["median_s"] / rec["steps"]


def emit_cnn_ratios(args, workload: str, records) -> None:
    """``ratio`` lines per fnnet variant: torch / fnnet (target >= 1) and jax-plain / fnnet (target >= 5)."""
    plain = [r for r in records if r["impl"] == "jax-plain" and "median_s" in r]
    for variant in ("epoch", "step"):
        h.emit_ratios(args, workload, records, variant=variant)
        fn = [r for r in records if r["impl"] == "fnnet" and r.get("variant") == variant and "median_s" in r]
        if fn and plain:  # per step: jax-plain may run fewer steps (--plain-steps)
            ratio = round(per_step(plain[0]) / per_step(fn[0]), 3)
            line = {"workload": workload, "variant": variant, "jax_plain_over_fnnet": ratio,
                    "target_jax_plain_over_fnnet": 5.0, "meets_jax_plain_target": bool(ratio >= 5.0)}  # fmt: skip
            if args.quick:
                line["quick"] = True
            h.emit(args, line)


if __name__ == "__main__":
    sys.exit(main())
