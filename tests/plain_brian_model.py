"""A plain Brian2 model written without the toolkit: Poisson input -> LIF (refractory) -> LIF, pair-based STDP.

Shared by the attachment tests and the STDP demo. ``agents=None`` builds the model exactly as a Brian2
user would; given an `AgentEquations`, the hidden group and both synapse sets carry its declarations
(nothing else changes).
"""
from __future__ import annotations

import brian2 as b2
import numpy as np

NAMESPACE = {
    "tau": 10 * b2.ms, "v_rest": -70 * b2.mV, "v_reset": -65 * b2.mV, "v_th": -54 * b2.mV,
    "taupre": 20 * b2.ms, "taupost": 20 * b2.ms, "wmax": 50 * b2.mV,
}
LIF = "dv/dt = (v_rest - v + I_drive)/tau : volt (unless refractory)\nI_drive : volt"
STDP = """w : volt
dapre/dt = -apre/taupre : volt (event-driven)
dapost/dt = -apost/taupost : volt (event-driven)
dApre : volt (shared)
dApost : volt (shared)"""
ON_PRE = "v_post += w\napre += dApre\nw = clip(w + apost, 0*mV, wmax)"
ON_POST = "apost += dApost\nw = clip(w + apre, 0*mV, wmax)"


def build(agents=None, n=(20, 12, 6), input_rate=0.0, drive=20.0, out_threshold=None, learning=1.0, seed=0,
          suffix=""):
    """The model's objects (dict) and its Network. ``drive`` (mV) makes the hidden LIFs fire on their own;
    ``out_threshold`` (mV) overrides the output threshold; ``learning`` scales the STDP amplitudes."""
    rng = np.random.default_rng(seed)
    n_in, n_h, n_out = n
    ns = dict(NAMESPACE)
    P = b2.PoissonGroup(n_in, rates=input_rate * b2.Hz, name="input" + suffix)
    hidden_model, events = LIF, {}
    if agents is not None:
        hidden_model, events = LIF + "\n" + agents.neuron, agents.events
    G = b2.NeuronGroup(n_h, hidden_model, threshold="v > v_th", reset="v = v_reset", refractory=3 * b2.ms,
                       events=events or None, method="exact", namespace=ns, name="hidden" + suffix)
    out_ns = dict(ns)
    if out_threshold is not None:
        out_ns["v_th"] = out_threshold * b2.mV
    O = b2.NeuronGroup(n_out, LIF, threshold="v > v_th", reset="v = v_reset", refractory=3 * b2.ms, method="exact",
                       namespace=out_ns, name="output" + suffix)
    for group, size in ((G, n_h), (O, n_out)):
        group.v = (-70 + 10 * rng.random(size)) * b2.mV
    G.I_drive = drive * (0.8 + 0.4 * rng.random(n_h)) * b2.mV

    def synapses(source, target, side, name):
        kwargs = {"on_pre": ON_PRE, "on_post": ON_POST}
        if agents is not None:
            kwargs = agents.synapses(**{side: True}, on_pre=ON_PRE, on_post=ON_POST)
        S = b2.Synapses(source, target, STDP, namespace=ns, name=name + suffix, **kwargs)
        S.connect(p=1.0)
        S.w = (0.5 + 2.5 * rng.random(len(S))) * b2.mV
        S.dApre = 0.01 * learning * b2.mV
        S.dApost = -0.0105 * learning * b2.mV
        return S

    S_in = synapses(P, G, "post", "input_hidden")
    S_out = synapses(G, O, "pre", "hidden_output")
    objects = {"P": P, "G": G, "O": O, "S_in": S_in, "S_out": S_out}
    return objects, b2.Network(*objects.values())
