"""Benchmark ``mlp_mini``: the apparel MLP, mini-batches of 128, one epoch of 54,000 images.

    python benchmarks/mlp_mini.py [--repeats 5] [--quick] [--data-dir DIR]
                                  [--impls fnnet,torch,torch-compile,jax-prototype]

The ``tutorial-fixed`` recipe with ``batch_size=128``: Adam(lr=0.0005), gradients reset every step,
421 steps (the last 112 images of the shuffled order are dropped, like ``drop_last=True``).

* fnnet: ``fnnet.train.make_epoch_fn(make_step(recipe)(None), batch_size=128)`` (``make_step`` from
  ``experiments/apparel_recipes.py``): the epoch's
  permutation and all 421 steps in one ``jit`` (``lax.scan``), the data already on the device.
* torch: ``for idx in order: optimizer.zero_grad(); loss = criterion(model(x[idx]), y[idx]);
  loss.backward(); optimizer.step()`` over the same order fnnet draws (so both runs compute the same
  thing; torch gets the order precomputed, fnnet draws it inside the timed call).
* torch-compile: the same step as one ``torch.compile``d function (forward, backward, Adam).
* jax-prototype (opt-in): ``_prototype.make_minibatch_epoch``, the same epoch hand-written in plain
  ``jnp`` under one ``jit`` (the bar fnnet's API overhead is measured against, see ``_prototype.py``).

Both start from the same weights; the mean loss of the epoch is compared.
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _apparel  # noqa: E402
import _harness as h  # noqa: E402

WORKLOAD = "mlp_mini"
BATCH = 128


def main(argv=None) -> int:
    args = h.parse(
        h.parser(__doc__.splitlines()[0], data=True, impls=(*h.IMPLS, h.PROTOTYPE), default_impls=h.IMPLS), argv
    )
    import jax
    import jax.numpy as jnp
    import numpy as np

    from fnnet.train import epoch_permutation, make_epoch_fn

    recipes = _apparel.recipes()
    splits, info = _apparel.load_splits(args)
    n = info["n_train"]
    recipe = recipes.RECIPES["tutorial-fixed"].with_overrides(batch_size=BATCH, epochs=1)
    state0 = recipes.build_state(recipe, 0, n)
    data_key = jax.random.fold_in(jax.random.PRNGKey(0), 2)
    meter = h.CompileMeter()
    records = []
    final = {}
    common = {"batch_size": BATCH, "steps": n // BATCH, **info}
    if "fnnet" in args.impl_list:
        epoch_fn = make_epoch_fn(recipes.make_step(recipe)(None), batch_size=BATCH)
        x, y = jnp.asarray(splits.train_x), jnp.asarray(splits.train_y)
        if args.populate_cache:
            meter.reset()
            epoch_fn.lower(state0, x, y, data_key, 0).compile()
            h.emit(args, {"impl": "fnnet", "workload": WORKLOAD, "populated": meter.snapshot()})
            return 0
        t = h.time_calls(
            lambda: epoch_fn(state0, x, y, data_key, 0),
            repeats=args.repeats,
            finish=h.block,
            meter=meter,
            first_only=args.first_call_only,
        )
        final["fnnet"] = float(np.mean(np.asarray(t["out"][1]["loss"], np.float64)))
        rec = h.record(WORKLOAD, "fnnet", h.jax_device(), t, args, result=final["fnnet"], **common)
        records.append(rec)
        h.emit(args, rec)
    if h.PROTOTYPE in args.impl_list:
        import _prototype

        epoch = _prototype.make_minibatch_epoch(lr=recipe.lr, batch_size=BATCH)
        p0 = _prototype.params_from_state(state0)
        x, y = jnp.asarray(splits.train_x), jnp.asarray(splits.train_y)
        key = jax.random.fold_in(data_key, 0)  # fnnet's epoch 0 order: the same batches
        t = h.time_calls(lambda: epoch(p0, x, y, key), repeats=args.repeats, finish=h.block)
        mean = float(np.mean(np.asarray(t["out"][1], np.float64)))
        extra = (
            {"mean_loss_rel_diff_vs_fnnet": float(abs(mean - final["fnnet"]) / final["fnnet"])}
            if "fnnet" in final
            else {}
        )
        rec = h.record(WORKLOAD, h.PROTOTYPE, h.jax_device(), t, args, result=mean, **common, **extra)
        records.append(rec)
        h.emit(args, rec)
    torch_impls = [i for i in args.impl_list if i.startswith("torch")]
    order = epoch_permutation(data_key, 0, n, BATCH) if torch_impls else None
    for impl, desc, t, mean in _apparel.time_torch_minibatch(args, torch_impls, splits, state0, recipe.lr, order):
        extra = {}
        if "fnnet" in final:
            extra["mean_loss_rel_diff_vs_fnnet"] = float(abs(mean - final["fnnet"]) / final["fnnet"])
        rec = h.record(WORKLOAD, impl, desc, t, args, result=mean, **common, **extra)
        records.append(rec)
        h.emit(args, rec)
    h.emit_ratios(args, WORKLOAD, records)
    h.emit_prototype_ratio(args, WORKLOAD, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
