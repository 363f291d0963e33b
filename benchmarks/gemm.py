"""Calibration: the float32 matrix-product throughput of each library on this machine (GFLOP/s).

    python benchmarks/gemm.py [--repeats 5] [--quick]

Times the apparel MLP's two large products once each: ``x @ W1`` (the forward pass, 54,000 x 784
times 784 x 500) and ``x.T @ dh`` (the weight gradient, 784 x 54,000 times 54,000 x 500), in
``jax.jit`` and in torch (``torch.mm``), 2 FLOPs per multiply-add. The MLP workloads are dominated
by exactly these products, so this is the ceiling that their torch/fnnet ratios run into: a
workload whose time is mostly GEMM cannot be much faster in one library than the other when both
reach the same GFLOP/s here.
"""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _harness as h  # noqa: E402

ROWS, IN, OUT = 54_000, 784, 500


def main(argv=None) -> int:
    args = h.parse(h.parser(__doc__.splitlines()[0], impls=("fnnet", "torch"), default_impls=("fnnet", "torch")), argv)
    import jax
    import jax.numpy as jnp
    import numpy as np

    rows = ROWS // 10 if args.quick else ROWS
    rng = np.random.default_rng(0)
    x = rng.random((rows, IN), np.float32)
    w = rng.random((IN, OUT), np.float32)
    dh = rng.random((rows, OUT), np.float32)
    flops = 2.0 * rows * IN * OUT
    for impl in args.impl_list:
        if impl == "fnnet":
            xj, wj, dhj = jnp.asarray(x), jnp.asarray(w), jnp.asarray(dh)
            fwd = jax.jit(lambda a, b: a @ b)
            bwd = jax.jit(lambda a, d: a.T @ d)
            calls = {"forward x@W": lambda: fwd(xj, wj), "weight grad x.T@dh": lambda: bwd(xj, dhj)}
            finish, device = h.block, h.jax_device()
        else:
            import torch

            dev, device = h.torch_device(args.torch_threads)
            xt, wt, dht = (torch.from_numpy(a).to(dev) for a in (x, np.ascontiguousarray(w.T), dh))
            calls = {"forward x@W": lambda: torch.mm(xt, wt.t()), "weight grad x.T@dh": lambda: torch.mm(dht.t(), xt)}

            def finish(out, _dev=dev):
                h.torch_sync(_dev)
                return out

        for name, call in calls.items():
            t = h.time_calls(call, repeats=args.repeats, finish=finish)
            h.emit(args, h.record("gemm", impl, device, t, args, variant=name, gflop=flops / 1e9,
                                  gflops_per_s=round(flops / 1e9 / t["median_s"], 2)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
