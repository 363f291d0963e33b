"""``torch.optim.Muon`` as an optax ``GradientTransformation``."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fnnet.optim._base import (
    Hyper,
    ScalarOrSchedule,
    Tx,
    check,
    hparam,
    leaf,
    lerp,
    needs_params,
    scheduled,
    static_zero,
)

__all__ = ["muon"]

# torch.optim._muon's constants (Keller Jordan's Muon post)
EPS = 1e-7
DEFAULT_A = 3.4445
DEFAULT_B = -4.7750
DEFAULT_C = 2.0315
DEFAULT_NS_STEPS = 5


class TorchMuonState(NamedTuple):
    momentum_buffer: optax.Updates


def _accumulate_dtype() -> jnp.dtype:
    """Products of bfloat16 values are exact in float32 and their sums nearly so; float64 (under x64)
    makes the sums exact, which is what torch's float32 accumulation gives on these small sums."""
    return jnp.result_type(float)


def _bf16_matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """A bfloat16 matrix product as torch's CPU kernel computes it: accumulated, then float32."""
    acc = _accumulate_dtype()
    return jnp.matmul(a.astype(acc), b.astype(acc), precision=jax.lax.Precision.HIGHEST).astype(jnp.float32)


def _addmm_bf16(c: jax.Array, a: jax.Array, b: jax.Array, beta: float, alpha: float) -> jax.Array:
    """``torch.addmm(c, a, b, beta=beta, alpha=alpha)`` in bfloat16 on CPU: ``fma(beta, c, alpha * (a @ b))``
    in float32, rounded once to bfloat16 (checked bitwise against torch 2.13; the fused multiply-add is
    computed exactly in the accumulation dtype, then rounded)."""
    acc = _accumulate_dtype()
    product = _bf16_matmul(a, b)
    scaled = product if alpha == 1 else jnp.float32(alpha) * product
    fused = jnp.float32(beta).astype(acc) * c.astype(acc) + scaled.astype(acc)
    return fused.astype(jnp.float32).astype(jnp.bfloat16)


def zeropower_via_newtonschulz(
    grad: jax.Array, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
) -> jax.Array:
    """``torch.optim._muon._zeropower_via_newtonschulz``: the quintic Newton-Schulz iteration on a
    2-D gradient, in bfloat16 as torch runs it (hand-written: torch's rounding points matter here)."""
    a, b, c = ns_coefficients
    x = grad.astype(jnp.bfloat16)
    tall = grad.shape[0] > grad.shape[1]
    if tall:
        x = x.T
    acc = _accumulate_dtype()
    norm = jnp.sqrt(jnp.sum(jnp.square(x.astype(acc))).astype(jnp.float32)).astype(jnp.bfloat16)
    norm = jnp.maximum(norm.astype(jnp.float32), jnp.asarray(eps, jnp.float32)).astype(jnp.bfloat16)
    x = (x.astype(jnp.float32) / norm.astype(jnp.float32)).astype(jnp.bfloat16)
    for _ in range(ns_steps):
        gram = _bf16_matmul(x, x.T).astype(jnp.bfloat16)
        gram_update = _addmm_bf16(gram, gram, gram, beta=b, alpha=c)
        x = _addmm_bf16(x, gram_update, x, beta=a, alpha=1.0)
    return x.T if tall else x


def _adjust_lr(lr: Any, adjust_lr_fn: str | None, shape: tuple[int, ...]) -> Any:
    """torch's ``_adjust_lr``: the lr scaled for the matrix's shape (A, B)."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    else:  # "match_rms_adamw"
        ratio = 0.2 * math.sqrt(max(rows, cols))
    return lr * ratio


def _check_2d(params: Any) -> None:
    for p in jax.tree.leaves(params):
        if jnp.ndim(p) != 2:
            size = ", ".join(str(n) for n in jnp.shape(p))
            raise ValueError(
                f"Muon only supports 2D parameters whereas we found a parameter with size: torch.Size([{size}])"
            )
        if jnp.iscomplexobj(p):
            raise ValueError("Muon does not support complex parameters")


def _torch_muon(
    lr: Hyper,
    weight_decay: Hyper,
    momentum: Hyper,
    nesterov: bool,
    ns_coefficients: tuple[float, float, float],
    eps: float,
    ns_steps: int,
    adjust_lr_fn: str | None,
) -> Tx:
    """torch's ``_single_tensor_muon``, the whole update: ``buf.lerp_(g, 1 - momentum)``, the
    Newton-Schulz orthogonalisation of ``g.lerp(buf, momentum)`` (nesterov) or ``buf``, then
    ``param *= 1 - lr * weight_decay`` and ``param -= adjusted_lr * O``."""

    def init_fn(params):
        _check_2d(params)
        return TorchMuonState(optax.tree.zeros_like(params))

    def update_fn(updates, state, params):
        def one(g, buf, p):
            buf = lerp(buf, g, 1 - momentum)
            update = lerp(g, buf, momentum) if nesterov else buf
            ortho = zeropower_via_newtonschulz(update, ns_coefficients, ns_steps, eps)
            adjusted_lr = _adjust_lr(lr, adjust_lr_fn, p.shape)
            new = p if static_zero(weight_decay) else p * leaf(1 - lr * weight_decay, p)
            new = new + leaf(-adjusted_lr, p) * ortho.astype(p.dtype)
            return new - p, buf

        pairs = jax.tree.map(one, updates, state.momentum_buffer, params)
        out, bufs = jax.tree.transpose(jax.tree.structure(updates), jax.tree.structure((0, 0)), pairs)
        return out, TorchMuonState(bufs)

    return optax.GradientTransformation(init_fn, update_fn)


def _static_steps(ns_steps: Any) -> int:
    """``ns_steps`` unrolls the iteration: a Python int, or a concrete integer array."""
    if isinstance(ns_steps, jax.core.Tracer):
        raise TypeError(
            "fnnet.optim.muon: ns_steps is the number of Newton-Schulz iterations, a static int; under "
            "optax.inject_hyperparams pass static_args=('ns_steps',)"
        )
    if isinstance(ns_steps, bool) or not float(np.asarray(ns_steps)).is_integer():
        raise TypeError(f"ns_steps must be an int, got {ns_steps!r}")
    return int(np.asarray(ns_steps))


def muon(
    lr: ScalarOrSchedule = 1e-3,
    weight_decay: Hyper = 0.1,
    momentum: Hyper = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = (DEFAULT_A, DEFAULT_B, DEFAULT_C),
    eps: float = EPS,
    ns_steps: int = DEFAULT_NS_STEPS,
    adjust_lr_fn: str | None = None,
) -> Tx:
    """``torch.optim.Muon``: momentum, then the update orthogonalised by ``ns_steps`` Newton-Schulz
    iterations (in bfloat16, as torch), scaled by ``adjust_lr_fn`` (None/"original":
    ``sqrt(max(1, A/B))``; "match_rms_adamw": ``0.2 * sqrt(max(A, B))``), with decoupled weight decay.

    Only 2-D parameters: ``init`` raises torch's ``ValueError`` for any other (torch checks them when
    the optimizer is built; use another optimizer for biases, e.g. with ``optax.partition``).
    ``ns_steps >= 100`` and a coefficient tuple of another length raise torch's ``ValueError`` here,
    when the optimizer is built (torch: at the first step).

    torch orthogonalises in bfloat16 whatever the parameters' dtype; fnnet rounds where torch rounds
    (checked bitwise), summing the exact bfloat16 products in float64 under x64 (float64 runs equal
    torch to ~1e-15). In float32 two frameworks' gradients differ by float32 ulps, and where such an
    ulp moves a value across a bfloat16 rounding boundary the update differs by a bfloat16 ulp
    (0.4% of that entry): float32 runs agree with torch to ~1e-3 on long runs (the optimizer zoo:
    1.3e-3 after 20 steps), not to float32 rounding.

    The shape is read as torch reads its ``(out_features, in_features)`` weights: a Flax ``Dense``
    kernel is ``(in, out)``, so ``adjust_lr_fn=None`` scales it by ``sqrt(max(1, in/out))`` where torch
    scales the same layer's weight by ``sqrt(max(1, out/in))`` (the orthogonalisation itself commutes
    with the transpose).

    ``optax.contrib.muon`` differs in each default and rule: it bias-corrects its moving average
    (torch's ``buf.lerp_(g, 1 - momentum)`` is not corrected, which changes the nesterov mix
    ``g.lerp(buf, momentum)``), orthogonalises in the updates' float dtype (torch: bfloat16), sends
    non-2-D parameters to Adam instead of refusing them, has ``weight_decay=0`` (torch: 0.1) and
    ``eps=1e-8`` (torch: 1e-7), and no ``adjust_lr_fn`` (its ``consistent_rms`` plays the part of
    ``"match_rms_adamw"``).
    ``lr``, ``weight_decay``, ``momentum`` and ``eps`` accept 0-d arrays; ``lr`` a schedule. ``ns_steps``
    unrolls the iteration and must stay static: ``optax.inject_hyperparams(fnnet.optim.muon,
    static_args=("ns_steps",))``.
    """
    lr = hparam(lr, "lr", schedule=True)
    check(lr, lambda v: v >= 0.0, lambda v: f"Learning rate should be >= 0 but is: {v}")
    momentum = hparam(momentum, "momentum")
    check(momentum, lambda v: v >= 0.0, lambda v: f"momentum should be >= 0 but is: {v}")
    weight_decay = hparam(weight_decay, "weight_decay")
    check(weight_decay, lambda v: v >= 0.0, lambda v: f"weight decay should be >= 0 but is: {v}")
    if adjust_lr_fn is not None and adjust_lr_fn not in ["original", "match_rms_adamw"]:
        raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
    ns_steps = _static_steps(ns_steps)
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    ns_coefficients = tuple(float(c) for c in ns_coefficients)
    update = scheduled(
        _torch_muon,
        lr=lr,
        weight_decay=weight_decay,
        momentum=momentum,
        nesterov=nesterov,
        ns_coefficients=ns_coefficients,
        eps=hparam(eps, "eps"),
        ns_steps=ns_steps,
        adjust_lr_fn=adjust_lr_fn,
    )
    return needs_params(update, "muon")
