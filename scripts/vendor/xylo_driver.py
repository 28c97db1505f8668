"""Run Xylo cases through xylosim (``xylosim.v2.XyloLayer``); runs in the xylosim venv, never imports neuro_balance.

Usage: ``python xylo_driver.py in.npz out.npz``. ``in.npz`` holds ``c{i}.{key}`` for the keys of
``scripts/vendor/xylo_project.py`` (``w_in``, ``w_rec``, ``w_out`` as ``[pre, post]`` int8, thresholds, biases,
dashes, weight shifts, ``raster`` of input spike counts ``(steps, n_in)``); ``out.npz`` gets per case
``spikes``, ``v``, ``isyn``, ``out_spikes``, ``v_out``, ``isyn_out`` (each ``(steps, n)``, as xylosim
records them after every step), ``c{i}.error`` where a case failed, and ``tool_version``. Where rockpool is
installed too, cases with a float specification (``rp_*``) also get ``rockpool_w_in``, ``rockpool_w_rec``,
``rockpool_w_out``: its ``global_quantize`` of that specification (and ``out.npz`` gets ``rockpool_version``).
"""
from __future__ import annotations

import importlib.metadata
import os
import sys
import tempfile

import numpy as np
from xylosim.v2 import XyloLayer, XyloSynapse

try:   # optional: rockpool beside xylosim quantises the float specifications of the cases that carry one
    from rockpool.transform.quantize_methods import global_quantize
except ImportError:
    global_quantize = None


def synapses(w: np.ndarray) -> list[list[XyloSynapse]]:
    """One list per pre-synaptic neuron of its non-zero synapses onto ``post`` (synapse 0), in post order."""
    return [[XyloSynapse(int(j), 0, int(w[i, j])) for j in np.flatnonzero(w[i])] for i in range(w.shape[0])]


def run_case(case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Build one ``XyloLayer`` from the case's integers and evolve it over the raster."""
    ints = lambda key: [int(x) for x in case[key]]          # noqa: E731
    n_hid = case["w_rec"].shape[0]
    keep = (synapses(case["w_in"]), synapses(case["w_rec"]), synapses(case["w_out"]))   # the layer keeps raw pointers
    layer = XyloLayer(*keep, [[] for _ in range(n_hid)], ints("threshold"), ints("threshold_out"), True,
                      ints("bias"), ints("bias_out"), int(case["shift_in"]), int(case["shift_rec"]),
                      int(case["shift_out"]), ints("dash_mem"), ints("dash_mem_out"),
                      [[d] for d in ints("dash_syn")], [[d] for d in ints("dash_syn_out")], "case")
    out_spikes = np.array(layer.evolve(case["raster"].astype(int).tolist()), dtype=np.int64)
    result = {
        "spikes": np.array(layer.rec_recurrent_spikes, dtype=np.int64),
        "v": np.array(layer.rec_v_mem, dtype=np.int64).T,
        "isyn": np.array(layer.rec_i_syn, dtype=np.int64).T,
        "out_spikes": out_spikes,
        "v_out": np.array(layer.rec_v_mem_out, dtype=np.int64).T,
        "isyn_out": np.array(layer.rec_i_syn_out, dtype=np.int64).T,
    }
    del layer, keep
    if global_quantize is not None and "rp_w_in" in case:
        quantized = global_quantize(
            weights_in=case["rp_w_in"], weights_rec=case["rp_w_rec"], weights_out=case["rp_w_out"],
            threshold=case["rp_threshold"], threshold_out=case["rp_threshold_out"], dash_mem=case["dash_mem"],
            dash_mem_out=case["dash_mem_out"], dash_syn=case["dash_syn"], dash_syn_2=case["dash_syn"],
            dash_syn_out=case["dash_syn_out"], bias=case["rp_bias"], bias_out=case["rp_bias_out"],
            bits_per_weight=8, bits_per_threshold=16)
        for key in ("w_in", "w_rec", "w_out"):
            w = np.asarray(quantized[f"weights_{key[2:]}"], dtype=np.int64)
            result[f"rockpool_{key}"] = w[..., 0] if w.ndim == 3 else w     # [pre, post, synapse]: synapse 0
    return result


def main(src: str, dst: str) -> None:
    data = np.load(src, allow_pickle=False)
    cases: dict[int, dict[str, np.ndarray]] = {}
    for name in data.files:
        if name.startswith("c") and "." in name:
            index, key = name[1:].split(".", 1)
            cases.setdefault(int(index), {})[key] = data[name]
    out: dict[str, np.ndarray] = {"tool_version": np.array(importlib.metadata.version("xylosim"))}
    if global_quantize is not None:
        out["rockpool_version"] = np.array(importlib.metadata.version("rockpool"))
    for i in sorted(cases):
        try:
            for key, value in run_case(cases[i]).items():
                out[f"c{i}.{key}"] = value
        except Exception as err:                               # reported per case, the others still run
            out[f"c{i}.error"] = np.array(f"{type(err).__name__}: {err}")
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=os.path.dirname(os.path.abspath(dst)))
    os.close(fd)
    np.savez(tmp, **out)
    os.replace(tmp, dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: xylo_driver.py in.npz out.npz")
    main(sys.argv[1], sys.argv[2])
