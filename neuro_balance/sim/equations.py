"""Brian2 model strings generated from a network, a cost and a schedule (no Brian2 import here).

Every balanced unit is an agent. Within one tick of the agents' clock, everything runs in the
``synapses`` scheduling slot, in these orders (`ORDERS`), the same for every population:

0. request: a unit whose own Poisson clock has run out (``t >= t_next``; colour schedule: a
   colour-gated ``rand()``) raises a ``request`` event, draws a random priority ``prio`` and clears
   its sums;
1. accumulate and detect: every synapse of a requesting unit adds ``|w|**p`` to its post unit's
   ``cin`` or its pre unit's ``cout``; if the unit at the synapse's other end requested too, with a
   priority at least as high, the requester notes ``lost`` (local schedule only);
2. decide: a requester that did not lose raises ``balance``; a loser keeps its request and retries
   on the next tick with a new priority;
3. lambda: the winner computes ``lam_star`` of `neuro_balance.balancing.closed_form`, rendered to
   a string by `render_lambda` (dead-unit guard ``cin == 0 or cout == 0 -> lam = 1``),
   rescales its bias ``b *= lam``, then draws its next request time; spiking, it notes the factor
   in ``resc`` for its membrane;
4. scale: incoming synapses ``w *= lam_post``, outgoing ones ``w *= lam_pre ** -c``; each synapse
   of a winner also tells the unit at its other end that a neighbour balanced (``knocked``);
5. second round (local schedule): a loser that no winner knocked (it lost only to neighbours that
   lost too) raises ``retry``, compares priorities again with the other retrying units through the
   same synapses, and the ones that win balance (stages 3 and 4 again). Its sums are still exact:
   no neighbour of it has moved in this tick.

Winners of both rounds never share a parameter, so the tick is exactly the sequential algorithm
(any order of its winners gives the same result). The second round matters in dense graphs: in a
complete bipartite pair of populations the first round lets ~2 units win per tick, the second lets
every pending unit of the winners' side win.

Spiking units rescale their membrane ``v *= lam`` (and whatever else of their state moves with the
factor, `neuro_balance.sim.neurons.UnitModel.rescale`) in the ``after_resets`` slot (the ``rescale``
event, `RESCALE`), after the reset of a spike they emitted on the same tick: that spike was decided,
and its charge delivered, under the old factor, so it must subtract the old threshold. Rescaling in
the ``synapses`` slot, before the reset, would subtract the new one (a charge error of
``1 - lam`` spikes on every such coincidence).

With ``balance_every = k > 1`` every event condition also asks ``t_in_timesteps % k == 0``: units
balance only on every k-th tick (and a loser retries on the next such tick).

The strings below are data: `neuro_balance.sim.build` assembles them per population and projection.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..balancing.closed_form import lambda_exponent, out_factor, render_lambda
from ..balancing.costs import Cost
from ..errors import ModelError

__all__ = ["CostCode", "cost_code", "ORDERS", "neuron_balance_model", "request_condition", "request_code", "DECIDE",
           "RETRY", "RETRY_CODE", "DECIDE2", "detect_code", "knock_code", "lambda_code", "scale_in_code",
           "ON_GRID", "RESCALE", "RESCALE_SLOT", "scale_out_code", "synapse_model", "DRIFT_CODE"]


@dataclass(frozen=True)
class CostCode:
    """How one cost is written in Brian2 abstract code.

    Attributes
    ----------
    p : float
        The exponent (1 for L-infinity).
    linf : bool
        Sums are maxima.
    """

    p: float
    linf: bool

    @property
    def generic(self) -> bool:
        """True when ``|w|**p`` needs ``pow`` and the shared variable ``p_cost``."""
        return not self.linf and self.p not in (1.0, 2.0)

    def element(self, var: str, p_name: str = "p_cost") -> str:
        """``|var|**p`` with fast paths for p = 1 and p = 2 (no ``pow`` call).

        In the generic case ``p`` is read from the agent's shared variable ``p_name`` (not a
        constant), so every p shares one compiled code.
        """
        if self.linf or self.p == 1.0:
            return f"abs({var})"
        if self.p == 2.0:
            return f"{var}*{var}"
        return f"abs({var})**{p_name}"

    def accumulate(self, target: str, var: str, p_name: str = "p_cost") -> str:
        """A statement adding ``|var|**p`` into ``target`` (a maximum under L-infinity).

        ``max(a, b) = clip(a, b, a + b)`` for ``a, b >= 0``: Brian2 has ``clip`` on every target.
        """
        elem = self.element(var, p_name)
        if self.linf:
            return f"{target} = clip({elem}, {target}, {target} + {elem})"
        return f"{target} += {elem}"

    def exponent(self, degree: float) -> float:
        """The power applied to ``c * cout / cin`` (Lp) or ``cout / cin`` (L-infinity)."""
        return lambda_exponent(self.p, degree, self.linf)

    def out_factor(self, degree: float) -> float:
        """The factor on ``cout`` (the agents' ``c_out``): ``c`` for Lp, 1 for L-infinity."""
        return out_factor(degree, self.linf)


def cost_code(cost: Cost) -> CostCode:
    """The `CostCode` of a single-term cost; weighted sums of terms are refused.

    Raises
    ------
    ModelError
        For a cost with several terms (its local step has no closed form, see `optimal_log_step`).
    """
    if len(cost.terms) != 1:
        raise ModelError(f"cost: the Brian2 agents need a single Lp or Linf term (a closed-form lambda), got {cost}")
    _, p = cost.terms[0]
    if math.isinf(p):
        return CostCode(1.0, True)
    return CostCode(float(p), False)


ON_GRID = "t_in_timesteps % balance_every == 0"
"""The agents act only on every ``balance_every``-th tick."""

ORDERS = {"spike": -1, "request": 0, "draw": 1, "accumulate": 2, "decide": 3, "lambda": 4, "scale": 5, "retry": 6,
          "redraw": 7, "detect": 8, "decide2": 9, "lambda2": 10, "scale2": 11, "monitor": 12}
"""Orders within the ``synapses`` slot: spikes first, then the agents' stages (see the module docstring)."""

DECIDE = "req > 0 and lost == 0 and " + ON_GRID
"""The ``balance`` event: a requester that no neighbour outranked."""

RETRY = "req > 0 and lost > 0 and knocked == 0 and " + ON_GRID
"""The ``retry`` event (second round): a loser none of whose neighbours balanced in this tick."""

RETRY_CODE = "lost = 0\nrt = 1"

DECIDE2 = "rt > 0 and lost == 0 and " + ON_GRID
"""The ``balance2`` event: a retrying unit that no retrying neighbour outranked."""

RESCALE = "resc > 0"
"""The ``rescale`` event (``after_resets`` slot): a spiking unit that balanced on this tick."""

RESCALE_SLOT = "after_resets"

DRIFT_CODE = "logdrift = logdrift*decay_d + sigma_d*sqrt(1 - decay_d*decay_d)*randn()"
"""Exact Ornstein-Uhlenbeck step of every synapse's log-drift (``decay_d = exp(-dt_d / tau_d)``)."""


def neuron_balance_model(has_bias: bool, code: CostCode, schedule: str, spiking: bool = False) -> str:
    """State variables of an agent population (added to its neuron model).

    Numbers that differ between networks and costs (``p``, the exponent, the out-cost factor ``c``,
    the number of colours) are shared variables, not namespace constants: Brian2 would freeze
    constants into the generated code and recompile it for every value.
    """
    lines = [
        "cin : 1", "cout : 1", "lam : 1", "lam_cum : 1", "imb : 1", "req : 1", "lost : 1", "knocked : 1", "rt : 1",
        "agent : integer (constant)", "rate_bal : Hz (shared)",
        "expo : 1 (shared, constant)", "c_out : 1 (shared, constant)", "balance_every : integer (shared, constant)",
    ]
    if schedule == "local":
        lines += ["prio : 1", "t_next : second"]
    else:
        lines += ["colour : integer (constant)", "n_colours : integer (shared, constant)",
                  "dt_bal : second (shared, constant)"]
    if has_bias:
        lines.append("b : 1")
    if code.generic:
        lines.append("p_cost : 1 (shared, constant)")
    if spiking:
        lines.append("resc : 1")
    return "\n".join(lines)


def request_condition(schedule: str) -> str:
    """The ``request`` event: the unit's own Poisson clock (local), or a colour-gated coin (colour).

    Local: each unit holds the time ``t_next`` of its next request, drawn at its previous event, so
    an idle unit draws no random number; on the runtime targets the stages do not even run on a tick
    before the earliest ``t_next`` (`neuro_balance.sim.build.RequestGate`). Colour: a unit of colour ``k``
    may request only on ticks ``t % n_colours == k`` of the agents' clock, with probability
    ``n_colours * rate_bal * dt_bal`` (the same mean rate; neighbours never request together).
    """
    if schedule == "local":
        return "agent > 0 and t >= t_next and " + ON_GRID
    return ("agent > 0 and " + ON_GRID + " and ((t_in_timesteps // balance_every) % n_colours) == colour "
            "and rand() < n_colours*rate_bal*dt_bal")


def request_code(schedule: str) -> str:
    """What a requester does first: mark the request, clear its sums, draw a priority (local)."""
    lines = ["req = 1", "lost = 0", "knocked = 0", "rt = 0", "cin = 0", "cout = 0"]
    if schedule == "local":
        lines.append("prio = rand()")
    return "\n".join(lines)


def detect_code(side: str, flag: str = "req") -> str:
    """A synapse tells its requesting ``side`` end (``pre`` or ``post``) that the other end outranks it.

    ``flag`` marks the other end's request (``req``; ``rt`` in the second round). Ties (equal
    priorities) make both lose, so two neighbours never both win.
    """
    other = "post" if side == "pre" else "pre"
    return f"lost_{side} += int({flag}_{other} > 0 and prio_{other} >= prio_{side})"


def knock_code(side: str) -> str:
    """A winner's synapse tells the unit at its other end (``side``) that a neighbour balanced."""
    return f"knocked_{side} += 1"


def lambda_code(code: CostCode, bias_in_cost: bool, has_bias: bool, spiking: bool = False,
                schedule: str = "local") -> str:
    """The winner's local step: ``lam`` from its own ``cin`` and ``cout``, bias, membrane, next request.

    ``expo`` and ``c_out`` are shared variables set from `CostCode.exponent` and the degree ``c``
    (``c_out = c`` for Lp, 1 for L-infinity). Adding ``int(x <= 0)`` to a non-negative ``x``
    changes it only when it is 0, so the quotient is exact for live units; raising to ``expo * ok``
    gives exactly 1 for dead ones (``x ** 0``). The next request comes an exponential time later
    (``1 - rand()`` is in (0, 1], so the logarithm is finite).
    """
    cout = "c_out*cout"
    lines = []
    if bias_in_cost and has_bias:
        lines.append(code.accumulate("cin", "b"))
    lines += [
        "ok = int(cin > 0 and cout > 0)",
        "lam = " + render_lambda("cin + int(cin <= 0)", "(cout + int(cout <= 0))", "c_out", "expo*ok"),
        f"imb = ok*abs(cin - {cout})/(clip(cin, {cout}, cin + {cout}) + int(ok == 0))",
        "lam_cum = lam_cum*lam",
        "req = 0",
        "rt = 0",
    ]
    if has_bias:
        lines.append("b = b*lam")
    if spiking:
        lines.append("resc = lam")  # the membrane follows after the resets (RESCALE)
    if schedule == "local":
        # a paused clock (rate 0, as in measurement windows) draws a request time that never comes; the clip
        # keeps compiled targets from dividing by zero (numpy would give inf, Cython raises)
        lines.append("t_next = t - log(1 - rand())/clip(rate_bal, 1e-30*Hz, rate_bal + 1e-30*Hz)")
    return "\n".join(lines)


def scale_in_code(weight: str = "w") -> str:
    """Incoming synapses of a winner: ``w *= lam_post``."""
    return f"{weight} = {weight}*lam_post"


def scale_out_code(degree: float, weight: str = "w") -> str:
    """Outgoing synapses of a winner of degree ``c``: ``w *= lam_pre ** -c``."""
    if degree == 1.0:
        return f"{weight} = {weight}/lam_pre"
    return f"{weight} = {weight}*lam_pre**{-float(degree)!r}"


def synapse_model(drift: bool) -> str:
    """A projection's synapses: a weight ``w`` (with drift: ``w = w_base * exp(logdrift)``) and its flat index."""
    if drift:
        return ("w_base : 1\nlogdrift : 1\nw = w_base*exp(logdrift) : 1\nk : integer (constant)\n"
                "sigma_d : 1 (shared, constant)\ndecay_d : 1 (shared, constant)")
    return "w : 1\nk : integer (constant)"
