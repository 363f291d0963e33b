"""Flax linen modules for the three tutorials, with torch-style initialisation as an option.

* :class:`HelloNet` — the hello-world 1-1-1 sigmoid network (``hidden_layer``, ``output_layer``).
* :class:`BinaryClassifier` — the fundamentals tutorial's ``Network``: 5-8-4-1, ReLU, ReLU, sigmoid
  (layers ``hidden1``, ``hidden2``, ``output`` as in the author's torch module).
* :class:`MLP` — the apparel case study's ``Sequential(Linear, ReLU, Linear)`` generalised to any
  widths, returning logits, with optional per-example (inverted, torch-style) dropout.

Every Dense layer is a plain :class:`flax.linen.Dense` (kernel shape ``(in, out)``, i.e. the
transpose of torch's ``(out, in)`` weight). ``init_scheme="torch"`` (``init=`` of :func:`MLP`) draws it like
``torch.nn.Linear``
(kernel kaiming-uniform with ``a=sqrt(5)``, i.e. U(±1/sqrt(fan_in)); bias U(±1/sqrt(fan_in)));
``"flax"`` keeps Flax's defaults (lecun-normal kernel, zero bias). The random numbers differ
from torch's in either case; use :mod:`fnnet.interop` to load torch's exact weights.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = [
    "INITS",
    "BinaryClassifier",
    "HelloNet",
    "MLP",
    "MLPModule",
    "dense",
    "torch_bias_init",
    "torch_kernel_init",
    "torch_linear_init",
]

#: The values accepted by ``init_scheme`` of every module here (``init`` of :func:`MLP`).
INITS = ("torch", "flax")

# kaiming_uniform_(a=sqrt(5)): gain**2 = 2 / (1 + 5) = 1/3, bound = sqrt(3 * gain**2 / fan_in)
# = 1/sqrt(fan_in); jax's variance_scaling(1/3, "fan_in", "uniform") is exactly that bound.
torch_kernel_init = jax.nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
"""Kernel initializer of ``torch.nn.Linear``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = shape[-2]."""


def torch_bias_init(fan_in: int) -> jax.nn.initializers.Initializer:
    """Bias initializer of ``torch.nn.Linear``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Hand-written because a bias initializer only sees the bias shape, not fan_in; no
    jax/flax initializer takes the bound from the layer's input width.
    """
    if not isinstance(fan_in, int) or fan_in <= 0:
        raise ValueError(f"fan_in must be a positive int, got {fan_in!r}")
    bound = 1.0 / fan_in**0.5

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)

    return init


def torch_linear_init(
    fan_in: int,
) -> tuple[jax.nn.initializers.Initializer, jax.nn.initializers.Initializer]:
    """``(kernel_init, bias_init)`` reproducing ``torch.nn.Linear.reset_parameters`` for ``fan_in``."""
    return torch_kernel_init, torch_bias_init(fan_in)


def _check_init(init: str) -> None:
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")


def dense(
    features: int,
    fan_in: int,
    init: str = "torch",
    name: str | None = None,
    param_dtype: Any = jnp.float32,
) -> nn.Dense:
    """A ``flax.linen.Dense`` initialised like ``torch.nn.Linear(fan_in, features)`` or like Flax.

    Call it inside a ``@nn.compact`` method, where ``fan_in`` is known from the input's last axis.
    """
    _check_init(init)
    if init == "torch":
        kernel_init, bias_init = torch_linear_init(fan_in)
        return nn.Dense(
            features,
            kernel_init=kernel_init,
            bias_init=bias_init,
            name=name,
            param_dtype=param_dtype,
        )
    return nn.Dense(features, name=name, param_dtype=param_dtype)


class HelloNet(nn.Module):
    """The hello-world ``Net``: ``sigmoid(output_layer(sigmoid(hidden_layer(x))))``, 1-1-1.

    The tutorial sets the weights by hand (1.58, -0.14, 2.45, -0.11); build those params with
    :meth:`published_params` (torch's ``nn.Parameter`` assignment has no Flax equivalent: params are
    data passed to ``apply``).
    """

    init_scheme: str = "torch"
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        _check_init(self.init_scheme)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.sigmoid(dense(1, x.shape[-1], self.init_scheme, "hidden_layer", self.param_dtype)(x))
        return nn.sigmoid(dense(1, x.shape[-1], self.init_scheme, "output_layer", self.param_dtype)(x))

    @staticmethod
    def published_params(dtype: Any = jnp.float32) -> dict:
        """The tutorial's fixed weights: w_l1=1.58, b_l1=-0.14, w_l2=2.45, b_l2=-0.11."""

        def layer(w: float, b: float) -> dict:
            return {"kernel": jnp.full((1, 1), w, dtype), "bias": jnp.full((1,), b, dtype)}

        return {"params": {"hidden_layer": layer(1.58, -0.14), "output_layer": layer(2.45, -0.11)}}


class BinaryClassifier(nn.Module):
    """The fundamentals tutorial's ``Network(5, 8, 4, 1)``: Linear-ReLU-Linear-ReLU-Linear-Sigmoid.

    Returns probabilities of shape ``(batch, n_output)``; the author fed that ``[100, 1]`` output to
    ``BCELoss`` against a ``[100]`` target, which torch 2.13 rejects, so reshape before the loss.
    """

    n_hidden1: int = 8
    n_hidden2: int = 4
    n_output: int = 1
    init_scheme: str = "torch"
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        _check_init(self.init_scheme)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(dense(self.n_hidden1, x.shape[-1], self.init_scheme, "hidden1", self.param_dtype)(x))
        x = nn.relu(dense(self.n_hidden2, x.shape[-1], self.init_scheme, "hidden2", self.param_dtype)(x))
        return nn.sigmoid(dense(self.n_output, x.shape[-1], self.init_scheme, "output", self.param_dtype)(x))


def _dropout_one(h: jax.Array, key: jax.Array, layer: int, rate: float) -> jax.Array:
    """Inverted dropout of one example's activations ``h`` (width,), mask from ``fold_in(key, layer)``.

    Kept units are scaled by ``1 / (1 - rate)`` as in ``torch.nn.functional.dropout`` (same
    semantics; the rounding of the scale may differ by an ulp). Hand-written because Flax's
    ``nn.Dropout`` draws one mask for the whole batch from one rng stream, so an example's mask
    would depend on the batch it sits in.
    """
    keep = jax.random.bernoulli(jax.random.fold_in(key, layer), 1.0 - rate, h.shape)
    return h * (keep.astype(h.dtype) / jnp.asarray(1.0 - rate, h.dtype))


class MLPModule(nn.Module):
    """``Sequential(Linear, ReLU, Linear, ReLU, ..., Linear)`` returning logits.

    ``features`` are the output widths of the Dense layers (named ``Dense_0``, ``Dense_1``, ...);
    the default ``(500, 10)`` is the apparel case study's ``Linear(784, 500), ReLU, Linear(500, 10)``
    (the input width comes from ``x``). With ``dropout_rate > 0`` and ``dropout_keys`` given, each
    hidden activation (after its ReLU) gets inverted dropout like ``torch.nn.Dropout`` in train mode;
    without keys the model is deterministic (torch's ``eval()``). ``dropout_keys`` holds one PRNG key
    per example (``(batch,)`` typed keys or ``(batch, 2)`` raw uint32 keys); hidden layer ``i`` of
    example ``b`` uses ``bernoulli(fold_in(keys[b], i), 1 - rate, (width,))``, so the masks depend
    only on an example's key, not on how the batch is split across steps or devices.
    """

    features: Sequence[int] = (500, 10)
    init_scheme: str = "torch"
    dropout_rate: float = 0.0
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        _check_init(self.init_scheme)
        if len(self.features) == 0:
            raise ValueError("features must name at least one layer width, got an empty sequence")
        if any(isinstance(f, bool) or not isinstance(f, numbers.Integral) or f <= 0 for f in self.features):
            raise ValueError(f"features must be positive ints, got {tuple(self.features)!r}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate!r}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, dropout_keys: jax.Array | None = None) -> jax.Array:
        if x.ndim != 2:
            raise ValueError(f"x must have shape (batch, in_features), got shape {x.shape}")
        use_dropout = self.dropout_rate > 0.0 and dropout_keys is not None
        if use_dropout:
            typed = jnp.issubdtype(dropout_keys.dtype, jax.dtypes.prng_key)
            expected = (x.shape[0],) if typed else (x.shape[0], 2)
            if dropout_keys.shape != expected:
                raise ValueError(
                    f"dropout_keys must have shape {expected} (one key per example), got {dropout_keys.shape}"
                )
        last = len(self.features) - 1
        for i, width in enumerate(self.features):
            x = dense(width, x.shape[-1], self.init_scheme, f"Dense_{i}", self.param_dtype)(x)
            if i < last:
                x = nn.relu(x)
                if use_dropout:
                    x = jax.vmap(_dropout_one, in_axes=(0, 0, None, None))(x, dropout_keys, i, self.dropout_rate)
        return x


def MLP(  # noqa: N802 - named like a class: it builds the module, mirroring torch's constructor
    features: Sequence[int] = (500, 10),
    init: str = "torch",
    dropout_rate: float = 0.0,
    param_dtype: Any = jnp.float32,
) -> MLPModule:
    """Build an :class:`MLPModule`; ``init`` is ``"torch"`` (nn.Linear's init) or ``"flax"``.

    A function rather than the class itself because a linen field named ``init`` would shadow
    ``Module.init``; the field is ``init_scheme``.
    """
    return MLPModule(
        features=tuple(features),
        init_scheme=init,
        dropout_rate=dropout_rate,
        param_dtype=param_dtype,
    )
