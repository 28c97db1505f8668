"""Speck / DYNAP-CNN against sinabs 3.1.3: random layered networks quantised by the project, stepped by both.

Each case is a random float ReLU network ``n_in -> h1 [-> h2 [-> h3]] -> n_out`` quantised with the
project's ``quantize(net, "speck", calibration)``, and one input whose regular spike trains (the
project's rate code, up to one spike per input and step) run for the whole window of 255 steps.
``sinabs_driver.py`` builds the same integer weights, biases and thresholds as a sinabs
``DynapcnnNetwork`` (``discretize=False``: the values are already the chip's integers) of ``IAFSqueeze``
layers with ``MultiSpike``, subtractive reset and ``min_v_mem`` at the project's membrane floor (drawn
per network from ``FLOORS``); the output layer is an ``IAFSqueeze`` with no floor and a threshold
(``2**24``) it never reaches, so its membrane is the integrated input the project's non-spiking
readout sums. Compared per step: every hidden layer's spike counts (``s{i}``) and membranes after
reset and clamp (``v{i}``), and the output's membrane (``acc``).

sinabs computes in float32: every value stays an integer below ``2**24`` (checked here), where float32
is exact. Cases whose membranes would leave the project's 16-bit register are redrawn: sinabs has no
such register, and what the chip does there is unverified (``hardware_profiles/speck.yaml``).
"""
from __future__ import annotations

import warnings

import numpy as np

import neuro_balance as nb
from neuro_balance.hardware import quantize, simulate

TOOL = "sinabs"
VENV = "sinabs"
FLOAT32_EXACT = 2**24
#: membrane floors drawn per network (``quantize(..., v_floor=...)``; None: the 16-bit register's
#: minimum, sinabs's ``min_v_mem=None``); sinabs's ``from_model`` default is minus the threshold.
FLOORS = (None, 0, -64, -512, -4096)


def _network(sizes: list[int], rng: np.random.Generator) -> nb.Network:
    """A random float ReLU network; hidden biases drawn so that some units start below rest."""
    net = nb.mlp(sizes, seed=int(rng.integers(2**31)))
    for proj in net.projections:
        proj.weight = rng.normal(0.0, 1.0, proj.weight.shape) / np.sqrt(proj.weight.shape[1])
    for pop in net.populations.values():
        if pop.bias is not None:
            pop.bias = rng.normal(0.0, 0.3, pop.size)
    return net


def _quantized(chip: str, sizes: list[int], rng: np.random.Generator, v_floor: int | None):
    net = _network(sizes, rng)
    calibration = rng.random((64, sizes[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # the profile's unverified fields
        return quantize(net, chip, calibration, v_floor=v_floor)


def _case_from(qnet, counts: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    net = qnet.network
    hidden = [name for name in net.order if net.populations[name].role == "hidden"]
    case: dict[str, np.ndarray] = {"n_hidden": np.array(len(hidden)), "steps": np.array(steps),
                                   "window": np.array(qnet.spec.window), "counts": counts.astype(np.int64),
                                   "min_v_mem": np.array(qnet.spec.membrane.min if qnet.spec.v_floor is None
                                                         else qnet.spec.v_floor)}
    for i, name in enumerate(hidden + [net.output.name], start=1):
        (proj,) = net.incoming(name)
        lay = qnet.layers[name]
        case[f"w{i}"] = qnet.synapses[proj.name].effective.astype(np.int64)
        case[f"b{i}"] = (lay.bias if lay.bias is not None else np.zeros(net.populations[name].size)).astype(np.int64)
        if name != net.output.name:
            if np.unique(lay.theta).size != 1:
                raise ValueError(f"{name}: speck shares one threshold per layer, got {np.unique(lay.theta)}")
            case[f"thr{i}"] = np.array(int(lay.theta[0]))
    t = np.arange(steps)[:, None]
    w = qnet.spec.window
    case["raster"] = (counts * (t % w + 1)) // w - (counts * (t % w)) // w
    return case


def make_cases(chip: str, seed: int, n_nets: int) -> list[dict[str, np.ndarray]]:
    """``n_nets`` random networks quantised by the project for ``chip``, with one input each (module docstring)."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < n_nets:
        n_hidden = int(rng.integers(1, 4))
        sizes = [int(rng.integers(6, 17))] + [int(rng.integers(4, 17)) for _ in range(n_hidden)] \
            + [int(rng.integers(2, 7))]
        v_floor = FLOORS[int(rng.integers(len(FLOORS)))]
        qnet = _quantized(chip, sizes, rng, v_floor)
        x = rng.random(sizes[0])
        counts = np.clip(np.rint(x / qnet.input_scale), 0, qnet.input_format.max).astype(np.int64)
        case = _case_from(qnet, counts, qnet.spec.window)
        run = simulate(qnet, (counts * qnet.input_scale)[None], record=True)
        big = max(int(np.abs(run.trace[key]).max()) for key in run.trace)
        if any(n["v"] for n in run.overflow.values() if isinstance(n, dict) and "v" in n) or big >= FLOAT32_EXACT:
            continue                              # outside sinabs's float32 integers or the 16-bit register
        cases.append(case)
    return cases


def project_qnet(chip: str, case: dict[str, np.ndarray]):
    """The project's `QuantizedNetwork` holding exactly the case's integers (input scale 1: x = counts)."""
    n_hidden = int(case["n_hidden"])
    sizes = [case["w1"].shape[1]] + [case[f"w{i}"].shape[0] for i in range(1, n_hidden + 2)]
    rng = np.random.default_rng(0)
    qnet = _quantized(chip, sizes, rng, int(case["min_v_mem"]))
    net = qnet.network
    names = [name for name in net.order if net.populations[name].role != "input"]
    for i, name in enumerate(names, start=1):
        (proj,) = net.incoming(name)
        syn = qnet.synapses[proj.name]
        syn.mantissa = case[f"w{i}"].astype(np.int64)
        syn.effective = case[f"w{i}"].astype(np.int64)
        syn.exponent = np.zeros(net.populations[name].size, dtype=np.int64)
        lay = qnet.layers[name]
        lay.bias = case[f"b{i}"].astype(np.int64)
        if name != net.output.name:
            lay.theta = np.full(net.populations[name].size, int(case[f"thr{i}"]), dtype=np.int64)
    qnet.input_scale = 1.0
    if int(case["window"]) != qnet.spec.window:
        raise ValueError(f"case made for a window of {int(case['window'])} steps; the profile now has "
                         f"{qnet.spec.window}")
    return qnet


def project_outputs(chip: str, case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The project's `simulate` on the case's integers: per-step spike counts and membranes per layer."""
    qnet = project_qnet(chip, case)
    net = qnet.network
    run = simulate(qnet, case["counts"][None].astype(np.float64), steps=int(case["steps"]), record=True)
    hidden = [name for name in net.order if net.populations[name].role == "hidden"]
    out = {"acc": run.trace[f"acc.{net.output.name}"][:, 0]}
    for i, name in enumerate(hidden, start=1):
        out[f"s{i}"] = run.trace[f"spikes.{name}"][:, 0]
        out[f"v{i}"] = run.trace[f"v.{name}"][:, 0]
    return out
