"""Run every benchmark and write BENCHMARKS.md: tables, machine details, date and a bar chart of the ratios.

    python benchmarks/run_all.py [--repeats 5] [--data-dir DIR] [--only scratch,hello,...]
                                 [--skip-experiments] [--with-fit] [--out BENCHMARKS.md]
    python benchmarks/run_all.py --quick --repeats 1          # smoke test; writes into a temp folder

Every measurement runs in a fresh subprocess (so fnnet's first call really compiles):

1. each workload script (``benchmarks/<workload>.py``): fnnet and PyTorch in one process, first call
   timed apart, then the median and minimum of ``--repeats`` calls; persistent compilation cache off;
2. fnnet's first call again with JAX's persistent compilation cache: one process fills a fresh cache
   (``--populate-cache``), a second one times its first call reading it (``--first-call-only``);
3. the whole-process wall time of each experiment script against its PyTorch twin in
   ``benchmarks/torch_reference/`` (twice each: fnnet with an empty, then a warm compilation cache,
   with the JAX compile time of each run read from JAX's monitoring events by ``_probe.py``);
4. ``gemm.py``: both libraries' matrix-product throughput, the ceiling of the MLP ratios.

The report for this platform (``cpu`` or ``gpu``) replaces its own section of BENCHMARKS.md and keeps
the other platform's; with no GPU section yet, a placeholder says that no GPU numbers exist. The raw
JSON lines go to ``benchmarks/results_<platform>.json`` and the chart to
``benchmarks/ratios_<platform>.png``. About 12-15 minutes on a quiet 2-core CPU.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import pathlib
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
PY = sys.executable
WORKLOADS = ("scratch", "hello", "binary", "mlp_mini", "mlp_full", "mlp_parallel", "cnn_mini", "cnn_full")
DATA_WORKLOADS = {"mlp_mini", "mlp_full", "mlp_parallel", "cnn_mini", "cnn_full"}
WHAT = {
    "scratch": "network from scratch, 5,000 epochs",
    "hello": "hello-world net, 1,000 SGD steps",
    "binary": "fundamentals classifier, 200 epochs",
    "mlp_mini": "apparel MLP, batch 128, 1 epoch (421 steps)",
    "mlp_full": "apparel MLP, tutorial: 20 full-batch epochs + val loss",
    "mlp_parallel": "mlp_mini over all local devices",
    "cnn_mini": "strong CNN, batch 128, 1 epoch (421 steps)",
    "cnn_full": "part II's CNN: 25 full-batch steps + val loss",
}
#: what each CNN row's fnnet variant is
CNN_VARIANT_WHAT = {"epoch": "compiled in one `jit` (`lax.scan`)", "step": "a jitted step called from Python"}
TIMEOUT_S = 1800


# ------------------------------------------------------------------------------------ running


class Runner:
    def __init__(self, work: pathlib.Path, log) -> None:
        self.work = work
        self.log = log
        self.env = dict(os.environ)
        for name in ("JAX_COMPILATION_CACHE_DIR", "XLA_FLAGS"):
            self.env.pop(name, None)
        self.env["TORCHINDUCTOR_CACHE_DIR"] = str(work / "inductor-cache")  # torch.compile starts cold too
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env["MPLBACKEND"] = "Agg"

    def run(self, cmd: list[str], *, label: str) -> tuple[int, str, float]:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=TIMEOUT_S)
        wall = time.perf_counter() - t0
        self.log(f"  {label}: {wall:.1f}s" + ("" if proc.returncode == 0 else f"  (exit {proc.returncode})"))
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
            self.log(f"    {tail}")
        return proc.returncode, proc.stdout, wall


def json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def resolve_data_dir(arg: str | None) -> str | None:
    """--data-dir, else $FNNET_DATA_DIR, else the checkout's ../shared/data/fashion-mnist, else fnnet's cache."""
    if arg:
        return arg
    if os.environ.get("FNNET_DATA_DIR"):
        return os.environ["FNNET_DATA_DIR"]
    for candidate in (
        REPO.parent / "shared" / "data" / "fashion-mnist",
        pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "fnnet" / "fashion-mnist",
    ):
        if (candidate / "train-images-idx3-ubyte.gz").exists() or (candidate / "train-images-idx3-ubyte").exists():
            return str(candidate)
    return None


def workload_cmd(name: str, args: argparse.Namespace, data_dir: str | None, *extra: str) -> list[str]:
    cmd = [PY, str(HERE / f"{name}.py"), *extra]
    if args.quick:
        cmd.append("--quick")
    if data_dir and name in DATA_WORKLOADS:
        cmd += ["--data-dir", data_dir]
    return cmd


def run_workloads(runner: Runner, args: argparse.Namespace, data_dir: str | None) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for name in args.only:
        runner.log(f"{name}:")
        extra = ["--repeats", str(args.repeats)]
        if name == "mlp_full":
            extra += [
                "--impls",
                "fnnet,fnnet-fit,torch,jax-prototype" if args.with_fit else "fnnet,torch,jax-prototype",
            ]
        elif name == "cnn_mini":
            extra += ["--plain-steps", "40"]  # XLA's own convolution takes ~0.9 s a step: 40 steps, per step
        elif name == "cnn_full":
            extra += ["--plain-steps", "2"]  # XLA's full-batch convolution: minutes a step
        elif name == "mlp_mini":
            extra += [
                "--impls",
                "fnnet,torch,jax-prototype" if args.quick else "fnnet,torch,torch-compile,jax-prototype",
            ]
        _, out, _ = runner.run(workload_cmd(name, args, data_dir, *extra), label="fnnet vs torch")
        records += [dict(r, phase="steady") for r in json_lines(out)]
        cache = runner.work / f"jax-cache-{name}"
        runner.run(
            workload_cmd(name, args, data_dir, "--populate-cache", "--compile-cache", str(cache)),
            label="fill a persistent cache",
        )
        _, out, _ = runner.run(
            workload_cmd(name, args, data_dir, "--first-call-only", "--compile-cache", str(cache)),
            label="first call, warm cache",
        )
        records += [dict(r, phase="warm_cache") for r in json_lines(out) if "first_call_s" in r]
    runner.log("gemm:")
    cmd = [PY, str(HERE / "gemm.py"), "--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
    _, out, _ = runner.run(cmd, label="matrix-product throughput")
    records += [dict(r, phase="gemm") for r in json_lines(out)]
    return records


def experiments(data_dir: str | None, quick: bool) -> list[dict[str, Any]]:
    exps = [
        {
            "name": "scratch_network",
            "fnnet": ["experiments/scratch_network.py"],
            "torch": ["benchmarks/torch_reference/scratch_network.py"],
        },
        {
            "name": "hello_world",
            "fnnet": ["experiments/hello_world.py"],
            "torch": ["benchmarks/torch_reference/hello_world.py"],
        },
        {
            "name": "binary_classifier",
            "fnnet": ["experiments/binary_classifier.py"],
            "torch": ["benchmarks/torch_reference/binary_classifier.py"],
        },
    ]
    if data_dir:
        epochs = ["--epochs", "2"] if quick else []
        exps.append(
            {
                "name": "apparel_classifier --recipe tutorial",
                "fnnet": [
                    "experiments/apparel_classifier.py",
                    "--recipe",
                    "tutorial",
                    "--data-dir",
                    data_dir,
                    "--no-download",
                    *epochs,
                ],
                "torch": ["benchmarks/torch_reference/apparel_classifier.py", "--data-dir", data_dir, *epochs],
                "own_cache_flag": True,
            }
        )
    return exps


def run_experiments(runner: Runner, args: argparse.Namespace, data_dir: str | None) -> list[dict[str, Any]]:
    rows = []
    for exp in experiments(data_dir, args.quick):
        runner.log(f"experiment {exp['name']}:")
        slug = re.sub(r"[^a-z0-9]+", "-", exp["name"].lower()).strip("-")
        cache = runner.work / f"jax-cache-exp-{slug}"
        row: dict[str, Any] = {"experiment": exp["name"], "fnnet": [], "torch": []}
        for i in (1, 2):
            report = runner.work / f"probe-{slug}-{i}.json"
            out = runner.work / f"out-{slug}-fnnet-{i}"
            script, *script_args = exp["fnnet"]
            if exp.get("own_cache_flag"):
                cmd = [
                    PY,
                    str(HERE / "_probe.py"),
                    "--report",
                    str(report),
                    script,
                    *script_args,
                    "--compile-cache-dir",
                    str(cache),
                    "--out",
                    str(out),
                ]
            else:
                cmd = [
                    PY,
                    str(HERE / "_probe.py"),
                    "--report",
                    str(report),
                    "--compile-cache",
                    str(cache),
                    script,
                    *script_args,
                    "--out",
                    str(out),
                ]
            code, _, wall = runner.run(cmd, label=f"fnnet run {i} ({'empty' if i == 1 else 'warm'} cache)")
            probe = json.loads(report.read_text()) if report.exists() else {}
            row["fnnet"].append({"wall_s": wall, "exit_code": code, "compile": probe.get("compile")})
        for i in (1, 2) if not exp.get("own_cache_flag") else (1,):  # the long one once (budget)
            out = runner.work / f"out-{slug}-torch-{i}"
            code, _, wall = runner.run([PY, *exp["torch"], "--out", str(out)], label=f"torch run {i}")
            row["torch"].append({"wall_s": wall, "exit_code": code})
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------ machine


def machine_info() -> dict[str, str]:
    info = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cores": str(os.cpu_count()),
    }
    cpu = platform.processor() or "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["cpu"] = cpu
    try:
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", pathlib.Path("/proc/meminfo").read_text()).group(1))
        info["memory"] = f"{mem_kb / 2**20:.0f} GiB"
    except (OSError, AttributeError):
        pass
    gpu = "none"
    if shutil.which("nvidia-smi"):
        res = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"], capture_output=True, text=True
        )
        if res.returncode == 0 and res.stdout.strip():
            gpu = "; ".join(res.stdout.strip().splitlines())
    info["gpu"] = gpu
    code = (
        "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
        "['jax','jaxlib','flax','optax','orbax-checkpoint','torch','numpy','matplotlib']}))"
    )
    res = subprocess.run([PY, "-c", code], capture_output=True, text=True)
    info["versions"] = ", ".join(f"{k} {v}" for k, v in json.loads(res.stdout).items()) if res.returncode == 0 else "?"
    return info


# ------------------------------------------------------------------------------------ report


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms" if seconds < 0.1 else f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "–"
    return f"{r:,.0f}×" if r >= 100 else (f"{r:.1f}×" if r >= 10 else f"{r:.2f}×")


def _find(records, *, phase, workload, impl, variant=None):
    for r in records:
        if (
            r.get("phase") == phase
            and r.get("workload") == workload
            and r.get("impl") == impl
            and r.get("variant") == variant
            and "ratio" not in r
        ):
            return r
    return None


def _variants(records, workload):
    vs = []
    for r in records:
        steady = r.get("phase") == "steady" and r.get("workload") == workload and r.get("impl") == "fnnet"
        if steady and r.get("variant") not in vs:
            vs.append(r.get("variant"))
    return vs


def gemm_rates(records) -> dict[str, float]:
    """The mean GFLOP/s of the two calibration products, per library."""
    rates: dict[str, list[float]] = {}
    for r in records:
        if r.get("phase") == "gemm" and "gflops_per_s" in r and "calibration" not in r:
            rates.setdefault(r["impl"], []).append(r["gflops_per_s"])
    return {k: statistics.mean(v) for k, v in rates.items()}


def mlp_gflop(rec: dict[str, Any]) -> float | None:
    """Matrix-product FLOPs of one call of an MLP workload (784-500-10; 2 per multiply-add).

    A training step on b examples: forward 2b(784*500 + 500*10), weight gradients 2b(784*500 + 500*10),
    the hidden gradient 2b*10*500; a validation pass 2v(784*500 + 500*10).
    """
    layer = 784 * 500 + 500 * 10
    step = lambda b: 2 * b * (2 * layer + 10 * 500)  # noqa: E731
    if rec.get("workload") == "mlp_full" and "n_train" in rec:
        return rec["epochs"] * (step(rec["n_train"]) + 2 * rec["n_val"] * layer) / 1e9
    if rec.get("workload") in ("mlp_mini", "mlp_parallel") and "steps" in rec:
        return rec["steps"] * step(rec["batch_size"]) / 1e9
    return None


MLP_PARAMS = 784 * 500 + 500 + 500 * 10 + 10


def mlp_gbytes(rec: dict[str, Any]) -> float | None:
    """Memory traffic of one call of an MLP workload under a simple model (float32, 4 bytes each).

    Every large intermediate makes one round trip through memory and nothing else does: a
    full-batch epoch reads the n training images twice (forward, weight gradient), writes the
    n x 500 hidden layer once and reads it back three times (second layer, its weight gradient, the
    ReLU mask) and writes/reads the hidden gradient once each (6 passes), scores the v validation
    images (read once, hidden written and read), and moves the weights, gradients and Adam state
    (10 passes over the 397,510 parameters). A mini-batch step of b rows gathers its rows (read
    and write b x 784), reads them twice, makes the same 6 hidden passes and the same 10 parameter
    passes.
    """
    if rec.get("workload") == "mlp_full" and "n_train" in rec:
        n, v = rec["n_train"], rec["n_val"]
        floats = 2 * n * 784 + 6 * n * 500 + v * 784 + 2 * v * 500 + 10 * MLP_PARAMS
        return rec["epochs"] * 4 * floats / 1e9
    if rec.get("workload") in ("mlp_mini", "mlp_parallel") and "steps" in rec:
        b = rec["batch_size"]
        return rec["steps"] * 4 * (4 * b * 784 + 6 * b * 500 + 10 * MLP_PARAMS) / 1e9
    return None


def machine_peaks(records) -> tuple[float | None, float | None]:
    """(peak GFLOP/s: the best rate of any full-precision float32 product either library ran in
    ``gemm.py``, the square one or the MLP's; memory bandwidth GB/s)."""
    flops = [r["gflops_per_s"] for r in records if r.get("phase") == "gemm" and "gflops_per_s" in r]
    bw = [r["gbytes_per_s"] for r in records if r.get("calibration") == "bandwidth"]
    return (max(flops) if flops else None), (max(bw) if bw else None)


#: fnnet's time over the roofline time that mlp_full must stay within on a GPU (issue 6).
GPU_ROOFLINE_BAR = 2.0

COMPILE_TARGET_S = 0.5  # issue 6: a second run's compile with the persistent cache


def _trace_lower(compile_rec: dict[str, Any] | None) -> float | None:
    """Tracing + lowering seconds of a CompileMeter snapshot (None when absent)."""
    if not compile_rec or "trace_s" not in compile_rec:
        return None
    return compile_rec["trace_s"] + compile_rec.get("lower_s", 0.0)


def agreement(rec: dict[str, Any] | None, variant: str | None) -> str:
    """The torch record's distance to fnnet's result (the key each script writes)."""
    if rec is None:
        return "–"
    for key, value in rec.items():
        if "diff_vs_fnnet" in key and (not key.endswith(("_pmap", "_sharding")) or key.endswith(f"_{variant}")):
            kind = "abs" if key.startswith("max_abs") else "rel"
            return f"{value:.1e} {kind}"
    return "–"


def bar_chart(path: pathlib.Path, rows: list[dict[str, Any]], title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    import numpy as np

    labels = [r["label"] for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(7.0, 1.3 * len(rows)), 4.2))
    eager = [r.get("torch") or np.nan for r in rows]
    comp = [r.get("torch-compile") or np.nan for r in rows]
    ax.bar(x - 0.2, eager, 0.4, label="torch eager / fnnet")
    ax.bar(x + 0.2, comp, 0.4, label="torch.compile / fnnet")
    for i, r in enumerate(rows):
        if r.get("target"):
            ax.plot([i - 0.42, i + 0.42], [r["target"]] * 2, color="black", lw=1.5, label="target" if i == 0 else None)
    ax.axhline(1.0, color="red", lw=0.8, ls="--", label="parity")
    ax.set_yscale("log")
    ax.set_xticks(x, labels, rotation=20, ha="right")
    ax.set_ylabel("time ratio (higher: fnnet faster)")
    ax.set_title(title)
    handles, names = ax.get_legend_handles_labels()
    uniq = dict(zip(names, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, buf.getvalue())
    return True


def write_atomic(path: pathlib.Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(tmp, path)


def section(
    platform_name: str,
    info: dict[str, str],
    records: list[dict[str, Any]],
    exp_rows: list[dict[str, Any]],
    args: argparse.Namespace,
    data_dir: str | None,
    png_rel: str | None,
    total_s: float,
) -> tuple[str, list[dict[str, Any]]]:
    from _harness import CPU_TARGETS, PROTOTYPE, PROTOTYPE_BAR

    L: list[str] = []
    L.append(f"## {platform_name.upper()}")
    L.append("")
    if args.quick:
        L.append("**Smoke run (`--quick`): reduced problem sizes, numbers not comparable with the targets.**")
        L.append("")
    first = next((r for r in records if r.get("impl") == "fnnet" and r.get("phase") == "steady"), {})
    torch_rec = next((r for r in records if r.get("impl") == "torch" and r.get("phase") == "steady"), {})
    data_rec = next((r for r in records if "data" in r), {})
    L.append(
        f"- Date: {info['date']}; whole run_all: {total_s / 60:.1f} min; repeats per row: {args.repeats} "
        "(median and min over them; the first call is timed apart and excluded)."
    )
    L.append(
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info.get('memory', '?')} RAM; GPU: {info['gpu']}; "
        f"{info['os']}; Python {info['python']}."
    )
    L.append(f"- Libraries: {info['versions']}.")
    L.append(
        f"- Devices: fnnet/XLA on `{first.get('device', '?')}` (XLA's thread pool uses every core); torch on "
        f"`{torch_rec.get('device', '?')}` (`torch.set_num_threads` = every core), float32 both."
    )
    if data_rec:
        L.append(
            f"- Data: {data_rec['data']} ({data_rec['n_train']} train / {data_rec['n_val']} validation images"
            f"{'; the shipped SAMPLE, not the real set' if data_rec.get('is_sample') else ''})."
        )
    for r in records:
        if r.get("separate_run") and r.get("impl") == "fnnet":
            L.append(f"- The {r['workload']} row comes from a separate run in one process: {r['separate_run']}.")
        elif r.get("separate_run") and r.get("impl") == "jax-plain":
            L.append(f"- The {r['workload']} jax-plain time comes from another run: {r['separate_run']}.")
    mallocs = sorted({r["malloc"] for r in records if r.get("workload") == "cnn_mini" and r.get("malloc")})
    if mallocs:
        L.append(
            f"- cnn_mini's allocator: {', '.join(mallocs)} (`default`: glibc as users get it; "
            "`--keep-freed-memory` runs every row, torch's too, after `fnnet.train.keep_freed_memory()`)."
        )
    L.append("")

    # steady state
    L.append("### Steady state: fnnet vs PyTorch on the same work in the same process")
    L.append("")
    L.append(
        "| workload | what | fnnet | torch | torch.compile | torch / fnnet | torch.compile / fnnet | target | met "
        "| agreement |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    chart_rows = []
    for w in args.only:
        for variant in _variants(records, w) or [None]:
            fn = _find(records, phase="steady", workload=w, impl="fnnet", variant=variant)
            te = _find(records, phase="steady", workload=w, impl="torch")
            tc = _find(records, phase="steady", workload=w, impl="torch-compile")
            if fn is None:
                continue
            r_e = te["median_s"] / fn["median_s"] if te else None
            r_c = tc["median_s"] / fn["median_s"] if tc else None
            label = w if variant in (None, "run_fn") else f"{w} ({variant})"
            target = CPU_TARGETS.get(w) if platform_name == "cpu" and variant != "fit" else None
            met = "–" if target is None or r_e is None else ("yes" if r_e >= target else "**NO**")
            what = WHAT.get(w, "")
            if variant == "fit":
                what = "the same through `fnnet.fit` (recompiles per call)"
            elif variant == "run_fn":
                what += " (`make_run_fn`)"
            elif w.startswith("cnn") and variant in CNN_VARIANT_WHAT:
                what += f"; fnnet {CNN_VARIANT_WHAT[variant]}"
            L.append(
                f"| {label} | {what} | {fmt_s(fn['median_s'])} | {fmt_s(te and te['median_s'])} | "
                f"{fmt_s(tc and tc['median_s'])} | {fmt_ratio(r_e)} | {fmt_ratio(r_c)} | "
                f"{fmt_ratio(target) if target else '–'} | {met} | {agreement(te, variant)} |"
            )
            chart_rows.append({"label": label, "torch": r_e, "torch-compile": r_c, "target": target})
    L.append("")
    L.append(
        "\"agreement\": how far torch's result is from fnnet's (both start from the same weights; float32, "
        "so rounding may drift a little over hundreds of steps). torch.compile is off for `mlp_full` and "
        "`mlp_parallel` (`--impls ...,torch-compile` turns it on): a full-batch epoch is two large GEMMs "
        "that Inductor leaves to the same BLAS, its compile would add 20+ s per repeat set to run_all, and "
        "`mlp_parallel`'s torch side is `mlp_mini`'s."
    )
    L.append("")

    # prototype
    proto_rows = []
    for w in args.only:
        pr = _find(records, phase="steady", workload=w, impl=PROTOTYPE)
        fn = _find(records, phase="steady", workload=w, impl="fnnet", variant="run_fn" if w == "mlp_full" else None)
        if pr is None or fn is None:
            continue
        te = _find(records, phase="steady", workload=w, impl="torch")
        diff = next((v for k, v in pr.items() if "diff_vs_fnnet" in k), None)
        ratio = fn["median_s"] / pr["median_s"]
        target = CPU_TARGETS.get(w) if platform_name == "cpu" else None
        proto_rows.append(
            f"| {w} | {fmt_s(fn['median_s'])} | {fmt_s(pr['median_s'])} | {ratio:.2f}× | ≤ {PROTOTYPE_BAR:.1f}× | "
            f"{'yes' if ratio <= PROTOTYPE_BAR else '**NO**'} | {fmt_ratio(te and te['median_s'] / pr['median_s'])} | "
            f"{fmt_ratio(target) if target else '–'} | {'–' if diff is None else f'{diff:.1e} rel'} |"
        )
    if proto_rows:
        L.append("### fnnet against a hand-written jit + scan JAX prototype of the same work")
        L.append("")
        L.append(
            "The issue set the CPU targets from a hand-written prototype and asked fnnet's public API to "
            "come within 1.2× of it. `benchmarks/_prototype.py` is such a prototype (plain `jnp`, torch's "
            "Adam arithmetic written out, the whole epoch or run in one `jit`, nothing from fnnet), timed "
            "in the same process from the same weights:"
        )
        L.append("")
        L.append(
            "| workload | fnnet | prototype | fnnet / prototype | bar | met | torch / prototype | "
            "torch / fnnet target | prototype vs fnnet result |"
        )
        L.append("|---|---|---|---|---|---|---|---|---|")
        L.extend(proto_rows)
        L.append("")
        L.append(
            '"torch / prototype" is the most any JAX program of this shape reached against torch here: where it '
            "is below the torch / fnnet target, the target cannot be met on this machine by removing fnnet "
            "overhead, because there is none left to remove (see the matrix-product table below for why)."
        )
        L.append("")

    L.extend(cnn_sections(records, args, platform_name))

    # first call
    L.append("### First call (tracing + compilation included), with and without JAX's persistent cache")
    L.append("")
    L.append(
        "| workload | fnnet first call, no cache | of which XLA compile | of which tracing + lowering | "
        "fnnet first call, warm cache | of which XLA compile = cache reads (hits) | of which tracing + lowering "
        "| torch first call | torch.compile first call |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|")
    for w in args.only:
        for variant in _variants(records, w) or [None]:
            fn = _find(records, phase="steady", workload=w, impl="fnnet", variant=variant)
            if fn is None or variant == "fit":
                continue
            warm = _find(records, phase="warm_cache", workload=w, impl="fnnet", variant=variant)
            te = _find(records, phase="steady", workload=w, impl="torch")
            tc = _find(records, phase="steady", workload=w, impl="torch-compile")
            label = w if variant in (None, "run_fn") else f"{w} ({variant})"
            c1 = fn.get("compile", {})
            wc = warm.get("compile", {}) if warm else {}
            L.append(
                f"| {label} | {fmt_s(fn['first_call_s'])} | {fmt_s(c1.get('backend_s'))} | {fmt_s(_trace_lower(c1))} | "
                f"{fmt_s(warm and warm['first_call_s'])} | {fmt_s(wc.get('backend_s'))} "
                f"({wc.get('cache_hits', '–')}) | {fmt_s(_trace_lower(wc))} | {fmt_s(te and te['first_call_s'])} | "
                f"{fmt_s(tc and tc['first_call_s'])} |"
            )
    L.append("")
    L.append(
        'Read from JAX\'s monitoring events: "XLA compile" is the backend compile, which with a warm '
        'persistent cache is the cache read; "tracing + lowering" is the Python-side work of turning the '
        "functions into StableHLO, which JAX redoes in every process (its persistent cache stores compiled "
        "executables, not traces). The warm-cache columns come from a second process reading a cache that "
        "a first process filled."
    )
    L.append("")

    # processes
    if exp_rows:
        L.append("### Whole process: each experiment script against its PyTorch twin")
        L.append("")
        L.append(
            "| experiment | fnnet, empty cache | fnnet, warm cache | warm run: XLA compile = cache reads (hits) "
            "| under 0.5 s | warm run: tracing + lowering | torch script (best of 2; apparel: 1 run) "
            "| torch / fnnet (warm) |"
        )
        L.append("|---|---|---|---|---|---|---|---|")
        for row in exp_rows:
            f1, f2 = row["fnnet"]
            t_best = min(t["wall_s"] for t in row["torch"])
            c2 = f2.get("compile") or {}
            bad = any(r["exit_code"] != 0 for r in row["fnnet"] + row["torch"])
            xla = c2.get("backend_s")
            met = "–" if xla is None else ("yes" if xla < COMPILE_TARGET_S else "**NO**")
            L.append(
                f"| `{row['experiment']}`{' (a run FAILED)' if bad else ''} | {fmt_s(f1['wall_s'])} | "
                f"{fmt_s(f2['wall_s'])} | {fmt_s(xla)} ({c2.get('cache_hits', '–')}) | {met} | "
                f"{fmt_s(_trace_lower(c2))} | {fmt_s(t_best)} | {fmt_ratio(t_best / f2['wall_s'])} |"
            )
        L.append("")
        L.append(
            "Wall time of `python <script>` from start to exit: interpreter start, imports (jax + flax + "
            "optax, or torch), data loading, training, figures and files. The small experiments have no "
            "cache flag; run_all turns the cache on for them through `benchmarks/_probe.py` "
            "(`fnnet.enable_compilation_cache`); `apparel_classifier.py` has it on by default "
            "(`--compile-cache-dir`). Target: the warm run's compile under 0.5 s, read as XLA compilation, "
            "the part the persistent cache removes. Tracing and lowering are shown next to it because a user "
            "waits for them too: JAX repeats them in every process. Profiled, most of it is JAX's own "
            "work: first-use setup in each process and, e.g., lowering every random draw's Threefry hash "
            "(about 25 ms per weight shape, so initialising a network costs 0.1-0.2 s); merging "
            "`binary_classifier`'s four programs into one was measured and did not lower the total (0.80 s "
            "vs 0.88 s), since the cost scales with the equations traced, not the number of programs."
        )
        L.append("")

    # gemm ceiling
    rates = gemm_rates(records)
    mlp = [r for r in records if r.get("phase") == "steady" and mlp_gflop(r)]
    if rates and mlp:
        L.append("### Where the MLP time goes: matrix-product throughput")
        L.append("")
        L.append(
            f"Calibration (`benchmarks/gemm.py`, the MLP's two large products alone): fnnet/XLA "
            f"{rates.get('fnnet', float('nan')):.1f} GFLOP/s, torch {rates.get('torch', float('nan')):.1f} "
            "GFLOP/s. Effective rate of each MLP row (its matrix-product FLOPs over its median time) and "
            "the share of its time the products alone need at the calibrated rate:"
        )
        L.append("")
        L.append(
            "| row | impl | GFLOP per call | effective GFLOP/s | GEMM share of the time | "
            "torch / fnnet if fnnet did nothing but its GEMMs |"
        )
        L.append("|---|---|---|---|---|---|")
        for r in mlp:
            gf = mlp_gflop(r)
            rate = rates.get("torch" if r["impl"].startswith("torch") else "fnnet")  # the prototype is XLA too
            eff = gf / r["median_s"]
            share = f"{100 * eff / rate:.0f}%" if rate else "–"
            label = r["workload"] + (f" ({r['variant']})" if r.get("variant") else "")
            ceiling = "–"
            torch_rec = _find(records, phase="steady", workload=r["workload"], impl="torch")
            if r["impl"] == "fnnet" and torch_rec and rate:
                ceiling = fmt_ratio(torch_rec["median_s"] / (gf / rate))
            L.append(f"| {label} | {r['impl']} | {gf:.1f} | {eff:.1f} | {share} | {ceiling} |")
        L.append("")
        L.append(
            "The last column is the best ratio fnnet could reach against this torch time by removing "
            "every non-GEMM cost (its products at the calibrated rate, nothing else): a target above it "
            "cannot be met on this machine in float32, because both libraries already run those products "
            "at the same GFLOP/s. (The calibration uses the full 54,000-row products; the 128-row products "
            "of a mini-batch run a little slower, so the mini-batch ceilings are slightly optimistic.)"
        )
        L.append("")
    peak_gf, bw = machine_peaks(records)
    if peak_gf and bw and mlp:
        L.append("### Roofline of the MLP rows")
        L.append("")
        L.append(
            f"Measured on this machine by `benchmarks/gemm.py`: peak {peak_gf:.1f} GFLOP/s (the best "
            f"float32 product rate either library reached, full precision), memory bandwidth {bw:.1f} GB/s "
            "(`x = 2 * x` "
            "in place over 256 MiB). A row's roofline time is max(FLOPs / peak, bytes / bandwidth): FLOPs are its "
            "matrix products (above), bytes follow the traffic model in `run_all.mlp_gbytes` (each large "
            "intermediate makes one round trip through memory)."
        )
        L.append("")
        L.append(
            "| row | GFLOP | GB moved | compute time at peak | memory time at bandwidth | roofline time | "
            "fnnet | fnnet / roofline | bar |"
        )
        L.append("|---|---|---|---|---|---|---|---|---|")
        for r in mlp:
            if r["impl"] != "fnnet":
                continue
            gf, gb = mlp_gflop(r), mlp_gbytes(r)
            t_c, t_m = gf / peak_gf, gb / bw
            roof = max(t_c, t_m)
            label = r["workload"] + (f" ({r['variant']})" if r.get("variant") else "")
            bar = f"≤ {GPU_ROOFLINE_BAR:.0f}× (GPU)" if r["workload"] == "mlp_full" and platform_name == "gpu" else "–"
            if bar != "–":
                bar += " met" if r["median_s"] / roof <= GPU_ROOFLINE_BAR else " **NOT met**"
            L.append(
                f"| {label} | {gf:.1f} | {gb:.1f} | {fmt_s(t_c)} | {fmt_s(t_m)} | {fmt_s(roof)} | "
                f"{fmt_s(r['median_s'])} | {r['median_s'] / roof:.2f}× | {bar} |"
            )
        L.append("")
        if platform_name == "cpu":
            L.append(
                "The issue's bar (mlp_full within 2× of its roofline) is set for a GPU; on this CPU the rows "
                "are shown for reference."
            )
            L.append("")
    if png_rel:
        L.append(f"![torch/fnnet time ratios]({png_rel})")
        L.append("")
    shown = data_dir
    if data_dir and pathlib.Path(data_dir).resolve() == (REPO.parent / "shared" / "data" / "fashion-mnist").resolve():
        shown = "../shared/data/fashion-mnist"
    L.append(
        "Raw JSON lines: `benchmarks/results_" + platform_name + ".json`. Reproduce: "
        "`python benchmarks/run_all.py" + (f" --data-dir {shown}" if args.data_dir else "") + "`."
    )
    L.append("")
    return "\n".join(L), chart_rows


def cnn_gflop(rec: dict[str, Any]) -> float | None:
    """Convolution and linear FLOPs of one call of a CNN row (``_cnn.conv_flops``, in its records)."""
    if rec.get("workload") == "cnn_full" and "run_flop" in rec:
        return rec["run_flop"] / 1e9
    if rec.get("workload") == "cnn_mini" and "step_flop" in rec and "steps" in rec:
        return rec["steps"] * rec["step_flop"] / 1e9
    return None


#: jax-plain time over fnnet time that the CNN rows must reach (issue 14)
CNN_PLAIN_TARGET = 5.0


def cnn_sections(records: list[dict[str, Any]], args: argparse.Namespace, platform_name: str) -> list[str]:
    """fnnet's convolution against plain Flax (XLA's own convolution), and the CNN rows' roofline."""
    L: list[str] = []
    rows = []
    for w in (w for w in args.only if w.startswith("cnn")):
        plain = _find(records, phase="steady", workload=w, impl="jax-plain", variant="epoch")
        for variant in _variants(records, w):
            fn = _find(records, phase="steady", workload=w, impl="fnnet", variant=variant)
            if fn is None or plain is None:
                continue
            fn_step, plain_step = fn["median_s"] / fn["steps"], plain["median_s"] / plain["steps"]
            ratio = plain_step / fn_step
            target = CNN_PLAIN_TARGET if platform_name == "cpu" else None
            met = "–" if target is None else ("yes" if ratio >= target else "**NO**")
            rows.append(
                f"| {w} ({variant}) | {fmt_s(fn_step)} | {fmt_s(plain_step)} ({plain['steps']}) | "
                f"{fmt_ratio(ratio)} | {fmt_ratio(target) if target else '–'} | {met} |"
            )
    if rows:
        L += [
            "### fnnet's convolutions against plain Flax (XLA's own convolution and gradient)",
            "",
            "`jax-plain` is the same network written with `flax.nnx.Conv` (NHWC) and XLA's convolution "
            "gradient, in the same compiled epoch: what fnnet's CPU lowering of `Conv2d` (one matrix product "
            "over shifted views, custom VJP) buys. Times per step: jax-plain runs only the first steps (their "
            "count in brackets; XLA's convolution takes about 0.9 s a mini-batch step and minutes a full-batch "
            "one here). Target on a CPU: jax-plain / fnnet ≥ 5.",
            "",
            "| row | fnnet | jax-plain (steps) | jax-plain / fnnet | target | met |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    peak_gf, _ = machine_peaks(records)
    cnn = [r for r in records if r.get("phase") == "steady" and cnn_gflop(r) and "median_s" in r]
    if peak_gf and cnn:
        L += [
            "### Roofline of the CNN rows",
            "",
            f"FLOPs counted per step by `benchmarks/_cnn.conv_flops`: every convolution and linear layer's "
            f"forward, input gradient and weight gradient (2 per multiply-add; BatchNorm, pooling and the "
            f"optimizer left out). Peak: {peak_gf:.1f} GFLOP/s, the best float32 product rate measured by "
            "`benchmarks/gemm.py` (below). The roofline time is FLOPs / peak (these rows are compute-bound "
            "in their products; the elementwise layers are the rest of the time).",
            "",
            "| row | impl | GFLOP per call | compute time at peak | time | effective GFLOP/s | time / roofline |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in cnn:
            gf = cnn_gflop(r)
            label = r["workload"] + (f" ({r['variant']})" if r.get("variant") else "")
            L.append(
                f"| {label} | {r['impl']} | {gf:.1f} | {fmt_s(gf / peak_gf)} | {fmt_s(r['median_s'])} | "
                f"{gf / r['median_s']:.1f} | {r['median_s'] / (gf / peak_gf):.2f}× |"
            )
        L.append("")
    return L


HEADER = """# fnnet vs PyTorch: benchmarks

Written by `python benchmarks/run_all.py` (see its docstring and `benchmarks/*.py` for what each row
runs). Every row runs fnnet's public API and the equivalent PyTorch code on the same data and the
same initial weights in one process (each script reports how far apart the two results are),
excludes the first (warm-up) call from the statistics and reports it separately, and gives the
median of the repeats. A ratio is torch time / fnnet time: above 1, fnnet is faster.
"""

NO_GPU = """## GPU

No GPU was lent to the session that produced these benchmarks, so there are no GPU numbers. On a
machine with one, `python benchmarks/run_all.py` writes this section (the scripts run fnnet on the
GPU and torch on CUDA when its build has it).
"""


def merge_markdown(existing: str | None, platform_name: str, body: str) -> str:
    sections: dict[str, str] = {}
    if existing:
        for m in re.finditer(r"<!-- section:(\w+) -->\n(.*?)<!-- /section:\1 -->", existing, re.S):
            sections[m.group(1)] = m.group(2)
    sections[platform_name] = body
    if "gpu" not in sections:
        sections["gpu"] = NO_GPU
    parts = [HEADER]
    for key in ("cpu", "gpu"):
        if key in sections:
            parts.append(f"<!-- section:{key} -->\n{sections[key].rstrip()}\n<!-- /section:{key} -->\n")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------ main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="smoke test: small problems, output in a temp folder")
    p.add_argument(
        "--data-dir",
        default=None,
        help="Fashion-MNIST IDX folder (default: $FNNET_DATA_DIR, ../shared/data/fashion-mnist, fnnet's cache)",
    )
    p.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    p.add_argument("--skip-experiments", action="store_true", help="no whole-process experiment timings")
    p.add_argument(
        "--from-json",
        metavar="FILE",
        default=None,
        help="measure nothing: rewrite the report from a results_<platform>.json that run_all wrote",
    )
    p.add_argument("--with-fit", action="store_true", help="also time mlp_full through fnnet.fit (+3-4 min)")
    p.add_argument("--out", default=None, help="BENCHMARKS.md to write (default: the repo's; --quick: a temp folder)")
    p.add_argument("--work", default=None, help="scratch folder for caches and outputs (default: a temp folder)")
    args = p.parse_args(argv)
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = [w for w in args.only if w not in WORKLOADS]
    if unknown:
        print(
            f"error: --only: unknown workload(s) {', '.join(unknown)} (choose from {', '.join(WORKLOADS)})",
            file=sys.stderr,
        )
        return 2
    if args.repeats < 1:
        print(f"error: --repeats must be >= 1, got {args.repeats}", file=sys.stderr)
        return 2
    work = pathlib.Path(args.work) if args.work else pathlib.Path(tempfile.mkdtemp(prefix="fnnet-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    out = pathlib.Path(args.out) if args.out else (work / "BENCHMARKS.md" if args.quick else REPO / "BENCHMARKS.md")
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.0f}s] {msg}", file=sys.stderr, flush=True)

    data_dir = resolve_data_dir(args.data_dir)
    log(f"work folder {work}; data {data_dir or 'fnnet default resolution'}; report -> {out}")
    if args.from_json:
        saved = json.loads(pathlib.Path(args.from_json).read_text(encoding="utf-8"))
        info, records, exp_rows, total = saved["machine"], saved["records"], saved["experiments"], saved["total_s"]
        args.repeats, args.quick = saved["repeats"], saved["quick"]
    else:
        runner = Runner(work, log)
        info = machine_info()
        records = run_workloads(runner, args, data_dir)
        exp_rows = [] if args.skip_experiments else run_experiments(runner, args, data_dir)
        total = time.perf_counter() - t_start
    steady = next((r for r in records if r.get("impl") == "fnnet" and r.get("phase") == "steady"), None)
    if steady is None:
        print("error: no fnnet measurement came back; see the log above", file=sys.stderr)
        return 1
    platform_name = "gpu" if steady["device"].split(":")[0] in ("gpu", "cuda", "rocm") else "cpu"
    results_dir = out.parent / "benchmarks" if out.parent == REPO else out.parent
    results_path = results_dir / f"results_{platform_name}.json"
    png_path = results_dir / f"ratios_{platform_name}.png"
    write_atomic(
        results_path,
        json.dumps(
            {
                "machine": info,
                "records": records,
                "experiments": exp_rows,
                "quick": args.quick,
                "repeats": args.repeats,
                "total_s": total,
            },
            indent=1,
        )
        + "\n",
    )
    body, chart_rows = section(
        platform_name, info, records, exp_rows, args, data_dir, os.path.relpath(png_path, out.parent), total
    )
    title = f"torch / fnnet on {info['cpu'] if platform_name == 'cpu' else info['gpu']}"
    if not bar_chart(png_path, chart_rows, title):
        body = body.replace(
            f"![torch/fnnet time ratios]({os.path.relpath(png_path, out.parent)})",
            "(bar chart skipped: matplotlib is not installed)",
        )
    existing = out.read_text(encoding="utf-8") if out.exists() else None
    write_atomic(out, merge_markdown(existing, platform_name, body))
    log(f"wrote {out}, {png_path}, {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
