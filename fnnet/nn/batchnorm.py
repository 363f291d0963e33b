"""``torch.nn.BatchNorm1d`` and ``BatchNorm2d`` (torch/nn/modules/batchnorm.py), with torch's semantics.

What differs from Flax's ``nnx.BatchNorm`` (and what a hand port gets wrong):

* ``momentum`` is the weight of the *new* batch: ``running = (1 - momentum)·running + momentum·batch``
  (torch's default 0.1); Flax's ``momentum`` is the weight *kept* (default 0.99).
  ``momentum=None`` is torch's cumulative average (factor ``1 / num_batches_tracked``).
* the output is normalised with the biased batch variance, but ``running_var`` is updated with the
  *unbiased* one (Flax stores the biased one);
* the ``num_batches_tracked`` buffer counts training forwards (Flax has none);
* ``affine=False`` leaves ``weight``/``bias`` None; ``track_running_stats=False`` leaves the three
  buffers None and normalises with batch statistics in eval mode too;
* layout NCHW: channels on axis 1 (Flax: the last axis).

Data parallelism: fnnet's ``pmap`` path sets ``axis_name`` (default None) on every BatchNorm layer; in
training mode the batch statistics are then those of the global batch across that named axis, as
torch's ``SyncBatchNorm`` computes them (and, as there, eval mode does not synchronise). See
``fnnet.nn.functional.batch_norm_stats``: equal per-device batch sizes are assumed.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from fnnet.nn._fused import batch_norm_relu_max_pool_stats, conv_batch_norm_relu_max_pool_stats, conv_output_shape
from fnnet.nn._normalization import batch_norm_stats
from fnnet.nn.linear import check_size
from fnnet.nn.module import Buffer, Module, check_device, float_dtype

__all__ = ["BatchNorm1d", "BatchNorm2d"]


def counter_dtype() -> jnp.dtype:
    """``num_batches_tracked``'s dtype: torch's int64 when x64 is on, else int32."""
    return jnp.dtype(jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)


class _BatchNorm(Module):
    """torch's ``_BatchNorm``: parameters, buffers and forward shared by BatchNorm1d/2d."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-05,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
        rngs: Any = None,
    ) -> None:
        self.num_features = check_size(num_features, "num_features")
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        check_device(device)
        dt = float_dtype(dtype)
        shape = (num_features,)
        self.weight = nnx.Param(jnp.ones(shape, dt)) if affine else None
        self.bias = nnx.Param(jnp.zeros(shape, dt)) if affine and bias else None
        if track_running_stats:
            self.running_mean = Buffer(jnp.zeros(shape, dt))
            self.running_var = Buffer(jnp.ones(shape, dt))
            self.num_batches_tracked = Buffer(jnp.zeros((), counter_dtype()))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self.axis_name: str | None = None  # set by fnnet's pmap path: synchronise over this axis

    def _check_input_dim(self, input: jax.Array) -> None:
        raise NotImplementedError

    def forward(self, input: jax.typing.ArrayLike) -> jax.Array:
        return self._forward(input)

    def _forward(self, input: jax.typing.ArrayLike, window: tuple | None = None, conv: tuple | None = None) -> Any:
        """``forward``; with ``window`` (``(out, kernel, stride, padding, dilation)`` of a max pooling,
        training mode, no ``axis_name``) it returns ``max_pool(relu(forward(input)))`` computed as one
        operation (``fnnet.nn._fused``), with the same buffer updates. ``Sequential`` uses it. With ``conv``
        (``(x, weight, bias, geometry)`` of a convolution, checked: ``fnnet.nn._conv.conv_plan``), ``input`` is
        that convolution's input and the operation includes it (``Sequential`` checks the window tiles).
        """
        if conv is not None:
            conv_x, conv_w, conv_b, geometry = conv
            x = jax.ShapeDtypeStruct(conv_output_shape(conv_x.shape, conv_w.shape, geometry), conv_x.dtype)
        else:
            x = jnp.asarray(input)
        self._check_input_dim(x)
        factor: float | jax.Array = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            count = self.num_batches_tracked.get_value() + 1
            self.num_batches_tracked.set_value(count)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / count
        # torch: batch statistics in training, and in eval when there are no running statistics;
        # the buffers are passed (so updated) only when tracked.
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        pass_buffers = not self.training or self.track_running_stats
        mean = self.running_mean if pass_buffers else None
        var = self.running_var if pass_buffers else None
        args = (
            x,
            None if mean is None else mean.get_value(),
            None if var is None else var.get_value(),
            None if self.weight is None else self.weight.get_value(),
            None if self.bias is None else self.bias.get_value(),
        )
        if conv is not None:
            out, new_mean, new_var = conv_batch_norm_relu_max_pool_stats(*conv, *args[1:], factor, self.eps, window)
        elif window is not None:
            out, new_mean, new_var = batch_norm_relu_max_pool_stats(*args, factor, self.eps, window)
        else:
            out, new_mean, new_var = batch_norm_stats(
                *args,
                use_batch,
                factor,
                self.eps,
                axis_name=self.axis_name if self.training else None,  # SyncBatchNorm: not in eval
            )
        if use_batch:
            if mean is not None:
                mean.set_value(new_mean)
            if var is not None:
                var.set_value(new_var)
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """``torch.nn.BatchNorm1d(num_features, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True,
    device=None, dtype=None, *, bias=True)`` over ``(N, C)`` or ``(N, C, L)`` inputs.

    torch's momentum (weight of the new batch; Flax's ``nnx.BatchNorm`` momentum is the weight kept),
    unbiased running variance, ``num_batches_tracked``; see the module docstring.
    """

    def _check_input_dim(self, input: jax.Array) -> None:
        if input.ndim not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {input.ndim}D input)")


class BatchNorm2d(_BatchNorm):
    """``torch.nn.BatchNorm2d(num_features, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True,
    device=None, dtype=None, *, bias=True)`` over ``(N, C, H, W)`` inputs.

    torch's momentum (weight of the new batch; Flax's ``nnx.BatchNorm`` momentum is the weight kept),
    unbiased running variance, ``num_batches_tracked``; see the module docstring.
    """

    def _check_input_dim(self, input: jax.Array) -> None:
        if input.ndim != 4:
            raise ValueError(f"expected 4D input (got {input.ndim}D input)")
