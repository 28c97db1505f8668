"""Xylo Audio 2 against xylosim 0.1.3: random recurrent networks quantised by the project, stepped by both.

Each case is a random float ReLU network of 8..16 inputs, one or two hidden layers of 4..12 units
(the first recurrent, as Xylo's hidden layer is) and 2..6 outputs, quantised with the project's
``quantize(net, "xylo_audio2", calibration)``. Networks 2, 5, 8, ... use a copy of the profile with
other dashes, as a user may set them (``conversion_defaults.dash_syn`` 2..4; ``dash_mem`` 0 in every
other one of them, else 1..14), networks 1, 4, 7, ... one scale per neuron (``granularity:
neuron``). The integers are laid out as xylosim's ``XyloLayer`` takes them
(`neuro_balance.hardware.xylo_mapping.xylo_params`). The input raster (spike counts per step and
channel) starts with the project's rate code of a calibration input (regular spike trains, as
``simulate`` feeds them), then has random multi-spike steps (up to 20 per channel, above the cap of
15) and bursts of 15..40 spikes on every channel that drive ``isyn`` and ``v`` into int16 saturation.
``xylo_driver.py`` runs the same integers through ``xylosim.v2.XyloLayer``. Compared per step: hidden
spike counts, ``v`` and ``isyn``; readout spikes, ``v_out`` and ``isyn_out``.

Where rockpool 3.1.0 is installed beside xylosim, the driver also quantises the networks with one
scale per network the way rockpool does (``global_quantize`` on the float specification: weights per
spike ``W * s_pre``, thresholds ``s``, biases ``b / T``) and its integer weights are compared with
the project's (``rockpool_w_in``, ``rockpool_w_rec``, ``rockpool_w_out``).
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np

import neuro_balance as nb
from neuro_balance.hardware import load_profile, quantize
from neuro_balance.hardware.profile import Profile
from neuro_balance.hardware.spiking import _regular_spikes
from neuro_balance.hardware import xylo
from neuro_balance.hardware.xylo_mapping import xylo_params

TOOL = "xylosim"
VENV = "xylosim"
STEPS = 64
OUTPUTS = ("spikes", "v", "isyn", "out_spikes", "v_out", "isyn_out")
_PARAMS = ("w_in", "w_rec", "w_out", "threshold", "threshold_out", "bias", "bias_out", "dash_mem", "dash_mem_out",
           "dash_syn", "dash_syn_out", "shift_in", "shift_rec", "shift_out")


def _profile(chip: str, index: int, rng: np.random.Generator) -> Profile:
    """The chip's profile, or for every third network a copy with other dashes (module docstring)."""
    prof = load_profile(chip, warn=False)
    if index % 3 != 2:
        return prof
    data = copy.deepcopy(prof.data)
    data["conversion_defaults"]["dash_syn"] = int(rng.integers(2, 5))
    data["conversion_defaults"]["dash_mem"] = 0 if index % 6 == 2 else int(rng.integers(1, 15))
    return dataclasses.replace(prof, data=data)


def _network(rng: np.random.Generator) -> nb.Network:
    """A random ReLU network with a recurrent first hidden layer and, in half the cases, a second feedforward one."""
    n_in, n_out = int(rng.integers(8, 17)), int(rng.integers(2, 7))
    hidden = [int(rng.integers(4, 13)) for _ in range(int(rng.integers(1, 3)))]
    net = nb.rnn(n_in, hidden[:1], n_out, seed=rng, spectral_radius=float(rng.uniform(0.2, 0.9)))
    if len(hidden) == 1:
        return net
    pops = list(net.populations.values())
    out = pops[-1]
    h2 = nb.Population("h2", hidden[1], bias=rng.normal(0.0, 0.1, hidden[1]))
    projs = [p for p in net.projections if p.post != out.name]
    projs += [nb.Projection("h1", "h2", rng.normal(0.0, np.sqrt(2.0 / hidden[0]), (hidden[1], hidden[0]))),
              nb.Projection("h2", out.name, rng.normal(0.0, np.sqrt(2.0 / hidden[1]), (out.size, hidden[1])))]
    return nb.Network([*pops[:-1], h2, out], projs, "rnn2")


def _raster(qnet, calibration: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Input spike counts per step: the rate code of one input, random multi-spike steps, saturating bursts."""
    from neuro_balance.hardware.integer_pass import encode_input

    n_in = calibration.shape[1]
    counts, _ = encode_input(qnet, calibration[:1])
    coded = np.stack([_regular_spikes(counts[0], qnet.spec.window, t) for t in range(STEPS // 2)])
    multi = rng.integers(0, 21, (STEPS // 4, n_in)) * (rng.random((STEPS // 4, n_in)) < 0.5)
    burst = rng.integers(15, 41, (STEPS - STEPS // 2 - STEPS // 4, n_in)) * \
        (rng.random((STEPS - STEPS // 2 - STEPS // 4, n_in)) < 0.8)
    return np.concatenate([coded, multi, burst]).astype(np.int64)


def make_cases(chip: str, seed: int, n_nets: int) -> list[dict[str, np.ndarray]]:
    """``n_nets`` random recurrent networks quantised by the project for ``chip``, a raster each (module docstring)."""
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(n_nets):
        net = _network(rng)
        calibration = rng.random((64, net.input.n_features))
        # every third network with one scale per neuron (the rule of rockpool's channel_quantize)
        options = {"granularity": "neuron"} if index % 3 == 1 else {}
        qnet = quantize(net, _profile(chip, index, rng), calibration, seed=0, check=False, **options)
        params = xylo_params(qnet)
        case = {key: np.asarray(getattr(params, key), dtype=np.int64) for key in _PARAMS}
        case["raster"] = _raster(qnet, calibration, rng)
        if not options:
            case.update(_float_spec(qnet))
        cases.append(case)
    return cases


def _float_spec(qnet) -> dict[str, np.ndarray]:
    """The float Xylo specification rockpool's ``global_quantize`` takes for this network (``rp_*`` keys).

    Weights per spike ``W * s_pre`` (``[pre, post]``), thresholds ``s`` and biases ``b / T`` per step, all in
    the units of the weights, the hidden populations side by side as in `xylo_params`.
    """
    net, scales, T = qnet.network, qnet.activation_scales, qnet.spec.window
    hidden = [name for name in net.order if net.populations[name].role == "hidden"]
    cols = dict(zip(hidden, np.split(np.arange(sum(net.populations[h].size for h in hidden)),
                                     np.cumsum([net.populations[h].size for h in hidden])[:-1])))
    n_in, n_hid, n_out = net.input.size, sum(len(c) for c in cols.values()), net.output.size
    spec = {"rp_w_in": np.zeros((n_in, n_hid)), "rp_w_rec": np.zeros((n_hid, n_hid)),
            "rp_w_out": np.zeros((n_hid, n_out)),
            "rp_threshold": np.zeros(n_hid), "rp_threshold_out": np.full(n_out, scales[net.output.name]),
            "rp_bias": np.zeros(n_hid), "rp_bias_out": net.output.bias / T}
    for proj in net.projections:
        w = (proj.weight * scales[proj.pre]).T
        pre, post = net.populations[proj.pre], net.populations[proj.post]
        if pre.role == "input":
            spec["rp_w_in"][:, cols[post.name]] = w
        elif post.role == "output":
            spec["rp_w_out"][cols[pre.name], :] = w
        else:
            spec["rp_w_rec"][np.ix_(cols[pre.name], cols[post.name])] = w
    for name in hidden:
        spec["rp_threshold"][cols[name]] = scales[name]
        spec["rp_bias"][cols[name]] = net.populations[name].bias / T
    return spec


def project_outputs(chip: str, case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The project's Xylo network (`neuro_balance.hardware.xylo.run`) on the case's integers, per step."""
    params = xylo.XyloParams(**{key: case[key] for key in _PARAMS})
    trace = xylo.run(params, case["raster"])
    out = {key: getattr(trace, key) for key in OUTPUTS}
    if "rp_w_in" in case:   # the weights rockpool's global_quantize makes of the float specification
        out.update({f"rockpool_{key}": case[key] for key in ("w_in", "w_rec", "w_out")})
    return out
