"""The static estimate of a spiking chip is within the stated bound of the stepped run, or flagged."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.errors import StaticEstimateWarning
from neuro_balance.hardware import quantize, simulate
from neuro_balance.hardware.static_check import FORWARD_SIMULATE_BOUND, stepped_check


def relative(a, b, ref):
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(ref ** 2)))


def rescaled(seed):
    """A random 20-16-12-6 ReLU net, its copy with hidden log-scales ~ N(0, 0.5), calibration and test rows."""
    rng = np.random.default_rng(seed)
    net = nb.mlp([20, 16, 12, 6], seed=seed)
    bad = nb.scale(net, {name: rng.normal(0.0, 0.5, net.populations[name].size) for name in ("h1", "h2")})
    return net, bad, rng.random((300, 20)), rng.random((200, 20))


def quantize_recording(net, profile, cal, **overrides):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StaticEstimateWarning)
        warnings.simplefilter("ignore", nb.hardware.UnverifiedProfileWarning)
        q = quantize(net, profile, cal, **overrides)
    return q, [w for w in caught if issubclass(w.category, StaticEstimateWarning)]


def test_a_badly_scaled_net_whose_static_estimate_flatters_is_flagged_and_balancing_recovers_it():
    # Seed 103: the rescaled copy's static estimate is 0.38 from the float output, the stepped run 0.64
    # (the membrane floor at 0 rectifies the input fluctuations of the units with large incoming weights).
    net, bad, cal, x = rescaled(103)
    q, flagged = quantize_recording(bad, "loihi1", cal)
    ref = net.forward(x)
    static, stepped = q.forward(x), simulate(q, x).output
    assert relative(static, stepped, ref) > FORWARD_SIMULATE_BOUND["zero"]      # the bound fails on this net ...
    assert flagged and not q.static_check.trusted                              # ... and quantize says so
    assert "simulate()" in str(flagged[0].message)
    # Balancing first evens the units' input ranges: the stepped run is 3x closer to the float output.
    qb, _ = quantize_recording(nb.balance(bad, nb.Lp(2)).network, "loihi1", cal)
    assert relative(simulate(qb, x).output, ref, ref) < relative(stepped, ref, ref) / 2.5


def test_a_well_scaled_net_is_trusted_and_its_check_measures_the_real_gap():
    net = nb.mlp([20, 16, 12, 6], seed=0)
    rng = np.random.default_rng(1)
    cal = rng.random((300, 20))
    q, flagged = quantize_recording(net, "loihi1", cal)
    assert not flagged and q.static_check.trusted
    sample = cal[:q.static_check.samples]
    ref = net.forward(sample)
    expected = relative(q.forward(sample), simulate(q, sample).output, ref)
    assert q.static_check.difference == pytest.approx(expected, rel=1e-12)
    assert q.static_check.steps == q.spec.window


def test_the_check_is_skipped_on_request_and_absent_on_graded_chips():
    net = nb.mlp([6, 5, 3], seed=2)
    cal = np.random.default_rng(2).random((40, 6))
    assert quantize(net, "loihi1", cal, check=False).static_check is None
    assert quantize(net, "akida2", cal).static_check is None
    assert stepped_check(quantize(net, "akida2", cal), cal) is None


def test_evaluate_records_the_gap_and_marks_the_cells_beyond_the_bound():
    net, bad, cal, x = rescaled(103)
    y = np.argmax(net.forward(x), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = nb.hardware.evaluate(bad, x, y, profiles=["loihi1"], bits=[None], calibration=cal,
                                  variants=("quantized", "balanced"), stepped=True)
    by_variant = {r["variant"]: r for r in ev.records}
    assert by_variant["quantized"]["static_trusted"] is False
    assert by_variant["quantized"]["static_gap"] > FORWARD_SIMULATE_BOUND["zero"]
    assert ev.untrusted_static == [by_variant["quantized"]]
    assert " !" in ev.rows_table()
