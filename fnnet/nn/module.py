"""``torch.nn.Module``'s conventions on a Flax NNX module: the base class of every ``fnnet.nn`` layer.

A :class:`Module` is an ``nnx.Module`` (so ``nnx.split``/``nnx.merge``, ``nnx.jit`` and
``nnx.Optimizer`` work on it) that also behaves like torch's:

* ``model(x)`` calls ``forward`` when a subclass defines it (torch's spelling), or ``__call__``;
* modules start in training mode; ``model.train()`` / ``model.train(False)`` / ``model.eval()`` set
  ``training`` on the module and every submodule and return the module, as in torch. NNX's own
  ``train()``/``eval()`` (on a plain ``nnx.Module`` holding fnnet layers) reach them too, through the
  ``deterministic`` and ``use_running_average`` attributes NNX sets;
* parameters are ``nnx.Param`` and torch's buffers (``running_mean``, ``num_batches_tracked``, ...)
  are :class:`Buffer` variables, so ``nnx.state(model, nnx.Param)`` is what an optimizer trains and
  ``fnnet.nn.state_dict`` lists both, in torch's order: the order attributes were first assigned,
  which the module records (NNX itself keeps its state sorted by name);
* ``model.to(dtype)``, ``.double()``, ``.float()`` cast floating parameters and buffers.

Randomness is explicit, as everywhere in JAX: every layer takes a keyword ``rngs`` (an
``nnx.Rngs``, or an int seed); layers without parameters or randomness accept and ignore it, so generic
code builds any layer the same way. **Without ``rngs`` a layer uses ``nnx.Rngs(0)``** (see
:func:`default_rngs`): the same architecture always gets the same initial weights, and two layers of
the same shape built without ``rngs`` get *identical* weights. Pass one ``nnx.Rngs`` to every layer
(as Flax does) for independent draws; torch instead advances one hidden global generator.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = [
    "Buffer",
    "Module",
    "RandomKey",
    "RandomModule",
    "bind_example_keys",
    "check_device",
    "default_rngs",
    "float_dtype",
]


class Buffer(nnx.Variable):
    """A torch buffer (``register_buffer``): module state that is not trained but is saved.

    ``Buffer(value, persistent=False)`` is left out of ``state_dict`` as in torch.
    """


def default_rngs(rngs: nnx.Rngs | int | None) -> nnx.Rngs:
    """The ``rngs=`` a layer draws from: the given ``nnx.Rngs``, ``nnx.Rngs(seed)`` for an int, or
    ``nnx.Rngs(0)`` when none is given (the documented default)."""
    if rngs is None:
        return nnx.Rngs(0)
    if isinstance(rngs, nnx.Rngs):
        return rngs
    if isinstance(rngs, (int, np.integer)) and not isinstance(rngs, bool):
        return nnx.Rngs(int(rngs))
    raise TypeError(f"rngs must be an nnx.Rngs, an int seed or None, got {type(rngs).__name__}")


def float_dtype(dtype: Any, what: str = "dtype") -> jnp.dtype:
    """A floating dtype for parameters: ``None`` is torch's default ``float32``.

    float64 needs ``jax_enable_x64`` (as everywhere in fnnet): raise rather than silently get float32.
    """
    if dtype is None:
        return jnp.dtype(jnp.float32)
    name = getattr(dtype, "name", None) if not isinstance(dtype, str) else dtype
    if hasattr(dtype, "is_floating_point") and hasattr(dtype, "itemsize"):  # a torch.dtype
        name = str(dtype).removeprefix("torch.")
    try:
        dt = jnp.dtype(name if name is not None else dtype)
    except TypeError as err:
        raise TypeError(f"{what} must be a floating dtype, got {dtype!r}") from err
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"{what} must be a floating dtype, got {dt}")
    if dt.itemsize == 8 and not jax.config.jax_enable_x64:
        raise ValueError(
            f"{what}={dt} needs 64-bit JAX: call jax.config.update('jax_enable_x64', True) first "
            "(or set JAX_ENABLE_X64=1); fnnet does not silently downcast to float32"
        )
    return dt


def check_device(device: Any) -> None:
    """torch's ``device=`` keyword: only ``None`` (JAX places arrays; use ``jax.device_put``)."""
    if device is not None:
        raise ValueError(
            f"device={device!r}: fnnet layers are created on JAX's default device; move a model's "
            "state with jax.device_put(nnx.state(model), device) instead"
        )


class Module(nnx.Module):
    """Base class of every ``fnnet.nn`` layer, and of user models written the torch way.

    Subclass it like ``torch.nn.Module``: assign layers in ``__init__`` and compute in ``forward``
    (or ``__call__``). ``training`` is ``True`` until ``eval()``.
    """

    training: bool = True  # torch: modules are created in training mode
    _fnnet_order: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: Any) -> None:
        # Record the first-assignment order of public attributes: torch's state_dict order.
        if not name.startswith("_") and name not in self._fnnet_order and name != "training":
            object.__setattr__(self, "_fnnet_order", (*self._fnnet_order, name))
        super().__setattr__(name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        forward = getattr(type(self), "forward", None)
        if forward is None:
            raise NotImplementedError(f"{type(self).__name__} defines neither forward nor __call__")
        return forward(self, *args, **kwargs)

    # -- train / eval ---------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:  # type: ignore[override]
        """torch's ``train(mode=True)``: set ``training`` here and in every submodule; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {type(mode).__name__}")
        self.set_attributes(training=mode, raise_if_not_found=False)
        return self

    def eval(self) -> Module:  # type: ignore[override]
        """torch's ``eval()``: ``train(False)``."""
        return self.train(False)

    @property
    def deterministic(self) -> bool:
        """NNX's name for "not training" (what ``nnx.Module.train``/``eval`` set)."""
        return not self.training

    @deterministic.setter
    def deterministic(self, value: bool) -> None:
        self.training = not value

    @property
    def use_running_average(self) -> bool:
        """NNX's BatchNorm name for "not training"."""
        return not self.training

    @use_running_average.setter
    def use_running_average(self, value: bool) -> None:
        self.training = not value

    # -- dtype ----------------------------------------------------------------------------------
    def to(self, dtype: Any) -> Module:
        """Cast every floating parameter and buffer to ``dtype`` in place (torch's ``.to(dtype)``)."""
        dt = float_dtype(dtype)
        for state in nnx.state(self, nnx.Param, Buffer):
            for _, variable in nnx.to_flat_state(state):
                value = variable.get_value()
                if jnp.issubdtype(value.dtype, jnp.floating):
                    variable.set_value(value.astype(dt))
        return self

    def double(self) -> Module:
        """torch's ``.double()``: floating parameters and buffers to float64 (needs x64)."""
        return self.to(jnp.float64)

    def float(self) -> Module:
        """torch's ``.float()``: floating parameters and buffers to float32."""
        return self.to(jnp.float32)

    def extra_repr(self) -> str:
        """The text inside the parentheses of ``repr`` (torch's hook); empty by default."""
        return ""


def _module_repr(module: nnx.Module) -> str:
    """torch's ``repr``: ``Name(extra)`` or ``Name(\\n  (child): ...\\n)``."""
    extra = module.extra_repr() if isinstance(module, Module) else ""
    children = [(n, v) for n, v in _ordered_items(module) if isinstance(v, nnx.Module)]
    if not children:
        return f"{type(module).__name__}({extra})"
    lines = [f"{type(module).__name__}(" + (extra if extra else "")]
    for name, child in children:
        text = repr(child).replace("\n", "\n  ")
        lines.append(f"  ({name}): {text}")
    return "\n".join(lines) + "\n)"


def _ordered_items(module: nnx.Module) -> list[tuple[str, Any]]:
    """A module's public attributes in torch's registration order (first assignment)."""
    names = list(getattr(module, "_fnnet_order", ()))
    names += [n for n in vars(module) if n not in names]
    return [(n, vars(module)[n]) for n in names if n in vars(module) and not n.startswith("_") and n != "training"]


Module.__repr__ = Module.__str__ = _module_repr  # type: ignore[method-assign]


class RandomKey(nnx.Variable):
    """A random layer's own PRNG key, stored as raw ``uint32`` key data: typed key arrays cannot be
    placed on a sharding that spans several processes, nor saved by every checkpointer."""


class RandomModule(Module):
    """A layer that draws random numbers in training mode (``Dropout``, ``Dropout2d``, ...).

    It keeps its own key and call counter (:class:`RandomKey` and NNX's ``RngCount`` variables, so
    they travel with ``nnx.split``): eagerly, every training-mode call draws from ``fold_in(key, count)`` and
    advances the count, like torch's generator. fnnet's training core instead gives each layer one
    key per example for the step (:func:`bind_example_keys`), so an example's mask depends only on
    the seed, the step and the example, never on the batch or device it is in.
    """

    def _init_rng(self, rngs: nnx.Rngs | int | None) -> None:
        self.rng_key = RandomKey(jax.random.key_data(default_rngs(rngs).dropout()))
        self.rng_count = nnx.RngCount(jnp.zeros((), jnp.uint32))

    def _next_key(self) -> jax.Array:
        key = jax.random.wrap_key_data(self.rng_key.get_value())
        count = self.rng_count.get_value()
        self.rng_count.set_value(count + 1)
        if key.ndim == 0:
            return jax.random.fold_in(key, count)
        return jax.vmap(lambda k: jax.random.fold_in(k, count))(key)


def bind_example_keys(model: nnx.Module, keys: jax.Array) -> None:
    """Give every :class:`RandomModule` of ``model`` one key per example for the next forward pass.

    ``keys`` holds ``N`` typed keys (or ``(N, 2)`` raw ``uint32`` keys), one per row of the batch.
    The ``i``-th random layer (in NNX's graph order) gets ``fold_in(keys[b], i)`` for row ``b`` and a
    zero call count. Used inside a traced training step on a model from ``nnx.merge``; the bound keys
    are not meant to be kept (the step returns the model's parameters and buffers, not its keys).
    """
    keys = jnp.asarray(keys) if not isinstance(keys, jax.Array) else keys
    if not jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        keys = jax.random.wrap_key_data(keys)
    if keys.ndim != 1:
        raise ValueError(f"keys must hold one key per example, got shape {keys.shape}")
    layers = [m for _, m in nnx.iter_modules(model) if isinstance(m, RandomModule)]
    for i, layer in enumerate(layers):
        layer.rng_key.set_value(jax.random.key_data(jax.vmap(lambda k, i=i: jax.random.fold_in(k, i))(keys)))
        layer.rng_count.set_value(jnp.zeros((), jnp.uint32))
