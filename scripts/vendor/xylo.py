"""Xylo Audio 2 against xylosim 0.1.3: random recurrent networks quantised by the project, stepped by both.

Each case is a random float ReLU network of 8..16 inputs, one or two hidden layers of 4..12 units
(the first recurrent, as Xylo's hidden layer is) and 2..6 outputs, quantised with the project's
``quantize(net, "xylo_audio2", calibration)``. Every third network uses a copy of the profile with
other dashes (``conversion_defaults.dash_syn`` 2..15; in every other one of them ``dash_mem`` 0 with
``dash_syn`` 13..15, else ``dash_mem`` 1..15; as a user may set them), so that slow currents, every
decay shift and the ``dash_mem = 0`` wrap are exercised; of the others, every other one has 2- or 3-bit
weights (``weight_bits`` 2..3), whose small thresholds let hidden neurons reach 31 spikes in a step. The integers are laid out as
xylosim's ``XyloLayer`` takes them (`neuro_balance.hardware.xylo_mapping.xylo_params`). The input raster
(spike counts per step and channel) starts with the project's rate code of a calibration input
(regular spike trains, as ``simulate`` feeds them), then has random multi-spike steps (up to 20 per
channel, above the cap of 15) and bursts of 15..40 spikes on every channel that drive ``isyn`` and
``v`` into int16 saturation. ``xylo_driver.py`` runs the same integers through
``xylosim.v2.XyloLayer``. Compared per step: hidden spike counts, ``v`` and ``isyn``; readout
spikes, ``v_out`` and ``isyn_out``.
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
    """``n_nets`` random recurrent networks quantised by the project for ``chip``, with a raster each (module docstring)."""
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(n_nets):
        net = _network(rng)
        calibration = rng.random((64, net.input.n_features))
        # every third network with one scale per neuron (rockpool's channel_quantize): the neurons with the
        # largest weights get thresholds small enough for 31 spikes in a step
        options = {"granularity": "neuron"} if index % 3 == 1 else {}
        qnet = quantize(net, _profile(chip, index, rng), calibration, seed=0, check=False, **options)
        params = xylo_params(qnet)
        case = {key: np.asarray(getattr(params, key), dtype=np.int64) for key in _PARAMS}
        case["raster"] = _raster(qnet, calibration, rng)
        cases.append(case)
    return cases


def project_outputs(chip: str, case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The project's Xylo network (`neuro_balance.hardware.xylo.run`) on the case's integers, per step."""
    params = xylo.XyloParams(**{key: case[key] for key in _PARAMS})
    trace = xylo.run(params, case["raster"])
    return {key: getattr(trace, key) for key in OUTPUTS}
