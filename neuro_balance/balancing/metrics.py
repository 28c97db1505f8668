"""Per-unit balance diagnostics and scale-invariant quantities.

A unit's imbalance is measured under the invariance balancing applies to it (`unit_invariance`): the
**exchange** of homogeneous units (incoming x ``lam``, outgoing x ``1/lam**c``), whose imbalance is the
balance equation's; under ``invariance="exact"`` the **gauge** of spiking units (IF, LIF, CubaLIF:
incoming weights, bias and potentials x ``mu``, outgoing unchanged), whose imbalance is
``|in - out| / max(in, out)``, what `neuro_balance.balancing.spiking` drives to zero; under
``invariance="rate"`` the **rate exchange** of IF units, balanced like their rate model (ReLU, once the
exact gauge has set their thresholds to 1: `neuro_balance.balancing.spiking.rate_view`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import math

import numpy as np

from ..errors import ModelError
from ..model.activations import parse_activation
from .costs import Cost
from .graph import build_graph, relative_imbalance
from .local import optimal_log_step
from .verify import cost_text, unscaled
from ..model.network import Network, Population

__all__ = ["ImbalanceReport", "imbalance", "path_norm", "unit_invariance", "rate_coded", "INVARIANCES"]

INVARIANCES = ("exact", "rate")


def unit_invariance(pop: Population, invariance: str = "exact") -> str:
    """What balancing does to the units of ``pop`` under ``invariance``.

    Returns
    -------
    str
        ``"gauge"`` (a hidden spiking unit under ``exact``: incoming weights, bias and potentials x ``mu``,
        every spike unchanged), ``"rate exchange"`` (a hidden IF unit under ``rate``: its rate x ``lam``,
        rate-level only), ``"exchange"`` (a hidden homogeneous unit, LI, CubaLI and I included: exact), or
        ``"none"`` (inputs, outputs, ground and non-homogeneous units: never scaled).
    """
    if pop.role != "hidden":
        return "none"
    if pop.neuron is not None and pop.neuron.spiking:
        return "gauge" if invariance == "exact" else "rate exchange"
    return "exchange" if pop.balanced else "none"


def rate_coded(net: Network) -> list[str]:
    """The hidden spiking populations, which the rate exchange balances as their rate model (ReLU).

    Raises
    ------
    ModelError
        For a hidden LIF or CubaLIF population (named): a leak makes the rate a non-homogeneous
        function of the input, so the rate exchange does not keep what it computes.
    """
    names = [n for n in net.order if net.populations[n].role == "hidden" and net.populations[n].neuron is not None
             and net.populations[n].neuron.spiking]
    for name in names:
        model = net.populations[name].neuron.model
        if model != "IF":
            raise ModelError(f"node {name!r}: {model} leaks (tau), so its rate is not a homogeneous function of its "
                             "input and the rate exchange does not keep what it computes; use the exact invariance "
                             "(the gauge: --invariance exact, invariance='exact')")
    return names


@dataclass
class ImbalanceReport:
    """Balance diagnostics of a network for one cost.

    Attributes
    ----------
    in_cost, out_cost : dict of ndarray
        Per population and unit: the cost of its incoming parameters (bias included unless the
        cost excludes it) and of its outgoing ones. Parameters joining a unit to itself count on
        both sides.
    lam_star : dict of ndarray
        The factor balancing would apply to each unit now (1 for units that are never scaled); for a
        gauge unit, its gauge step ``mu = (out / in) ** (1 / p)``.
    relative : dict of ndarray
        ``|in - c*out| / max(in, c*out)`` per unit in the balance equation's form (NaN where undefined);
        for a gauge unit ``|in - out| / max(in, out)`` (with ``tie="layer"``, that of its layer's sums).
    deficit : dict of ndarray
        ``(in - out)**2`` per unit (S1's deficit for the L2 cost).
    balanced, dead : dict of ndarray of bool
        Units balancing scales; units with zero in- or out-cost (never scaled).
    max_relative : float
        Largest relative imbalance over the balanced units.
    total_cost : float
        The cost of all parameters (``inf`` beyond float64: see ``log_total_cost``).
    log_total_cost : float
        Its natural log, computed without leaving float64 (``-inf`` for a zero cost).
    invariance : {"exact", "rate"}
        The invariance the spiking units were measured under.
    symmetry : dict of str
        Per population, what balancing does to it (`unit_invariance`).
    """

    cost: Cost
    in_cost: dict[str, np.ndarray]
    out_cost: dict[str, np.ndarray]
    lam_star: dict[str, np.ndarray]
    relative: dict[str, np.ndarray]
    deficit: dict[str, np.ndarray]
    balanced: dict[str, np.ndarray]
    dead: dict[str, np.ndarray]
    max_relative: float
    total_cost: float
    log_total_cost: float = 0.0
    invariance: str = "exact"
    symmetry: dict[str, str] = field(default_factory=dict)

    @property
    def total_deficit(self) -> float:
        """Sum of the deficits of the balanced units."""
        return float(sum(self.deficit[n][self.balanced[n]].sum() for n in self.deficit))

    @property
    def total_cost_text(self) -> str:
        """``total_cost`` to 6 digits, written from its log when it is outside float64 (e.g. ``2.4e+321 (outside float64)``)."""
        return cost_text(self.total_cost, self.log_total_cost)

    @property
    def n_dead(self) -> int:
        return int(sum(m.sum() for m in self.dead.values()))

    def __repr__(self) -> str:
        lines = [f"ImbalanceReport({self.cost}): total cost {self.total_cost_text}, "
                 f"max relative imbalance {self.max_relative:.3g}, {self.n_dead} dead units"]
        for name, mask in self.balanced.items():
            if mask.any() or self.dead[name].any():
                rel = self.relative[name][mask]
                lines.append(f"  {name}: {int(mask.sum())} balanced, {int(self.dead[name].sum())} dead, "
                             f"max imbalance {np.max(rel) if rel.size else 0.0:.3g}")
        return "\n".join(lines)


def imbalance(net: Network, cost: Cost, tie: str | None = None, invariance: str = "exact") -> ImbalanceReport:
    """Per-unit in-cost, out-cost, balancing factor and imbalance of ``net`` for ``cost``.

    Every unit is measured under the invariance balancing applies to it (module docstring), so
    ``max_relative`` is what `balance` reports and drives below its ``tol``, spiking units included.

    Parameters
    ----------
    net : Network
    cost : Cost
    tie : {None, "channel", "layer"}
        Report on tied groups instead of units (see `build_graph`); with ``"layer"`` a spiking
        population's gauge is one factor, and its imbalance that of its summed costs.
    invariance : {"exact", "rate"}
        For networks with spiking units (NIR IF, LIF, CubaLIF): ``exact`` measures them under the gauge,
        ``rate`` measures hidden IF units as their rate model, thresholds gauged to 1 (a hidden LIF or
        CubaLIF is refused with `ModelError`, as `balance` refuses it). No effect on networks without
        spiking units.

    Returns
    -------
    ImbalanceReport

    Examples
    --------
    >>> import neuro_balance as nb
    >>> rep = nb.imbalance(nb.mlp([4, 8, 3], seed=0), nb.Lp(2))
    >>> rep.in_cost["h1"].shape
    (8,)
    """
    if invariance not in INVARIANCES:
        raise ValueError(f"invariance must be one of {INVARIANCES}, got {invariance!r}")
    symmetry = {name: unit_invariance(pop, invariance) for name, pop in net.populations.items()}
    if invariance == "rate" and rate_coded(net):
        from .spiking import rate_view  # (spiking imports this module) thresholds to 1: each IF unit its rate model

        net = rate_view(net)[0]
    graph = build_graph(net, cost, tie)
    u = graph.zeros()
    costs = graph.unit_costs(u)
    rel = relative_imbalance(graph, costs)
    alphas = np.asarray(graph.alphas)
    in_cost, out_cost, lam, deficit, balanced = {}, {}, {}, {}, {}
    dead = dict(graph.dead)
    for name, (A, B, S) in costs.items():
        if graph.linf:
            in_cost[name] = np.maximum(A[0], S[0])
            out_cost[name] = np.maximum(B[0], S[0])
        else:
            in_cost[name] = alphas @ (A + S)
            out_cost[name] = alphas @ (B + S)
        with np.errstate(over="ignore"):
            deficit[name] = (in_cost[name] - out_cost[name]) ** 2
        balanced[name] = graph.free[name] | graph.pinned[name]
        step = np.zeros(graph.sizes[name])
        if graph.free[name].any():
            idx = graph.free[name]
            step[idx] = optimal_log_step(graph, graph.degree[name], A[:, idx], B[:, idx], S[:, idx])
        lam[name] = np.exp(step)
        if symmetry[name] == "gauge":  # from the graph's costs: their ratios stay finite where the parameters' overflow
            rel[name], lam[name], balanced[name], dead[name] = _gauge_imbalance(in_cost[name], out_cost[name], tie,
                                                                                cost)
        if graph.log_unit:  # the graph's costs are the parameters' times exp(-log_unit) (`graph.shifted_cost`)
            with np.errstate(over="ignore", divide="ignore"):
                for values, power in ((in_cost[name], 1), (out_cost[name], 1), (deficit[name], 2)):
                    values[...] = np.exp(np.log(values) + power * graph.log_unit)
    worst = max((float(np.max(rel[n][balanced[n]])) for n in rel if balanced[n].any()), default=0.0)
    total = graph.total_cost(u, costs)
    log_total = (math.log(total) if total > 0 else -math.inf) + graph.log_unit
    return ImbalanceReport(cost, in_cost, out_cost, lam, rel, deficit, balanced, dead, worst,
                           unscaled(total, graph.log_unit), log_total, invariance, symmetry)


def _gauge_imbalance(A: np.ndarray, B: np.ndarray, tie: str | None, cost: Cost):
    """(relative, mu, live, dead) of a spiking population's units under the gauge, from their in- and out-costs.

    A unit's gauge multiplies its in-cost by ``mu**p`` and leaves its out-cost: it is balanced when the two
    are equal. Units (with ``tie="layer"``, layers) with a zero side are dead: the gauge leaves them.
    """
    if tie == "layer":
        A, B = np.full(A.shape, A.sum()), np.full(B.shape, B.sum())
    live = (A > 0) & (B > 0)
    relative = np.full(A.shape, np.nan)
    relative[live] = np.abs(A - B)[live] / np.maximum(A, B)[live]
    p = 1.0 if cost.is_linf else max(p for _, p in cost.terms)
    mu = np.ones(A.shape)
    with np.errstate(over="ignore", under="ignore"):
        mu[live] = np.exp(np.log(B[live] / A[live]) / p)
    return relative, mu, live, ~live


def path_norm(net: Network, q: float = 1.0) -> float:
    """The Lq path-norm: ``(sum over input->output paths of prod |w|**q) ** (1/q)``, biases included.

    Computed by one forward pass of the network with every parameter replaced by ``|w|**q``,
    linear units and an all-ones input (biases start paths from the ground unit). It is invariant
    under any rescaling of BiLU units, so balancing leaves it unchanged. Defined for feedforward
    networks of BiLU units (recurrent networks: use the unrolled network).

    Parameters
    ----------
    net : Network
    q : float
        Exponent, ``q > 0``.

    Raises
    ------
    ValueError
        For ``q <= 0``, a recurrent network, or a population that is not BiLU (``tanh``, ``bipu:c``,
        ...): the sum over paths is not what such a network computes, nor invariant under its rescalings.
    """
    if q <= 0:
        raise ValueError(f"q must be > 0, got {q!r}")
    if net.recurrent:
        raise ValueError("path_norm is defined for feedforward networks")
    other = {name: pop.activation.spec for name, pop in net.populations.items() if pop.activation.kind != "bilu"}
    if other:
        raise ValueError(f"path_norm is defined for BiLU units only; populations {other} are not")
    powered = net.copy()
    for proj in powered.projections:
        proj.weight = np.abs(proj.weight) ** q
    for pop in powered.populations.values():
        if pop.bias is not None:
            pop.bias = np.abs(pop.bias) ** q
        pop.activation = parse_activation("linear")
    x = np.ones((1, powered.input.n_features))
    return float(powered.forward(x).sum() ** (1.0 / q))
