"""Random layered networks quantised by the project, as integer cases for the spiking chips' vendor checks.

A case is what a user's network becomes on the chip: a random float ReLU network
``n_in -> h1 [-> h2 [-> h3]] -> n_out`` quantised by the project's ``quantize`` for the chip, and one
input as spike counts over the rate-code window; on chips that take them, some networks are
recurrent (``nb.rnn``: every hidden layer has a delay-1 projection onto itself). Its integers (keys
``w{i}``: effective weights into layer ``i``, ``r{i}``: a hidden layer's recurrent weights, each
with its mantissas ``mw{i}`` / ``mr{i}`` and per-unit exponents ``ew{i}`` / ``er{i}``, ``b{i}``:
per-step biases, ``theta{i}``: thresholds of hidden layers; layers numbered from 1, the output last)
go to the vendor's tool; `rebuild` puts exactly those integers back into a `QuantizedNetwork` so that
the project's ``simulate`` runs them (in the replay tests too), the weights entering the accumulator
derived again from mantissas and exponents by the project's mapping rule. Loihi cases also carry the
compartment parameters of the project's stepped `LoihiCUBA` per hidden layer.
"""
from __future__ import annotations

import warnings

import numpy as np

import neuro_balance as nb
from neuro_balance.hardware import QuantizedNetwork, SpikingRun, quantize, simulate
from neuro_balance.hardware.mapping import effective_weights
from neuro_balance.hardware.spiking import neuron_populations


def random_sizes(rng: np.random.Generator) -> list[int]:
    """Layer sizes: 6..16 inputs, 1..3 hidden layers of 4..16 units, 2..6 outputs."""
    n_hidden = int(rng.integers(1, 4))
    return [int(rng.integers(6, 17))] + [int(rng.integers(4, 17)) for _ in range(n_hidden)] + [int(rng.integers(2, 7))]


def random_network(sizes: list[int], rng: np.random.Generator, recurrent: bool = False) -> nb.Network:
    """A random float ReLU network with Gaussian weights and biases (some units start below rest).

    ``recurrent``: every hidden layer also feeds itself one step later (spectral radius 0.5).
    """
    seed = int(rng.integers(2**31))
    net = nb.rnn(sizes[0], sizes[1:-1], sizes[-1], seed=seed, spectral_radius=0.5) if recurrent \
        else nb.mlp(sizes, seed=seed)
    for proj in net.projections:
        if proj.delay == 0:
            proj.weight = rng.normal(0.0, 1.0, proj.weight.shape) / np.sqrt(proj.weight.shape[1])
    for pop in net.populations.values():
        if pop.bias is not None:
            pop.bias = rng.normal(0.0, 0.3, pop.size)
    return net


def quantized(chip: str, sizes: list[int], rng: np.random.Generator, recurrent: bool = False,
              **overrides) -> QuantizedNetwork:
    """A random network of ``sizes`` quantised for ``chip`` on 64 calibration inputs uniform in [0, 1]."""
    net = random_network(sizes, rng, recurrent)
    calibration = rng.random((64, sizes[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # the profiles' unverified fields, the static estimate's check
        return quantize(net, chip, calibration, **overrides)


def input_counts(qnet: QuantizedNetwork, rng: np.random.Generator) -> np.ndarray:
    """Spike counts over the window of one input uniform in [0, 1]."""
    x = rng.random(qnet.network.input.n_features)
    return np.clip(np.rint(x / qnet.input_scale), 0, qnet.input_format.max).astype(np.int64)


def raster(counts: np.ndarray, window: int, steps: int) -> np.ndarray:
    """The project's input spike trains, shape ``(steps, n_in)``: ``counts`` evenly spread over each window."""
    t = np.arange(steps)[:, None] % window
    return (counts * (t + 1)) // window - (counts * t) // window


def integer_case(qnet: QuantizedNetwork, counts: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    """The integers of ``qnet`` and the input, as a flat case (module docstring)."""
    net = qnet.network
    names = [name for name in net.order if net.populations[name].role != "input"]
    case = {"n_hidden": np.array(len(names) - 1), "steps": np.array(steps), "window": np.array(qnet.spec.window),
            "counts": counts.astype(np.int64), "raster": raster(counts, qnet.spec.window, steps)}
    for i, name in enumerate(names, start=1):
        for proj in net.incoming(name):
            key = f"r{i}" if proj.delay == 1 else f"w{i}"
            syn = qnet.synapses[proj.name]
            case[key] = syn.effective.astype(np.int64)
            case[f"m{key}"] = syn.mantissa.astype(np.int64)
            case[f"e{key}"] = syn.exponent.astype(np.int64)
        lay = qnet.layers[name]
        case[f"b{i}"] = (lay.bias if lay.bias is not None else np.zeros(net.populations[name].size)).astype(np.int64)
        if lay.theta is not None:
            case[f"theta{i}"] = lay.theta.astype(np.int64)
    return case


def rebuild(chip: str, case: dict[str, np.ndarray], **overrides) -> QuantizedNetwork:
    """A `QuantizedNetwork` for ``chip`` holding exactly the case's integers (input scale 1: x = counts)."""
    n_hidden = int(case["n_hidden"])
    sizes = [case["w1"].shape[1]] + [case[f"w{i}"].shape[0] for i in range(1, n_hidden + 2)]
    qnet = quantized(chip, sizes, np.random.default_rng(0), "r1" in case, **overrides)
    if int(case["window"]) != qnet.spec.window:
        raise ValueError(f"case made for a window of {int(case['window'])} steps; {chip} now has {qnet.spec.window}")
    net = qnet.network
    names = [name for name in net.order if net.populations[name].role != "input"]
    for i, name in enumerate(names, start=1):
        for proj in net.incoming(name):
            syn = qnet.synapses[proj.name]
            key = f"r{i}" if proj.delay == 1 else f"w{i}"
            syn.mantissa = case[f"m{key}"].astype(np.int64)
            syn.exponent = case[f"e{key}"].astype(np.int64)
            syn.effective = effective_weights(qnet.spec, syn.mantissa,
                                              np.broadcast_to(syn.exponent[:, None], syn.mantissa.shape))
        lay = qnet.layers[name]
        lay.bias = case[f"b{i}"].astype(np.int64)
        if f"theta{i}" in case:
            lay.theta = case[f"theta{i}"].astype(np.int64)
    qnet.input_scale = 1.0
    return qnet


def run(qnet: QuantizedNetwork, case: dict[str, np.ndarray]) -> SpikingRun:
    """The project's ``simulate`` of the case's input, every step recorded."""
    return simulate(qnet, case["counts"][None].astype(np.float64), steps=int(case["steps"]), record=True)


def hidden_names(qnet: QuantizedNetwork) -> list[str]:
    """Hidden populations in order (layer ``i`` is the ``i``-th, counting from 1)."""
    net = qnet.network
    return [name for name in net.order if net.populations[name].role == "hidden"]


def loihi_compartments(qnet: QuantizedNetwork) -> dict[str, np.ndarray]:
    """Per hidden layer ``i``, the compartment parameters of the project's stepped `LoihiCUBA`.

    ``du{i}``, ``dv{i}``, threshold ``vth{i}`` (``vth_mant << 6``), bias ``bias{i}``, ``vmin{i}``,
    ``vmax{i}`` and refractory delay ``ref{i}``, one value per compartment.
    """
    out = {}
    for i, nrn in enumerate(neuron_populations(qnet).values(), start=1):
        n = nrn.n
        lo, hi = nrn.v_format.min, nrn.v_format.max
        out.update({f"du{i}": np.broadcast_to(nrn.du, n), f"dv{i}": np.broadcast_to(nrn.dv, n),
                    f"vth{i}": nrn.threshold, f"bias{i}": nrn.bias,
                    f"vmin{i}": np.broadcast_to(lo if nrn.vmin is None else nrn.vmin, n),
                    f"vmax{i}": np.broadcast_to(hi if nrn.vmax is None else nrn.vmax, n),
                    f"ref{i}": np.broadcast_to(nrn.refractory, n)})
    return {key: np.asarray(value, dtype=np.int64).copy() for key, value in out.items()}


def loihi_cases(chip: str, seed: int, n_nets: int) -> list[dict[str, np.ndarray]]:
    """``n_nets`` random networks quantised for a Loihi ``chip``, one input each, with compartment parameters;
    every third network is recurrent."""
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(n_nets):
        qnet = quantized(chip, random_sizes(rng), rng, recurrent=k % 3 == 2)   # every third one recurrent
        case = integer_case(qnet, input_counts(qnet, rng), qnet.spec.window)
        case.update(loihi_compartments(qnet))
        cases.append(case)
    return cases


def loihi_outputs(chip: str, case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The project's `simulate` on a Loihi case: per step, each hidden layer's spikes ``s{i}``, ``u{i}``
    and ``v{i}``, and the output layer's input without its bias (``q_out``)."""
    qnet = rebuild(chip, case)
    trace = run(qnet, case).trace
    n_hidden = int(case["n_hidden"])
    acc = trace[f"acc.{qnet.network.output.name}"][:, 0]
    out = {"q_out": np.diff(acc, axis=0, prepend=0) - case[f"b{n_hidden + 1}"]}
    for i, name in enumerate(hidden_names(qnet), start=1):
        out[f"s{i}"] = trace[f"spikes.{name}"][:, 0]
        out[f"u{i}"] = trace[f"u.{name}"][:, 0]
        out[f"v{i}"] = trace[f"v.{name}"][:, 0]
    return out
