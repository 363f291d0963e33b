"""``fnnet.nn.from_torch``: a torch model as a native ``fnnet.nn`` (Flax NNX) module, with the same
function and the same state.

* A torch layer fnnet has (``Linear``, ``Conv2d``, ``BatchNorm2d``, ``Embedding``, the activations,
  pooling, padding and dropout layers ...: :func:`supported_layers`) becomes its ``fnnet.nn`` twin,
  built from the torch layer's constructor attributes with its parameters' dtype (float64 needs x64).
* ``nn.Sequential``, ``nn.ModuleList`` and ``nn.ModuleDict`` become ``fnnet.nn.Sequential`` and this
  module's :class:`ModuleList` / :class:`ModuleDict`, children under the same names.
* Any other module is traced with ``torch.fx`` (every submodule a leaf, converted on its own, so the
  module hierarchy and the ``state_dict`` keys stay torch's) and becomes an :class:`FxModule`: an
  ``fnnet.nn.Module`` holding its converted children, parameters and buffers under torch's attribute
  names, whose ``forward`` interprets the fx graph with JAX ops (:func:`supported_ops`). The forward is
  traced in training and in eval mode, so ``self.training`` in it (``F.dropout(x, training=self.training)``,
  ``if self.training:``) follows ``model.train()`` / ``model.eval()`` of the converted module.

Then ``fnnet.nn.load_state_dict`` copies every parameter and buffer (keys equal torch's ``state_dict()``,
so ``fnnet.nn.state_dict(converted)`` loads back into the torch model exactly), and each module's
``training`` flag is carried over. Parameters with ``requires_grad=False`` become ``fnnet.nn.Buffer`` s
(saved, not trained); shared modules and tied parameters stay shared.

Anything else raises ``NotImplementedError`` naming the layer or op, its fx node and source line:
an unsupported layer (``nn.LSTM``), function or method (``torch.fft.fft``, ``x.sort()``), keyword,
control flow fx cannot trace, hooks, in-place writes to an input, a parameter or a value read later.
The result is never a silently different module.
"""

from __future__ import annotations

import builtins
import inspect
import itertools
import math
import operator
import os
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from fnnet.nn import _convert_ops as ops
from fnnet.nn import _convert_tables as tables
from fnnet.nn._convert_layers import LAYERS, mutates_input
from fnnet.nn._convert_runtime import FxModule, ModuleDict, ModuleList, Program, Step, fx_class, get_path, substitute
from fnnet.nn.container import Sequential
from fnnet.nn.module import Buffer, Module, RandomModule, default_rngs, float_dtype
from fnnet.nn.state import StateDictError, load_state_dict

__all__ = ["FxModule", "ModuleDict", "ModuleList", "Program", "from_torch", "supported_layers", "supported_ops"]

_FNNET_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- conversion ------------------------------------------------------------------------------------


def _torch_dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _source_line(node: Any, torch_dir: str) -> str:
    """`` at FILE:LINE: code`` of the innermost user frame in an fx node's stack trace, or ``""``."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in [^\n]*\n\s*([^\n]*)', getattr(node, "stack_trace", "") or "")
    user = [f for f in frames if not f[0].startswith((torch_dir, _FNNET_DIR))]
    if not user:
        return ""
    file, line, code = user[-1]
    return f" at {file}:{line}: {code.strip()}"


def _traceback_line(err: BaseException, torch_dir: str) -> str:
    """`` at FILE:LINE: code`` of the innermost user frame of an exception raised while tracing."""
    import traceback

    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.startswith((torch_dir, _FNNET_DIR))]
    if not frames:
        return ""
    f = frames[-1]
    return f" at {f.filename}:{f.lineno}: {(f.line or '').strip()}"


class _Converter:
    """One ``from_torch`` call: the torch module, the shared ``nnx.Rngs``, converted modules by identity."""

    def __init__(self, torch: Any, rngs: nnx.Rngs) -> None:
        self.torch = torch
        self.rngs = rngs
        self.memo: dict[int, Any] = {}
        self.functions = _function_table(torch)
        self.torch_dir = os.path.dirname(os.path.abspath(torch.__file__))

    # -- modules --------------------------------------------------------------------------------
    def convert(self, m: Any, path: str) -> Any:
        if id(m) in self.memo:  # a module registered twice stays one (shared) module
            return self.memo[id(m)]
        where = f"'{path}'" if path else "the model"
        hooks = [h for h in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
                 if getattr(m, h, None)]  # fmt: skip
        if hooks:
            raise NotImplementedError(
                f"from_torch: {where} ({type(m).__name__}) has hooks ({', '.join(hooks)}), which the conversion "
                "cannot carry over; remove them (torch.nn.utils.remove_weight_norm etc.) first"
            )
        nn = self.torch.nn
        name = type(m).__name__
        if type(m) is nn.Sequential:
            result = Sequential(OrderedDict((n, self.convert(c, _join(path, n))) for n, c in m._modules.items()))
        elif type(m) is nn.ModuleList:
            result = ModuleList([self.convert(c, _join(path, n)) for n, c in m._modules.items()])
        elif type(m) is nn.ModuleDict:
            result = ModuleDict({n: self.convert(c, _join(path, n)) for n, c in m._modules.items()})
        elif name in LAYERS and type(m) is getattr(nn, name, None):
            result = self._layer(m, path)
        elif type(m).__module__.startswith("torch.") and not (
            type(m) is nn.Module or isinstance(m, self.torch.fx.GraphModule)
        ):
            raise NotImplementedError(
                f"from_torch: unsupported layer {type(m).__module__}.{type(m).__qualname__} at {where}; "
                f"supported layers: {', '.join(supported_layers())}"
            )
        else:
            result = self._traced(m, path)
        self.memo[id(m)] = result
        return result

    def _dtype(self, m: Any, path: str) -> Any:
        for t in itertools.chain(m.parameters(recurse=False), m.buffers(recurse=False)):
            if t.is_floating_point():
                try:
                    return float_dtype(_torch_dtype_name(t.dtype))
                except (TypeError, ValueError) as err:
                    raise type(err)(f"from_torch: layer '{path}' ({type(m).__name__}): {err}") from None
        return None

    def _layer(self, m: Any, path: str) -> Any:
        build, dt, name = LAYERS[type(m).__name__], self._dtype(m, path), type(m).__name__
        if name in ("Dropout", "Dropout2d"):  # keys drawn from the shared rngs
            layer = build(m, dt, self.rngs)
        else:  # shapes only: every variable is then filled by load_state_dict (no wasted random init)
            layer = nnx.eval_shape(lambda: build(m, dt, nnx.Rngs(0)))
        for n, p in m.named_parameters(recurse=False):
            if not p.requires_grad:  # frozen: saved but not trained
                setattr(layer, n, Buffer(getattr(layer, n).get_value()))
        return layer

    def _variable(self, t: Any, path: str, *, param: bool, persistent: bool = True) -> nnx.Variable:
        try:
            value = _constant(t, path)
        except (TypeError, ValueError) as err:
            raise type(err)(f"from_torch: '{path}': {err}") from None
        if param and t.requires_grad:
            return nnx.Param(jnp.asarray(value))
        return Buffer(jnp.asarray(value)) if persistent else Buffer(jnp.asarray(value), persistent=False)

    def _traced(self, m: Any, path: str) -> FxModule:
        cls_name = type(m).__qualname__
        variables: dict[str, Any] = {}
        for n, p in m._parameters.items():
            variables[n] = None if p is None else self._variable(p, _join(path, n), param=True)
        for n, b in m._buffers.items():
            persistent = n not in m._non_persistent_buffers_set
            variables[n] = None if b is None else self._variable(b, _join(path, n), param=False, persistent=persistent)
        children = {n: self.convert(c, _join(path, n)) for n, c in m._modules.items() if c is not None}
        reserved = set(dir(RandomModule)) | {"rng_key", "rng_count"}
        for n in itertools.chain(variables, children):
            if n.startswith("_") or n in reserved:
                raise NotImplementedError(
                    f"from_torch: {cls_name} at '{path}' has an attribute named {n!r}, which fnnet.nn.Module "
                    "reserves (or leaves out of state_dict); rename it"
                )
        if type(m) is self.torch.nn.Module:  # a bare holder of submodules and tensors: nothing to trace
            return fx_class(type(m), False)(variables, children, None)
        programs: list[Program] = []
        for mode in (False, True):
            graph, constants = self._trace(m, mode, path)
            text = str(graph)
            if programs and programs[0].text == text and not constants:
                programs.append(programs[0])
            else:
                programs.append(self._compile(graph, constants, m, path))
        random = any(p.random for p in programs)
        cls = fx_class(type(m), random)
        return cls(variables, children, (programs[0], programs[1]), rngs=self.rngs)

    def _trace(self, m: Any, mode: bool, path: str) -> tuple[Any, dict[str, np.ndarray]]:
        """fx graph of ``m.forward`` with ``m`` in ``mode`` (every submodule a leaf); the tensor constants
        fx stored on ``m`` are taken off again (the torch module is left as it was)."""
        fx = self.torch.fx

        class LeafTracer(fx.Tracer):
            def is_leaf_module(self, module: Any, qualname: str) -> bool:
                return True

        tracer = LeafTracer()
        tracer.record_stack_traces = True
        flags = [(sub, sub.training) for sub in m.modules()]
        before = set(vars(m))
        try:
            m.train(mode)
            graph = tracer.trace(m)
        except Exception as err:
            where = f"'{path}'" if path else "the model"
            raise NotImplementedError(
                f"from_torch: torch.fx cannot trace {type(m).__qualname__}.forward ({where}, "
                f"{'train' if mode else 'eval'} mode){_traceback_line(err, self.torch_dir)}: {err}"
            ) from err
        finally:
            for sub, flag in flags:
                sub.training = flag
            added = set(vars(m)) - before
            constants = {n: getattr(m, n) for n in added}
            for n in added:
                delattr(m, n)
        return graph, {n: _constant(v, n) for n, v in constants.items() if isinstance(v, self.torch.Tensor)}

    # -- graphs ---------------------------------------------------------------------------------
    def _compile(self, graph: Any, constants: dict[str, np.ndarray], m: Any, path: str) -> Program:
        nodes = list(graph.nodes)
        order = {n: i for i, n in enumerate(nodes)}
        owner = f"{type(m).__qualname__}.forward"
        placeholders: list[tuple[str, str, bool, Any]] = []
        steps: list[Step] = []
        output: Any = None
        random = False
        state_names = {n for n, _ in itertools.chain(m.named_parameters(remove_duplicate=False),
                                                      m.named_buffers(remove_duplicate=False))}  # fmt: skip

        def fail(node: Any, what: str) -> NotImplementedError:
            return NotImplementedError(
                f"from_torch: {what} (fx node '{node.name}' in {owner}{_source_line(node, self.torch_dir)})"
            )

        for node in nodes:
            if node.op == "placeholder":
                if str(node.target).startswith("*"):
                    raise fail(node, f"forward's variadic argument {node.target} is not supported")
                placeholders.append((node.name, str(node.target), bool(node.args), node.args[0] if node.args else None))
            elif node.op == "get_attr":
                steps.append(self._get_attr(node, m, state_names, constants, fail))
            elif node.op == "call_module":
                sub = m.get_submodule(node.target)
                if mutates_input(sub) and node.args:
                    self._check_inplace(node, node.args[0], order, f"{type(sub).__name__}(inplace=True)", fail, m)
                steps.append(Step(node.name, _call_module(node.target, self._lower(node.args, node, fail),
                                                           self._lower(node.kwargs, node, fail))))  # fmt: skip
            elif node.op in ("call_function", "call_method"):
                step, is_random = self._call(node, order, fail, m)
                steps.append(step)
                random = random or is_random
            elif node.op == "output":
                output = self._lower(node.args[0], node, fail)
            else:  # pragma: no cover - fx has no other node kinds
                raise fail(node, f"fx node kind {node.op!r} is not supported")
        program = Program(placeholders, steps, output, str(graph))
        program.random = random
        return program

    def _get_attr(self, node: Any, m: Any, state_names: set, constants: dict, fail: Callable) -> Step:
        target = node.target
        if target in state_names:
            return Step(node.name, lambda module, env, target=target: get_path(module, target).get_value())
        if target in constants:
            value = constants[target]
        else:
            try:
                value = _constant(get_path(m, target), target)
            except (AttributeError, TypeError):
                raise fail(node, f"attribute {target!r} is not a parameter, buffer or tensor") from None
        return Step(node.name, lambda module, env, value=value: jnp.asarray(value))

    def _call(self, node: Any, order: dict, fail: Callable, m: Any) -> tuple[Step, bool]:
        target = node.target
        mutated = None
        if node.op == "call_method":
            base = tables.INPLACE_METHODS.get(target, target)
            op = tables.METHODS.get(base)
            if base != target:
                mutated = node.args[0] if node.args else None
        else:
            try:
                op = self.functions.get(target)
            except TypeError:  # an unhashable target
                op = None
        if op is None:
            what = "in-place method" if node.op == "call_method" and str(target).endswith("_") else "op"
            raise fail(node, f"unsupported {what} {ops.qualified_name(target)}; supported ops: see "
                             "fnnet.nn.convert.supported_ops()")  # fmt: skip
        signature = _signature(op)
        args, kwargs = self._lower(node.args, node, fail), self._lower(node.kwargs, node, fail)
        try:
            bound = signature.bind(*args, **kwargs)
            raw = signature.bind(*node.args, **node.kwargs)
        except TypeError as err:
            raise fail(node, f"{op.name} called with arguments fnnet does not support ({err})") from None
        bound.apply_defaults()
        if op.check is not None:
            reason = op.check(dict(bound.arguments))
            if reason:
                raise fail(node, f"{op.name}: {reason}")
        if op.mutates is not None and bound.arguments.get("inplace") is True:
            mutated = raw.arguments.get(op.mutates)
        if mutated is not None:
            label = ops.qualified_name(target) if node.op == "call_method" else op.name
            self._check_inplace(node, mutated, order, f"in-place {label}", fail, m)
        fn = op.fn
        if op.module:
            run = lambda module, env: fn(module, *substitute(args, env), **substitute(kwargs, env))  # noqa: E731
        else:
            run = lambda module, env: fn(*substitute(args, env), **substitute(kwargs, env))  # noqa: E731
        random = op.module and bool(bound.arguments.get("training")) and bound.arguments.get("p") != 0
        return Step(node.name, run), random

    def _lower(self, value: Any, node: Any, fail: Callable) -> Any:
        """fx argument -> a static value: graph nodes become ``Marker`` s, torch dtypes JAX dtypes."""
        torch = self.torch
        if isinstance(value, torch.fx.Node):
            return ops.Marker(value.name)
        if isinstance(value, tuple):
            return tuple(self._lower(v, node, fail) for v in value)
        if isinstance(value, list):
            return [self._lower(v, node, fail) for v in value]
        if isinstance(value, dict):
            return {k: self._lower(v, node, fail) for k, v in value.items()}
        if isinstance(value, slice):
            return slice(*(self._lower(v, node, fail) for v in (value.start, value.stop, value.step)))
        if isinstance(value, torch.dtype):
            return ops.jax_dtype(_torch_dtype_name(value))
        if isinstance(value, torch.device):
            return ops.Device(str(value))
        if value is None or value is Ellipsis or isinstance(value, (bool, int, float, complex, str)):
            return value
        raise fail(node, f"argument {value!r} ({type(value).__name__}) is not supported")

    def _check_inplace(self, node: Any, arg: Any, order: dict, what: str, fail: Callable, m: Any) -> None:
        """An in-place op computes what its out-of-place form does unless it writes into an input, a
        parameter or buffer, or a value (or a view of it) that a later node reads: those raise."""
        if not isinstance(arg, self.torch.fx.Node):
            return
        chain = [arg]
        while self._may_alias(chain[-1], m) and chain[-1].args and isinstance(chain[-1].args[0], self.torch.fx.Node):
            chain.append(chain[-1].args[0])
        for a in chain:
            if a.op == "placeholder":
                raise fail(node, f"{what} writes into the input {a.target!r} of forward")
            if a.op == "get_attr":
                raise fail(node, f"{what} writes into the parameter/buffer {a.target!r}")
            later = [u.name for u in a.users if order[u] > order[node]]
            if later:
                raise fail(node, f"{what} overwrites {a.name!r}, which {', '.join(later)} read(s) afterwards")

    def _may_alias(self, node: Any, m: Any) -> bool:
        """Whether ``node``'s value may share memory with its first argument (a view, or an in-place op)."""
        torch, TF = self.torch, self.torch.nn.functional
        if node.op == "call_method":
            return node.target in _VIEW_METHODS or str(node.target).endswith("_")
        if node.op == "call_function":
            views = (torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.t, torch.unsqueeze,
                     torch.squeeze, torch.chunk, torch.split, TF.dropout, TF.dropout2d)  # fmt: skip
            return (
                node.target in views
                or node.target in (operator.getitem, builtins.getattr)
                or node.kwargs.get("inplace") is True
            )
        if node.op == "call_module":
            sub = m.get_submodule(node.target)
            name = type(sub).__name__
            fresh = name in LAYERS and name not in ("Identity", "Flatten", "Unflatten", "Dropout", "Dropout2d")
            return not fresh or mutates_input(sub)
        return False


_VIEW_METHODS = {"view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "permute", "transpose", "t",
                 "unsqueeze", "squeeze", "expand", "expand_as", "contiguous", "detach", "to", "float", "double",
                 "long", "int", "bool", "type_as", "chunk", "split"}  # fmt: skip

_SIGNATURES: dict[tuple[Callable, bool], inspect.Signature] = {}


def _signature(op: ops.Op) -> inspect.Signature:
    """The signature calls are bound to (a module-taking op without its first parameter)."""
    key = (op.fn, op.module)
    if key not in _SIGNATURES:
        sig = inspect.signature(op.fn)
        if op.module:
            sig = sig.replace(parameters=list(sig.parameters.values())[1:])
        _SIGNATURES[key] = sig
    return _SIGNATURES[key]


_FUNCTION_TABLES: dict[int, dict] = {}


def _function_table(torch: Any) -> dict:
    """The op table for this torch (built once: its closures are the keys of the signature cache)."""
    if id(torch) not in _FUNCTION_TABLES:
        table = tables.function_table(torch)
        table[math.sqrt] = ops.Op(math.sqrt, "math.sqrt")
        _FUNCTION_TABLES[id(torch)] = table
    return _FUNCTION_TABLES[id(torch)]


def _call_module(target: str, args: Any, kwargs: Any) -> Callable[[Any, dict], Any]:
    def run(module: Any, env: dict) -> Any:
        return get_path(module, target)(*substitute(args, env), **substitute(kwargs, env))

    return run


def _constant(value: Any, name: str) -> np.ndarray:
    """A tensor constant of the traced forward as NumPy (its dtype kept: float64 needs x64)."""
    if not (hasattr(value, "detach") and hasattr(value, "dtype")):
        raise TypeError(f"{name} is not a tensor")
    array = value.detach().cpu().numpy()
    return array.astype(ops.jax_dtype(array.dtype.name), copy=False)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _tie_shared(module: Any, converted: Any) -> None:
    """Tied parameters/buffers (one tensor under several keys) become one shared ``nnx.Variable``."""
    seen: dict[int, str] = {}
    for key, tensor in itertools.chain(
        module.named_parameters(remove_duplicate=False), module.named_buffers(remove_duplicate=False)
    ):
        if id(tensor) not in seen:
            seen[id(tensor)] = key
            continue
        owner, _, attr = key.rpartition(".")
        first = get_path(converted, seen[id(tensor)])
        target = get_path(converted, owner) if owner else converted
        if getattr(target, attr) is not first:
            setattr(target, attr, first)


def _carry_modes(module: Any, converted: Any) -> None:
    """Each converted module gets the ``training`` flag of its torch module (torch's train()/eval())."""
    for name, sub in module.named_modules(remove_duplicate=False):
        target = get_path(converted, name) if name else converted
        target.training = bool(sub.training)


def from_torch(module: Any, *, rngs: nnx.Rngs | int | None = None) -> Module:
    """torch ``nn.Module`` -> an ``fnnet.nn`` module computing the same function with the same state.

    ``nn.Sequential`` (and ``ModuleList``/``ModuleDict``) of supported layers convert directly; any
    other module through ``torch.fx`` (see the module docstring, :func:`supported_layers` and
    :func:`supported_ops`). Parameters and buffers are copied with ``fnnet.nn.load_state_dict``, so
    ``fnnet.nn.state_dict(result)`` has torch's keys and loads back with ``module.load_state_dict``.
    The ``training`` flag of every module is carried over. ``rngs`` (an ``nnx.Rngs`` or a seed;
    default ``nnx.Rngs(0)``) gives the dropout layers their keys, one shared generator for all, so
    their masks differ (torch's masks come from its own generator and cannot be reproduced).

    A float64 model (``.double()``) needs ``jax_enable_x64``. Raises ``NotImplementedError`` naming the
    layer or op and its fx node and source line for anything it cannot convert exactly.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch expects a torch.nn.Module, got {type(module).__name__}")
    if mutates_input(module):
        raise NotImplementedError(
            f"from_torch: {type(module).__name__} writes into its input in place (inplace=True on its first "
            "layer), which a JAX function cannot do; use inplace=False there"
        )
    converter = _Converter(torch, default_rngs(rngs))
    converted = converter.convert(module, "")
    _tie_shared(module, converted)
    try:
        load_state_dict(converted, module.state_dict())
    except StateDictError as err:
        raise NotImplementedError(
            f"from_torch: the converted {type(module).__name__} does not hold torch's state_dict: {err}"
        ) from err
    for path, variable in nnx.to_flat_state(nnx.state(converted)):
        if isinstance(variable.get_value(), jax.ShapeDtypeStruct):  # pragma: no cover - a layer table slip
            raise NotImplementedError(f"from_torch: {'.'.join(map(str, path))} was not filled from torch's state")
    _carry_modes(module, converted)
    return converted


def supported_layers() -> list[str]:
    """The ``torch.nn`` layer classes :func:`from_torch` converts to their ``fnnet.nn`` twins (besides the
    containers ``Sequential``, ``ModuleList``, ``ModuleDict`` and traced custom modules)."""
    return sorted(LAYERS)


def supported_ops() -> list[str]:
    """The torch functions and ``Tensor`` methods a traced ``forward`` may call."""
    import torch

    names = {op.name for op in _function_table(torch).values()} | {op.name for op in tables.METHODS.values()}
    return sorted(names | {f"Tensor.{m}" for m in tables.INPLACE_METHODS})
