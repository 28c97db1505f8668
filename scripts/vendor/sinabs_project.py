"""Speck / DYNAP-CNN against sinabs 3.1.3: random layered networks quantised by the project, stepped by both.

Each case (``layered.py``) is a random float ReLU network quantised with the project's
``quantize(net, "speck", calibration, v_floor=...)``, the membrane floor drawn per network from
``FLOORS``, and one input whose regular spike trains (the project's rate code, at most one spike per
input and step) run for the whole window of 255 steps. ``sinabs_driver.py`` builds the same integer
weights, biases and thresholds as a sinabs ``DynapcnnNetwork`` (``discretize=False``: the values are
already the chip's integers) of ``IAFSqueeze`` layers with ``MultiSpike``, subtractive reset and
``min_v_mem`` at the floor; the output layer is an ``IAFSqueeze`` with no floor and a threshold
(``2**24``) it never reaches, so its membrane is the integrated input the project's non-spiking
readout sums. Compared per step: every hidden layer's spike counts (``s{i}``) and membranes after
reset and clamp (``v{i}``), and the output's membrane (``acc``).

sinabs computes in float32: every value stays an integer below ``2**24`` (checked here), where float32
is exact. Networks whose membranes reach the top of the project's 16-bit register are redrawn: sinabs
has no such register, and what the chip does there is unverified (``hardware_profiles/speck.yaml``).
At the bottom, the register's minimum and sinabs's ``min_v_mem`` clamp alike.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import layered  # noqa: E402

TOOL = "sinabs"
VENV = "sinabs"
FLOAT32_EXACT = 2**24
#: membrane floors drawn per network (``quantize(..., v_floor=...)``; None: the 16-bit register's
#: minimum, as sinabs's ``min_v_mem=None``); sinabs's ``from_model`` default is minus the threshold.
FLOORS = (None, 0, -64, -512, -4096)


def make_cases(chip: str, seed: int, n_nets: int) -> list[dict[str, np.ndarray]]:
    """``n_nets`` random networks quantised by the project for ``chip``, with one input each (module docstring)."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < n_nets:
        sizes = layered.random_sizes(rng)
        v_floor = FLOORS[int(rng.integers(len(FLOORS)))]
        qnet = layered.quantized(chip, sizes, rng, v_floor=v_floor)
        case = layered.integer_case(qnet, layered.input_counts(qnet, rng), qnet.spec.window)
        case["min_v_mem"] = np.array(qnet.spec.membrane.min if v_floor is None else v_floor)
        for i in range(1, int(case["n_hidden"]) + 1):
            if np.unique(case[f"theta{i}"]).size != 1:
                raise ValueError(f"layer {i}: speck shares one threshold per layer, got {np.unique(case[f'theta{i}'])}")
        run = layered.run(layered.rebuild(chip, case, v_floor=int(case["min_v_mem"])), case)
        big = max(int(np.abs(values).max()) for values in run.trace.values())
        top = max(int(values.max()) for key, values in run.trace.items() if key.startswith("v."))
        if top >= qnet.spec.membrane.max or big >= FLOAT32_EXACT:
            continue                              # outside sinabs's float32 integers or the 16-bit register
        cases.append(case)
    return cases


def project_qnet(chip: str, case: dict[str, np.ndarray]):
    """The project's `QuantizedNetwork` with the case's integers and membrane floor."""
    return layered.rebuild(chip, case, v_floor=int(case["min_v_mem"]))


def project_outputs(chip: str, case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The project's `simulate` on the case's integers: per-step spike counts and membranes per layer."""
    qnet = project_qnet(chip, case)
    run = layered.run(qnet, case)
    out = {"acc": run.trace[f"acc.{qnet.network.output.name}"][:, 0]}
    for i, name in enumerate(layered.hidden_names(qnet), start=1):
        out[f"s{i}"] = run.trace[f"spikes.{name}"][:, 0]
        out[f"v{i}"] = run.trace[f"v.{name}"][:, 0]
    return out
