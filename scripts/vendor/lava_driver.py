"""Run loihi2 cases through lava-nc 0.10.0's bit-accurate processes: ``lava_driver.py in.npz out.npz``.

Runs in the lava venv (Python 3.10; ``scripts/vendor_venvs.sh``) with numpy and lava-nc only. Each case
(keys in ``lava.py``) becomes ``RingBuffer -> Dense -> LIF -> Dense -> ... -> LIF`` (a recurrent layer
also ``LIF -> Dense -> the same LIF``), run for ``steps``
steps with ``Loihi2SimCfg(select_tag="fixed_pt")`` and read with ``Monitor``s. Weights: a connection
with the project's mantissas ``m`` and exponent ``e`` becomes a Dense of ``2m`` with ``weight_exp = e - 1``
(lava drops the lowest bit of mixed-sign 8-bit weights; the halving is exact), and the LIF adds the
shift by 6. Writes per case every hidden LIF's spikes ``s{i}``, ``u{i}`` and ``v{i}`` and
the output LIF's ``u`` as ``q_out`` per step, or ``error``.
"""
from __future__ import annotations

import sys

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIF
from lava.proc.monitor.process import Monitor

ACT_SHIFT = 6
VTH_MAX = 2**17 - 1


def _one(values: np.ndarray, name: str) -> int:
    """The single value a LIF process takes for a whole layer."""
    if np.unique(values).size != 1:
        raise ValueError(f"{name}: lava's LIF takes one value per process, got {np.unique(values)}")
    return int(values.flat[0])


def _bias(bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``bias = mant << exp`` with a 13-bit mantissa and the smallest exponent 0..7 that is exact."""
    exp = np.zeros(bias.shape, dtype=np.int64)
    mant = bias.astype(np.int64)
    while np.any((np.abs(mant) > 4095) & (exp < 7)):
        big = np.abs(mant) > 4095
        if np.any(mant[big] & 1):
            raise ValueError(f"bias {bias[big]} has no 13-bit mantissa with an exponent")
        mant = np.where(big, mant >> 1, mant)
        exp = np.where(big, exp + 1, exp)
    if np.any(np.abs(mant) > 4095):
        raise ValueError(f"bias {bias} exceeds 4095 << 7")
    return mant, exp


def _dense(mantissa: np.ndarray, exponent: np.ndarray) -> Dense:
    """A bit-accurate Dense whose input is ``(sum of m) << e`` (``>> -e``): ``2m`` with ``weight_exp = e - 1``."""
    return Dense(weights=2 * mantissa, weight_exp=_one(exponent, "weight exponent") - 1, num_weight_bits=8)


def run_case(case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n_hidden = int(case["n_hidden"])
    steps = int(case["steps"])
    source = RingBuffer(data=case["raster"].T.astype(np.int32))
    port, lifs = source.s_out, []
    for i in range(1, n_hidden + 2):
        dense = _dense(case[f"mw{i}"], case[f"ew{i}"])
        n = case[f"w{i}"].shape[0]
        if i <= n_hidden:
            vth = case[f"vth{i}"]
            if np.any(vth % (1 << ACT_SHIFT)) or _one(vth, "vth") >> ACT_SHIFT > VTH_MAX:
                raise ValueError(f"layer {i}: threshold {vth[0]} is not a 17-bit mantissa << 6")
            if np.any(case[f"ref{i}"] != 1) or np.any(case[f"vmin{i}"] != -(2**23 - 1)):
                raise ValueError(f"layer {i}: lava's LIF has no refractory period and no voltage floor")
            mant, exp = _bias(case[f"bias{i}"])
            lif = LIF(shape=(n,), du=_one(case[f"du{i}"], "du"), dv=_one(case[f"dv{i}"], "dv"),
                      vth=_one(vth, "vth") >> ACT_SHIFT, bias_mant=mant, bias_exp=exp)
        else:                                           # u = this step's input
            lif = LIF(shape=(n,), du=4095, dv=0, vth=VTH_MAX, bias_mant=0, bias_exp=0)
        port.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        if f"r{i}" in case:                             # recurrent: the LIF's own spikes, a step later
            recurrent = _dense(case[f"mr{i}"], case[f"er{i}"])
            lif.s_out.connect(recurrent.s_in)
            recurrent.a_out.connect(lif.a_in)
        port = lif.s_out
        lifs.append(lif)
    monitors = {}
    for i, lif in enumerate(lifs[:-1], start=1):
        for key, target in ((f"s{i}", lif.s_out), (f"u{i}", lif.u), (f"v{i}", lif.v)):
            monitors[key] = Monitor()
            monitors[key].probe(target, steps)
    monitors["q_out"] = Monitor()
    monitors["q_out"].probe(lifs[-1].u, steps)
    try:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        out = {}
        for key, monitor in monitors.items():
            data = monitor.get_data()
            (per_var,) = data.values()
            (values,) = per_var.values()
            out[key] = np.asarray(values).reshape(steps, -1).astype(np.int64)
    finally:
        source.stop()
    return out


if __name__ == "__main__":
    from driver_io import run_cases

    run_cases(sys.argv[1], sys.argv[2], "lava-nc", run_case)
