"""Run loihi1 cases through nengo-loihi 1.1.0's emulator: ``nengo_loihi_driver.py in.npz out.npz``.

Runs in the nengo_loihi venv (``scripts/vendor_venvs.sh``) with numpy and nengo-loihi only. Each case
(keys in ``nengo_loihi.py``) becomes a nengo-loihi ``Model`` of ``LoihiBlock``s joined by ``Synapse``
and ``Axon`` objects (a recurrent layer's axons also target a synapse of its own block) and fed by a
``SpikeInput``; ``EmulatorInterface`` steps it (integer blocks, no
noise, ``strict = False``: overflows wrap with a warning, as on the chip). Writes per case every hidden
block's spikes ``s{i}``, current ``u{i}`` and voltage ``v{i}`` and the output block's current ``q_out``
per step, or ``error``.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np
from nengo_loihi.block import Axon, LoihiBlock, Synapse
from nengo_loihi.builder import Model
from nengo_loihi.builder.discretize import array_to_int
from nengo_loihi.emulator import EmulatorInterface
from nengo_loihi.inputs import SpikeInput

I32 = np.int32
V_MAX = 2**23 - 1


def _block(n: int, du, dv, vth, bias, vmin, vmax, ref) -> LoihiBlock:
    """A block of ``n`` integer compartments with the given per-compartment parameters."""
    block = LoihiBlock(n)
    comp = block.compartment
    comp.decay_u = np.broadcast_to(du, n).astype(I32)
    comp.decay_v = np.broadcast_to(dv, n).astype(I32)
    comp.scale_u = comp.scale_v = False
    comp.vth = np.broadcast_to(vth, n).astype(I32)
    comp.bias = np.broadcast_to(bias, n).astype(I32)
    comp.refract_delay = np.broadcast_to(ref, n).astype(I32)
    comp.vmin = np.broadcast_to(vmin, n).astype(I32)
    comp.vmax = np.broadcast_to(vmax, n).astype(I32)
    return block


def _synapse(weights: np.ndarray) -> Synapse:
    """A dense synapse with integer weights ``(n_post, n_pre)``: one axon per presynaptic unit."""
    syn = Synapse(weights.shape[1])
    syn.set_weights(weights.T.astype(np.float32))     # exact: |w| < 2**24
    for w in syn.weights:
        array_to_int(w, w)                             # as discretize_synapse stores them
    return syn


def _connect(source, synapse: Synapse, n: int) -> None:
    """An axon from ``source`` (a block or the spike input) to ``synapse``, unit ``j`` to axon ``j``."""
    axon = Axon(n)
    axon.target = synapse
    source.add_axon(axon)


def run_case(case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n_hidden = int(case["n_hidden"])
    steps = int(case["steps"])
    raster = case["raster"]
    model = Model()
    spikes_in = SpikeInput(raster.shape[1])
    for t in range(steps):                              # emulator steps count from 1
        spikes_in.add_spikes(t + 1, np.flatnonzero(raster[t]).tolist())
    model.add_input(spikes_in)
    blocks, source = [], spikes_in
    for i in range(1, n_hidden + 2):
        w = case[f"w{i}"]
        n = w.shape[0]
        if i <= n_hidden:
            block = _block(n, case[f"du{i}"], case[f"dv{i}"], case[f"vth{i}"], case[f"bias{i}"], case[f"vmin{i}"],
                           case[f"vmax{i}"], case[f"ref{i}"])
        else:                                           # u = this step's input; never spikes
            block = _block(n, 4095, 4095, V_MAX, 0, -V_MAX, V_MAX, 1)
        synapse = _synapse(w)
        block.add_synapse(synapse)
        _connect(source, synapse, w.shape[1])
        if f"r{i}" in case:                             # recurrent: the block's own spikes, a step later
            recurrent = _synapse(case[f"r{i}"])
            block.add_synapse(recurrent)
            _connect(block, recurrent, n)
        model.add_block(block)
        blocks.append(block)
        source = block
    emulator = EmulatorInterface(model, seed=0)
    state = emulator.compartment
    slices = [emulator.block_info.slices[b] for b in blocks]
    record: dict[str, list] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # overflow warnings (strict = False)
        for _ in range(steps):
            emulator.step()
            for i, sl in enumerate(slices[:-1], start=1):
                record.setdefault(f"s{i}", []).append(state.spiked[sl].copy())
                record.setdefault(f"u{i}", []).append(state.current[sl].copy())
                record.setdefault(f"v{i}", []).append(state.voltage[sl].copy())
            record.setdefault("q_out", []).append(state.current[slices[-1]].copy())
    emulator.close()
    return {key: np.array(values).astype(np.int64) for key, values in record.items()}


if __name__ == "__main__":
    from driver_io import run_cases

    run_cases(sys.argv[1], sys.argv[2], "nengo-loihi", run_case)
