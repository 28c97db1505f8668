"""Numerical extremes: a balancing result is returned only if it is one, else a `NumericalError` says which limit.

A fixed grid of nets x costs (p from 1e-3 to 50, L-infinity) x methods x weight magnitudes (every
parameter times 1e-300 .. 1e300). Each run either raises `NumericalError` naming the float64 limit it
hit (overflow, underflow to 0, NaN) or returns finite parameters that compute the input network's
function on a probe batch and, when marked converged, are balanced (checked again from the result's
own weights by `nb.imbalance`). Before these checks existed the same grid returned NaN weights marked
converged (``Lp(1e-6)``, ``digits_mlp`` with ``Lp(0.001)``), changed functions (``bipu:1e-3``), NaN
imbalances for weights >= 1e160, and bare ``ValueError: math domain error`` from the stochastic loop.
"""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from hypothesis import given, settings, strategies as st

import neuro_balance as nb
from neuro_balance.errors import NumericalError
from neuro_balance.resources import resource_dir
from strategies import networks, random_weights

PS = (1e-3, 0.01, 0.3, 1.0, 2.0, 4.0, 50.0)
COSTS = [nb.Lp(p) for p in PS] + [nb.Linf()]
METHODS = ("global", "stochastic", "sweep")
MAGNITUDES = (1e-300, 1e-150, 1.0, 1e150, 1e300)
LIMITS = ("overflow", "underflow", "NaN", "precision")  # underflow: to 0, or to a subnormal keeping some bits


def _spread(seed: int, sizes, spread: float, activation="relu") -> nb.Network:
    """An MLP whose rows and columns have log-normal gains (weights over many orders of magnitude)."""
    net = nb.mlp(sizes, activation=activation, seed=seed)
    rng = np.random.default_rng(seed)
    for proj in net.projections:
        proj.weight = random_weights(rng, *proj.weight.shape, spread=spread)
    return net


def _sparse(seed: int) -> nb.Network:
    net = nb.mlp([6, 8, 8, 3], seed=seed)
    rng = np.random.default_rng(seed)
    for proj in net.projections:
        proj.weight[rng.random(proj.weight.shape) < 0.6] = 0.0
    return net


NETS = {
    "mlp": lambda: nb.mlp([6, 5, 4, 3], seed=0),
    "dag": lambda: nb.dag([5, 6, 5, 3], seed=1),
    "rnn": lambda: nb.rnn(4, [5], 3, seed=2),
    "bipu2": lambda: nb.mlp([5, 4, 4, 3], activation="bipu:2.0", seed=3),
    "bipu_small": lambda: nb.mlp([5, 4, 4, 3], activation="bipu:1e-3", seed=7),
    "spread": lambda: _spread(5, [6, 8, 8, 3], 3.0),
    "spread_bipu": lambda: _spread(0, [6, 8, 8, 3], 2.0, ["relu", "bipu:2.0"]),
    "sparse": lambda: _sparse(6),
    "conv": lambda: nb.conv_net((1, 6, 6), [{"channels": 2, "kernel": 3}], dense=[4], n_out=3, seed=4),
}


def _times(net: nb.Network, factor: float, biases: bool = True) -> nb.Network:
    """Every weight (and bias) of ``net`` times ``factor``."""
    out = net.copy()
    for proj in out.projections:
        proj.weight *= factor
    for pop in out.populations.values():
        if pop.bias is not None and biases:
            pop.bias *= factor
    return out


def _probe(net: nb.Network) -> np.ndarray:
    shape = (4, 3, net.input.n_features) if net.recurrent else (6, net.input.n_features)
    return np.random.default_rng(1).uniform(-2, 2, size=shape)


def _outcome(net: nb.Network, cost, method: str, function: bool = True, **options) -> str:
    """Run one cell; return ``"result"`` or ``"refused"``, failing on anything that is neither.

    ``function=False``: spiking networks, whose gauge keeps spike trains, not `Network.forward`."""
    x = _probe(net)
    with np.errstate(all="ignore"):
        y0 = net.forward(x)
    try:
        res = nb.balance(net, cost, method, **options)
    except NumericalError as err:
        text = str(err)
        assert text.startswith(LIMITS), text
        assert "\n" not in text
        return "refused"
    params = [p.weight for p in res.network.projections] + [p.bias for p in res.network.populations.values()
                                                           if p.bias is not None]
    assert all(np.isfinite(a).all() for a in params), "non-finite parameters returned"
    for a, b in zip(params, [p.weight for p in net.projections] + [p.bias for p in net.populations.values()
                                                                  if p.bias is not None]):
        assert np.count_nonzero(a) == np.count_nonzero(b), "a parameter underflowed to 0"
    with np.errstate(all="ignore"):
        y1 = res.network.forward(x)
    known = np.isfinite(y0)
    if known.all():  # where the input's forward pass overflows somewhere, the two overflow at different entries
        assert np.isfinite(y1).all() or not function, "the balanced network overflows where the input's does not"
    known &= np.isfinite(y1)
    if known.any() and function:
        top = np.max(np.abs(y0[known]))
        assert np.max(np.abs(y1[known] - y0[known])) <= 1e-8 * top + np.finfo(float).tiny, "function changed"
    assert math.isfinite(res.imbalance)
    if res.converged and options.get("scale_grid") is None:
        assert res.imbalance <= options.get("tol", 1e-10)
        assert nb.imbalance(res.network, cost, options.get("tie")).max_relative <= 1e-8, "converged but unbalanced"
    return "result"


@pytest.mark.parametrize("name", sorted(NETS))
def test_grid_returns_a_result_or_a_clear_refusal(name):
    base = NETS[name]()
    counts = {"result": 0, "refused": 0}
    for magnitude in MAGNITUDES:
        net = _times(base, magnitude)
        for cost in COSTS:
            for method in METHODS:
                counts[_outcome(net, cost, method, max_iter=None if method == "global" else 2000)] += 1
    assert counts["result"] > 0
    if name in ("mlp", "dag", "rnn", "conv", "spread", "sparse"):  # BiLU nets: L1, L2 and Linf reach balance anywhere
        assert counts["result"] >= len(MAGNITUDES) * 3 * len(METHODS)


@settings(max_examples=40)
@given(net=networks(max_width=12, max_depth=4), p=st.sampled_from(PS + (None,)), method=st.sampled_from(METHODS),
       magnitude=st.sampled_from(MAGNITUDES + (1e-200, 1e200)), tie=st.sampled_from([None, "layer"]),
       variant=st.sampled_from(["single", "sum", "pow2", "fraction"]))
def test_random_networks_return_a_result_or_a_clear_refusal(net, p, method, magnitude, tie, variant):
    """Random nets (skips, delay-1 loops, tanh and BiPU units mixed in) x costs (Lp, Linf, Lp(1) + 0.1 Lp(p)) x
    methods x magnitudes x ties x power-of-two grid or partial steps: the grid's promise holds for each.

    Longer runs of this (3,000 examples each) found the subnormal results, the spiking route, the two
    float64 limits of `scale` and the overflowing bracket of the one-unit solve, fixed alongside."""
    cost = nb.Lp(1) + 0.1 * nb.Lp(p or 2) if variant == "sum" else nb.Linf() if p is None else nb.Lp(p)
    options = {"pow2": {"scale_grid": "pow2"}, "fraction": {"fraction": 0.5}}.get(variant, {})
    if options and method == "global":
        method = "sweep"
    _outcome(_times(net, magnitude), cost, method, max_iter=None if method == "global" else 300, tie=tie, **options)


@pytest.mark.parametrize("options", [dict(tie="layer"), dict(scale_grid="pow2"), dict(fraction=0.5),
                                     dict(cost=nb.Lp(1) + 0.1 * nb.Lp(2)), dict(cost=nb.Lp(0.5) + nb.Lp(4))])
def test_options_return_a_result_or_a_clear_refusal(options):
    options = dict(options)
    costs = [options.pop("cost")] if "cost" in options else [nb.Lp(p) for p in (1e-3, 0.3, 2.0, 50.0)] + [nb.Linf()]
    methods = ("stochastic", "sweep") if options.get("scale_grid") or options.get("fraction") else METHODS
    for name in ("mlp", "bipu2", "spread"):
        for magnitude in (1e-300, 1.0, 1e160, 1e300):
            net = _times(NETS[name](), magnitude)
            for cost in costs:
                for method in methods:
                    _outcome(net, cost, method, max_iter=None if method == "global" else 2000, **options)


@pytest.mark.parametrize("method", METHODS)
def test_tiny_p_is_refused_naming_the_limit_and_the_unit(method):
    """Lp(1e-6) on a small MLP and Lp(0.001) on digits_mlp: the balanced factors are e^(+-1e3..1e5)."""
    with pytest.raises(NumericalError, match=r"^(underflow to 0|overflow): .*unit h\d\[\d+\]"):
        nb.balance(nb.mlp([6, 5, 4, 3], seed=0), nb.Lp(1e-6), method)
    digits = nb.load_model(resource_dir("models") / "digits_mlp.yaml")
    with pytest.raises(NumericalError, match=r"^(underflow to 0|overflow): .*projection"):
        nb.balance(digits, nb.Lp(0.001), method)


def test_bipu_small_degree_is_refused_not_returned_with_weights_at_zero():
    net = nb.mlp([6, 5, 4, 3], activation="bipu:1e-3", seed=0)
    for method in METHODS:
        with pytest.raises(NumericalError, match="^underflow to 0"):
            nb.balance(net, nb.Lp(1e-3), method)


@pytest.mark.parametrize("magnitude", [1e160, 1e300, 1e-300])
def test_balanced_state_does_not_depend_on_a_common_factor(magnitude):
    """Every cost of a single Lp term is multiplied by ``s**p`` when every parameter is multiplied by s, so the
    balance equations, hence the log-scales, are those of the unscaled network (theory §3, eq 3.2)."""
    base = nb.mlp([6, 5, 4, 3], seed=0)
    for method in METHODS:
        want = nb.balance(base, nb.Lp(2), method)
        got = nb.balance(_times(base, magnitude), nb.Lp(2), method)
        assert got.converged
        for name in want.log_scales:
            np.testing.assert_allclose(got.log_scales[name], want.log_scales[name], atol=1e-8)
        # every cost is the unscaled one times magnitude**2, written from its log where float64 cannot hold it
        np.testing.assert_allclose(got.log_costs, np.log([want.cost_before, want.cost_after]) + 2 * math.log(magnitude),
                                   rtol=1e-12)
        assert "nan" not in repr(got) and " inf" not in repr(got)


def test_imbalance_of_huge_weights_is_finite_and_the_cost_is_its_log():
    """``nb.imbalance`` on weights x 1e160 (|w|**2 ~ 1e320): the relative imbalance is that of the unscaled
    network, and log(total cost) = log(cost of the unscaled one) + 2 log(1e160)."""
    base = nb.mlp([6, 5, 4, 3], seed=0)
    want, got = nb.imbalance(base, nb.Lp(2)), nb.imbalance(_times(base, 1e160), nb.Lp(2))
    assert math.isfinite(got.max_relative)
    assert got.max_relative == pytest.approx(want.max_relative, rel=1e-12)
    assert got.log_total_cost == pytest.approx(math.log(want.total_cost) + 2 * math.log(1e160), rel=1e-14)
    assert "outside float64" in repr(got) and "nan" not in repr(got)


def test_stochastic_loop_refuses_instead_of_math_domain_error():
    """The case that raised a bare ``ValueError: math domain error`` in the stochastic loop: log(B / A)
    after an in-cost underflowed to 0 (BiPU layer, weights but not biases x 1e-300)."""
    net = _times(NETS["spread_bipu"](), 1e-300, biases=False)
    for cost in (nb.Lp(1), nb.Linf()):
        assert _outcome(net, cost, "stochastic", max_iter=300) in ("result", "refused")


def test_inplace_failure_leaves_the_network_unchanged():
    net = nb.mlp([6, 5, 4, 3], seed=0)
    before = [p.weight.copy() for p in net.projections]
    with pytest.raises(NumericalError):
        nb.balance(net, nb.Lp(1e-6), inplace=True)
    for w, old in zip((p.weight for p in net.projections), before):
        np.testing.assert_array_equal(w, old)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "neuro_balance.app.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_cli_balance_with_tiny_p_is_one_line_and_writes_nothing(tmp_path):
    """``neuro-balance balance models/digits_mlp.yaml --cost Lp:0.001``: exit 1, the limit named, no output file."""
    out = tmp_path / "o.yaml"
    proc = _cli("balance", resource_dir("models") / "digits_mlp.yaml", "--cost", "Lp:0.001", "-o", out)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "underflow to 0" in lines[0] and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_inspect_huge_weights_prints_the_cost_from_its_log(tmp_path):
    path = tmp_path / "big.yaml"
    nb.save_model(_times(nb.load_model(resource_dir("models") / "digits_mlp.yaml"), 1e160, biases=False), path)
    proc = _cli("inspect", path)
    assert proc.returncode == 0, proc.stderr
    assert "outside float64" in proc.stdout and "nan" not in proc.stdout


# ------------------------------------------------------------------ chip profiles and emulation
DEGENERATE = [  # (profile, field, value): accepted by the schema before, each made the emulation's output NaN
    # (or, the last three, infinite or an exception)
    ("loihi1", "bias.mantissa_bits", 1),        # a signed 1-bit bias mantissa holds 0 and -1: largest bias 0
    ("speck", "bias.bits", 1),
    ("spinnaker1", "threshold.bits", 1),        # largest threshold 1, over the synaptic filter's 2**2: 0
    ("xylo_audio2", "threshold.bits", 1),       # signed: no magnitude bit at all (was a ZeroDivisionError)
    ("loihi1", "state.v.range", [0, 0]),
    ("loihi1", "state.v.range", [0, 2]),        # membrane max 2 over Loihi's 2**3 synaptic filter: no threshold >= 1
    ("speck", "state.v.bits", 1),
    ("brainscales2", "analog.gain", 0),
    ("loihi2", "conversion_defaults.max_rate", 1e-300),
    ("loihi2", "weights.exponent.offset", -1000),  # accumulator scale 2**1000: an infinite output error
    ("brainscales2", "weights.bits", 62),           # 2**61 - 1 rounds to 2**61 in float64: a clip error
    ("akida1", "weights.bits", 53),                 # integer sums beyond 2**52: a bare OverflowError
]


def _mutated_profile(tmp_path, name: str, field: str, value) -> str:
    import yaml

    data = yaml.safe_load((resource_dir("hardware_profiles") / f"{name}.yaml").read_text())
    node = data
    *parents, leaf = field.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("name, field, value", DEGENERATE)
def test_degenerate_profile_values_are_refused_naming_field_and_value(tmp_path, name, field, value):
    from neuro_balance.hardware.profile import load_profile

    path = _mutated_profile(tmp_path, name, field, value)
    with pytest.raises(nb.ProfileError) as err:
        load_profile(path, warn=False)
    text = str(err.value)
    assert f"field '{field}'" in text and f"got {value!r}" in text and "\n" not in text


@pytest.mark.filterwarnings("ignore::neuro_balance.errors.UnverifiedProfileWarning")
def test_emulation_refuses_nan_inputs_instead_of_casting_them():
    """NaN inputs became garbage integers (all-NaN data scored accuracy 1.0); now a NumericalError."""
    from neuro_balance.hardware.emulate import quantize

    net = nb.mlp([8, 12, 6], seed=0)
    x = np.random.default_rng(0).uniform(0, 1, (16, 8))
    q = quantize(net, "loihi1", x)
    bad = x.copy()
    bad[3, 5] = np.nan
    with pytest.raises(NumericalError, match=r"^NaN: 1 input value.*\[3, 5\]"):
        q.run(bad)
    with pytest.raises(NumericalError, match="^NaN"):
        q.forward(np.full_like(x, np.nan))


def test_evaluate_refuses_nan_data_and_skips_cells_whose_error_overflows():
    from neuro_balance.hardware.evaluate import evaluate

    net = nb.mlp([8, 12, 3], seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (24, 8)), rng.integers(0, 3, 24)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(NumericalError, match="^NaN: X"):
        evaluate(net, bad, y, profiles=["loihi1"], bits=[None], variants=("quantized",))
    # max_rate 1e-300 (an override the schema never sees): outputs of ~1e300, an error that overflows
    ev = evaluate(net, x, y, profiles=["loihi2"], bits=[None], variants=("quantized",), max_rate=1e-300)
    (rec,) = ev.records
    assert rec["accuracy"] is None and rec["skipped"].startswith("overflow")


@pytest.mark.parametrize("graph", ["mlp", "conv"])
def test_spiking_networks_return_a_result_or_a_clear_refusal(graph):
    """NIR graphs of IF/LIF units (the gauge route): with weights x 1e-300, Lp(0.01) returned weights
    underflowed to 0 marked converged; x 1e300 raised ``log_mu[...]: expected finite values``."""
    from nir_graphs import GRAPHS

    base = nb.from_nir(GRAPHS[graph]())
    for magnitude in (1e-300, 1.0, 1e300):
        net = _times(base, magnitude)
        for cost in (nb.Lp(0.01), nb.Lp(2), nb.Linf()):
            for method in ("global", "sweep"):
                _outcome(net, cost, method, function=False, max_iter=None if method == "global" else 500)


def test_cli_quantize_with_all_nan_data_is_an_error_not_accuracy_one(tmp_path):
    data = tmp_path / "nan.npz"
    np.savez(data, X=np.full((20, 64), np.nan), y=np.zeros(20, dtype=int))
    proc = _cli("quantize", resource_dir("models") / "digits_mlp.yaml", "--profile", "loihi1", "--data", data)
    assert proc.returncode == 1 and "accuracy" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "NaN" in lines[0] and "Traceback" not in proc.stderr


def _log_scaled(net: nb.Network, log_scales: dict) -> list[np.ndarray]:
    """log |w| + u_post - c u_pre of every weight and bias, by hand (dense projections of an MLP)."""
    out = []
    for proj in net.projections:
        f = log_scales.get(proj.post, np.zeros(net.populations[proj.post].size))[:, None] - \
            net.populations[proj.pre].degree * log_scales.get(proj.pre, np.zeros(net.populations[proj.pre].size))[None, :]
        out.append(np.log(np.abs(proj.weight)) + f)
    return out + [np.log(np.abs(pop.bias)) + log_scales.get(name, 0.0)
                  for name, pop in net.populations.items() if pop.bias is not None]


@pytest.mark.parametrize("case", ["factor alone beyond float64", "intermediate product beyond float64"])
def test_scale_reaches_every_representable_result(case):
    """`scale` multiplied w by exp(u_post), then by exp(-c u_pre): e^-887 alone is 0 (weights of 1e147
    became 0, not 1e-238), and w e^454 overflowed before e^-216 brought it back to 1e303."""
    net = nb.mlp([3, 4, 4, 2], seed=0)
    if case == "factor alone beyond float64":
        h2_out = net.projections[2].weight * 1e-300          # h2 -> out: 1e-300, times e^886 below
        net = _times(net, 1e147)
        net.projections[2].weight = h2_out
        u = {"h1": np.full(4, -887.0), "h2": np.linspace(-886.5, -885.5, 4)}
    else:
        net.projections[1].weight *= 1e200                     # h1 -> h2
        u = {"h1": np.linspace(215.5, 216.5, 4), "h2": np.linspace(453.5, 454.5, 4)}
    want = _log_scaled(net, u)
    assert all(np.all(np.abs(w) < 700) for w in want)  # every result representable
    got = nb.scale(net, u)
    params = [p.weight for p in got.projections] + [p.bias for p in got.populations.values() if p.bias is not None]
    for a, b in zip(params, want):
        np.testing.assert_allclose(np.log(np.abs(a)), b, rtol=0, atol=1e-12 * np.max(np.abs(b)))


@pytest.mark.parametrize("magnitude", [1e160, 1e300])
def test_sum_of_costs_at_extreme_magnitudes_is_balanced_for_its_dominant_term(magnitude):
    """Lp(1) + 0.1 Lp(2) on weights x s weighs its terms s and 0.1 s**2: at 1e160 the L1 term is 1e-159 of the
    L2 term (1e-299 at 1e300), so the balanced state is the L2 term's alone (|w|**2 overflowed before).
    (At 1e-300 the L2 term underflowed and was 1e-301 of the other anyway: balanced for L1 before and now.)"""
    dominant = 2.0
    base = nb.mlp([6, 5, 4, 3], seed=0)
    want = nb.balance(base, nb.Lp(dominant))
    for method in ("global", "sweep"):
        got = nb.balance(_times(base, magnitude), nb.Lp(1) + 0.1 * nb.Lp(2), method)
        assert got.converged
        for name in want.log_scales:
            np.testing.assert_allclose(got.log_scales[name], want.log_scales[name], atol=1e-8)


@pytest.mark.parametrize("method", METHODS)
def test_one_unit_solve_of_a_sum_of_costs_brackets_without_overflow(method):
    """Lp(1) + 0.1 Lp(0.001) on a tied layer: the Lp(0.001) term alone puts its optimum at |d| ~ 1e3, and the
    1-D solve bracketed there with exp(1e3) (bare OverflowError, or a refusal from the stochastic loop); its
    balanced state is moderate, and returned."""
    for seed in (0, 19):
        net = nb.mlp([8, 5, 1], activation="bilu:-0.5,2.0", seed=seed)
        assert _outcome(net, nb.Lp(1) + 0.1 * nb.Lp(0.001), method, tie="layer",
                        max_iter=None if method == "global" else 200) == "result"


def test_balance_unit_refuses_a_step_float64_cannot_hold():
    """``balance_unit`` with Lp(1e-6): a factor of e^-6e5 on one unit; its weights went to 0 and inf."""
    net = nb.mlp([6, 5, 4, 3], seed=0)
    with pytest.raises(NumericalError, match=r"^(overflow|underflow)"):
        nb.balance_unit(net, nb.Lp(1e-6), "h1", 0)
    out, lam = nb.balance_unit(net, nb.Lp(2), "h1", 0)  # an ordinary step is unchanged
    np.testing.assert_allclose(out.forward(_probe(net)), net.forward(_probe(net)), rtol=1e-12)
