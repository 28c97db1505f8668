"""Mapping networks onto chips: levels per shared-scale group, users' exponents, integer forward pass."""
import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.hardware import evaluate, list_profiles, load_profile, quantize
from neuro_balance.hardware.evaluate import VARIANTS
from neuro_balance.hardware.fixed_point import FixedPointOverflowError

pytestmark = pytest.mark.filterwarnings("ignore::neuro_balance.hardware.UnverifiedProfileWarning")

CHIPS = [p for p in list_profiles() if p != "float64"]


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    net = nb.mlp([16, 12, 10, 5], seed=3)
    x = rng.random((64, 16))
    return net, x


def allowed_bits(name):
    prof = load_profile(name, warn=False)
    allowed = prof.get("weights.bits_allowed")
    types = prof.get("weights.axon_types") or 64
    return [b for b in (2, 3, 4, 8) if (not allowed or b in allowed) and b <= types]


@pytest.mark.parametrize("name", CHIPS)
def test_weights_take_at_most_2_to_the_bits_levels_per_shared_scale_group(setup, name):
    net, x = setup
    for bits in allowed_bits(name):
        for granularity in ("layer", "neuron"):
            q = quantize(net, name, x, weight_bits=bits, granularity=granularity)
            spec = q.spec
            # Two's complement: 2**b levels; symmetric: 2**b - 1; sign from the synapse type: 2**(b+1) - 1.
            sign_by = load_profile(name, warn=False).get("weights.sign_by") or spec.weight_qmax == 2 ** bits - 1
            assert spec.weight_levels <= (2 ** (bits + 1) - 1 if sign_by else 2 ** bits)
            for proj in net.projections:
                m = q.integer_weights[proj.name]
                assert m.min() >= spec.weight_qmin and m.max() <= spec.weight_qmax
                scale = q.synapses[proj.name].scale
                if granularity == "layer":
                    assert np.ptp(scale) == 0          # one scale for the whole projection
                    assert len(np.unique(m)) <= spec.weight_levels
                else:
                    for row in m:
                        assert len(np.unique(row)) <= spec.weight_levels


def test_max_scaling_uses_the_top_level_and_loses_at_most_half_a_step(setup):
    net, x = setup
    q = quantize(net, "akida2", x, weight_bits=8, weight_rounding="nearest")
    for proj in net.projections:
        syn = q.synapses[proj.name]
        assert np.abs(q.integer_weights[proj.name]).max(axis=1).tolist() == [127] * proj.weight.shape[0]
        err = np.abs(syn.mantissa * syn.scale[:, None] - proj.weight)
        assert np.all(err <= syn.scale[:, None] / 2 * (1 + 1e-12))


def test_loihi_connection_exponents_follow_nengo_loihi_dw_exp():
    # Two projections into one population: the weaker one gets exponent -floor(log2(t_max / t_i)),
    # t = max|w| x activity scale, as nengo-loihi's discretize does per connection.
    net = nb.dag([8, 6, 6, 3], skips=((0, 2),), seed=0)
    skip = next(p for p in net.projections if p.pre == "in" and p.post == "h2")
    skip.weight = skip.weight / 5.0
    x = np.random.default_rng(2).random((40, 8))
    q = quantize(net, "loihi1", x)
    scales = q.activation_scales
    t = {p.name: np.abs(p.weight).max() * scales[p.pre] for p in net.incoming("h2")}
    top = max(t.values())
    for name, tk in t.items():
        expected = -int(np.floor(np.log2(top / tk)))
        assert np.all(q.synapses[name].exponent == expected)
    assert min(int(q.synapses[n].exponent[0]) for n in t) < 0
    # The effective weights carry the 6-bit act_shift plus the exponent.
    syn = q.synapses[skip.name]
    assert np.array_equal(syn.effective, syn.mantissa * 2 ** (6 + syn.exponent[0]))


def test_loihi_biases_are_13_bit_mantissas_with_exponents_0_to_7(setup):
    net, x = setup
    q = quantize(net, "loihi1", x)
    for b in q.integer_biases.values():
        assert np.all(np.abs(b) <= 4095 * 2 ** 7)
    assert all(np.all(th % 64 == 0) and np.all(th >> 6 < 2 ** 17) for th in q.thresholds.values())


def test_float64_profile_is_the_float_network(setup):
    # Reference written out with numpy from the weights: relu(W1 x + b1), relu(W2 h + b2), W3 h + b3.
    net, x = setup
    q = quantize(net, "float64", x)
    pops, (w1, w2, w3) = net.populations, (p.weight for p in net.projections)
    h1 = np.maximum(x @ w1.T + pops["h1"].bias, 0)
    h2 = np.maximum(h1 @ w2.T + pops["h2"].bias, 0)
    np.testing.assert_allclose(q.forward(x), h2 @ w3.T + pops["out"].bias, rtol=1e-12, atol=1e-12)


def test_high_precision_graded_chip_matches_the_float_network(setup):
    net, x = setup
    q = quantize(net, "spinnaker2", x, weight_bits=16, activation_bits=16, input_bits=16, accumulator_bits=62,
                 activation_method="max")
    np.testing.assert_allclose(q.forward(x), net.forward(x), rtol=0, atol=2e-3 * np.abs(net.forward(x)).max())


def test_integer_forward_without_register_limits_matches_the_dequantised_network(setup):
    # Graded chip, no overflow, exact requantisation: the emulation differs from the float network
    # with quantised parameters only by activity rounding, which we make negligible.
    net, x = setup
    # Calibrating on 2x the data leaves headroom: no activity saturates.
    # (A generic graded chip: Akida's registers are fixed at the engine's widths.)
    q = quantize(net, "spinnaker2", np.vstack([x, 2 * x]), weight_bits=8, activation_bits=8 + 12, input_bits=20,
                 accumulator_bits=62)
    np.testing.assert_allclose(q.forward(x), q.dequantized().forward(x), rtol=0, atol=1e-4)
    assert sum(q.run(x).counters["activation_saturated"].values()) == 0


def test_saturation_and_clipping_are_counted(setup):
    net, x = setup
    q = quantize(net, "akida2", x, activation_method="percentile", activation_percentile=60, method="percentile",
                 percentile=60)
    q.forward(x)
    assert sum(q.stats["weights_clipped"].values()) > 0
    assert sum(q.run(x).counters["activation_saturated"].values()) > 0
    q = quantize(net, "loihi1", x, accumulator_bits=8, accumulator_overflow="wrap")
    q.forward(x)
    assert sum(q.run(x).counters["accumulator_overflow"].values()) > 0
    with pytest.raises(FixedPointOverflowError):
        quantize(net, "loihi1", x, accumulator_bits=8, accumulator_overflow="error").forward(x)


def test_analog_noise_and_mismatch_are_seeded(setup):
    net, x = setup
    a = quantize(net, "dynapse2", x, seed=1).forward(x)
    assert np.array_equal(a, quantize(net, "dynapse2", x, seed=1).forward(x))
    assert not np.array_equal(a, quantize(net, "dynapse2", x, seed=2).forward(x))
    q = quantize(net, "brainscales2", x, seed=0)
    assert not np.array_equal(q.forward(x, seed=0), q.forward(x, seed=1))
    ideal = quantize(net, "brainscales2", x, analog_noise=False)
    assert np.array_equal(ideal.forward(x, seed=0), ideal.forward(x, seed=1))


def test_spiking_chips_refuse_non_relu_hidden_units_and_recurrent_nets_are_refused(setup):
    _, x = setup
    leaky = nb.mlp([16, 8, 3], activation="leaky_relu:0.1", seed=0)
    with pytest.raises(nb.ModelError, match="ReLU"):
        quantize(leaky, "loihi1", x)
    quantize(leaky, "spinnaker2", x).forward(x)       # generic graded chips take any activation (a lookup table)
    with pytest.raises(nb.ModelError, match="Akida layers apply ReLU or nothing"):
        quantize(leaky, "akida2", x)
    with pytest.raises(nb.ModelError, match="feedforward"):
        quantize(nb.rnn(4, [5], 2), "akida2")


def test_evaluate_reports_every_profile_and_variant(setup):
    net, x = setup
    y = np.argmax(net.forward(x), axis=1)
    ev = evaluate(net, x, y, profiles=["loihi1", "akida1", "float64"], bits=[None, 4, 8])
    assert ev.float_accuracy == 1.0
    assert {r["variant"] for r in ev.records} == set(VARIANTS)
    assert ev.mean("float64", 4, "balanced") == pytest.approx(1.0)
    assert ev.mean("akida1", 8, "quantized") is None          # 8-bit weights not allowed on Akida 1.0
    table = ev.table()
    assert "| akida1 |" in table and "n/a" in table and "imbalance" in table
    # Every record carries the imbalance of the network it quantised: the L-infinity balanced one is at 0.
    assert ev.mean("loihi1", 4, "balanced_linf", "imbalance") < 1e-6 < ev.mean("loihi1", 4, "quantized", "imbalance")
    assert all(r["choice"] in ("none", "linf", "lp", "pow2") for r in ev.records if r["accuracy"] is not None)
    assert all(r["stepped_accuracy"] is None for r in ev.records)


def test_evaluate_runs_the_stepped_simulation_beside_the_static_emulation(setup):
    net, x = setup
    y = np.argmax(net.forward(x), axis=1)
    ev = evaluate(net, x, y, profiles=["speck", "akida2"], bits=[None], variants=["quantized"], stepped=True)
    speck = next(r for r in ev.records if r["profile"] == "speck")
    akida = next(r for r in ev.records if r["profile"] == "akida2")
    # Reset by subtraction: within the README's bound of the static emulation; graded: one step is forward.
    assert abs(speck["stepped_output_error"] - speck["output_error"]) <= 0.02
    assert akida["stepped_output_error"] == pytest.approx(akida["output_error"])
    assert "stepped accuracy" in ev.rows_table() and "| float |" in ev.rows_table()


@pytest.mark.slow
def test_digits_evaluation_on_every_profile():
    # The table: the shipped digits model (or one trained here), every profile, native width and 4/8 bits.
    from pathlib import Path

    from neuro_balance.learn.datasets import digits
    from neuro_balance.learn.digits_models import digits_mlp

    model = Path(__file__).resolve().parent.parent / "models" / "digits_mlp.yaml"
    if model.exists():
        net, data = nb.load_model(model), digits()
    else:
        net, data = digits_mlp()
    ev = evaluate(net, data.X_test, data.y_test, calibration=data.X_train, bits=[None, 4, 8], seeds=[0, 1])
    assert ev.float_accuracy > 0.9
    assert set(ev.profiles) == set(list_profiles())
    for prof in ev.profiles:
        native = ev.mean(prof, None, "quantized")
        assert native is not None and native > ev.float_accuracy - 0.05, (prof, native)
    assert ev.mean("float64", 4, "balanced") == pytest.approx(ev.float_accuracy)


def test_conv_networks_map_per_channel_and_run_in_both_emulations():
    from neuro_balance.model.conv import conv_net
    from neuro_balance.hardware import simulate

    net = conv_net((1, 8, 8), [{"channels": 4, "kernel": 3, "padding": 1, "pool": {"kind": "max", "size": 2}}],
                   dense=[8], n_out=3)
    x = np.random.default_rng(0).random((40, 64))
    ref = net.forward(x)
    q = quantize(net, "akida2", x, granularity="channel", weight_bits=8)
    conv = next(p for p in net.projections if p.kind == "conv2d")
    m = q.integer_weights[conv.name]
    assert all(len(np.unique(m[c])) <= 255 and np.abs(m[c]).max() == 127 for c in range(m.shape[0]))
    assert np.abs(q.forward(x) - ref).max() < 0.05 * np.abs(ref).max()
    spiking = simulate(quantize(net, "loihi1", x), x)
    assert spiking.output.shape == ref.shape and spiking.counts["h1"].shape == (40, 4 * 4 * 4)


def test_without_calibration_interval_bounds_leave_no_saturation_for_inputs_in_the_unit_box(setup):
    net, x = setup
    q = quantize(net, "akida2", weight_bits=8)
    out = q.forward(x)
    assert sum(q.run(x).counters["activation_saturated"].values()) == 0 and sum(q.run(x).counters["input_saturated"].values()) == 0
    assert np.abs(out - net.forward(x)).max() < 0.1 * np.abs(net.forward(x)).max()


def test_percentile_scaling_clips_the_largest_weights_of_each_unit(setup):
    net, x = setup
    q = quantize(net, "akida2", x, method="percentile", percentile=90.0, granularity="neuron")
    w = net.projections[0].weight
    m = q.integer_weights[net.projections[0].name]
    # Per unit, about a tenth of the weights lie above the 90th percentile of |w| and saturate.
    clipped = np.mean(np.abs(m) == 127, axis=1)
    assert np.all(clipped >= 0.05) and np.all(clipped <= 0.2)
    assert q.stats["weights_clipped"][net.projections[0].name] == int(np.sum(np.abs(w) > np.percentile(
        np.abs(w), 90.0, axis=1, keepdims=True) * (127.5 / 127)))


SPIKING = [p for p in CHIPS if nb.hardware.ChipSpec.from_profile(p).spiking]
#: The README's bound: rms(forward - simulate) / rms(float output) at the default window, by reset;
#: analog currents (DYNAP-SE2 mismatch) are read at one LSB per step in simulate, once in forward.
from neuro_balance.hardware.static_check import FORWARD_SIMULATE_BOUND  # noqa: E402


@pytest.mark.parametrize("name", SPIKING)
def test_forward_is_the_steady_state_of_simulate_within_the_stated_bound(name):
    # forward holds each unit's input constant (the rate law of its neuron); simulate feeds spike
    # trains. Reset by subtraction keeps every overshoot, so only the last partial spike of each
    # unit differs; reset to zero loses an overshoot that depends on how bursty the input is.
    net = nb.mlp([20, 16, 12, 6], seed=0)
    rng = np.random.default_rng(1)
    cal, x = rng.random((300, 20)), rng.random((40, 20))
    q = quantize(net, name, cal)
    ref = net.forward(x)
    diff = np.sqrt(np.mean((q.forward(x) - nb.hardware.simulate(q, x).output) ** 2)) / np.sqrt(np.mean(ref ** 2))
    assert diff <= FORWARD_SIMULATE_BOUND["analog" if q.spec.mismatch_sigma else q.spec.reset], (name, diff)


@pytest.mark.parametrize("compare", ["gt", "ge"])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_static_spike_count_is_the_count_of_a_stepped_neuron_with_constant_input(compare, reset):
    from neuro_balance.hardware.integer_pass import spike_counts
    from neuro_balance.hardware.neurons import IntegrateFire, LoihiCUBA

    T = 37
    inputs = np.arange(-3, 80)                       # includes exact divisors of every threshold
    for theta in (10, 16, 63):
        nrn = IntegrateFire(inputs.size, theta=theta, compare=compare, reset=reset)
        stepped = sum(nrn.step(inputs).astype(int) for _ in range(T))
        # At most one spike per step: the emulator's count format saturates at the window.
        static = np.minimum(spike_counts(inputs * T, np.array(theta), T, reset, compare), T)
        assert np.array_equal(static, stepped), (theta, np.flatnonzero(static != stepped))
        if reset == "zero" and compare == "gt":       # the chip itself: Loihi CUBA, du = 4095, dv = 0
            loihi = LoihiCUBA(inputs.size, vth_mant=theta)
            assert np.array_equal(sum(loihi.step(inputs).astype(int) for _ in range(T)), static)


@pytest.mark.parametrize("name", CHIPS)
def test_the_float64_carried_pass_gives_the_same_integers_as_the_int64_pass(name):
    # run_integer carries the integers in float64 when nothing can exceed 2**51 or overflow a register;
    # it must agree with the int64 pass value for value, saturation counters included.
    from neuro_balance.hardware.integer_pass import run_integer

    rng = np.random.default_rng(5)
    net = nb.mlp([12, 9, 7, 4], seed=5)
    x = rng.random((60, 12))
    bits = allowed_bits(name)
    for overrides in ({}, {"weight_bits": bits[len(bits) // 2], "activation_percentile": 80.0,
                           "activation_method": "percentile"},
                      {"reset": "subtract"} if nb.hardware.ChipSpec.from_profile(name).spiking else
                      {"weight_bits": bits[0]}):
        q = quantize(net, name, x[:30], **overrides)
        fast, slow = run_integer(q, 1.5 * x), run_integer(q, 1.5 * x, float_path=False)
        np.testing.assert_array_equal(fast.output, slow.output)
        assert fast.counters == slow.counters
        for pop in fast.activity:
            assert fast.activity[pop].dtype == np.int64
            np.testing.assert_array_equal(fast.activity[pop], slow.activity[pop])


@pytest.mark.parametrize("name", ["brainscales2", "dynapse2"])
def test_analog_chips_take_the_float64_route_and_draw_the_same_noise(name):
    # Mismatch and the chunked noisy readout are carried in float64 too: the route must be taken (else the
    # comparison above compares the int64 pass with itself) and agree with the int64 pass for two noise
    # seeds; 300 inputs make three readout chunks of 128 rows on BrainScaleS-2.
    from neuro_balance.hardware.float_pass import float_exact
    from neuro_balance.hardware.integer_pass import run_integer

    rng = np.random.default_rng(6)
    net = nb.mlp([300, 20, 5], seed=6)
    x = rng.random((40, 300))
    q = quantize(net, name, x, seed=3)
    assert float_exact(q)
    for seed in (None, 11):
        fast, slow = run_integer(q, x, seed), run_integer(q, x, seed, float_path=False)
        np.testing.assert_array_equal(fast.output, slow.output)
        assert fast.counters == slow.counters
        for pop in slow.activity:
            np.testing.assert_array_equal(fast.activity[pop], slow.activity[pop])
    if q.spec.analog_noise_std:       # the seed reaches the noise
        assert not np.array_equal(run_integer(q, x, 1).output, run_integer(q, x, 2).output)


def test_float_spike_counts_equal_exact_integer_division():
    # spike_counts divides in float64 below 2**52: compare with Python's exact integer arithmetic.
    from neuro_balance.hardware.integer_pass import spike_counts

    rng = np.random.default_rng(0)
    acc = rng.integers(-2**40, 2**50, 3000)
    theta = rng.integers(1, 2**20, 3000)
    T = 4095
    for compare in ("gt", "ge"):
        strict = compare == "gt"
        zero = spike_counts(acc, theta, T, "zero", compare)
        sub = spike_counts(acc, theta, T, "subtract", compare)
        for a, t, z, s in zip(acc.tolist(), theta.tolist(), zero.tolist(), sub.tolist()):
            k = ((t * T) // a + 1 if strict else -(-(t * T) // a)) if a > 0 else None
            assert z == (T // k if k else 0)
            assert s == ((a - strict) // t if a > 0 else 0)
