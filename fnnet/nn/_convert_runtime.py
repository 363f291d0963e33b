"""What ``fnnet.nn.from_torch`` builds: the containers ``ModuleList``/``ModuleDict``, and ``FxModule``, a
converted custom module whose ``forward`` runs its traced torch graph (a :class:`Program`) on JAX values."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from flax import nnx

from fnnet.nn import _convert_ops as ops
from fnnet.nn.module import Module, RandomModule

__all__ = ["FxModule", "ModuleDict", "ModuleList", "Program", "Step", "fx_class", "get_path", "substitute"]


# ---- containers ------------------------------------------------------------------------------------


class ModuleList(Module):
    """``torch.nn.ModuleList`` as ``from_torch`` builds it: children named ``"0"``, ``"1"``, ... (so
    ``state_dict`` keys are torch's ``"layers.0.weight"``); ``len``, iteration and ``[i]`` work."""

    def __init__(self, modules: Any = (), *, rngs: Any = None) -> None:
        self._names: tuple[str, ...] = ()
        for i, module in enumerate(modules):
            setattr(self, str(i), module)
            self._names = (*self._names, str(i))

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[nnx.Module]:
        return (getattr(self, n) for n in self._names)

    def __getitem__(self, index: int) -> nnx.Module:
        return getattr(self, self._names[index])


class ModuleDict(Module):
    """``torch.nn.ModuleDict`` as ``from_torch`` builds it: children under their keys, in order."""

    def __init__(self, modules: Any = None, *, rngs: Any = None) -> None:
        self._names: tuple[str, ...] = ()
        for name, module in dict(modules or {}).items():
            setattr(self, name, module)
            self._names = (*self._names, name)

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __getitem__(self, key: str) -> nnx.Module:
        if key not in self._names:
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> tuple[str, ...]:
        return self._names


# ---- the interpreted forward -----------------------------------------------------------------------


class Step(NamedTuple):
    name: str
    run: Callable[[Any, dict], Any]


def substitute(value: Any, env: dict) -> Any:
    """The lowered argument ``value`` with each graph value (``Marker``) replaced by its array."""
    if isinstance(value, ops.Marker):
        return env[value.name]
    if isinstance(value, tuple):
        return tuple(substitute(v, env) for v in value)
    if isinstance(value, list):
        return [substitute(v, env) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, env) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(substitute(value.start, env), substitute(value.stop, env), substitute(value.step, env))
    return value


class Program:
    """One traced ``forward`` (of one mode) as a list of steps on JAX values: static (hashed by identity)."""

    def __init__(self, placeholders: list[tuple[str, str, bool, Any]], steps: list[Step], output: Any, text: str):
        self.placeholders = placeholders  # (node name, argument name, has default, default)
        self.steps = steps
        self.output = output
        self.text = text  # the fx graph, for repr and comparison
        self.random = False

    def __call__(self, module: Any, args: tuple, kwargs: dict) -> Any:
        if len(args) > len(self.placeholders):
            raise TypeError(f"forward() takes {len(self.placeholders)} arguments but {len(args)} were given")
        kwargs = dict(kwargs)
        env: dict[str, Any] = {}
        for i, (node, name, has_default, default) in enumerate(self.placeholders):
            if i < len(args):
                if name in kwargs:
                    raise TypeError(f"forward() got multiple values for argument '{name}'")
                value = args[i]
            elif name in kwargs:
                value = kwargs.pop(name)
            elif has_default:
                value = default
            else:
                raise TypeError(f"forward() missing required argument: '{name}'")
            env[node] = jnp.asarray(value) if isinstance(value, np.ndarray) else value
        if kwargs:
            raise TypeError(f"forward() got unexpected keyword argument(s) {sorted(kwargs)}")
        for step in self.steps:
            env[step.name] = step.run(module, env)
        return substitute(self.output, env)


def get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


class FxModule(Module):
    """A custom torch module converted by :func:`from_torch`: its converted children, parameters and
    buffers under torch's attribute names, and its traced ``forward`` (one :class:`Program` per mode).

    ``from_torch`` makes a subclass named as the torch class (so ``repr`` reads as torch's), and a
    ``fnnet.nn.module.RandomModule`` when the forward calls ``F.dropout``/``F.dropout2d`` (the module's own key
    draws the masks; fnnet's training core binds one key per example).
    """

    def __init__(
        self, variables: dict, children: dict, programs: tuple[Program, Program] | None, rngs: Any = None
    ) -> None:
        for name, value in itertools.chain(variables.items(), children.items()):
            setattr(self, name, value)
        self._programs = programs  # (eval, train)
        if isinstance(self, RandomModule):
            self._init_rng(rngs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._programs is None:  # a bare torch.nn.Module holding others (as fx.GraphModule builds them)
            raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')
        return self._programs[1 if self.training else 0](self, args, kwargs)


_CLASSES: dict[tuple[type, bool], type] = {}


def fx_class(torch_cls: type, random: bool) -> type:
    """The :class:`FxModule` subclass standing for ``torch_cls`` (one per class, so jit caches hit)."""
    key = (torch_cls, random)
    if key not in _CLASSES:
        bases = (FxModule, RandomModule) if random else (FxModule,)
        doc = f"``{torch_cls.__module__}.{torch_cls.__qualname__}`` converted by ``fnnet.nn.from_torch``."
        cls = type(torch_cls.__name__, bases, {"__doc__": doc, "__module__": "fnnet.nn.convert"})
        cls.__qualname__ = torch_cls.__qualname__
        _CLASSES[key] = cls
    return _CLASSES[key]
