"""Loihi 2 against lava-nc 0.10.0's bit-accurate models: layered networks of ``Dense`` and ``LIF`` processes.

Each case (``layered.py``) is a random float ReLU network quantised with the project's
``quantize(net, "loihi2", calibration)`` and one input whose regular spike trains run for the whole
window. ``lava_driver.py`` (Python 3.10: lava-nc installs on nothing newer) builds it from lava's
processes, run with ``Loihi2SimCfg(select_tag="fixed_pt")`` (``PyDenseModelBitAcc``,
``PyLifModelBitAcc``): a ``RingBuffer`` of the input raster; per connection a ``Dense`` with the
project's mantissas ``m`` and exponent ``e`` passed as ``2m`` with ``weight_exp = e - 1`` (lava's
bit-accurate ``Dense`` drops the lowest bit of mixed-sign 8-bit weights, so ``m`` itself would become
``m & ~1``; ``2m`` loses nothing and the shift halves the sum exactly), recurrent layers feeding their
own ``LIF`` through a second ``Dense``, and per hidden layer a ``LIF`` with the project's ``du``, ``dv``,
threshold mantissa and bias (as mantissa and exponent); the output is a ``LIF`` with ``du = 4095``,
so its ``u`` is each step's input. Compared per step: every hidden layer's spikes, ``u`` and ``v``
(``s{i}``, ``u{i}``, ``v{i}``) and the output's input (``q_out``), all read with lava ``Monitor``s.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import layered  # noqa: E402

TOOL = "lava-nc"
VENV = "lava"


def make_cases(chip: str, seed: int, n_nets: int) -> list[dict[str, np.ndarray]]:
    """``n_nets`` random networks quantised by the project for ``chip``, with one input each (module docstring)."""
    return layered.loihi_cases(chip, seed, n_nets)


def project_outputs(chip: str, case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The project's `simulate` on the case's integers: per-step spikes, ``u`` and ``v`` per layer."""
    return layered.loihi_outputs(chip, case)
