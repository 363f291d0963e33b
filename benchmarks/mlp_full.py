"""Benchmark ``mlp_full``: the apparel MLP as the tutorial trains it: 20 full-batch epochs, validation loss each.

    python benchmarks/mlp_full.py [--repeats 5] [--quick] [--data-dir DIR]
                                  [--impls fnnet,fnnet-fit,torch,torch-compile,jax-prototype]

The ``tutorial`` recipe: 54,000 training images, one Adam(lr=0.0005) step per epoch on all of them
with the published loop's accumulated gradients (no ``zero_grad``), and the loss on the 6,000
validation images after every epoch.

* fnnet (variant ``run_fn``, the default): ``fnnet.train.make_run_fn``: the 20 epochs *and* their
  validation losses in one ``jit`` (``lax.scan`` over epochs), compiled once per run function.
* fnnet-fit (variant ``fit``): ``fnnet.fit(state, None, (x, y), make_step=make_step(recipe), epochs=20,
  seed=0, evaluate=...)`` with the validation loss from ``fnnet.train.make_evaluator``: the resumable
  per-epoch loop of the experiment (no checkpointer). Every call builds new jitted functions and so
  compiles again, and copies the training set to the device: that is what each repeat measures.
* torch: the tutorial's loop (``model.train(); loss = criterion(model(x), y); loss.backward();
  optimizer.step()``, then the validation loss under ``no_grad``; ``.item()`` each epoch).
* torch-compile: the same loop through ``torch.compile(model)``; off by default (each epoch is two
  large matrix products that both libraries hand to their GEMM kernels, so there is nothing for
  Inductor to fuse that matters, and it adds a 20+ s compile to a ~15-minute run_all).

* jax-prototype (opt-in): ``_prototype.make_full_batch_run``, the same 20 epochs and validation
  losses hand-written in plain ``jnp`` under one ``jit`` (the bar for fnnet's API overhead).

Both libraries start from the same weights and the final validation losses are compared.
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _apparel  # noqa: E402
import _harness as h  # noqa: E402

WORKLOAD = "mlp_full"
IMPLS = ("fnnet", "fnnet-fit", "torch", "torch-compile", h.PROTOTYPE)


def main(argv=None) -> int:
    args = h.parse(h.parser(__doc__.splitlines()[0], data=True, impls=IMPLS, default_impls=("fnnet", "torch")), argv)
    import jax
    import jax.numpy as jnp

    from fnnet.train import fit, make_evaluator, make_run_fn

    recipes = _apparel.recipes()
    splits, info = _apparel.load_splits(args)
    n = info["n_train"]
    recipe = recipes.RECIPES["tutorial"].with_overrides(epochs=2 if args.quick else 20)
    state0 = recipes.build_state(recipe, 0, n)
    meter = h.CompileMeter()
    first_only = args.first_call_only or args.populate_cache
    records = []
    final = {}
    common = {"epochs": recipe.epochs, **info}
    if "fnnet" in args.impl_list:
        run = make_run_fn(
            recipes.make_step(recipe)(None), batch_size=n, epochs=recipe.epochs, loss_fn=recipes.make_loss(recipe)
        )
        x, y, vx, vy = (jnp.asarray(a) for a in (splits.train_x, splits.train_y, splits.val_x, splits.val_y))
        data_key = jax.random.fold_in(jax.random.PRNGKey(0), 2)  # what fit(seed=0) uses
        if args.populate_cache:
            meter.reset()
            run.lower(state0, x, y, vx, vy, data_key).compile()
            h.emit(args, {"impl": "fnnet", "workload": WORKLOAD, "populated": meter.snapshot()})
            return 0
        t = h.time_calls(
            lambda: run(state0, x, y, vx, vy, data_key),
            repeats=args.repeats,
            finish=h.block,
            meter=meter,
            first_only=first_only,
        )
        final["fnnet"] = float(t["out"][1]["val_loss"][-1])
        rec = h.record(WORKLOAD, "fnnet", h.jax_device(), t, args, variant="run_fn", result=final["fnnet"], **common)
        records.append(rec)
        h.emit(args, rec)
    if "fnnet-fit" in args.impl_list:

        def fit_once():
            evaluator = make_evaluator(recipes.make_loss(recipe))  # as the experiment: one per run
            return fit(
                state0,
                None,
                (splits.train_x, splits.train_y),
                make_step=recipes.make_step(recipe),
                epochs=recipe.epochs,
                batch_size=recipe.batch_size,
                seed=0,
                evaluate=lambda st: {"val_loss": evaluator(st, splits.val_x, splits.val_y)["loss"]},
            )

        t = h.time_calls(
            fit_once,
            repeats=args.repeats,
            finish=lambda out: (h.block(out[0]), out[1])[1],
            meter=meter,
            first_only=first_only,
        )
        result = float(t["out"][-1]["val_loss"])
        rec = h.record(WORKLOAD, "fnnet", h.jax_device(), t, args, variant="fit", result=result, **common)
        records.append(rec)
        h.emit(args, rec)
    if h.PROTOTYPE in args.impl_list:
        import _prototype

        run_p = _prototype.make_full_batch_run(lr=recipe.lr, epochs=recipe.epochs, accumulate=recipe.accumulate_grads)
        p0 = _prototype.params_from_state(state0)
        arrays = [jnp.asarray(a) for a in (splits.train_x, splits.train_y, splits.val_x, splits.val_y)]
        t = h.time_calls(lambda: run_p(p0, *arrays), repeats=args.repeats, finish=h.block)
        result = float(t["out"][1][-1])
        extra = {}
        if "fnnet" in final:
            extra["final_val_loss_rel_diff_vs_fnnet"] = abs(result - final["fnnet"]) / final["fnnet"]
        rec = h.record(WORKLOAD, h.PROTOTYPE, h.jax_device(), t, args, result=result, **common, **extra)
        records.append(rec)
        h.emit(args, rec)
    torch_impls = [i for i in args.impl_list if i.startswith("torch")]
    if torch_impls:
        import torch

        device, desc = h.torch_device(args.torch_threads)
        tx, ty, tvx, tvy = _apparel.torch_tensors(torch, splits, device)

        for impl in torch_impls:
            model = _apparel.torch_model(torch, state0, device)
            setup = h.torch_resetter(model, torch.optim.Adam(model.parameters(), lr=recipe.lr))
            forward = torch.compile(model) if impl == "torch-compile" else model  # compiled once

            def loop(model, optimizer, _forward=forward):
                return _apparel.torch_full_batch(
                    torch,
                    model,
                    optimizer,
                    tx,
                    ty,
                    tvx,
                    tvy,
                    recipe.epochs,
                    accumulate=recipe.accumulate_grads,
                    forward=_forward,
                )

            t = h.time_calls(loop, repeats=args.repeats, setup=setup)
            extra = {}
            if "fnnet" in final:
                diff = abs(t["out"][1][-1] - final["fnnet"]) / final["fnnet"]
                extra["final_val_loss_rel_diff_vs_fnnet"] = float(diff)
            rec = h.record(WORKLOAD, impl, desc, t, args, result=float(t["out"][1][-1]), **common, **extra)
            records.append(rec)
            h.emit(args, rec)
    h.emit_ratios(args, WORKLOAD, records, variant="run_fn")
    h.emit_prototype_ratio(args, WORKLOAD, records, variant="run_fn")
    if any(r.get("variant") == "fit" for r in records):
        h.emit_ratios(args, WORKLOAD, records, variant="fit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
