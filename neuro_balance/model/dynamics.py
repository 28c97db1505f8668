"""The step simulation of a network's neuron models (NIR semantics, forward Euler), in float64.

Each step, every population (in `Network.order`) adds up its input ``z`` (bias plus every incoming
projection of the pre populations' outputs: this step's, or the previous step's for a delay-1
projection), then updates its state with step ``dt``:

=========  =======================================================================  ==========
model      update                                                                   output
=========  =======================================================================  ==========
IF         ``v += dt r z``                                                          spikes
LIF        ``v += dt / tau (v_leak - v + r z)``                                     spikes
CubaLIF    ``i += dt / tau_syn (w_in z - i)``, then ``v += dt / tau_mem (v_leak - v + r i)``  spikes
LI, CubaLI as LIF, CubaLIF without threshold                                        ``v``
I          ``v += dt r z``                                                          ``v``
(none)     ``activation(z)``                                                        graded
=========  =======================================================================  ==========

A spiking unit fires when ``v > v_threshold``; then ``v = v_reset`` (``reset="value"``, NIR's
definition) or ``v -= v_threshold`` (``reset="subtract"``, snnTorch's and sinabs's default).
snnTorch's export (``r = tau / dt``) and sinabs's (``r = 1``) are reproduced with ``dt`` = their
export step (1e-4 s for snnTorch; 1 for sinabs, whose ``IAF`` also floors ``v`` at ``min_v``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from .kinds import get_kind
from .network import Network

__all__ = ["StepRun", "run_steps", "RESETS"]

RESETS = ("value", "subtract")


@dataclass
class StepRun:
    """What `run_steps` returns: every population's output ``(T, batch, n_features)`` and final membranes."""

    outputs: dict[str, np.ndarray]
    membranes: dict[str, np.ndarray]

    def counts(self, name: str) -> np.ndarray:
        """Spike counts (or summed outputs) of population ``name`` over the run, ``(batch, n_features)``."""
        return self.outputs[name].sum(axis=0)


def run_steps(net: Network, x: np.ndarray, dt: float = 1.0, reset: str = "subtract",
              v_floor: dict[str, np.ndarray] | None = None) -> StepRun:
    """Simulate ``net`` step by step on inputs ``x`` (module docstring).

    Parameters
    ----------
    net : Network
    x : ndarray (T, batch, n_in)
        The input population's output at every step (spikes or currents).
    dt : float
        Euler step, in the time unit of the ``tau`` parameters.
    reset : {"value", "subtract"}
    v_floor : dict of population name to ndarray, optional
        A lower bound on a spiking population's membrane (sinabs ``min_v_mem``), one per feature.

    Returns
    -------
    StepRun
    """
    if reset not in RESETS:
        raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
    x = np.asarray(x, dtype=np.float64)
    n_in = net.input.n_features
    if x.ndim != 3 or x.shape[2] != n_in:
        raise ModelError(f"run_steps: inputs must be (T, batch, {n_in}), got {x.shape}")
    steps, batch = x.shape[:2]
    params = {name: {k: v.reshape(-1) for k, v in pop.neuron.params.items()}
              for name, pop in net.populations.items() if pop.neuron is not None}
    v = {name: np.zeros((batch, net.populations[name].n_features)) for name in params}
    cur = {name: np.zeros_like(v[name]) for name, pop in net.populations.items()
           if pop.neuron is not None and pop.neuron.model.startswith("Cuba")}
    outputs = {name: np.zeros((steps, batch, pop.n_features)) for name, pop in net.populations.items()}
    previous = None
    for t in range(steps):
        acts = {}
        for name in net.order:
            pop = net.populations[name]
            if pop.role == "input":
                acts[name] = x[t]
                continue
            z = np.zeros((batch, pop.n_features))
            if pop.bias is not None:
                z += pop.bias_features()
            for proj in net.incoming(name):
                if proj.delay == 1 and previous is None:
                    continue  # nothing before the first step
                source = previous[proj.pre] if proj.delay == 1 else acts[proj.pre]
                z += get_kind(proj.kind).propagate(proj, net.populations[proj.pre], pop, source)
            if pop.neuron is None:
                acts[name] = pop.activation(z)
                continue
            acts[name] = _update(pop.neuron.model, params[name], v[name], cur.get(name), z, dt, reset,
                                 None if v_floor is None else v_floor.get(name))
        for name in net.populations:
            outputs[name][t] = acts[name]
        previous = acts
    return StepRun(outputs, v)


def _update(model: str, p: dict[str, np.ndarray], v: np.ndarray, i: np.ndarray | None, z: np.ndarray,
            dt: float, reset: str, floor: np.ndarray | None) -> np.ndarray:
    """Advance one population's state ``v`` (and current ``i``) in place; return its output."""
    if model in ("IF", "I"):
        v += dt * p["r"] * z
    elif model in ("LIF", "LI"):
        v += dt / p["tau"] * (p["v_leak"] - v + p["r"] * z)
    else:  # CubaLIF, CubaLI
        i += dt / p["tau_syn"] * (p["w_in"] * z - i)
        v += dt / p["tau_mem"] * (p["v_leak"] - v + p["r"] * i)
    if "v_threshold" not in p:
        return v.copy()
    if floor is not None:
        np.maximum(v, floor, out=v)
    spikes = v > p["v_threshold"]
    if reset == "value":
        v[...] = np.where(spikes, p["v_reset"], v)
    else:
        v -= spikes * p["v_threshold"]
    return spikes.astype(np.float64)
