"""Record golden Loihi CUBA LIF traces from nengo-loihi's own emulator (``CompartmentState.update``).

The test suite replays these traces with the project alone (``tests/test_hardware_loihi_golden.py``):
the same per-step synaptic input (the compartment's input accumulator ``q``), parameters and initial
state go into `neuro_balance.hardware.LoihiCUBA`, whose ``u``, ``v`` and spikes must match bit for bit.

Runs in its own environment (nengo-loihi 1.1.0 needs numpy < 2; nengo 3.2.0 is the newest nengo it
supports)::

    python3 -m venv /work/venvs/nengo-loihi
    /work/venvs/nengo-loihi/bin/pip install nengo-loihi==1.1.0 nengo==3.2.0 'numpy<2'
    /work/venvs/nengo-loihi/bin/python scripts/record_nengo_loihi_traces.py \\
        --seed 10 --per-group 64 --steps 200 --out tests/data/nengo_loihi_cuba_traces.npz

Groups of compartments (every parameter drawn per compartment: decays 0..4095, bias mantissas
-4095..4095 with exponents 0..7, threshold mantissas 1..2**17 - 1, refractory delays 1..63, ``vmin``
= -(2**e) + 1 and ``vmax`` = 2**(9 + 2e) - 1 as nengo-loihi's discretisation encodes them):

- ``random``: sparse sums of effective weights ``mant * 2**(6 + exp)`` (exp -7..7); large sums wrap
  the 22-bit input accumulator.
- ``drive_u``: strong same-sign input with slow current decay; ``u`` wraps at 24 bits.
- ``u_bias``: ``u`` starts near +-2**23 with a large same-sign bias, so ``u + bias`` wraps.
- ``saturate``: thresholds above ``vmax``; ``v`` saturates at ``vmax`` and ``vmin``.
- ``refractory``: low thresholds and steady input; spikes and refractory periods 1..63; half of
  them integrate a bias that divides the threshold, so ``v`` equals ``vth`` (no spike: strict ``>``).

The file holds the inputs, parameters, initial state, recorded ``u``, ``v`` and packed spikes, and a
``meta`` JSON string with the command, seed and package versions.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import warnings
from pathlib import Path

import numpy as np

GROUPS = ("random", "drive_u", "u_bias", "saturate", "refractory")
U_MAX = 2**23 - 1


def draw_parameters(rng: np.random.Generator, n: int, group: str) -> dict[str, np.ndarray]:
    """Per-compartment integer parameters for one group."""
    def decay(special):
        d = rng.integers(0, 4096, n)
        pick = rng.random(n) < 0.3
        d[pick] = rng.choice(special, pick.sum())
        return d

    p = {
        "du": decay([0, 1, 2047, 4094, 4095]),
        "dv": decay([0, 1, 2047, 4094, 4095]),
        "bias_mant": rng.integers(-4095, 4096, n),
        "bias_exp": rng.integers(0, 8, n),
        "vth_mant": np.round(2.0 ** rng.uniform(0, 17, n)).clip(1, 2**17 - 1).astype(np.int64),
        "refractory": rng.integers(1, 64, n),
        "vmin_exp": np.where(rng.random(n) < 0.3, 0, np.where(rng.random(n) < 0.5, 23, rng.integers(0, 24, n))),
        "vmax_exp": np.where(rng.random(n) < 0.5, 7, rng.integers(0, 8, n)),
    }
    if group in ("drive_u", "u_bias"):
        p["du"] = rng.choice([0, 1, 2, 8], n)
        p["vth_mant"] = rng.integers(2**16, 2**17, n)
    if group == "u_bias":
        p["bias_mant"] = rng.integers(2048, 4096, n) * rng.choice([-1, 1], n)
        p["bias_exp"] = rng.integers(5, 8, n)
    if group == "saturate":
        p["vmax_exp"] = rng.integers(0, 5, n)
        p["vth_mant"] = rng.integers(2**16, 2**17, n)      # threshold above every vmax below 2**17 << 6
    if group == "refractory":
        p["vth_mant"] = rng.integers(1, 64, n)
        p["refractory"] = np.arange(n) % 63 + 1             # every delay 1..63
        p["bias_mant"] = rng.integers(0, 4096, n)
        p["dv"] = rng.integers(0, 64, n)
        # Half the group: no leak and a bias dividing the threshold, so v lands on vth exactly.
        exact = np.arange(n) % 2 == 1
        p["dv"][exact] = 0
        p["bias_exp"][exact] = 0
        p["bias_mant"][exact] = (p["vth_mant"][exact] << 6) // rng.choice([1, 2, 4, 8, 16, 32, 64], exact.sum())
    return p


def draw_inputs(rng: np.random.Generator, n: int, steps: int, group: str, p: dict) -> np.ndarray:
    """Per-step synaptic input ``q`` (effective weights summed over arriving spikes)."""
    weights = rng.integers(-256, 256, (steps, n, 4)) * 2.0 ** (6 + rng.integers(-7, 8, (steps, n, 4)))
    active = rng.random((steps, n, 4)) < {"random": 0.25, "refractory": 0.15}.get(group, 0.1)
    q = np.trunc((weights * active).sum(axis=2)).astype(np.int64)
    if group == "drive_u":
        sign = np.where(np.arange(n) % 2 == 0, 1, -1)
        q = sign * rng.integers(2**18, 2**21, (steps, n)) + q // 16
    if group == "u_bias":
        q = q // 64
    if group == "refractory":
        q[:, np.arange(n) % 2 == 1] = 0                      # the exact-threshold half runs on its bias
    return q


def initial_state(rng: np.random.Generator, n: int, group: str, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Initial ``u`` and ``v``: zero except where a group starts near the limits."""
    u0 = np.zeros(n, dtype=np.int64)
    v0 = np.zeros(n, dtype=np.int64)
    if group == "u_bias":
        bias = p["bias_mant"] << p["bias_exp"]
        u0 = np.sign(bias) * (U_MAX - rng.integers(0, 2**18, n))
    if group == "saturate":
        v0 = rng.integers(-U_MAX, U_MAX + 1, n)
    return u0, v0


def record(seed: int, per_group: int, steps: int) -> dict[str, np.ndarray]:
    """Run every group through nengo-loihi's ``CompartmentState.update``; return arrays to save."""
    import nengo
    import nengo_loihi
    from nengo_loihi.block import LoihiBlock
    from nengo_loihi.emulator.interface import BlockInfo, CompartmentState

    rng = np.random.default_rng(seed)
    params, inputs, u0s, v0s, groups = [], [], [], [], []
    for gi, group in enumerate(GROUPS):
        p = draw_parameters(rng, per_group, group)
        inputs.append(draw_inputs(rng, per_group, steps, group, p))
        u0, v0 = initial_state(rng, per_group, group, p)
        params.append(p)
        u0s.append(u0)
        v0s.append(v0)
        groups.append(np.full(per_group, gi))
    p = {k: np.concatenate([q[k] for q in params]) for k in params[0]}
    q = np.concatenate(inputs, axis=1)
    u0, v0 = np.concatenate(u0s), np.concatenate(v0s)
    n = q.shape[1]

    block = LoihiBlock(n)
    comp = block.compartment
    i32 = np.int32
    comp.decay_u = p["du"].astype(i32)
    comp.decay_v = p["dv"].astype(i32)
    comp.scale_u = comp.scale_v = False
    comp.vth = (p["vth_mant"] << 6).astype(i32)
    comp.bias = (p["bias_mant"] << p["bias_exp"]).astype(i32)
    comp.refract_delay = p["refractory"].astype(i32)
    comp.vmin = (-(2 ** p["vmin_exp"]) + 1).astype(i32)
    comp.vmax = (2 ** (9 + 2 * p["vmax_exp"]) - 1).astype(i32)
    state = CompartmentState(BlockInfo([block]), strict=False)
    state.current[:] = u0
    state.voltage[:] = v0
    noise_rng = np.random.RandomState(seed)      # noise is disabled; update() still takes an rng

    us = np.zeros((steps, n), dtype=np.int32)
    vs = np.zeros((steps, n), dtype=np.int32)
    ss = np.zeros((steps, n), dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # overflow warnings: the point of these traces
        for t in range(steps):
            state.advance_input()
            state.input[0, :] = q[t]
            state.update(noise_rng)
            us[t], vs[t], ss[t] = state.current, state.voltage, state.spiked
    meta = {
        "command": " ".join(["python"] + sys.argv),
        "seed": seed, "per_group": per_group, "steps": steps, "groups": list(GROUPS),
        "reference": "nengo_loihi.emulator.interface.CompartmentState.update (dtype int32, strict=False, no noise)",
        "nengo_loihi": nengo_loihi.__version__, "nengo": nengo.__version__, "numpy": np.__version__,
        "python": platform.python_version(),
    }
    return {"meta": np.array(json.dumps(meta)), "group": np.concatenate(groups).astype(np.int8),
            "q": q.astype(np.int32), "u0": u0.astype(np.int32), "v0": v0.astype(np.int32),
            **{k: v.astype(np.int32) for k, v in p.items()},
            "u": us, "v": vs, "spikes": np.packbits(ss, axis=0), "n_steps": np.array(steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--per-group", type=int, default=64, help="compartments per group")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    arrays = record(args.seed, args.per_group, args.steps)
    tmp = Path(args.out).with_suffix(".tmp")
    with open(tmp, "wb") as f:              # written whole, then moved into place
        np.savez_compressed(f, **arrays)
    os.replace(tmp, args.out)
    print(json.loads(str(arrays["meta"])))


if __name__ == "__main__":
    main()
