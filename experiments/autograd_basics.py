"""The tutorials' autograd examples with ``jax.grad``, and the derivative plot.

* seed 000 ("A Beginner-Friendly Guide to PyTorch"): ``b = a + 5; c = mean(b); c.backward()`` on a
  2x2 ``a`` gives 0.25 everywhere (``a`` is a seeded ``randn`` here; the gradient does not depend on it);
* seed 001 ("The Most Important Fundamentals of PyTorch"): ``x**3 - 7*x**2 + 11*x`` at x=2 (and 3),
  the partial derivatives of ``3*u**2*v - 4*v**3`` at (2, 1), and the elementwise derivative of
  ``x**2`` over a vector (torch: ``torch.sum(x**2).backward()``; here ``vmap(grad)``), plotted over
  ``linspace(-10, 10)`` (50 points) as the notebook does: "Function" blue solid, "Derivative" red
  dashed, into ``--out``/derivative.png.

Where torch sets ``requires_grad=True`` and reads ``.grad`` after ``backward()``, JAX differentiates
a function: ``jax.grad(f, argnums=...)(inputs)`` returns the gradient as a value.

    python experiments/autograd_basics.py [--out DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
from reports import save_figure

from fnnet.tensor import manual_seed, randn


def mean_plus_5(a: jax.Array) -> jax.Array:
    """Seed 000: c = mean(a + 5)."""
    return jnp.mean(a + 5)


def cubic(x: jax.Array) -> jax.Array:
    """Seed 001: y = x**3 - 7*x**2 + 11*x."""
    return x**3 - 7 * x**2 + 11 * x


def two_variables(u: jax.Array, v: jax.Array) -> jax.Array:
    """Seed 001: f = 3*u**2*v - 4*v**3."""
    return 3 * u**2 * v - 4 * v**3


def square(x: jax.Array) -> jax.Array:
    """Seed 001: the function whose elementwise derivative is plotted."""
    return x**2


#: d/dx x**2 at every element of a vector: torch's sum(x**2).backward() trick, spelled vmap(grad).
elementwise_derivative = jax.vmap(jax.grad(square))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr, no usage block
        raise ValueError(message)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path("outputs/autograd_basics"),
        help="directory for derivative.png (default: outputs/autograd_basics/)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the 2x2 tensor a (default: 0)")
    args = parser.parse_args(argv)
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {args.seed}")
    return args


def _num(x: jax.Array) -> float:
    return float(x) + 0.0  # + 0.0 prints -0.0 as 0.0


def plot_derivative(path: pathlib.Path) -> bool:
    """The function x**2 and its derivative over linspace(-10, 10); False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    x = jnp.linspace(-10.0, 10.0)  # NumPy's default of 50 points, as the notebook
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.asarray(x), np.asarray(square(x)), "b-", label="Function")
    ax.plot(np.asarray(x), np.asarray(elementwise_derivative(x)), "r--", label="Derivative")
    ax.set_xlabel("x")
    ax.legend()
    save_figure(fig, path)
    return True


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        args.out.mkdir(parents=True, exist_ok=True)
        a = randn(2, 2, key=manual_seed(args.seed))
        grad_a = jax.grad(mean_plus_5)(a)
        print(f"grad of mean(a + 5): {np.asarray(grad_a, dtype=np.float64).tolist()}")
        for x0 in (2.0, 3.0):
            print(f"d/dx (x**3 - 7*x**2 + 11*x) at x={x0:g}: {_num(jax.grad(cubic)(jnp.float32(x0)))}")
        du, dv = jax.grad(two_variables, argnums=(0, 1))(jnp.float32(2.0), jnp.float32(1.0))
        print(f"partials of 3*u**2*v - 4*v**3 at (u, v) = (2, 1): du={_num(du)} dv={_num(dv)}")
        xs = jnp.linspace(-10.0, 10.0, 5)
        dxs = elementwise_derivative(xs)
        print(
            f"elementwise d/dx x**2 at x = {np.asarray(xs, np.float64).tolist()}: "
            f"{(np.asarray(dxs, np.float64) + 0.0).tolist()}"
        )
        figure = args.out / "derivative.png"
        if plot_derivative(figure):
            print(f"wrote {figure}")
        else:
            print("figures skipped: matplotlib is not installed")
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
