"""The toolkit's own spiking units in Brian2 (neuro_balance.sim.neurons): LIF, exponential synapses, spike input.

Every expected value is a hand derivation written out in its test; the agents' balanced state is
`nb.balance`'s.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.errors import ModelError

pytest.importorskip("brian2")
from neuro_balance.sim import BalancingNetwork  # noqa: E402
from neuro_balance.sim.neurons import LIF, NIRSteps  # noqa: E402

DT = 1e-4


def chain(w_in: float, bias: float, w_out: float = 1.0):
    """in -> h1 -> out, one unit each: the hidden unit is driven by ``bias`` and by input spikes of weight ``w_in``."""
    net = nb.mlp([1, 1, 1], seed=0)
    net.projections[0].weight[...] = w_in
    net.projections[1].weight[...] = w_out
    net.populations["h1"].bias[...] = bias
    net.populations["out"].bias[...] = 0.0
    return net


def hidden_count(net, neuron, duration, spikes=None, x=0.0, R=200.0):
    coding = "current" if spikes is None else "spikes"
    with BalancingNetwork(net, nb.Lp(2), rate=0.0, spiking=True, dt=DT, neuron=neuron, coding=coding,
                          input_rate=R, monitor_dt=None) as bn:
        if spikes is None:
            bn.set_input(np.array([x]))
        else:
            bn.set_input_spikes(np.zeros(len(spikes), dtype=int), np.asarray(spikes))
        bn.run(duration)
        return len(bn.spikes["h1"][0]), np.asarray(bn.groups["h1"].v[:])


@pytest.mark.parametrize("t_ref, reset", [pytest.param(0.0, "value", marks=pytest.mark.slow), (2e-3, "value"),
                                          pytest.param(5e-3, "value", marks=pytest.mark.slow)])
def test_lif_rate_under_constant_drive_is_the_closed_form(t_ref, reset):
    """tau dv/dt = -v + tau b R, v -> 0 at 1 and dead for t_ref: the interval is
    t_ref + tau log(mu / (mu - 1)) with mu = tau b R (lif_rate, theta = 1, rho = 0). On the grid dt the
    threshold is seen up to one step late and the dead time ends on a step, so every measured interval
    lies in [ISI, ISI + 2 dt] and the count over T in [T / (ISI + 2 dt) - 1, T / ISI + 1]."""
    tau, R, b, T = 20e-3, 200.0, 0.5, 2.0  # mu = 2: 72 Hz without dead time
    mu = tau * b * R
    isi = t_ref + tau * math.log(mu / (mu - 1.0))
    count, _ = hidden_count(chain(0.0, b), LIF(tau_m=tau, t_ref=t_ref, reset=reset), T, R=R)
    assert T / (isi + 2 * DT) - 1 <= count <= T / isi + 1


def test_lif_below_threshold_never_fires_and_settles_at_its_drive():
    tau, R, b = 10e-3, 200.0, 0.4  # mu = 0.8 < 1
    count, v = hidden_count(chain(0.0, b), LIF(tau_m=tau), 0.3, R=R)
    assert count == 0
    np.testing.assert_allclose(v, tau * b * R * (1 - math.exp(-0.3 / tau)), rtol=1e-9)


def test_exponential_synapse_delivers_the_charge_w_along_the_difference_of_exponentials():
    """One input spike of weight w at t0: I jumps by w / tau_s, and for t > t0 (s = t - t0)
    v(s) = w tau_m / (tau_m - tau_s) (exp(-s / tau_m) - exp(-s / tau_s)); without leak its integral
    of I is w."""
    w, tau_m, tau_s, t0, T = 0.6, 20e-3, 5e-3, 1e-3, 30e-3
    s = T - t0 - DT  # the spike arrives in the synapses slot of its step; v integrates from the next one
    expected = w * tau_m / (tau_m - tau_s) * (math.exp(-s / tau_m) - math.exp(-s / tau_s))
    count, v = hidden_count(chain(w, 0.0), LIF(tau_m=tau_m, tau_syn=tau_s), T, spikes=[t0])
    assert count == 0
    np.testing.assert_allclose(v, expected, rtol=1e-9)
    _, v_if = hidden_count(chain(w, 0.0), LIF(tau_m=1e9, tau_syn=tau_s), 0.3, spikes=[t0])
    np.testing.assert_allclose(v_if, w, rtol=1e-6)  # the whole charge, with (almost) no leak


def test_spikes_arriving_while_refractory_are_lost():
    """Input spikes of weight 1.5 every 1 ms into a unit with 2.5 ms of dead time and reset to 0: each
    spike it emits is followed by two lost inputs, so it fires on every third input spike."""
    times = 1e-3 * np.arange(1, 31)
    count, _ = hidden_count(chain(1.5, 0.0), LIF(tau_m=1.0, t_ref=2.5e-3, reset="value"), 31.5e-3, spikes=times)
    assert count == 10
    free, _ = hidden_count(chain(1.5, 0.0), LIF(tau_m=1.0, reset="value"), 31.5e-3, spikes=times)
    assert free == 30


def test_given_input_spike_trains_drive_integrate_and_fire_units_by_their_weight():
    """n input spikes of weight w into a non-leaky IF with reset by subtraction: floor(n w) spikes, v = n w - count."""
    n, w = 23, 0.37
    times = 1e-3 * np.arange(1, n + 1)
    count, v = hidden_count(chain(w, 0.0), None, 30e-3, spikes=times)
    assert count == math.floor(n * w)
    np.testing.assert_allclose(v, n * w - count, rtol=1e-12)


def test_agents_balance_a_leaky_network_to_the_global_optimum_while_it_spikes():
    net = nb.mlp([6, 8, 5, 3], seed=4)
    cost = nb.Lp(2)
    with BalancingNetwork(net, cost, rate=500.0, spiking=True, dt=DT, coding="poisson", input_rate=2000.0,
                          neuron=LIF(tau_m=15e-3, t_ref=2e-3, tau_syn=4e-3), monitor_dt=None) as bn:
        bn.set_input(np.random.default_rng(1).uniform(0, 1, 6))
        bn.run(0.3)
        spikes = {k: len(v[0]) for k, v in bn.spikes.items()}
        balanced = bn.network
    assert min(spikes.values()) > 0  # it kept spiking
    ref = nb.balance(net, cost).network
    for proj in net.projections:
        got, want = balanced.projection(proj.name).weight, ref.projection(proj.name).weight
        assert np.max(np.abs(got - want)) <= 1e-8 * np.max(np.abs(want))


def test_bad_neuron_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="LIF.tau_m"):
        LIF(tau_m=-1.0)
    with pytest.raises(ValueError, match="LIF.reset"):
        LIF(reset="zero")
    with pytest.raises(ValueError, match="NIRSteps.dt"):
        NIRSteps(dt=0.0)
    with pytest.raises(ModelError, match="NIRSteps"):
        BalancingNetwork(nb.mlp([3, 2, 1]), nb.Lp(2), spiking=True, neuron=NIRSteps())
    with pytest.raises(ValueError, match="neuron must be"):
        BalancingNetwork(nb.mlp([3, 2, 1]), nb.Lp(2), spiking=True, neuron="LIF")
    bn = BalancingNetwork(chain(1.0, 0.0), nb.Lp(2), spiking=True, coding="spikes", monitor_dt=None)
    with pytest.raises(ModelError, match="set_input_spikes"):
        bn.set_input(np.ones(1))
    with pytest.raises(ModelError, match=r"indices must be integers in \[0, 1\)"):
        bn.set_input_spikes([1], [0.0])
    with pytest.raises(ModelError, match="times must be finite"):
        bn.set_input_spikes([0], [np.nan])
    bn.close()
