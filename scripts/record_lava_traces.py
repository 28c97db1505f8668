"""Record golden LIF traces from lava-nc 0.10.0's bit-accurate models (``PyDenseModelBitAcc``, ``PyLifModelBitAcc``).

The test suite replays them with the project alone (``tests/test_vendor_loihi.py``): each step's
synaptic input as lava's ``Dense`` sent it (probed on ``a_out``), the parameters and the initial state
go into `neuro_balance.hardware.LoihiCUBA(variant="lava")`, whose ``u``, ``v`` and spikes must match.
The groups reach what layered networks never do: int32 wraps of the shifted input, ``u`` beyond one
period of ``2**24``, ``v`` at its limits.

Runs in lava's environment (lava-nc 0.10.0 installs on Python 3.10 only)::

    python3.10 -m venv .vendor-venvs/lava && .vendor-venvs/lava/bin/pip install lava-nc==0.10.0
    .vendor-venvs/lava/bin/python scripts/record_lava_traces.py --seed 10 --steps 60 \\
        --out tests/data/vendor/lava_lif_traces.npz

Groups of 12 compartments, one ``RingBuffer -> Dense -> LIF`` chain each (``du``, ``dv`` and ``vth`` are
one value per LIF process in lava; biases one per compartment, mantissa -4095..4095, exponent 0..7):

- ``moderate``: 8-bit weights, ``weight_exp`` 0..2, thresholds low enough to spike;
- ``wrap_u``: ``weight_exp`` 9..12 and slow current decay: ``u`` passes ``+-2**23`` (one period only);
- ``wrap_input``: ``weight_exp`` 17..18: ``a << 6`` wraps at 32 bits;
- ``saturate_v``: large same-sign input, no voltage decay, the largest threshold: ``v`` at ``+-(2**23 - 1)``.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import numpy as np  # noqa: E402

GROUPS = {   # name: (weight_exp range, du choices, dv choices, vth choices, sign)
    "moderate": ((0, 3), (0, 409, 2047, 4095), (0, 205, 4095), (10, 100, 1000), 0),
    "wrap_u": ((9, 13), (0, 1, 8), (0, 410), (2**17 - 1,), 0),
    "wrap_input": ((17, 19), (0, 4095), (0, 2047), (2**17 - 1,), 0),
    "saturate_v": ((4, 6), (4095,), (0,), (2**17 - 1,), 1),
}
PER_GROUP = 12
N_IN = 6


def record(seed: int, steps: int) -> dict[str, np.ndarray]:
    """Run every group through lava; return the arrays to save."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    rng = np.random.default_rng(seed)
    keys = ("group", "du", "dv", "vth", "bias_mant", "bias_exp", "q", "u", "v", "s")
    out: dict[str, list] = {key: [] for key in keys}
    for g, (name, (exp_range, dus, dvs, vths, sign)) in enumerate(GROUPS.items()):
        spikes = (rng.random((N_IN, steps)) < 0.5).astype(np.int32)
        weights = rng.integers(-256, 256, (PER_GROUP, N_IN))
        if sign:                                       # same sign per compartment: v runs to a limit
            weights = np.abs(weights) * np.where(np.arange(PER_GROUP) % 2 == 0, 1, -1)[:, None]
        du, dv, vth = (int(rng.choice(c)) for c in (dus, dvs, vths))
        bias_mant = rng.integers(-4095, 4096, PER_GROUP)
        bias_exp = rng.integers(0, 8, PER_GROUP)
        source = RingBuffer(data=spikes)
        dense = Dense(weights=weights, weight_exp=int(rng.integers(*exp_range)), num_weight_bits=8)
        lif = LIF(shape=(PER_GROUP,), du=du, dv=dv, vth=vth, bias_mant=bias_mant, bias_exp=bias_exp)
        source.s_out.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        monitors = {key: Monitor() for key in ("q", "u", "v", "s")}
        for key, target in (("q", dense.a_out), ("u", lif.u), ("v", lif.v), ("s", lif.s_out)):
            monitors[key].probe(target, steps)
        source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        try:
            for key, monitor in monitors.items():
                (per_var,) = monitor.get_data().values()
                (values,) = per_var.values()
                out[key].append(np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64).reshape(steps, -1))
        finally:
            source.stop()
        out["group"].append(np.full(PER_GROUP, g))
        for key, value in (("du", du), ("dv", dv), ("vth", vth)):
            out[key].append(np.full(PER_GROUP, value))
        out["bias_mant"].append(bias_mant)
        out["bias_exp"].append(bias_exp)
    meta = {"command": " ".join(["python"] + sys.argv), "seed": seed, "steps": steps, "groups": list(GROUPS),
            "reference": "lava.proc.lif.models.PyLifModelBitAcc fed by PyDenseModelBitAcc (Loihi2SimCfg fixed_pt)",
            "lava-nc": importlib.metadata.version("lava-nc"), "numpy": np.__version__,
            "python": platform.python_version()}
    arrays = {key: np.concatenate(values, axis=1 if key in ("q", "u", "v", "s") else 0) for key, values in out.items()}
    return {"meta": np.array(json.dumps(meta)), **arrays}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    arrays = record(args.seed, args.steps)
    tmp = args.out + ".tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, args.out)
    print(json.loads(str(arrays["meta"])))


if __name__ == "__main__":
    main()
