"""Trains the apparel MLP for one epoch on one layout and prints its numbers as JSON (test helper).

    python tests/parallel_worker.py MODE DTYPE DEVICES [NUM_PROCESSES PROCESS_ID PORT]

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

import jax  # noqa: E402
import numpy as np  # noqa: E402

import fnnet  # noqa: E402

parser = argparse.ArgumentParser()
fnnet.parallel.add_arguments(parser)
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
ctx = fnnet.parallel.setup(parser.parse_args(argv))

N_TRAIN, BATCH = 4000, 64  # 62 steps: enough for the first-50-steps comparison
recipe = fnnet.RECIPES["strong"].with_overrides(epochs=1, batch_size=BATCH)
data = fnnet.load_fashion_mnist(fnnet.data.sample_dir(), verbose=False)
splits = fnnet.prepare_splits(data, seed=0, dtype=ctx.np_dtype)
splits = splits._replace(train_x=splits.train_x[:N_TRAIN], train_y=splits.train_y[:N_TRAIN])
state = fnnet.build_state(recipe, 0, N_TRAIN, dtype=ctx.jnp_dtype)
epoch_fn, put, state = fnnet.parallel.epoch_runner(ctx, recipe, state, N_TRAIN)
data_key = jax.random.fold_in(jax.random.PRNGKey(0), 2)
state, metrics = epoch_fn(state, put(splits.train_x), put(splits.train_y), data_key, 0)
losses = np.asarray(jax.device_get(metrics["loss"]), np.float64)
params = jax.tree.map(lambda a: np.asarray(jax.device_get(a)), state.params)
pred = np.asarray(fnnet.predict(state.apply_fn, params, splits.test_x))
if ctx.process_index == 0:
    print(
        json.dumps(
            {
                "devices": len(ctx.devices),
                "processes": ctx.num_processes,
                "losses": losses.tolist(),
                "test_accuracy": float(np.mean(pred == splits.test_y)),
            }
        )
    )
