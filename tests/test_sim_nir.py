"""NIR graphs in the Brian2 agents: step for step as `run_steps`, the gauge reaching `nb.balance`, bad input refused.

Random graphs (`sim_nir_graphs`): dense Affine/Linear projections, hidden IF, LIF, CubaLIF, LI, CubaLI
or I populations, IF, LIF or LI outputs, sizes 1-8, a skip edge and a recurrent edge in some, the
graph's step ``h`` (`NIRSteps.dt`) 1, 0.5 or the simulation step, reset by subtraction or to a value.

* The reference is `neuro_balance.model.dynamics.run_steps` in float64. Brian2 gives every population
  the same spikes on the same steps, and final membranes equal to 1e-12 relative (not bit for bit:
  Brian2 adds a step's incoming spikes one synapse at a time, numpy's matrix product in another order;
  measured up to 2e-15 relative).
* The agents balance spiking units by their gauge and graded ones by the exchange: they reach
  ``nb.balance(net, cost).network`` (weights, biases, ``v_threshold``, ``v_reset``, ``v_leak``) to
  1e-8 relative, while every spike train is the one of the same run without agents (``rate=0``) and
  every membrane is that run's times the unit's factor.

Hypothesis does not shrink here: one Brian2 run costs 0.2-2 s, and a failing example prints its
`Recipe`, which rebuilds the graph.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import neuro_balance as nb
from neuro_balance.errors import ModelError
from neuro_balance.model.dynamics import run_steps

pytest.importorskip("brian2")
from sim_nir_graphs import SIM_DT, Recipe, graph, input_spikes, nir, recipes  # noqa: E402

from neuro_balance.sim import LIF, BalancingNetwork, NIRSteps  # noqa: E402

BRIAN = dict(deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate), report_multiple_bugs=False,
             suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
STEPS = 60          # steps of the step-for-step comparison
BALANCE_STEPS = 400  # steps of a balancing run: about 120 events per unit at RATE
RATE = 3000.0       # balance rate (Hz) per unit
MEMBRANE_RTOL = 1e-12
NETWORK_RTOL = 1e-8

HIDDEN = ("IF", "LIF", "CubaLIF", "LI", "CubaLI", "I")


def spike_steps(bn: BalancingNetwork, name: str, size: int, steps: int) -> np.ndarray:
    """A population's spikes as a ``(steps, size)`` 0/1 array (at most one spike per unit and step)."""
    t, i = bn.spikes[name]
    k = np.round(np.asarray(t) / SIM_DT).astype(np.int64)
    np.testing.assert_allclose(k * SIM_DT, t, rtol=0, atol=1e-3 * SIM_DT)  # spikes on the step grid
    out = np.zeros((steps, size))
    np.add.at(out, (k, np.asarray(i)), 1.0)
    return out


def simulate(net, recipe: Recipe, reset: str, x: np.ndarray, coding: str = "spikes", rate: float = 0.0,
             cost=None, target: str = "numpy", seed: int = 0) -> BalancingNetwork:
    """Run ``net`` in Brian2 for ``len(x)`` steps: binary ``x`` as spike trains, or ``x[0]`` as a constant current."""
    bn = BalancingNetwork(net, cost or nb.Lp(2), rate=rate, spiking=True, coding=coding, monitor_dt=None,
                          dt=SIM_DT, neuron=NIRSteps(recipe.h, reset), target=target, seed=seed)
    if coding == "spikes":
        t, i = np.nonzero(x)
        bn.set_input_spikes(i, t * SIM_DT)
    else:
        bn.set_input(x[0])
    bn.run(len(x) * SIM_DT)
    return bn


def nir_populations(net) -> list[str]:
    return [n for n, p in net.populations.items() if p.neuron is not None]


def fired(net, outputs: dict) -> bool:
    """Some spiking non-input unit fired (a run in which none did would check little)."""
    return any(outputs[n].any() for n, p in net.populations.items() if p.neuron is not None and p.neuron.spiking)


# ---------------------------------------------------------------------------- 1. step for step as run_steps
def check_steps(recipe: Recipe, reset: str, coding: str, target: str = "numpy") -> None:
    net = nb.from_nir(graph(recipe))
    if coding == "spikes":
        x = input_spikes(recipe.seed, STEPS, recipe.n_in)
    else:
        x = np.broadcast_to(np.random.default_rng([recipe.seed, 2]).uniform(-0.5, 1.5, recipe.n_in),
                            (STEPS, recipe.n_in))
    ref = run_steps(net, x[:, None, :], dt=recipe.step, reset=reset)
    bn = simulate(net, recipe, reset, x, coding, target=target)
    for name, pop in net.populations.items():
        if name in bn.spikes:
            np.testing.assert_array_equal(spike_steps(bn, name, pop.size, STEPS), ref.outputs[name][:, 0],
                                          err_msg=f"spikes of {name}")
    assert set(bn.spikes) >= {n for n in nir_populations(net) if net.populations[n].neuron.spiking}
    for name in nir_populations(net):
        want = ref.membranes[name][0]
        np.testing.assert_allclose(bn.groups[name].v[:], want, rtol=MEMBRANE_RTOL,
                                   atol=MEMBRANE_RTOL * np.abs(want).max(initial=1.0), err_msg=f"membrane of {name}")


@settings(max_examples=3, **BRIAN)
@given(data=st.data(), reset=st.sampled_from(["subtract", "value"]), coding=st.sampled_from(["spikes", "current"]))
def test_brian2_runs_a_nir_graph_step_for_step_as_run_steps(data, reset, coding):
    """Same spikes on the same steps in every population, final membranes to 1e-12 (spike trains or a current in),
    for every neuron model, skip and recurrent edges."""
    check_steps(data.draw(recipes(hidden_models=HIDDEN)), reset, coding)


# ---------------------------------------------------------------------------- 2. the gauge reaches nb.balance
costs = st.tuples(st.integers(0, 3), st.floats(0.3, 4.0)).map(
    lambda c: nb.Linf() if c[0] == 0 else nb.Lp(c[1]))  # L-infinity one time in four


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(b), initial=0.0), 1e-300))


def network_difference(got, want) -> dict[str, float]:
    """Relative difference of every weight array, bias and potential of two networks of one shape."""
    out = {f"weight {q.name}": relative(got.projection(q.name).weight, q.weight) for q in want.projections}
    for name, pop in want.populations.items():
        if pop.bias is not None:
            out[f"bias {name}"] = relative(got.populations[name].bias, pop.bias)
        if pop.neuron is not None:
            for key in ("v_threshold", "v_reset", "v_leak"):
                if key in pop.neuron.params:
                    out[f"{key} {name}"] = relative(got.populations[name].neuron.params[key], pop.neuron.params[key])
    return out


def check_gauge(net, recipe: Recipe, reset: str, cost, target: str = "numpy") -> None:
    x = input_spikes(recipe.seed, BALANCE_STEPS, recipe.n_in)
    want = nb.balance(net, cost)
    assert want.converged
    still = simulate(net, recipe, reset, x, cost=cost, target=target)
    moving = simulate(net, recipe, reset, x, rate=RATE, cost=cost, target=target, seed=recipe.seed % 1000)
    assert len(moving.events.t) > 20 * len(moving.agents)
    if cost.is_linf and any(q.pre == q.post for q in net.projections):
        # A self-connection moves with the gauge's in side and sits on both: under L-infinity a unit whose own
        # loop is its largest weight is balanced for a whole range of mu, so "the" balanced network is a set.
        assert nb.imbalance(moving.network, cost).max_relative <= NETWORK_RTOL
    else:
        diff = network_difference(moving.network, want.network)
        worst = max(diff, key=diff.get)
        assert diff[worst] <= NETWORK_RTOL, (worst, diff[worst])
    assert set(moving.spikes) == set(still.spikes)
    for name, (t, i) in still.spikes.items():
        np.testing.assert_array_equal(moving.spikes[name][0], t, err_msg=f"spike times of {name}")
        np.testing.assert_array_equal(moving.spikes[name][1], i, err_msg=f"spiking units of {name}")
    factors = moving.results().lam_cum
    for name in nir_populations(net):
        v0 = np.asarray(still.groups[name].v[:])
        mu = factors.get(name, 1.0)  # balanced units: the membrane moved with the unit's factor
        np.testing.assert_allclose(moving.groups[name].v[:], mu * v0, rtol=1e-9,
                                   atol=1e-9 * np.abs(mu * v0).max(initial=1.0), err_msg=f"membrane of {name}")


@settings(max_examples=2, **BRIAN)
@given(data=st.data(), reset=st.sampled_from(["subtract", "value"]), cost=costs)
def test_gauge_agents_reach_nb_balance_and_change_no_spike(data, reset, cost):
    """Balancing while the graph runs: nb.balance's network to 1e-8, every spike as without agents (every neuron
    model, self-connections and back edges included)."""
    recipe = data.draw(recipes(hidden_models=HIDDEN))
    net = nb.from_nir(graph(recipe))
    check_gauge(net, recipe, reset, cost)


def test_a_delay_1_input_pending_at_a_balance_event_moves_with_the_unit():
    """A back edge h1 -> h0 (no self-connections): h1's spikes reach h0's next step, weighted when they were sent.

    h0 (IF, no leak) fires on most steps, so agents balance on steps with input pending; nothing else
    (no Cuba, no graded unit, no self-connection) is involved.
    """
    recipe = Recipe(seed=3, n_in=4, hidden=(("IF", 5), ("IF", 4)), out=("IF", 3), affine=(True, True, True),
                    skip=False, recurrent=(1, 0), h=1.0, self_loops=False)
    net = nb.from_nir(graph(recipe))
    assert {q.name: q.delay for q in net.projections}["rec"] == 1
    check_gauge(net, recipe, "subtract", nb.Lp(2))


# ---------------------------------------------------------------------------- the Cython target (slow)
@pytest.mark.slow
@pytest.mark.parametrize("reset", ["subtract", "value"])
def test_cython_runs_and_balances_nir_graphs_as_numpy_does(cython_target, reset):
    """LIF, CubaLIF and an LI output, a skip and a back edge, on Cython: one graph, so one compiled code (each
    random graph's code is new to Cython's cache, a minute of compiling per example when cold)."""
    recipe = Recipe(seed=5, n_in=4, hidden=(("LIF", 6), ("CubaLIF", 5)), out=("LI", 3), affine=(True, False, True),
                    skip=True, recurrent=(1, 0), h=None)
    check_steps(recipe, reset, "spikes", target="cython")
    check_gauge(nb.from_nir(graph(recipe)), recipe, reset, nb.Lp(1.5), target="cython")


# ---------------------------------------------------------------------------- 3. bad input
def small_graph(models=("LIF",), out="LIF"):
    recipe = Recipe(seed=1, n_in=3, hidden=tuple((m, 4) for m in models), out=(out, 2),
                    affine=(True,) * (len(models) + 1), skip=False, recurrent=None, h=1.0)
    return nb.from_nir(graph(recipe))


def one_line_error(exc_type, pattern, call):
    with pytest.raises(exc_type, match=pattern) as err:
        call()
    assert "\n" not in str(err.value)


def test_a_population_without_neuron_model_is_refused_in_spiking_mode_naming_it():
    rng = np.random.default_rng(0)
    # An Output fed by two weight nodes becomes a plain population of its own (no neuron model).
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}), "a": nir.Affine(weight=rng.normal(size=(4, 3)),
             bias=np.zeros(4)), "h": nir.LIF(tau=np.full(4, 5.0), r=np.ones(4), v_leak=np.zeros(4),
                                            v_threshold=np.ones(4), v_reset=np.zeros(4)),
             "b": nir.Linear(weight=rng.normal(size=(2, 4))), "c": nir.Linear(weight=rng.normal(size=(2, 3))),
             "output": nir.Output(output_type={"output": np.array([2])})}
    edges = [("input", "a"), ("a", "h"), ("h", "b"), ("b", "output"), ("input", "c"), ("c", "output")]
    net = nb.from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    plain = [n for n, p in net.populations.items() if p.role != "input" and p.neuron is None]
    assert plain == ["output"]
    one_line_error(ModelError, r"populations \['output'\]: in a NIR graph every non-input population needs a neuron "
                   "model", lambda: BalancingNetwork(net, nb.Lp(2), spiking=True, coding="spikes"))
    BalancingNetwork(net, nb.Lp(2), spiking=False).close()  # balancing its weights alone is fine


def test_a_toolkit_lif_is_refused_for_a_nir_graph_and_nirsteps_for_a_toolkit_network():
    one_line_error(ModelError, r"neuron: populations \['h0', 'out'\] carry their own NIR neuron models; pass "
                   r"NIRSteps", lambda: BalancingNetwork(small_graph(), nb.Lp(2), spiking=True, neuron=LIF()))
    one_line_error(ModelError, r"neuron: NIRSteps runs a NIR graph's neuron models, and this network has none",
                   lambda: BalancingNetwork(nb.mlp([3, 4, 2]), nb.Lp(2), spiking=True, neuron=NIRSteps()))
    one_line_error(ValueError, r"NIRSteps.dt must be a positive number, got 0", lambda: NIRSteps(dt=0))
    one_line_error(ValueError, r"NIRSteps.reset must be one of \('subtract', 'value'\), got 'zero'",
                   lambda: NIRSteps(reset="zero"))


@pytest.mark.parametrize("model", ["LIF", "CubaLIF"])
def test_the_rate_exchange_is_refused_for_leaky_spiking_units_naming_the_node(model):
    net = small_graph((model,))
    one_line_error(ModelError, rf"node 'h0': {model} leaks", lambda: BalancingNetwork(
        net, nb.Lp(2), spiking=True, coding="spikes", invariance="rate"))
    one_line_error(ValueError, r"invariance must be one of \('exact', 'rate'\), got 'gauge'",
                   lambda: BalancingNetwork(net, nb.Lp(2), spiking=True, invariance="gauge"))


def test_bad_input_spike_trains_are_refused_with_the_reason():
    bn = BalancingNetwork(small_graph(), nb.Lp(2), rate=0.0, spiking=True, coding="spikes", monitor_dt=None)
    bad = {r"indices must be integers in \[0, 3\), got \[0 3\]": ([0, 3], [0.0, 1e-4]),
           r"indices must be integers in \[0, 3\), got \[-1\]": ([-1], [0.0]),
           r"indices must be integers in \[0, 3\), got \[0\. 1\.\]": ([0.0, 1.0], [0.0, 1e-4]),
           r"indices \(2,\) and times \(1,\) must be two vectors of one length": ([0, 1], [0.0]),
           r"indices \(1, 1\) and times \(1, 1\) must be two vectors": ([[0]], [[0.0]]),
           r"times must be finite and >= 0 s": ([0], [np.nan])}
    for pattern, (i, t) in bad.items():
        one_line_error(ModelError, "set_input_spikes: " + pattern, lambda: bn.set_input_spikes(i, t))
    bn.set_input_spikes([0, 2], [0.0, 2e-4])
    bn.run(5e-4)
    one_line_error(ModelError, r"set_input_spikes: times must be finite and >= 0.0005 s \(simulated so far\)",
                   lambda: bn.set_input_spikes([1], [3e-4]))
    one_line_error(ModelError, r"set_input: this BalancingNetwork was built with coding='spikes'",
                   lambda: bn.set_input(np.ones(3)))
    current = BalancingNetwork(small_graph(), nb.Lp(2), rate=0.0, spiking=True, monitor_dt=None)
    one_line_error(ModelError, r"set_input_spikes: needs spiking=True and coding='spikes'",
                   lambda: current.set_input_spikes([0], [0.0]))
    one_line_error(ModelError, r"set_input: expected an input of shape \(3,\), got \(2,\)",
                   lambda: current.set_input(np.ones(2)))
    one_line_error(ModelError, r"set_input: input activities must be finite", lambda: current.set_input(
        np.array([0.0, np.inf, 1.0])))
    current.set_input(np.array([-1.0, 0.5, 2.0]))  # a NIR graph's current may take any sign
