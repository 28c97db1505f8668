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
from neuro_balance.hardware.spiking import neuron_populations  # noqa: E402

TOOL = "nengo-loihi"
VENV = "nengo_loihi"


def compartments(qnet) -> dict[str, np.ndarray]:
    """Per hidden layer ``i``, the compartment parameters of the project's stepped `LoihiCUBA`."""
    out = {}
    for i, (name, nrn) in enumerate(neuron_populations(qnet).items(), start=1):
        n = nrn.n
        lo, hi = nrn.v_format.min, nrn.v_format.max
        out.update({f"du{i}": np.broadcast_to(nrn.du, n), f"dv{i}": np.broadcast_to(nrn.dv, n),
                    f"vth{i}": nrn.threshold, f"bias{i}": nrn.bias,
                    f"vmin{i}": np.broadcast_to(lo if nrn.vmin is None else nrn.vmin, n),
                    f"vmax{i}": np.broadcast_to(hi if nrn.vmax is None else nrn.vmax, n),
                    f"ref{i}": np.broadcast_to(nrn.refractory, n)})
    return {key: np.asarray(value, dtype=np.int64).copy() for key, value in out.items()}


def make_cases(chip: str, seed: int, n_nets: int) -> list[dict[str, np.ndarray]]:
    """``n_nets`` random networks quantised by the project for ``chip``, with one input each (module docstring)."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n_nets):
        qnet = layered.quantized(chip, layered.random_sizes(rng), rng)
        case = layered.integer_case(qnet, layered.input_counts(qnet, rng), qnet.spec.window)
        case.update(compartments(qnet))
        cases.append(case)
    return cases


def project_outputs(chip: str, case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The project's `simulate` on the case's integers: per-step spikes, ``u`` and ``v`` per layer."""
    qnet = layered.rebuild(chip, case)
    run = layered.run(qnet, case)
    n_hidden = int(case["n_hidden"])
    acc = run.trace[f"acc.{qnet.network.output.name}"][:, 0]
    out = {"q_out": np.diff(acc, axis=0, prepend=0) - case[f"b{n_hidden + 1}"]}
    for i, name in enumerate(layered.hidden_names(qnet), start=1):
        out[f"s{i}"] = run.trace[f"spikes.{name}"][:, 0]
        out[f"u{i}"] = run.trace[f"u.{name}"][:, 0]
        out[f"v{i}"] = run.trace[f"v.{name}"][:, 0]
    return out
