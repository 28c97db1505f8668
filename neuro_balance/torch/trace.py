"""Trace a ``torch.nn.Module`` with ``torch.fx`` into a `Network`, recording where each array lives in the module.

Every tensor of the traced graph is read as one of two things: the *activity* of a population (the
output of an activation, possibly pooled and flattened), or a *pre-activation sum* of terms, each an
affine module (``Linear``, ``Conv2d``, a ``BatchNorm`` after it folded in) applied to an activity, or an
identity (a residual ``+``). An activation applied to a sum makes a population; its bias is the sum of
the terms' biases. A residual identity is a parameter-free edge: it pins the scales of both of its ends
to each other, so both are held at ground (`Population.ground`) and every other hidden unit is balanced.

BatchNorm is folded with its running statistics: ``W * g / sqrt(var + eps)`` and
``(b - mean) * g / sqrt(var + eps) + beta``, the eval-mode function the Network computes.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import ModelError
from ..model import conv as _conv  # noqa: F401  (registers the conv2d kind)
from ..model.network import Network, Population, Projection

__all__ = ["Term", "TorchBinding", "from_module"]

_GROUND = {nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ReLU6: "relu6"}
_PASS = (nn.Identity, nn.Dropout)
_FUNCTION_ACTIVATIONS = {torch.relu: "relu", nn.functional.relu: "relu", torch.tanh: "tanh",
                         torch.sigmoid: "sigmoid", nn.functional.relu6: "relu6"}
_ADD = (operator.add, operator.iadd, torch.add)


@dataclass(frozen=True)
class Term:
    """Where one projection of the traced `Network` lives in the module.

    Attributes
    ----------
    projection : str
        The projection's name in the Network.
    module : str or None
        Qualified name of its ``Linear`` / ``Conv2d``; None for a residual identity (no parameters).
    norm : str or None
        Qualified name of the ``BatchNorm`` folded after the module.
    """

    projection: str
    module: str | None
    norm: str | None = None


@dataclass
class TorchBinding:
    """A traced module: its `Network` and the `Term` of every projection.

    Attributes
    ----------
    network : Network
        Float64 copy of the module's eval-mode function (inputs and outputs flattened C-major).
    terms : list of Term
    """

    network: Network
    terms: list[Term]


@dataclass(frozen=True)
class _Activity:
    pop: str
    shape: tuple[int, ...]                  # per-sample tensor shape
    pool: dict[str, Any] | None = None
    flat: bool = False


@dataclass
class _Sum:
    shape: tuple[int, ...]
    parts: list[tuple[_Activity, str | None, str | None]] = field(default_factory=list)  # (source, module, norm)


class _Tracer:
    def __init__(self, module: nn.Module, example_input: torch.Tensor) -> None:
        try:
            self.graph = fx.symbolic_trace(module)
        except Exception as err:  # torch.fx raises many types for untraceable code
            raise ModelError(f"{type(module).__name__}: torch.fx cannot trace it ({err})") from None
        modes = [(m, m.training) for m in module.modules()]
        try:  # eval mode: reading shapes must not move batch-norm statistics
            module.eval()
            with torch.no_grad():
                ShapeProp(self.graph).propagate(example_input)
        finally:  # each submodule's own mode back (a frozen BatchNorm in a training module stays frozen)
            for m, training in modes:
                m.training = training
        self.module = module
        self.pops: dict[str, Population] = {}
        self.projections: list[Projection] = []
        self.terms: list[Term] = []
        self.owners: dict[torch.Tensor, str] = {}  # every rescaled Parameter -> its qualified name

    # ------------------------------------------------------------------ helpers
    def _shape(self, node: fx.Node) -> tuple[int, ...]:
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise ModelError(f"{node.name}: produces no single tensor; only tensor-valued graphs are read")
        return tuple(int(s) for s in meta.shape[1:])

    def _refuse(self, node: fx.Node, why: str) -> ModelError:
        where = node.target if node.op == "call_module" else node.name
        return ModelError(f"{where}: {why}")

    def _array(self, t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else t.detach().to("cpu", torch.float64).numpy().copy()

    def _fold(self, lin: nn.Module, norm: nn.Module | None) -> tuple[np.ndarray, np.ndarray | None]:
        w, b = self._array(lin.weight), self._array(lin.bias)
        if norm is None:
            return w, b
        s = self._array(norm.weight) / np.sqrt(self._array(norm.running_var) + norm.eps)
        b0 = np.zeros(w.shape[0]) if b is None else b
        return w * s.reshape(-1, *([1] * (w.ndim - 1))), (b0 - self._array(norm.running_mean)) * s + self._array(norm.bias)

    # ------------------------------------------------------------------ the value of each node
    def run(self) -> TorchBinding:
        values: dict[fx.Node, Any] = {}
        out = None
        for node in self.graph.graph.nodes:
            if node.op == "placeholder":
                if self.pops:
                    raise self._refuse(node, "a second input; only single-input modules are read")
                shape = self._shape(node)
                self.pops["input"] = Population("input", shape[0], "input", "linear",
                                                shape=shape if len(shape) == 3 else None)
                if len(shape) not in (1, 3):
                    raise self._refuse(node, f"input of per-sample shape {shape}: expected (n,) or (C, H, W)")
                values[node] = _Activity("input", shape)
            elif node.op == "output":
                out = node.args[0]
            elif node.op in ("call_module", "call_function", "call_method"):
                values[node] = self._call(node, [values.get(a, a) for a in node.args])
            else:
                raise self._refuse(node, f"{node.op} nodes are not read")
        if not isinstance(out, fx.Node):
            raise ModelError(f"{type(self.module).__name__}: the output must be one tensor")
        self._finish(values[out], out)
        net = Network(self.pops.values(), self.projections, name=type(self.module).__name__)
        return TorchBinding(net, self.terms)

    def _call(self, node: fx.Node, args: list[Any]) -> Any:
        target = node.target
        if node.op == "call_module":
            mod = self.module.get_submodule(target)
            return self._module(node, mod, args[0])
        if node.op == "call_method":
            target = {"relu": torch.relu, "flatten": torch.flatten, "add": torch.add, "add_": torch.add}.get(target)
            if target is None:
                raise self._refuse(node, f"method {node.target!r} is not supported; use a module or torch function")
        if target in _ADD:
            return self._add(node, args)
        if target is torch.flatten:
            return self._flatten(node, args[0])
        if target in _FUNCTION_ACTIVATIONS:
            return self._activate(node, args[0], _FUNCTION_ACTIVATIONS[target])
        if target is nn.functional.leaky_relu:
            slope = node.kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)
            return self._activate(node, args[0], f"leaky_relu:{float(slope)!r}")
        raise self._refuse(node, f"function {getattr(target, '__name__', target)!r} is not supported")

    def _module(self, node: fx.Node, mod: nn.Module, x: Any) -> Any:
        if isinstance(mod, _PASS):
            return x
        if isinstance(mod, nn.ReLU):
            return self._activate(node, x, "relu")
        if isinstance(mod, nn.LeakyReLU):
            return self._activate(node, x, f"leaky_relu:{float(mod.negative_slope)!r}")
        if type(mod) in _GROUND:
            return self._activate(node, x, _GROUND[type(mod)])
        if isinstance(mod, nn.Flatten):
            if mod.start_dim != 1 or mod.end_dim != -1:
                raise self._refuse(node, "Flatten must flatten every dimension after the batch")
            return self._flatten(node, x)
        if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return self._pool(node, mod, x)
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            return self._affine(node, mod, x)
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return self._batch_norm(node, mod, x)
        raise self._refuse(node, f"{type(mod).__name__} is not supported (supported: Linear, Conv2d, ReLU, "
                                 "LeakyReLU, Tanh, Sigmoid, ReLU6, Identity, Dropout, Flatten, MaxPool2d, "
                                 "AvgPool2d, AdaptiveAvg/MaxPool2d, BatchNorm1d/2d, residual +)")

    # ------------------------------------------------------------------ operations
    def _flatten(self, node: fx.Node, x: Any) -> _Activity:
        if not isinstance(x, _Activity):
            raise self._refuse(node, "flattening a pre-activation sum; flatten after the activation")
        return _Activity(x.pop, x.shape, x.pool, True)

    def _pool(self, node: fx.Node, mod: nn.Module, x: Any) -> _Activity:
        if not isinstance(x, _Activity) or x.flat or len(x.shape) != 3:
            raise self._refuse(node, "pooling is read only on the activity of a feature map (after its activation)")
        if x.pool is not None:
            raise self._refuse(node, "two poolings in a row")
        kind = "max" if isinstance(mod, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)) else "avg"
        if isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            (H, W), (h, w) = x.shape[1:], self._shape(node)[1:]
            if H % h or W % w:
                raise self._refuse(node, f"adaptive pooling of {H}x{W} to {h}x{w} has uneven windows")
            size = stride = [H // h, W // w]
        else:
            pair = lambda v: [int(v), int(v)] if isinstance(v, int) else [int(s) for s in v]  # noqa: E731
            if any(pair(mod.padding)) or getattr(mod, "ceil_mode", False) or pair(getattr(mod, "dilation", 1)) != [1, 1]:
                raise self._refuse(node, "pooling with padding, dilation or ceil_mode is not supported")
            if getattr(mod, "divisor_override", None) is not None:
                raise self._refuse(node, "AvgPool2d divisor_override is not supported")
            size = pair(mod.kernel_size)
            stride = pair(mod.stride if mod.stride is not None else mod.kernel_size)
        return _Activity(x.pop, x.shape, {"kind": kind, "size": size, "stride": stride}, False)

    def _affine(self, node: fx.Node, mod: nn.Module, x: Any) -> _Sum:
        if not isinstance(x, _Activity):
            raise self._refuse(node, "reads a pre-activation sum; put an activation (or nn.Identity-free graph) "
                                     "between two affine modules")
        if isinstance(mod, nn.Conv2d):
            if x.flat or len(x.shape) != 3:
                raise self._refuse(node, "Conv2d on something other than a feature map")
            if tuple(mod.dilation) != (1, 1) or mod.padding_mode != "zeros" or isinstance(mod.padding, str):
                raise self._refuse(node, "Conv2d with dilation, non-zero padding mode or string padding")
        elif len(x.shape) == 3 and not x.flat:
            raise self._refuse(node, "Linear on a feature map; flatten it first")
        return _Sum(self._shape(node), [(x, node.target, None)])

    def _batch_norm(self, node: fx.Node, mod: nn.Module, x: Any) -> _Sum:
        if not isinstance(x, _Sum) or len(x.parts) != 1 or x.parts[0][1] is None or x.parts[0][2] is not None:
            raise self._refuse(node, "BatchNorm is folded only directly after one Linear or Conv2d")
        if not mod.track_running_stats or mod.running_mean is None:
            raise self._refuse(node, "BatchNorm without running statistics cannot be folded")
        src, lin, _ = x.parts[0]
        if not mod.affine:
            raise self._refuse(node, "BatchNorm without affine parameters has no place to keep a scale")
        return _Sum(x.shape, [(src, lin, node.target)])

    def _add(self, node: fx.Node, args: list[Any]) -> _Sum:
        if len(args) != 2 or node.kwargs.get("alpha", 1) != 1:
            raise self._refuse(node, "only a plain sum of two tensors is read")
        parts = []
        for value in args:
            if isinstance(value, _Sum):
                parts += value.parts
            elif isinstance(value, _Activity):
                if value.pool is not None:
                    raise self._refuse(node, "adds a pooled activity; pool inside a module with weights")
                parts.append((value, None, None))
            else:
                raise self._refuse(node, f"adds a constant ({value!r}), which no scaling keeps")
        return _Sum(self._shape(node), parts)

    def _activate(self, node: fx.Node, x: Any, activation: str) -> _Activity:
        if not isinstance(x, _Sum):
            raise self._refuse(node, "an activation must follow a pre-activation sum (Linear, Conv2d or +)")
        self._population(node.name, x, "hidden", activation)
        return _Activity(node.name, self._shape(node))

    def _finish(self, value: Any, node: fx.Node) -> None:
        if isinstance(value, _Sum):
            self._population("output", value, "output", "linear")
        elif isinstance(value, _Activity) and value.pop != "input" and value.pool is None:
            self.pops[value.pop].role = "output"
            self.pops[value.pop].ground = False
        else:
            raise self._refuse(node, "the output must be a pre-activation sum or a population's activity")

    # ------------------------------------------------------------------ populations and projections
    def _population(self, name: str, value: _Sum, role: str, activation: str) -> None:
        shape = value.shape
        flat_pooled = any(src.pool is not None and src.flat for src, mod, _ in value.parts if mod)
        if flat_pooled:
            shape = (shape[0], 1, 1)
        if len(shape) not in (1, 3):
            raise ModelError(f"{name}: a tensor of per-sample shape {shape}; expected (n,) or (C, H, W)")
        bias = None
        for src, mod_name, norm_name in value.parts:
            if mod_name is None:
                continue
            lin = self.module.get_submodule(mod_name)
            if lin.bias is not None or norm_name is not None:
                _, b = self._fold(lin, None if norm_name is None else self.module.get_submodule(norm_name))
                bias = b if bias is None else bias + b
        self.pops[name] = Population(name, shape[0], role, activation, bias, shape if len(shape) == 3 else None)
        for src, mod_name, norm_name in value.parts:
            self._project(name, src, mod_name, norm_name)

    def _project(self, post: str, src: _Activity, mod_name: str | None, norm_name: str | None) -> None:
        pre_pop, post_pop = self.pops[src.pop], self.pops[post]
        name = f"{src.pop}->{post}" if mod_name is None else mod_name
        if mod_name is None:
            if src.shape != (post_pop.shape or (post_pop.size,)) and not (src.flat and post_pop.shape is None):
                raise ModelError(f"{post}: residual + of shapes {src.shape} and {post_pop.shape}")
            pre_pop.ground = pre_pop.role == "hidden"
            post_pop.ground = post_pop.role == "hidden"
            if post_pop.shape is not None and not src.flat:
                C = post_pop.size
                proj = Projection(src.pop, post, np.ones((C, 1, 1, 1)), kind="conv2d", name=name,
                                  options={"kernel": [1, 1], "stride": [1, 1], "padding": [0, 0], "groups": C})
            else:
                proj = Projection(src.pop, post, np.eye(post_pop.size), name=name)
        else:
            self._claim(mod_name)
            if norm_name is not None:
                self._claim(norm_name)
            lin = self.module.get_submodule(mod_name)
            w, _ = self._fold(lin, None if norm_name is None else self.module.get_submodule(norm_name))
            if isinstance(lin, nn.Conv2d):
                proj = Projection(src.pop, post, w, kind="conv2d", name=name, options={
                    "kernel": list(lin.kernel_size), "stride": list(lin.stride), "padding": list(lin.padding),
                    "groups": lin.groups, **({"pool": src.pool} if src.pool else {})})
            elif src.pool is not None:  # pool, flatten, Linear: a conv whose kernel covers the pooled map
                C, H, W = src.shape
                (kh, kw), (sh, sw) = src.pool["size"], src.pool["stride"]
                hp, wp = (H - kh) // sh + 1, (W - kw) // sw + 1
                proj = Projection(src.pop, post, w.reshape(w.shape[0], C, hp, wp), kind="conv2d", name=name,
                                  options={"kernel": [hp, wp], "stride": [1, 1], "padding": [0, 0], "groups": 1,
                                           "pool": src.pool})
            else:
                proj = Projection(src.pop, post, w, name=name)
        self.projections.append(proj)
        self.terms.append(Term(name, mod_name, norm_name))


    def _claim(self, mod_name: str) -> None:
        """Record the Parameters a projection rescales; each may be rescaled through one module, once."""
        for attr, param in self.module.get_submodule(mod_name).named_parameters(recurse=False):
            here, first = f"{mod_name}.{attr}", self.owners.get(param)
            if first == here:
                raise ModelError(f"{mod_name}: applied more than once; one parameter cannot take two scalings")
            if first is not None:
                raise ModelError(f"{here}: the same Parameter as {first} (tied weights); one Parameter cannot "
                                 "take the scalings of two modules: untie them (e.g. clone one) to balance")
            self.owners[param] = here


def from_module(module: nn.Module, example_input: torch.Tensor) -> TorchBinding:
    """Read a module as a `Network` (float64), with the `Term` that places each projection in the module.

    Parameters
    ----------
    module : torch.nn.Module
        Traceable by ``torch.fx``: ``Linear``, ``Conv2d`` (stride, padding, groups), ``ReLU``,
        ``LeakyReLU``, ``Identity``, ``Dropout``, ``Flatten``, ``MaxPool2d`` / ``AvgPool2d`` /
        adaptive pooling to even windows, ``BatchNorm1d/2d`` after an affine module (folded), residual
        ``+``; ``Tanh``, ``Sigmoid`` and ``ReLU6`` become ground units. Anything else is refused with a
        `ModelError` naming the module, and so is a module applied twice or a Parameter shared by two
        modules (tied weights: one Parameter cannot take two scalings). Every submodule keeps its own
        train/eval mode (shapes are read in eval mode, then each mode is put back).
    example_input : torch.Tensor
        One batch of inputs, ``(batch, n)`` or ``(batch, C, H, W)``; used for shapes only.

    Returns
    -------
    TorchBinding
        ``.network`` computes ``module(x).flatten(1)`` from ``x.flatten(1)`` in eval mode.

    Examples
    --------
    >>> import torch, neuro_balance.torch as nbt
    >>> m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> nbt.from_module(m, torch.zeros(1, 4)).network
    Network('Sequential': input[4], _1[8], output[2]; 2 projections, 58 parameters)
    """
    return _Tracer(module, example_input).run()
