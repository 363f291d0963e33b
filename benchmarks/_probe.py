"""Run a script as ``__main__`` and report the JAX compile time it spent (for run_all's process walls).

    python benchmarks/_probe.py --report PATH [--compile-cache DIR] SCRIPT [ARGS...]

Registers JAX's monitoring listeners (tracing, lowering, backend compile incl. persistent-cache
reads; cache hits and misses) before the script imports anything, optionally turns on the
persistent compilation cache in DIR (``fnnet.train.enable_compilation_cache``; the small experiments
have no flag for it), runs the script with ``runpy`` and writes ``{"exit_code", "compile": {...}}``
to PATH. The listeners cost nothing measurable; the caller times the whole process.
"""

from __future__ import annotations

import json
import pathlib
import runpy
import sys


def main(argv: list[str]) -> int:
    report = cache = None
    while argv and argv[0].startswith("--"):
        flag, value, argv = argv[0], argv[1], argv[2:]
        if flag == "--report":
            report = pathlib.Path(value)
        elif flag == "--compile-cache":
            cache = value
        else:
            print(f"error: unknown option {flag}", file=sys.stderr)
            return 2
    if report is None or not argv:
        print("usage: _probe.py --report PATH [--compile-cache DIR] SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import _harness as h

    meter = h.CompileMeter()
    if cache:
        from fnnet.train import enable_compilation_cache

        enable_compilation_cache(cache)
    script = argv[0]
    sys.argv = list(argv)
    sys.path[0] = str(pathlib.Path(script).resolve().parent)  # as `python SCRIPT` would have it
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"exit_code": code, "compile": meter.snapshot()}) + "\n", encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
