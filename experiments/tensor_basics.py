"""The tutorials' tensor examples in JAX, printed one labelled result per line.

Follows the tensor half of "The Most Important Fundamentals of PyTorch you Should Know" (seed 001)
section by section -- creation and conversion, vector and matrix math, inverse and determinant --
with the values DESIGN.md records from the author's notebook (the seed lost its code images), then
the matrix basics of "A Beginner-Friendly Guide to PyTorch" (seed 000): zeros, seeded randn, mm,
transpose, cat along dim 0 and 1, reshape. The seed-001 notebook's ``view(-1, 3)`` needs a length
divisible by 3; this script shows it on ``range(6)``.

The whole walk-through runs with ``jax_enable_x64`` on (restored afterwards): torch makes
``tensor(range(5))`` int64 and a pandas float Series float64, and fnnet refuses to downcast those
silently. The first line shows the error a user gets without it. The transcript is also written to
``--out``/tensor_basics.txt.

    python experiments/tensor_basics.py [--out DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from reports import atomic_write_text

from fnnet.tensor import (
    cat,
    det,
    from_numpy,
    from_pandas,
    inverse,
    jax_dtype,
    manual_seed,
    mm,
    randn,
    t,
    tensor,
    to_pandas,
    zeros,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr, no usage block
        raise ValueError(message)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path("outputs/tensor_basics"),
        help="directory for tensor_basics.txt (default: outputs/tensor_basics/)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the randn example (default: 0)")
    args = parser.parse_args(argv)
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {args.seed}")
    return args


def show(x: Any) -> Any:
    """A value as plain Python: floats rounded to 4 decimals (and -0.0 shown as 0.0), ints as ints."""
    a = np.asarray(x)
    if a.dtype.kind in "fc":
        a = np.round(a.astype(np.float64), 4) + 0.0
    return a.tolist()


def walkthrough(seed: int) -> list[str]:
    lines: list[str] = []

    def say(label: str, value: Any, note: str = "") -> None:
        lines.append(f"{label} = {value}{note}")
        print(lines[-1])

    # -- creating and converting tensors (seed 001) --
    r = tensor(range(5))
    say("tensor(range(5))", show(r), f" ({r.dtype})")
    say("r[0]", show(r[0]))
    say("r[1:3]", show(r[1:3]))
    f = tensor([0, 1, 2, 3, 4], dtype="FloatTensor")
    say("FloatTensor([0, 1, 2, 3, 4])", show(f), f" ({f.dtype})")
    say("f.size()", f.shape)
    say("f.ndimension()", f.ndim)
    say("f.view(5, 1)", show(f.reshape(5, 1)))
    say("tensor(range(6)).view(-1, 3)", show(tensor(range(6)).reshape(-1, 3)))
    a = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    from_a = from_numpy(a)
    say("from_numpy(np.array([0.0, 1.0, 2.0, 3.0, 4.0]))", show(from_a), f" ({from_a.dtype})")
    back = np.asarray(from_a)
    say("np.asarray(...)", show(back), f" (numpy.ndarray, {back.dtype})")
    series = pd.Series([0.1, 2, 0.3, 10.1])
    from_s = from_pandas(series)
    say("from_pandas(pd.Series([0.1, 2, 0.3, 10.1]))", show(from_s), f" ({from_s.dtype})")
    say("to_pandas(...).tolist()", to_pandas(from_s).tolist())
    say("tensor([0, 1, 2, 3]).tolist()", tensor([0, 1, 2, 3]).tolist())
    say(
        "x.type(torch.IntTensor) on FloatTensor([1.5, -2.5])",
        show(tensor([1.5, -2.5], dtype="FloatTensor").astype(jax_dtype("IntTensor"))),
    )

    # -- vector and matrix mathematics (seed 001) --
    u = tensor([1, 2], dtype="FloatTensor")
    v = tensor([3, -1], dtype="FloatTensor")
    say("u + v", show(u + v))
    say("2*u", show(2 * u))
    say("2*u + 3*v", show(2 * u + 3 * v))
    say("u * v", show(u * v))
    say("dot([1, 2], [3, 1])", show(jnp.dot(u, tensor([3, 1], dtype="FloatTensor"))))
    say("[1, 2, 3, 4] + 10", show(tensor([1, 2, 3, 4]) + 10))
    m = tensor([[11, 12, 13], [21, 22, 23], [31, 32, 33]])
    say("M", show(m))
    say("M[1, 2]", show(m[1, 2]))
    say("M[0:2, 1:]", show(m[0:2, 1:]))
    say("M[:, 0]", show(m[:, 0]))
    x = tensor([[2.5, 1.2], [3, 2]], dtype="FloatTensor")
    y = tensor([[1.2, -1], [2, 3]], dtype="FloatTensor")
    w = mm(x, y)
    say("W = X @ Y", show(w))
    say("t(W)", show(t(w)))
    say("det(W)", show(det(w)))
    say("inverse(W)", show(inverse(w)))
    say("W @ inverse(W)", show(w @ inverse(w)))

    # -- matrix basics of seed 000 --
    say("zeros(3, 3)", show(zeros(3, 3)))
    key_a, key_b = jax.random.split(manual_seed(seed))
    ra, rb = randn(3, 3, key=key_a), randn(3, 3, key=key_b)
    say(f"a = randn(3, 3) with manual_seed({seed})", show(ra))
    say("b = randn(3, 3)", show(rb))
    say("a + b", show(ra + rb))
    say("a * b", show(ra * rb))
    say("mm(a, b)", show(mm(ra, rb)))
    say("t(a)", show(t(ra)))
    c, d = tensor([[1, 2], [3, 4]], dtype="FloatTensor"), tensor([[5, 6], [7, 8]], dtype="FloatTensor")
    say("cat((c, d))", show(cat((c, d))))
    say("cat((c, d), dim=1)", show(cat((c, d), dim=1)))
    e = tensor(range(8), dtype="FloatTensor").reshape(2, 4)
    say("e (2, 4)", show(e))
    say("e.reshape(1, 8)", show(e.reshape(1, 8)))
    return lines


def write_text(path: pathlib.Path, text: str) -> None:
    """Write atomically: a temporary file in the same directory, then os.replace."""
    atomic_write_text(path, text)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        args.out.mkdir(parents=True, exist_ok=True)
        with jax.enable_x64(False):
            try:
                tensor(range(5))
            except ValueError as e:
                print(f"without jax_enable_x64, tensor(range(5)) raises ValueError: {e}")
        with jax.enable_x64(True):
            lines = walkthrough(args.seed)
        write_text(args.out / "tensor_basics.txt", "\n".join(lines) + "\n")
        print(f"wrote {args.out / 'tensor_basics.txt'}")
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
