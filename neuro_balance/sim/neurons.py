"""The spiking units the agents run, as Brian2 model strings: IF and LIF for the toolkit's networks, NIR's models.

Toolkit networks (populations without a NIR neuron model) run in continuous time, potentials in units of
the threshold (1), an activity of 1 coded as the rate ``R`` (``input_rate``):

=====================  ===========================================================================
IF (``neuron=None``)   ``dv/dt = b R``; a spike of weight ``w`` adds ``w`` to ``v``; ``v > 1``: ``v -= 1``
`LIF`                  ``dv/dt = -v / tau_m + b R (+ I)`` while not refractory; exponential current
                       synapses (``tau_syn``): ``dI/dt = -I / tau_syn``, a spike adds ``w / tau_syn`` to
                       ``I`` (it delivers the charge ``w``, as a delta synapse does); ``v > 1``: reset by
                       subtraction or to 0, then ``t_ref`` of dead time (input arriving then is lost)
=====================  ===========================================================================

Input units stay integrate-and-fire encoders driven by ``x R`` (``coding="current"``), or are Poisson
or given spike trains. Balancing exchanges a unit's rate (incoming and bias x ``lam``, outgoing
/ ``lam``, its membrane and synaptic current x ``lam``): exact for IF, approximate for LIF by the amount
`neuro_balance.sim.lif` predicts and measures.

NIR graphs (every non-input population carries a NIR neuron model, `neuro_balance.model.neurons`) run
exactly the forward-Euler step of `neuro_balance.model.dynamics.run_steps`, in Brian2: each step, in
network order, a population takes its input ``z`` (bias plus the spikes that arrived), updates its state,
fires and resets, and its spikes reach the next populations in the same step (a delay-1 projection:
the next step). Its step ``NIRSteps.dt`` is the graph's own (snnTorch's export: the simulation step in
seconds; sinabs's: 1). A hidden spiking unit (IF, LIF, CubaLIF) balances by its **gauge**: incoming
weights, bias, potentials (``v_threshold``, ``v_reset``, ``v_leak``), membrane and synaptic current
x ``mu``, outgoing weights unchanged, so no spike changes; a non-spiking one (LI, CubaLI, I) by the
exchange, exact for these linear units (its ``v_leak``, membrane and current x ``lam``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..model.network import Population
from .units import seconds

__all__ = ["LIF", "NIRSteps", "UnitModel", "RESETS", "toolkit_unit", "nir_unit", "nir_input", "NIR_SLOT", "nir_orders"]

RESETS = ("subtract", "value")
NIR_SLOT = "groups"
"""The scheduling slot of a NIR graph's whole step (updates, spikes, their delivery, resets)."""


@dataclass(frozen=True)
class LIF:
    """Leaky integrate-and-fire units for a toolkit network's hidden (and spiking output) populations.

    Parameters
    ----------
    tau_m : float or quantity
        Membrane time constant (s).
    t_ref : float or quantity
        Refractory period (s, >= 0): after a spike the membrane is clamped and input is lost.
    tau_syn : float or quantity, optional
        Exponential current synapses with this time constant (s); None: a spike jumps the membrane.
    reset : {"subtract", "value"}
        ``v -= 1`` or ``v = 0`` after a spike.
    """

    tau_m: float = 20e-3
    t_ref: float = 0.0
    tau_syn: float | None = None
    reset: str = "subtract"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau_m", seconds(self.tau_m, "LIF.tau_m"))
        t_ref = self.t_ref
        object.__setattr__(self, "t_ref", 0.0 if (not hasattr(t_ref, "dim") and float(t_ref) == 0.0)
                           else seconds(t_ref, "LIF.t_ref"))
        if self.tau_syn is not None:
            object.__setattr__(self, "tau_syn", seconds(self.tau_syn, "LIF.tau_syn"))
        if self.reset not in RESETS:
            raise ValueError(f"LIF.reset must be one of {RESETS}, got {self.reset!r}")


@dataclass(frozen=True)
class NIRSteps:
    """How a NIR graph's neuron models step (`neuro_balance.model.dynamics.run_steps` semantics).

    Parameters
    ----------
    dt : float, optional
        The graph's Euler step in the unit of its time constants (None: the simulation step in seconds,
        snnTorch's export; sinabs's graphs use 1).
    reset : {"subtract", "value"}
        ``v -= v_threshold`` (snnTorch's and sinabs's default) or ``v = v_reset`` (NIR's definition).
    """

    dt: float | None = None
    reset: str = "subtract"

    def __post_init__(self) -> None:
        if self.dt is not None and not (float(self.dt) > 0 and math.isfinite(float(self.dt))):
            raise ValueError(f"NIRSteps.dt must be a positive number, got {self.dt!r}")
        if self.reset not in RESETS:
            raise ValueError(f"NIRSteps.reset must be one of {RESETS}, got {self.reset!r}")


@dataclass(frozen=True)
class UnitModel:
    """The Brian2 pieces of one population's units.

    Attributes
    ----------
    equations : str
        Model lines (without the agents' own, `neuron_balance_model`).
    threshold, reset : str or None
        The ``spike`` event's condition and reset code (None: the units do not spike).
    refractory : str or None
        Brian2's ``refractory`` argument.
    method : str or None
        Integration method of the equations (None: no differential equation).
    on_spike : str
        Code of an incoming synapse when its pre unit spikes (Brian2 synapse names: ``w``, ``*_post``).
    rescale : str
        Code that multiplies the unit's state by ``resc`` when it balances (the ``rescale`` event runs it
        after the resets, then clears ``resc``).
    update : str or None
        NIR: the discrete step, run in `NIR_SLOT` before the spikes (None: Brian2 integrates ``equations``).
    values : dict
        Initial values of the parameters the equations declare (arrays per unit or scalars).
    emits : str or None
        NIR graded units (the input's current, LI, CubaLI, I): the variable sent every step as the output
        (``z_post += w * emits_pre`` on the ``emit`` event); None: the unit's output is its spikes.
    """

    equations: str
    threshold: str | None
    reset: str | None
    refractory: str | None
    method: str | None
    on_spike: str
    rescale: str
    update: str | None = None
    values: dict | None = None
    emits: str | None = None


def toolkit_unit(pop: Population, neuron: LIF | None, spikes: bool) -> UnitModel:
    """The units of a toolkit population (``spikes``: False for an integrating output readout).

    Input populations are IF encoders driven by ``x_in * R_in``; others by their bias ``b * R_in``.
    """
    drive = "x_in*R_in" if pop.role == "input" else ("b*R_in" if pop.bias is not None else "0*Hz")
    extra = ["x_in : 1"] if pop.role == "input" else []
    if neuron is None or pop.role == "input" or not spikes:
        return UnitModel("\n".join([f"dv/dt = {drive} : 1", *extra]), "v > 1" if spikes else None,
                         "v -= 1" if spikes else None, None, "euler", "v_post += w", "v = v*resc")
    lines = ["tau_m : second (shared, constant)"]
    values: dict = {"tau_m": neuron.tau_m}
    refractory = "t_ref" if neuron.t_ref > 0 else None
    clamp = " (unless refractory)" if refractory else ""
    if neuron.tau_syn is None:
        lines.insert(0, f"dv/dt = -v/tau_m + {drive} : 1{clamp}")
        on_spike = "v_post += w*int(not_refractory_post)" if refractory else "v_post += w"
        rescale = "v = v*resc"
    else:
        lines[:0] = [f"dv/dt = -v/tau_m + {drive} + I_syn : 1{clamp}", "dI_syn/dt = -I_syn/tau_syn : Hz",
                     "tau_syn : second (shared, constant)"]
        values["tau_syn"] = neuron.tau_syn
        on_spike = "I_syn_post += w/tau_syn_post"
        rescale = "v = v*resc\nI_syn = I_syn*resc"
    if refractory:
        lines.append("t_ref : second (shared, constant)")
        values["t_ref"] = neuron.t_ref
    reset = "v -= 1" if neuron.reset == "subtract" else "v = 0"
    return UnitModel("\n".join(lines), "v > 1", reset, refractory, "exact", on_spike, rescale, values=values)


def nir_unit(pop: Population, steps: NIRSteps, sim_dt: float, gauge: bool) -> UnitModel:
    """The units of a population with a NIR neuron model, stepping as `run_steps` does.

    ``gauge``: the unit balances by its gauge (potentials scale with the membrane); otherwise by the
    exchange (``v_leak`` scales with it). Parameters are per-unit variables; a step of ``h`` (``steps.dt``,
    default ``sim_dt``) is folded into ``a = h / tau`` and ``g = h r``, products `run_steps` takes first too.
    """
    neuron = pop.neuron
    model = neuron.model
    h = sim_dt if steps.dt is None else float(steps.dt)
    p = {k: np.asarray(v, dtype=np.float64).reshape(pop.size) for k, v in neuron.params.items()}
    z = "(b + z)" if pop.bias is not None else "z"
    lines = ["v : 1", "z : 1"]
    values: dict = {}
    if model in ("IF", "I"):
        update = [f"v = v + g*{z}"]
        lines.append("g : 1 (constant)")
        values["g"] = h * p["r"]
    else:
        lines += ["a_m : 1 (constant)", "r : 1 (constant)", "v_leak : 1"]
        values.update(r=p["r"], v_leak=p["v_leak"])
        if model in ("LIF", "LI"):
            values["a_m"] = h / p["tau"]
            update = [f"v = v + a_m*(v_leak - v + r*{z})"]
        else:  # CubaLIF, CubaLI
            lines += ["i_syn : 1", "a_s : 1 (constant)", "w_in : 1 (constant)"]
            values.update(a_m=h / p["tau_mem"], a_s=h / p["tau_syn"], w_in=p["w_in"])
            update = [f"i_syn = i_syn + a_s*(w_in*{z} - i_syn)", "v = v + a_m*(v_leak - v + r*i_syn)"]
    update.append("z = 0")
    # z: input already delivered for the next step (a delay-1 projection), weighted by the old incoming weights
    scaled = ["v", "z"] + (["i_syn"] if model.startswith("Cuba") else []) + (["v_leak"] if "v_leak" in p else [])
    threshold = reset = None
    if neuron.spiking:
        lines += ["v_threshold : 1", "v_reset : 1"]
        values.update(v_threshold=p["v_threshold"], v_reset=p["v_reset"])
        threshold = "v > v_threshold"
        reset = "v = v - v_threshold" if steps.reset == "subtract" else "v = v_reset"
        if gauge:
            scaled += ["v_threshold", "v_reset"]
    rescale = "\n".join(f"{name} = {name}*resc" for name in scaled)
    return UnitModel("\n".join(lines), threshold, reset, None, None, "z_post += w", rescale, "\n".join(update), values,
                     None if neuron.spiking else "v")


def nir_input() -> UnitModel:
    """A NIR graph's input units under ``coding="current"``: their value ``x_in`` is their output at every step."""
    return UnitModel("x_in : 1", None, None, None, None, "", "", emits="x_in")


def nir_orders(k: int) -> dict[str, int]:
    """Orders in `NIR_SLOT` of the ``k``-th population (network order): update, spike, delivery, reset."""
    return {"update": 10 * k, "spike": 10 * k + 1, "deliver": 10 * k + 2, "reset": 10 * k + 3}
