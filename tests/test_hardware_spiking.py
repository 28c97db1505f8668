"""Golden single-neuron traces derived by hand from Loihi's documented integer arithmetic.

nengo-loihi's emulator/interface.py and lava's proc/lif/models.py: per step
q = acc(a << 6); u = wrap24(decay(u, du + 1) + q); v = sat(decay(v, dv) + wrap24(u + bias)), +-(2**23 - 1);
v = 0 while refractory; spike if v > vth_mant << 6; v = 0 on a spike;
decay(x, d) = sign(x) * ((|x| * (4096 - d)) >> 12).
"""
import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.hardware import quantize
import yaml

from neuro_balance.hardware.profile import PROFILE_DIR
from neuro_balance.hardware.neurons import IntegrateFire, LoihiCUBA, loihi_decay
from neuro_balance.hardware.integer_pass import spike_counts
from neuro_balance.hardware.spiking import simulate

pytestmark = pytest.mark.filterwarnings("ignore::neuro_balance.hardware.UnverifiedProfileWarning")

BIG = 2**17 - 1   # largest threshold mantissa: no spike in the traces that test u and v


def run(neuron, inputs):
    us, vs, ss = [], [], []
    for a in inputs:
        s = neuron.step(np.array([a]))
        us.append(int(neuron.u[0]))
        vs.append(int(neuron.v[0]))
        ss.append(int(s[0]))
    return us, vs, ss


def test_current_decay_halves_with_du_2047_as_in_lavas_impulse_test():
    # 4096 - (2047 + 1) = 2048: u halves each step; an impulse a = 128 enters as 128 << 6 = 2**13.
    n = LoihiCUBA(1, du=2047, dv=0, vth_mant=BIG)
    us, vs, ss = run(n, [128, 0, 0, 0, 0])
    assert us == [8192, 4096, 2048, 1024, 512]
    assert vs == [8192, 12288, 14336, 15360, 15872]      # dv = 0: v integrates u without loss
    assert ss == [0] * 5


def test_decay_rounds_toward_zero_for_negative_current():
    # du = 0: factor 4095. -960 -> -((960 * 4095) >> 12) = -(3931200 >> 12) = -959 (floor would give -960).
    n = LoihiCUBA(1, du=0, dv=0, vth_mant=BIG)
    us, _, _ = run(n, [-15, 0, 0])
    assert us == [-960, -959, -958]       # 959 * 4095 = 3927105, >> 12 = 958
    assert loihi_decay(np.array([-960]), 0, offset=1).tolist() == [-959]


def test_current_wraps_at_24_bits():
    # u = 2**23 - 100, du = 0: decay gives 8388508 - ceil(8388508 / 4096) = 8388508 - 2048 = 8386460;
    # plus q = 100 << 6 = 6400 -> 8392860 > 2**23 - 1, wraps to 8392860 - 2**24 = -8384356.
    n = LoihiCUBA(1, du=0, dv=0, vth_mant=BIG)
    n.u[:] = 2**23 - 100
    us, _, _ = run(n, [100, 0])
    assert us[0] == -8384356
    assert us[1] == -(8384356 - 2047)     # 8384356 / 4096 = 2046.96: toward zero keeps -8382309
    assert n.overflow["u"] == 1


def test_voltage_saturates_at_plus_minus_2_to_23_minus_1():
    # v = -(2**23 - 10), dv = 0, du = 4095 (u = q): v + u = -8388598 - 64 = -8388662 -> -8388607.
    n = LoihiCUBA(1, du=4095, dv=0, vth_mant=BIG)
    n.v[:] = -(2**23 - 10)
    _, vs, ss = run(n, [-1, -1])
    assert vs == [-8388607, -8388607] and ss == [0, 0]
    assert n.overflow["v"] == 2


def test_threshold_is_strict():
    # vth = 1 << 6 = 64, u = 64 each step: v = 64 is not > 64; v = 128 spikes and resets to 0.
    n = LoihiCUBA(1, du=4095, dv=0, vth_mant=1)
    _, vs, ss = run(n, [1, 1, 1, 1])
    assert ss == [0, 1, 0, 1] and vs == [64, 0, 64, 0]


def test_refractory_holds_voltage_at_zero_for_ref_minus_one_steps():
    n = LoihiCUBA(1, du=4095, dv=0, vth_mant=1, refractory=3)
    _, vs, ss = run(n, [1] * 6)
    # spike at step 2; steps 3 and 4 held at 0 although u = 64 arrives; integration resumes at 5.
    assert ss == [0, 1, 0, 0, 0, 1] and vs == [64, 0, 0, 0, 64, 0]


def test_bias_is_mantissa_shifted_by_exponent():
    # bias = 3 << 2 = 12 per step, vth = 64: v = 12, 24, ..., 72 > 64 at step 6.
    n = LoihiCUBA(1, du=4095, dv=0, vth_mant=1, bias_mant=3, bias_exp=2)
    _, vs, ss = run(n, [0] * 6)
    assert vs == [12, 24, 36, 48, 60, 0] and ss == [0, 0, 0, 0, 0, 1]


def test_synaptic_accumulator_wraps_at_22_bits():
    # a = 2**15: q = 2**21 > 2**21 - 1 wraps to -2**21; du = 4095 makes u equal q.
    n = LoihiCUBA(1, du=4095, dv=0, vth_mant=BIG)
    us, _, _ = run(n, [2**15])
    assert us == [-(2**21)] and n.overflow["accumulator"] == 1


def test_voltage_decay_with_dv():
    # dv = 1024: factor 3072/4096 = 3/4, exact on 64-multiples: v = 640 -> 480 -> 360.
    n = LoihiCUBA(1, du=4095, dv=1024, vth_mant=BIG)
    _, vs, _ = run(n, [10, 0, 0])
    assert vs == [640, 480, 360]


def test_if_reset_by_subtraction_ge_and_gt_and_reset_to_zero():
    ge = IntegrateFire(1, theta=10)
    gt = IntegrateFire(1, theta=10, compare="gt")
    zero = IntegrateFire(1, theta=10, reset="zero")
    assert [int(zero.step(np.array([4]))[0]) for _ in range(6)] == [0, 0, 1, 0, 0, 1]   # 4, 8, 12->0, 4, 8, 12
    s_ge = [int(ge.step(np.array([4]))[0]) for _ in range(6)]
    s_gt = [int(gt.step(np.array([4]))[0]) for _ in range(6)]
    assert s_ge == [0, 0, 1, 0, 1, 0]      # v: 4, 8, 12->2, 6, 10->0, 4
    assert s_gt == [0, 0, 1, 0, 0, 1]      # v: 4, 8, 12->2, 6, 10, 14->4
    assert int(ge.v[0]) == 4 and int(gt.v[0]) == 4


def test_spiking_run_reproduces_static_counts_for_excitatory_if_networks(tmp_path):
    # Reset by subtraction, non-negative input and weights, no leak, no saturation (32-bit v): after
    # T steps v = total - theta * count >= 0, so count + v // theta = floor(total / theta), the static
    # emulation's count (v // theta > 0 only where one spike per step could not keep up).
    rng = np.random.default_rng(0)
    net = nb.mlp([12, 10, 6, 4], seed=0)
    for proj in net.projections:
        proj.weight = np.abs(proj.weight)
    for pop in net.populations.values():
        if pop.bias is not None:
            pop.bias = np.abs(pop.bias)
    x = rng.random((20, 12))
    # A user profile: Speck with a 32-bit membrane, so nothing saturates.
    data = yaml.safe_load((PROFILE_DIR / "speck.yaml").read_text())
    data["state"]["v"] = {"bits": 32, "signed": True, "overflow": "saturate"}
    (tmp_path / "wide.yaml").write_text(yaml.safe_dump(data))
    q = quantize(net, str(tmp_path / "wide.yaml"), x, activation_bits=5)
    run_ = simulate(q, x)
    static = q.run(x).activity
    theta = q.thresholds["h1"]
    assert np.array_equal(run_.counts["h1"] + run_.membranes["h1"] // theta, static["h1"])
    assert np.all(run_.membranes["h1"] >= 0) and run_.counts["h1"].sum() > 0
    # Deeper layers inherit the first layer's withheld spikes, so they can only fall short.
    assert np.all(run_.counts["h2"] <= static["h2"])


def test_loihi_spiking_run_uses_wrapping_current_and_strict_threshold():
    # A 1-2-1 net on loihi1 with hand-set integers: the input fires every step (count 255 of 255),
    # hidden unit 0 receives w = 64 per step, unit 1 receives w = 2**22 + 128, both have
    # theta = 640 (vth_mant 10), no bias; reset to zero, du = 4095 (u = the step's input), dv = 0.
    # Unit 0: v = 64 n; v > 640 first at n = 11 (strict: 640 is not above 640), so a spike every
    #   11 steps: 255 // 11 = 23 spikes (a >= comparison would fire every 10: 25).
    # Unit 1: the 22-bit input accumulator wraps 2**22 + 128 to 128: a spike every 640 // 128 + 1
    #   = 6 steps, 255 // 6 = 42 (saturating at 2**21 - 1, or not wrapping, would fire every step: 255).
    net = nb.mlp([1, 2, 1], seed=1)
    x = np.full((1, 1), 2.0)
    q = quantize(net, "loihi1", x, activation_bits=8, synapse_shift=0)   # du = 4095: u is the step input
    assert q.spec.window == 255 and q.spec.compare == "gt" and q.spec.reset == "zero"
    q.synapses["in->h1"].effective = np.array([[64], [2**22 + 128]])
    q.layers["h1"].theta = np.array([640, 640])
    q.layers["h1"].bias = np.array([0, 0])
    out = simulate(q, x)
    assert out.counts["in"].tolist() == [[255]]
    assert out.counts["h1"].tolist() == [[23, 42]]
    graded = quantize(net, "akida2", x)
    np.testing.assert_allclose(simulate(graded, x, steps=3).output, graded.forward(x), rtol=1e-12)   # no noise


def stepped_count(neuron, per_step, window):
    return sum(int(neuron.step(np.array([per_step]))[0]) for _ in range(window))


@pytest.mark.parametrize("theta", [10, 64, 640, 1001])
@pytest.mark.parametrize("window", [31, 255])
def test_emulator_spike_count_equals_a_stepped_neuron(theta, window):
    """`integer_pass.spike_counts` (what `QuantizedNetwork.forward` uses) against neurons stepped in time.

    Per-step inputs include every divisor of theta, where v reaches theta exactly: there the strict
    comparison of Loihi (v > theta, one step later) and >= differ.
    """
    inputs = sorted({d for d in range(1, theta + 1) if theta % d == 0} | {3, 7, theta - 1, theta + 5})
    for per_step in inputs:
        acc = np.array([window * per_step])
        # Loihi CUBA, du = 4095, dv = 0, refractory 1: input per_step << 6 against theta << 6.
        loihi = LoihiCUBA(1, du=4095, dv=0, vth_mant=theta)
        expected = stepped_count(loihi, per_step, window)
        assert spike_counts(acc, np.array(theta), window, "zero", "gt").item() == expected, per_step
        for compare in ("ge", "gt"):
            for reset in ("zero", "subtract"):
                stepped = stepped_count(IntegrateFire(1, theta=theta, compare=compare, reset=reset), per_step, window)
                # One spike per step at most: `activity` caps the count at the window (its act_format).
                static = min(spike_counts(acc, np.array(theta), window, reset, compare).item(), window)
                assert static == stepped, (per_step, compare, reset)


def test_loihi_static_counts_equal_the_stepped_run_at_full_input_rate():
    # Every input fires every step, so the first hidden layer's per-step input is constant and the
    # static emulation's spike counts must equal the stepped Loihi neurons' exactly.
    net = nb.mlp([6, 12, 3], seed=4)
    x = np.vstack([np.ones(6), np.full(6, 0.5)])
    q = quantize(net, "loihi1", x, activation_bits=8, synapse_shift=0)   # du = 4095: u is the step input
    x_full = np.full((1, 6), 10.0)
    assert q.run(x_full).activity["in"].tolist() == [[q.spec.window] * 6]
    static = q.run(x_full).activity["h1"]
    stepped = simulate(q, x_full).counts["h1"]
    assert static.max() > 0 and len(np.unique(static)) > 2
    np.testing.assert_array_equal(static, stepped)

@pytest.mark.parametrize("variant, u, v, spike", [("nengo_loihi", -2**23, -(2**23 - 1), 0), ("lava", 2**23, 0, 1)])
def test_u_at_minus_2_to_23_is_kept_by_nengo_loihi_and_flipped_by_lava(variant, u, v, spike):
    # u0 = -(2**23 - 1), du = 0: decay gives -(8388607 - ceil(8388607 / 4096)) = -8386559; plus q = -2049
    # lands on -2**23. nengo-loihi's two's complement keeps it (v then saturates at -(2**23 - 1));
    # lava wraps u <= -2**23 up by 2**24 to +2**23, so v saturates at 2**23 - 1 > vth = 8388544 and spikes.
    n = LoihiCUBA(1, du=0, dv=0, vth_mant=BIG, act_shift=0, variant=variant)
    n.u[:] = -(2**23 - 1)
    s = n.step(np.array([-2049]))
    assert (int(n.u[0]), int(n.v[0]), int(s[0])) == (u, v, spike)


def test_lava_variant_does_not_wrap_the_22_bit_input():
    # du = 4095: u is the step's input. q = 2**21 wraps to -2**21 in nengo-loihi's accumulator only.
    for variant, expected in (("nengo_loihi", -2**21), ("lava", 2**21)):
        n = LoihiCUBA(1, du=4095, dv=0, vth_mant=BIG, act_shift=0, variant=variant)
        n.step(np.array([2**21]))
        assert int(n.u[0]) == expected
    with pytest.raises(ValueError, match="variant"):
        LoihiCUBA(1, variant="brian2")
