"""Trains an apparel recipe for one epoch on one layout and prints its numbers as JSON (test helper).

    [FNNET_TEST_RECIPE=strong|cnn] python tests/parallel_worker.py MODE DTYPE DEVICES [NUM_PROCESSES PROCESS_ID PORT]

Run as a subprocess by tests/test_parallel.py because the number of CPU devices
(``--xla_force_host_platform_device_count``) must be fixed before JAX starts.
"""

from __future__ import annotations

import json
import os
import sys

mode, dtype, devices = sys.argv[1], sys.argv[2], int(sys.argv[3])
nproc, pid, port = (int(a) for a in sys.argv[4:7]) if len(sys.argv) > 4 else (1, 0, 0)
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"

import argparse  # noqa: E402
import pathlib  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

import fnnet  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "experiments"))
import apparel_recipes as recipes  # noqa: E402
import cli  # noqa: E402

parser = argparse.ArgumentParser()
cli.add_parallel_arguments(parser)
argv = ["--parallel", mode, "--dtype", dtype]
if nproc > 1:
    argv += [
        "--coordinator",
        f"127.0.0.1:{port}",
        "--num-processes",
        str(nproc),
        "--process-id",
        str(pid),
        "--coordinator-timeout",
        "60",
    ]
par = cli.setup_parallel(parser.parse_args(argv))
layout = par.layout

RECIPE = os.environ.get("FNNET_TEST_RECIPE", "strong")  # the MLP (dropout 0.3) or the CNN (BatchNorm, dropout)
N_TRAIN, BATCH = (4000, 64) if RECIPE == "strong" else (1024, 64)  # MLP: 62 steps, for the 50-step comparison
recipe = recipes.RECIPES[RECIPE].with_overrides(epochs=1, batch_size=BATCH)
data = fnnet.load_fashion_mnist(fnnet.data.sample_dir(), verbose=False)
splits = recipes.prepare_splits(
    data,
    seed=0,
    dtype=par.np_dtype,
    normalisation=recipes.input_normalisation(recipe),
    shape=recipes.input_shape(recipe),
)
splits = splits._replace(train_x=splits.train_x[:N_TRAIN], train_y=splits.train_y[:N_TRAIN])
state = layout.prepare(recipes.build_state(recipe, 0, N_TRAIN, dtype=par.jnp_dtype))
epoch_fn = layout.epoch_fn(recipes.make_step(recipe)(layout.axis_name), batch_size=BATCH, n_examples=N_TRAIN)
data_key = jax.random.fold_in(jax.random.PRNGKey(0), 2)  # fit's data key for seed 0
state, metrics = epoch_fn(state, layout.put(splits.train_x), layout.put(splits.train_y), data_key, 0)
losses = np.asarray(jax.device_get(metrics["loss"]), np.float64)
if par.watch is not None:
    # The collective part is over: as experiments/apparel_classifier.py does, stop watching the
    # others, let them leave, and evaluate process 0's own copy of the replicated state there.
    par.watch.done()
if par.process_index == 0:
    pred = fnnet.train.make_evaluator()(fnnet.parallel.local_copy(state), splits.test_x)["predictions"]
    print(
        json.dumps(
            {
                "devices": len(layout.devices),
                "processes": par.num_processes,
                "losses": losses.tolist(),
                "test_accuracy": float(np.mean(pred == splits.test_y)),
                "buffers": {
                    k: np.asarray(v, np.float64).ravel().tolist()
                    for k, v in fnnet.nn.state_dict(fnnet.parallel.local_copy(state).model()).items()
                    if "running" in k or "num_batches" in k
                },
            }
        )
    )
