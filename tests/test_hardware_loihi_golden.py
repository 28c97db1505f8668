"""LoihiCUBA replays golden traces recorded from nengo-loihi 1.1.0's emulator bit for bit.

The traces (``tests/data/nengo_loihi_cuba_traces.npz``) come from nengo-loihi's own
``CompartmentState.update``, recorded by ``scripts/record_nengo_loihi_traces.py`` (command, seed and
versions are stored in the file's ``meta``); this suite needs only the project to replay them.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from neuro_balance.hardware.neurons import LoihiCUBA

TRACES = Path(__file__).parent / "data" / "nengo_loihi_cuba_traces.npz"
U_MAX = 2**23 - 1


@pytest.fixture(scope="module")
def golden():
    with np.load(TRACES) as data:
        d = {k: data[k] for k in data.files}
    d["meta"] = json.loads(str(d["meta"]))
    steps = int(d["n_steps"])
    d["spikes"] = np.unpackbits(d["spikes"], axis=0, count=steps).astype(bool)
    d["bias"] = d["bias_mant"].astype(np.int64) << d["bias_exp"]
    return d


def replay(d, variant="nengo_loihi"):
    """Step a LoihiCUBA through the recorded inputs; returns u, v, spikes per step and the neuron."""
    nrn = LoihiCUBA(d["q"].shape[1], du=d["du"], dv=d["dv"], vth_mant=d["vth_mant"], bias_mant=d["bias_mant"],
                    bias_exp=d["bias_exp"], refractory=d["refractory"], act_shift=0,
                    vmin=-(2 ** d["vmin_exp"].astype(np.int64)) + 1,
                    vmax=2 ** (9 + 2 * d["vmax_exp"].astype(np.int64)) - 1, variant=variant)
    nrn.u[:] = d["u0"]
    nrn.v[:] = d["v0"]
    us, vs, ss = [], [], []
    for q in d["q"]:
        ss.append(nrn.step(q))
        us.append(nrn.u.copy())
        vs.append(nrn.v.copy())
    return np.array(us), np.array(vs), np.array(ss), nrn


def test_traces_were_recorded_from_nengo_loihi_1_1_0(golden):
    meta = golden["meta"]
    assert meta["nengo_loihi"] == "1.1.0"
    assert "CompartmentState.update" in meta["reference"]
    assert "record_nengo_loihi_traces.py" in meta["command"] and str(meta["seed"]) in meta["command"]


def test_traces_cover_every_wrap_saturation_and_parameter_range(golden):
    """Coverage measured on the recorded data alone, not on the model under test."""
    d = golden
    q, u, v, bias = d["q"].astype(np.int64), d["u"].astype(np.int64), d["v"].astype(np.int64), d["bias"]
    assert np.count_nonzero((q < -2**21) | (q >= 2**21)) > 0                      # 22-bit input wrap
    # u wraps: with du <= 8 a step changes u by at most |u| * 9 / 4096 + 2**21 < 2**22 unless it wraps.
    u_prev = np.vstack([d["u0"][None], u[:-1]]).astype(np.int64)
    assert np.count_nonzero((np.abs(u - u_prev) > 2**22) & (d["du"] <= 8)) > 0
    assert np.count_nonzero((u + bias > U_MAX) | (u + bias < -U_MAX - 1)) > 0    # u + bias wraps
    vmax = 2 ** (9 + 2 * d["vmax_exp"].astype(np.int64)) - 1
    vmin = -(2 ** d["vmin_exp"].astype(np.int64)) + 1
    # v saturates at vmax (below every threshold there: +2**23 - 1 itself is never recorded since
    # the largest threshold, (2**17 - 1) << 6, resets v first), at vmin and at -(2**23 - 1).
    assert np.count_nonzero((v == vmax) & (vmax < d["vth_mant"] << 6)) > 0
    assert np.count_nonzero((v == vmin) & (vmin < 0) & (vmin > -U_MAX)) > 0
    assert np.count_nonzero(v == -U_MAX) > 0
    assert np.count_nonzero(v == d["vth_mant"] << 6) > 0                         # v == vth: strict >
    assert set(d["bias_exp"]) == set(range(8))
    assert {0, 4095} <= set(d["du"]) and {0, 4095} <= set(d["dv"])
    spiked = d["spikes"].any(axis=0)
    assert set(d["refractory"][spiked]) == set(range(1, 64))


def test_replay_matches_nengo_loihi_bit_for_bit(golden):
    u, v, s, nrn = replay(golden)
    for name, ours, ref in (("u", u, golden["u"]), ("v", v, golden["v"]), ("spikes", s, golden["spikes"])):
        bad = np.argwhere(ours != ref)
        assert bad.size == 0, f"{name} differs at {len(bad)} neuron-steps, first (step, neuron) {bad[0].tolist()}"
    assert nrn.overflow["u_bias"] > 0 and nrn.overflow["u"] > 0 and nrn.overflow["accumulator"] > 0


def test_unwrapped_u_plus_bias_diverges_from_nengo_loihi(golden):
    """lava's variant adds u + bias straight into v: the traces see the difference."""
    d = golden
    _, v, s, _ = replay(d, variant="lava")
    u = d["u"].astype(np.int64)
    wrapped = (u + d["bias"] > U_MAX) | (u + d["bias"] < -U_MAX - 1)
    group = d["meta"]["groups"].index("u_bias")
    members = d["group"] == group
    # In this group inputs are too small to wrap q or u: v and spikes may differ only from the
    # step where u + bias first wraps (where vmin = 0 or a spike hides the wrap, not at all).
    differs = (v != d["v"]) | (s != d["spikes"])
    first_wrap = np.where(wrapped.any(axis=0), wrapped.argmax(axis=0), len(u))
    first_diff = np.where(differs.any(axis=0), differs.argmax(axis=0), len(u))
    assert (first_diff[members] >= first_wrap[members]).all()
    hit = members & (first_wrap < len(u))
    assert np.count_nonzero(first_diff[hit] == first_wrap[hit]) >= hit.sum() // 2
