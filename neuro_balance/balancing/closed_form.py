"""The closed forms of balancing, each written once: one unit's optimal step and the self-loop factor.

A unit of degree ``c`` (1 for BiLU, ``c`` for a BiPU ``x**c``) scaled by ``lam = exp(d)`` multiplies its
incoming parameters by ``lam``, its outgoing ones by ``lam**-c`` and a parameter from itself to itself
by ``lam**(1 - c)`` (`loop_rate`). With in-cost ``A``, out-cost ``B`` and loop cost ``S``, the step
minimising the unit's own cost is (theory eq 3.3 and its BiPU form)::

    Lp:          lam_star = (c * B / A) ** (1 / (p * (1 + c)))       # BiLU: (B / A) ** (1 / (2 p))
    L-infinity:  lam_star = (B / A) ** (1 / (1 + c))                 # max-balancing, no loop term

An Lp loop term has no closed form unless ``c == 1`` (it does not move); under L-infinity it bends the
max (`linf_log_step`). The local engines, the cost graph's statistics, the metrics and the Brian2
code generator (`render_lambda`) all take these formulas from here.
"""
from __future__ import annotations

import numpy as np

__all__ = ["loop_rate", "out_factor", "lambda_exponent", "lp_log_step", "linf_log_step", "linf_sides",
           "render_lambda"]


def loop_rate(c: float) -> float:
    """``1 - c``: a parameter from a unit to itself is multiplied by ``lam ** (1 - c)`` (cost by ``lam ** (p (1 - c))``)."""
    return 1.0 - c


def out_factor(c: float, linf: bool) -> float:
    """The factor on the out-cost in ``lam_star``: ``c`` for Lp, 1 for L-infinity."""
    return 1.0 if linf else c


def lambda_exponent(p: float, c: float, linf: bool) -> float:
    """The power of ``out_factor * B / A`` in ``lam_star``: ``1 / (p (1 + c))``, or ``1 / (1 + c)`` for L-infinity."""
    return 1.0 / (1.0 + c) if linf else 1.0 / (p * (1.0 + c))


def lp_log_step(A, B, p: float, c: float):
    """``log lam_star = log(c B / A) / (p (1 + c))`` for an Lp cost and no loop cost that moves.

    Works elementwise on arrays (in-costs ``A``, out-costs ``B``) and on scalars.
    """
    return np.log(out_factor(c, False) * B / A) * lambda_exponent(p, c, False)


def linf_log_step(A, B, S, c: float):
    """``log lam_star`` minimising ``max(A lam, B lam**-c, S lam**(1 - c))`` (L-infinity, loop cost ``S``).

    In log space the three terms are lines; the minimum of their maximum is where the rising
    envelope meets the falling one. Without loops (or for ``c == 1``, where loops do not move) it is
    ``log(B / A) / (1 + c)``. For ``c > 1`` the loop term falls and the step is the larger of that
    and ``log(S / A) / c`` (``A`` meets the loop line); for ``c < 1`` it rises and the step is the
    smaller of that and ``log(B / S)``. ``S=None``: the unit has no loop.
    """
    d = np.log(B / A) / (1.0 + c)
    if c == 1.0 or S is None:
        return d
    with np.errstate(divide="ignore"):
        if c > 1.0:
            return np.maximum(d, np.log(S / A) / c)
        return np.minimum(d, np.log(B / S))


def linf_sides(A, B, S, c):
    """The two sides of the L-infinity balance equation: the rising and the falling part of the unit's max.

    ``(max(A, S if c < 1), max(B, S if c > 1))``; equal exactly at the step of `linf_log_step`
    (when both are positive). ``c`` may be an array of degrees, one per unit.
    """
    c = np.asarray(c)
    return np.where(c < 1.0, np.maximum(A, S), A), np.where(c > 1.0, np.maximum(B, S), B)


def render_lambda(cin: str, cout: str, factor: str, exponent: str) -> str:
    """``lam_star`` as an expression string (the Brian2 agents' code): ``((factor*cout)/(cin))**(exponent)``.

    ``factor`` and ``exponent`` name variables holding `out_factor` and `lambda_exponent`.
    """
    return f"(({factor}*{cout})/({cin}))**({exponent})"
