"""Brian2 model strings generated from a network and a cost (no Brian2 import here).

Every balanced unit is an agent that, on its ``balance`` event, runs three stages inside the
``synapses`` scheduling slot (orders ``3 r``, ``3 r + 1``, ``3 r + 2`` for the population of rank ``r``):

1. accumulate: every synapse adds ``|w|**p`` to its post unit's ``cin`` and its pre unit's ``cout``;
2. lambda: the unit computes ``lam_star`` of `neuro_balance.balancing.closed_form`, rendered to a
   string by `render_lambda` (dead-unit guard ``cin == 0 or cout == 0 -> lam = 1``), and rescales
   its bias, ``b *= lam``;
3. scale: incoming synapses ``w *= lam_post``, outgoing ones ``w *= lam_pre ** -c``.

The strings below are data: `BalancingNetwork` assembles them per population and projection.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..balancing.closed_form import lambda_exponent, out_factor, render_lambda
from ..balancing.costs import Cost
from ..errors import ModelError

__all__ = ["CostCode", "cost_code", "neuron_balance_model", "balance_condition", "lambda_code", "scale_out_code", "SCALE_IN"]


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


def neuron_balance_model(has_bias: bool, code: CostCode) -> str:
    """State variables of an agent population (added to its neuron model).

    Numbers that differ between networks and costs (``p``, the exponent, the out-cost factor ``c``,
    the number of colours) are shared variables, not namespace constants: Brian2 would freeze
    constants into the generated code and recompile it for every value.
    """
    lines = [
        "cin : 1", "cout : 1", "lam : 1", "lam_cum : 1", "imb : 1",
        "colour : integer (constant)", "agent : integer (constant)",
        "rate_bal : Hz (shared)", "n_colours : integer (shared, constant)",
        "balance_every : integer (shared, constant)", "dt_bal : second (shared, constant)",
        "expo : 1 (shared, constant)", "c_out : 1 (shared, constant)",
    ]
    if has_bias:
        lines.append("b : 1")
    if code.generic:
        lines.append("p_cost : 1 (shared, constant)")
    return "\n".join(lines)


def balance_condition(colouring: bool) -> str:
    """The ``balance`` event: a Poisson clock, gated by colour so neighbours never fire together.

    With ``n_colours`` colours, a unit of colour ``k`` may fire only on ticks ``t % n_colours == k`` of
    its balance clock (every ``balance_every`` steps, ``dt_bal`` apart), with probability
    ``n_colours * rate_bal * dt_bal``: the same mean rate, never two neighbours in a step.
    """
    if colouring:
        return ("agent > 0 and ((t_in_timesteps // balance_every) % n_colours) == colour "
                "and rand() < n_colours*rate_bal*dt_bal")
    return "agent > 0 and rand() < rate_bal*dt_bal"


def lambda_code(code: CostCode, bias_in_cost: bool, has_bias: bool) -> str:
    """The agent's local step: ``lam`` from its own ``cin`` and ``cout``, then bias and reset.

    ``expo`` and ``c_out`` are shared variables set from `CostCode.exponent` and the degree ``c``
    (``c_out = c`` for Lp, 1 for L-infinity). Adding ``int(x <= 0)`` to a non-negative ``x``
    changes it only when it is 0, so the quotient is exact for live units; raising to ``expo * ok``
    gives exactly 1 for dead ones (``x ** 0``).
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
    ]
    if has_bias:
        lines.append("b = b*lam")
    lines += ["cin = 0", "cout = 0"]
    return "\n".join(lines)


def scale_out_code(degree: float) -> str:
    """Outgoing synapses of a unit of degree ``c``: ``w *= lam_pre ** -c``."""
    if degree == 1.0:
        return "w = w/lam_pre"
    return f"w = w*lam_pre**{-float(degree)!r}"


SCALE_IN = "w = w*lam_post"
