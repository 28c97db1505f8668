"""Loihi 1 against nengo-loihi 1.1.0's emulator: whole layered networks of its blocks, synapses and axons.

Each case (``layered.py``) is a random float ReLU network quantised with the project's
``quantize(net, "loihi1", calibration)`` and one input whose regular spike trains run for the whole
window. ``nengo_loihi_driver.py`` builds it from nengo-loihi's own objects: a ``SpikeInput`` with an
``Axon`` into the first layer's ``Synapse``; one ``LoihiBlock`` per hidden layer with the project's
compartment parameters (``du``, ``dv``, threshold, bias, ``vmin``, ``vmax``, refractory delay, as
`hardware.simulate` sets up its `LoihiCUBA`), its incoming ``Synapse`` holding the project's effective
weights (mantissa ``<< (6 + exponent)``, what the emulator adds into the input accumulator) and an
``Axon`` to the next layer's synapse; the output is a block whose current has no memory
(``du = 4095``) and no bias, so its ``u`` is each step's accumulated input. The emulator
(``EmulatorInterface.step``: 22-bit input wrap, 24-bit ``u`` and ``u + bias`` wraps, saturating ``v``,
spikes reaching the next block one step later, input spikes too) runs ``steps`` steps. Compared per
step: every hidden layer's spikes (``s{i}``), current (``u{i}``) and voltage (``v{i}``), and the output's
input (``q_out``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import layered  # noqa: E402

TOOL = "nengo-loihi"
VENV = "nengo_loihi"


def make_cases(chip: str, seed: int, n_nets: int) -> list[dict[str, np.ndarray]]:
    """``n_nets`` random networks quantised by the project for ``chip``, with one input each (module docstring)."""
    return layered.loihi_cases(chip, seed, n_nets)


def project_outputs(chip: str, case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The project's `simulate` on the case's integers: per-step spikes, ``u`` and ``v`` per layer."""
    return layered.loihi_outputs(chip, case)
