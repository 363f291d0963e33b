"""Calibration: the float32 matrix-product throughput of each library on this machine (GFLOP/s).

    python benchmarks/gemm.py [--repeats 5] [--quick]

Times the apparel MLP's two large products once each: ``x @ W1`` (the forward pass, 54,000 x 784
times 784 x 500) and ``x.T @ dh`` (the weight gradient, 784 x 54,000 times 54,000 x 500), in
``jax.jit`` and in torch (``torch.mm``), 2 FLOPs per multiply-add. The MLP workloads are dominated
by exactly these products, so this is the ceiling that their torch/fnnet ratios run into: a
workload whose time is mostly GEMM cannot be much faster in one library than the other when both
reach the same GFLOP/s here.

It also measures the machine's two roofline numbers for ``BENCHMARKS.md``: the **peak** float32
product rate (an n x n x n product, n = 2048 on a CPU and 8192 on a GPU, in both libraries, full
float32 precision: ``precision=HIGHEST`` in XLA, TF32 off in torch; the higher of the two is the
peak), and the **memory bandwidth** (``x = 2 * x`` in place over 256 MiB in XLA; bytes read + written over
the time). Those lines carry ``"calibration": "peak"`` / ``"bandwidth"``.
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
            h.emit(
                args,
                h.record(
                    "gemm",
                    impl,
                    device,
                    t,
                    args,
                    variant=name,
                    gflop=flops / 1e9,
                    gflops_per_s=round(flops / 1e9 / t["median_s"], 2),
                ),
            )
        peak(args, impl, device, finish)
    if "fnnet" in args.impl_list:
        bandwidth(args)
    return 0


def _on_gpu(impl: str) -> bool:
    if impl == "fnnet":
        import jax

        return jax.default_backend() == "gpu"
    import torch

    return torch.cuda.is_available()


def peak(args, impl: str, device: str, finish) -> None:
    """An n x n x n float32 product at full precision: the machine's measured peak (per library)."""
    import numpy as np

    n = 1024 if args.quick else (8192 if _on_gpu(impl) else 2048)
    rng = np.random.default_rng(1)
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    if impl == "fnnet":
        import jax
        import jax.numpy as jnp

        aj, bj = jnp.asarray(a), jnp.asarray(b)
        mm = jax.jit(lambda x, y: jnp.matmul(x, y, precision=jax.lax.Precision.HIGHEST))
        call = lambda: mm(aj, bj)  # noqa: E731
    else:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False  # torch's default, stated
        dev = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        at, bt = torch.from_numpy(a).to(dev), torch.from_numpy(b).to(dev)
        call = lambda: torch.mm(at, bt)  # noqa: E731
    flops = 2.0 * n**3
    t = h.time_calls(call, repeats=args.repeats, finish=finish)
    h.emit(
        args,
        h.record(
            "gemm",
            impl,
            device,
            t,
            args,
            variant=f"peak {n}^3",
            calibration="peak",
            gflop=flops / 1e9,
            gflops_per_s=round(flops / 1e9 / t["median_s"], 2),
        ),
    )


def bandwidth(args) -> None:
    """``x = 2 * x`` in place over 256 MiB (32 MiB with --quick) in XLA: (read + write bytes) / time.

    The buffer is donated, so XLA writes over it: a fresh output buffer each call would time the
    kernel's first-touch page faults (3x slower here), not the memory.
    """
    import jax
    import jax.numpy as jnp

    count = (8 if args.quick else 64) * 2**20
    double = jax.jit(lambda v: v * 2.0, donate_argnums=0)
    box = [jnp.ones((count,), jnp.float32)]

    def call():
        box[0] = double(box[0])
        return box[0]

    t = h.time_calls(call, repeats=args.repeats, finish=h.block)
    gbytes = 2 * 4 * count / 1e9
    h.emit(
        args,
        h.record(
            "membw",
            "fnnet",
            h.jax_device(),
            t,
            args,
            calibration="bandwidth",
            gbytes=gbytes,
            gbytes_per_s=round(gbytes / t["median_s"], 2),
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
