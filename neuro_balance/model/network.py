"""The network data model and its float64 reference forward pass.

A `Network` is plain data: named `Population` objects (sets of units) and `Projection` objects
(one weight array from a pre to a post population). Everything else in the toolkit is a function
that reads a `Network` and returns a new one; every engine is tested against `Network.forward`.
"""
from __future__ import annotations

import copy as _copy
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable

import numpy as np

from .activations import Activation, parse_activation
from ..errors import ModelError
from .kinds import get_kind
from .neurons import Neuron

__all__ = ["Population", "Projection", "Network", "ROLES"]

ROLES = ("input", "hidden", "output")


@dataclass(eq=False)
class Population:
    """A set of units of one kind.

    Parameters
    ----------
    name : str
    size : int
        Number of units (scale groups). For a feature map grouped by channel this is ``C``; for a
        map whose every position is its own unit it is ``C*H*W``.
    role : {"input", "hidden", "output"}
    activation : str or Activation
        Parsed with `parse_activation`.
    bias : ndarray of shape (size,) or None
        One bias per unit (shared by all positions of a channel), or None for no bias.
    shape : tuple of int or None
        ``(C, H, W)`` for a feature map, None for a plain vector of ``size`` features.
    ground : bool
        Hold a hidden homogeneous population at scale 1 all the same: its units are ground. Used where
        a parameter-free edge pins the scale, e.g. a residual stream joined by identity additions.
    neuron : Neuron or None
        The neuron model and its parameters (populations read from NIR); None for a plain unit
        whose activity is ``activation(input)``. Spiking units (IF, LIF, CubaLIF) are never
        scaled by the exchange: `balanced` is False for them (see `model.neurons`).
    """

    name: str
    size: int
    role: str = "hidden"
    activation: Activation | str = "relu"
    bias: np.ndarray | None = None
    shape: tuple[int, ...] | None = None
    ground: bool = False
    neuron: Neuron | None = None

    def __post_init__(self) -> None:
        self.activation = parse_activation(self.activation)
        if self.shape is not None:
            self.shape = tuple(int(s) for s in self.shape)
        if self.bias is not None:
            self.bias = np.asarray(self.bias, dtype=np.float64)

    @property
    def n_features(self) -> int:
        """Number of activity values: ``prod(shape)`` for a feature map, else ``size``."""
        return int(np.prod(self.shape)) if self.shape is not None else self.size

    @property
    def balanced(self) -> bool:
        """True for hidden, homogeneous, non-spiking populations not held at ground: the ones the exchange scales."""
        return (self.role == "hidden" and self.activation.homogeneous and not self.ground
                and not (self.neuron is not None and self.neuron.spiking))

    @property
    def degree(self) -> float:
        """Degree of homogeneity ``c`` of the activation (1.0 for ground populations' bookkeeping)."""
        return self.activation.degree if self.activation.homogeneous else 1.0

    def bias_features(self) -> np.ndarray:
        """The bias broadcast to every feature (a channel's bias repeated over its positions)."""
        return np.repeat(self.bias, self.n_features // self.size)


@dataclass(eq=False)
class Projection:
    """One weight array from population ``pre`` to population ``post``.

    Parameters
    ----------
    pre, post : str
        Population names.
    weight : ndarray
        Axis 0 indexes post units (features), axis 1 pre ones; see `kinds` for other layouts.
    kind : str
        A registered projection kind (``"dense"`` by default).
    delay : {0, 1}
        1 marks a recurrent edge that reads the pre population's activity of the previous step.
    name : str, optional
        Defaults to ``"{pre}->{post}"``.
    options : dict
        Kind-specific settings (stride, padding, groups, pooling, ...).
    """

    pre: str
    post: str
    weight: np.ndarray
    kind: str = "dense"
    delay: int = 0
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name is None:
            self.name = f"{self.pre}->{self.post}"
        self.weight = np.asarray(self.weight, dtype=np.float64)


class Network:
    """Populations and the projections between them, validated on construction.

    Parameters
    ----------
    populations : iterable of Population
        Exactly one input and one output population; names unique.
    projections : iterable of Projection
        Several projections into one population add. Delay-0 projections must form a DAG.
    name : str
    """

    def __init__(self, populations: Iterable[Population], projections: Iterable[Projection],
                 name: str = "network") -> None:
        self.name = name
        self.populations: dict[str, Population] = {}
        for pop in populations:
            if pop.name in self.populations:
                raise ModelError(f"populations: duplicate name {pop.name!r}")
            self.populations[pop.name] = pop
        self.projections: list[Projection] = list(projections)
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        if not self.populations:
            raise ModelError("populations: a network needs at least an input and an output population")
        for pop in self.populations.values():
            where = f"populations[{pop.name!r}]"
            if not isinstance(pop.name, str) or not pop.name:
                raise ModelError(f"{where}.name: must be a non-empty string")
            if not isinstance(pop.size, (int, np.integer)) or pop.size < 1:
                raise ModelError(f"{where}.size: must be a positive integer, got {pop.size!r}")
            if pop.role not in ROLES:
                raise ModelError(f"{where}.role: must be one of {', '.join(ROLES)}, got {pop.role!r}")
            if pop.shape is not None:
                if len(pop.shape) != 3 or min(pop.shape) < 1:
                    raise ModelError(f"{where}.shape: must be [C, H, W] of positive integers, got {list(pop.shape)}")
                if pop.size not in (pop.shape[0], pop.n_features):
                    raise ModelError(f"{where}.size: a feature map of shape {list(pop.shape)} has size C="
                                     f"{pop.shape[0]} (one unit per channel) or C*H*W={pop.n_features}, got {pop.size}")
            if pop.bias is not None:
                if pop.role == "input":
                    raise ModelError(f"{where}.bias: input populations have no bias")
                if pop.bias.shape != (pop.size,):
                    raise ModelError(f"{where}.bias: shape {pop.bias.shape} does not match size ({pop.size},)")
                if not np.all(np.isfinite(pop.bias)):
                    raise ModelError(f"{where}.bias: contains NaN or Inf")
            if pop.neuron is not None:
                if pop.role == "input":
                    raise ModelError(f"{where}.neuron: input populations have no neuron model")
                pop.neuron.check_size(pop.n_features, where)
        for role in ("input", "output"):
            names = [p.name for p in self.populations.values() if p.role == role]
            if len(names) != 1:
                raise ModelError(f"populations: exactly one {role} population is needed, found {names}")
        names = set()
        for k, proj in enumerate(self.projections):
            where = f"projections[{k}] ({proj.name})"
            if proj.name in names:
                raise ModelError(f"{where}.name: duplicate projection name {proj.name!r}")
            names.add(proj.name)
            for end in ("pre", "post"):
                if getattr(proj, end) not in self.populations:
                    raise ModelError(f"{where}.{end}: no population named {getattr(proj, end)!r}")
            if self.populations[proj.post].role == "input":
                raise ModelError(f"{where}.post: input population {proj.post!r} cannot receive projections")
            if proj.delay not in (0, 1):
                raise ModelError(f"{where}.delay: must be 0 or 1, got {proj.delay!r}")
            pre, post = self.populations[proj.pre], self.populations[proj.post]
            try:
                kind = get_kind(proj.kind)
                expected = tuple(kind.expected_shape(proj, pre, post))
            except ModelError as err:
                raise ModelError(f"{where}: {err}") from None
            if proj.weight.shape != expected:
                raise ModelError(f"{where}.weight: shape {proj.weight.shape} does not match {expected} "
                                 f"for {proj.kind} {proj.pre!r} -> {proj.post!r}")
            if not np.all(np.isfinite(proj.weight)):
                raise ModelError(f"{where}.weight: contains NaN or Inf")
        self.order  # raises on a delay-0 cycle

    # ------------------------------------------------------------------ structure
    @cached_property
    def order(self) -> list[str]:
        """Population names in an order where every delay-0 pre comes before its post."""
        indegree = {name: 0 for name in self.populations}
        for proj in self.projections:
            if proj.delay == 0:
                indegree[proj.post] += 1
        ready = [name for name in self.populations if indegree[name] == 0]
        order = []
        while ready:
            name = ready.pop(0)
            order.append(name)
            for proj in self.projections:
                if proj.delay == 0 and proj.pre == name:
                    indegree[proj.post] -= 1
                    if indegree[proj.post] == 0:
                        ready.append(proj.post)
        if len(order) != len(self.populations):
            cyclic = sorted(set(self.populations) - set(order))
            raise ModelError(f"projections: delay-0 projections form a cycle through {cyclic}; "
                             "mark recurrent edges with delay: 1")
        return order

    @property
    def input(self) -> Population:
        """The input population."""
        return next(p for p in self.populations.values() if p.role == "input")

    @property
    def output(self) -> Population:
        """The output population."""
        return next(p for p in self.populations.values() if p.role == "output")

    @property
    def recurrent(self) -> bool:
        """True when some projection has delay 1 (inputs are then sequences)."""
        return any(proj.delay == 1 for proj in self.projections)

    @property
    def n_parameters(self) -> int:
        """Number of weights and biases."""
        return sum(p.weight.size for p in self.projections) + sum(
            p.bias.size for p in self.populations.values() if p.bias is not None)

    def projection(self, name: str) -> Projection:
        """The projection called ``name``."""
        for proj in self.projections:
            if proj.name == name:
                return proj
        raise KeyError(name)

    def incoming(self, name: str) -> list[Projection]:
        """Projections whose post population is ``name``."""
        return [p for p in self.projections if p.post == name]

    def outgoing(self, name: str) -> list[Projection]:
        """Projections whose pre population is ``name``."""
        return [p for p in self.projections if p.pre == name]

    def copy(self) -> "Network":
        """A deep copy (weights and biases copied)."""
        return _copy.deepcopy(self)

    def __repr__(self) -> str:
        pops = ", ".join(f"{p.name}[{p.size}]" for p in self.populations.values())
        return f"Network({self.name!r}: {pops}; {len(self.projections)} projections, {self.n_parameters} parameters)"

    # ------------------------------------------------------------------ forward pass
    def forward(self, x: np.ndarray, return_all: bool = False) -> np.ndarray | dict[str, np.ndarray]:
        """Float64 reference forward pass.

        Parameters
        ----------
        x : ndarray
            ``(batch, n_in)`` for a feedforward network, ``(T, batch, n_in)`` for a recurrent one
            (``n_in`` = the input population's number of features).
        return_all : bool
            Return every population's activity instead of only the output.

        Returns
        -------
        ndarray or dict of ndarray
            Output activity ``(batch, n_out)`` (``(T, batch, n_out)`` if recurrent), or a dict of
            all activities with the same leading axes.
        """
        x = np.asarray(x, dtype=np.float64)
        n_in = self.input.n_features
        if self.recurrent:
            if x.ndim != 3 or x.shape[2] != n_in:
                raise ModelError(f"forward: a recurrent network takes (T, batch, {n_in}) inputs, got {x.shape}")
            previous = None
            steps = []
            for t in range(x.shape[0]):
                previous = self._step(x[t], previous)
                steps.append(previous)
            if return_all:
                return {name: np.stack([s[name] for s in steps]) for name in self.populations}
            return np.stack([s[self.output.name] for s in steps])
        if x.ndim != 2 or x.shape[1] != n_in:
            raise ModelError(f"forward: expected inputs of shape (batch, {n_in}), got {x.shape}")
        acts = self._step(x, None)
        return acts if return_all else acts[self.output.name]

    def preactivation(self, name: str, acts: dict[str, np.ndarray],
                      previous: dict[str, np.ndarray] | None) -> np.ndarray:
        """Input of population ``name`` given current ``acts`` and the previous step's activities."""
        pop = self.populations[name]
        batch = next(iter(acts.values())).shape[0]
        z = np.zeros((batch, pop.n_features))
        if pop.bias is not None:
            z += pop.bias_features()
        for proj in self.incoming(name):
            if proj.delay == 1:
                if previous is None:
                    continue  # the state before the first step is zero
                source = previous[proj.pre]
            else:
                source = acts[proj.pre]
            z += get_kind(proj.kind).propagate(proj, self.populations[proj.pre], pop, source)
        return z

    def _step(self, x: np.ndarray, previous: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        acts: dict[str, np.ndarray] = {}
        for name in self.order:
            pop = self.populations[name]
            if pop.role == "input":
                acts[name] = x
            else:
                acts[name] = pop.activation(self.preactivation(name, acts, previous))
        return acts

