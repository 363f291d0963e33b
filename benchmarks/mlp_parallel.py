"""Benchmark ``mlp_parallel``: ``mlp_mini`` (batch 128, one epoch) on fnnet's pmap and sharding paths.

    python benchmarks/mlp_parallel.py [--repeats 5] [--quick] [--data-dir DIR] [--host-devices 2]
                                      [--impls fnnet-pmap,fnnet-sharding,torch,torch-compile]

fnnet runs the epoch of ``mlp_mini`` data-parallel over **all local devices** through the layout
``experiments/cli.py``'s ``setup_parallel`` picks (``fnnet.parallel.pmap()`` / ``sharding()``, its
``epoch_fn``, ``put`` and ``prepare``: what ``experiments/apparel_classifier.py --parallel pmap|sharding``
uses): each global batch of 128 is split over the devices, gradients meet in an all-reduce.

On a CPU-only machine the devices are *forced*: this script sets
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (``--host-devices``, default 2) before JAX
is imported, so N XLA CPU devices share the same cores (on the 2-core machine: 2 devices on the
same 2 cores; this measures the paths' overhead, not extra hardware). On GPUs the flag does not
matter and every local GPU is used.

The torch side is the single-process loop of ``mlp_mini`` (all cores): torch's data-parallel
equivalent (``DistributedDataParallel`` over gloo processes) would split the same cores between
processes and add inter-process all-reduces, so the one-process loop is its fastest option here.
"""

from __future__ import annotations

import os
import pathlib
import sys


def _force_host_devices(argv) -> int:
    """Set XLA_FLAGS before jax is imported (the flag is read once, at backend start)."""
    count = 2
    for i, arg in enumerate(argv):
        if arg == "--host-devices" and i + 1 < len(argv):
            count = int(argv[i + 1])
        elif arg.startswith("--host-devices="):
            count = int(arg.split("=", 1)[1])
    if "jax" not in sys.modules and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={count}"
        ).strip()
    return count


sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _apparel  # noqa: E402
import _harness as h  # noqa: E402

WORKLOAD = "mlp_parallel"
BATCH = 128
IMPLS = ("fnnet-pmap", "fnnet-sharding", "torch", "torch-compile")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    forced = _force_host_devices(argv)
    p = h.parser(
        __doc__.splitlines()[0], data=True, impls=IMPLS, default_impls=("fnnet-pmap", "fnnet-sharding", "torch")
    )
    p.add_argument("--host-devices", type=int, default=2, help="XLA CPU devices to force (CPU only)")
    args = h.parse(p, argv)
    import argparse

    import jax
    import numpy as np

    from fnnet.train import epoch_permutation

    recipes = _apparel.recipes()
    import cli  # experiments/cli.py, on sys.path with the recipes

    splits, info = _apparel.load_splits(args)
    n = info["n_train"]
    recipe = recipes.RECIPES["tutorial-fixed"].with_overrides(batch_size=BATCH, epochs=1)
    state0 = recipes.build_state(recipe, 0, n)
    data_key = jax.random.fold_in(jax.random.PRNGKey(0), 2)
    meter = h.CompileMeter()
    devices = jax.local_devices()
    forced_note = (
        f"{forced} forced XLA CPU devices sharing {os.cpu_count()} cores"
        if devices[0].platform == "cpu"
        else f"{len(devices)} {devices[0].platform} devices"
    )
    common = {"batch_size": BATCH, "steps": n // BATCH, "devices": len(devices), "device_note": forced_note, **info}
    records = []
    final = {}
    for impl in [i for i in args.impl_list if i.startswith("fnnet")]:
        mode = impl.split("-", 1)[1]
        flags = argparse.ArgumentParser()
        cli.add_parallel_arguments(flags)
        layout = cli.setup_parallel(flags.parse_args(["--parallel", mode])).layout
        epoch_fn = layout.epoch_fn(recipes.make_step(recipe)(layout.axis_name), batch_size=BATCH, n_examples=n)
        state = layout.prepare(state0)
        x, y = layout.put(splits.train_x), layout.put(splits.train_y)
        t = h.time_calls(
            lambda: epoch_fn(state, x, y, data_key, 0),
            repeats=args.repeats,
            finish=h.block,
            meter=meter,
            first_only=args.first_call_only or args.populate_cache,
        )
        final[mode] = float(np.mean(np.asarray(t["out"][1]["loss"], np.float64)))
        rec = h.record(WORKLOAD, "fnnet", h.jax_device(), t, args, variant=mode, result=final[mode], **common)
        records.append(rec)
        h.emit(args, rec)
    torch_impls = [i for i in args.impl_list if i.startswith("torch")]
    order = epoch_permutation(data_key, 0, n, BATCH) if torch_impls else None
    for impl, desc, t, mean in _apparel.time_torch_minibatch(args, torch_impls, splits, state0, recipe.lr, order):
        extra = {f"mean_loss_rel_diff_vs_fnnet_{m}": float(abs(mean - v) / v) for m, v in final.items()}
        rec = h.record(WORKLOAD, impl, desc, t, args, result=mean, **common, **extra)
        records.append(rec)
        h.emit(args, rec)
    for mode in final:
        h.emit_ratios(args, WORKLOAD, records, variant=mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
