"""LIF neurons under the rate exchange (approximate, predicted) and under the exact gauge (spike trains unchanged)."""
from __future__ import annotations

import numpy as np
import pytest

b2 = pytest.importorskip("brian2")
from neuro_balance.sim.lif import exact_gauge, exchange_ratio, lif_rate, linear_rate, measure_exchange  # noqa: E402

THETA, RHO, T_REF = 16e-3, 5e-3, 2e-3


def test_linear_regime_is_the_high_rate_expansion_of_the_exact_rate():
    """By hand: log((mu - rho) / (mu - theta)) = D / (mu - m) + O(mu^-3) with D = theta - rho and
    m = (theta + rho) / 2, so the two ISIs differ by O(mu^-3): a tenfold drive cuts the gap ~1000x."""
    gaps = [abs(1 / lif_rate(mu, 0.01, THETA, RHO, T_REF) - 1 / linear_rate(mu, 0.01, THETA, RHO, T_REF))
            for mu in (10 * THETA, 100 * THETA)]
    assert 500 < gaps[0] / gaps[1] < 2000
    # without dead time the linear regime is an IF with offset: r(lam mu) / (lam r(mu)) = (lam mu - m) / (lam (mu - m))
    m, mu, lam = (THETA + RHO) / 2, 0.05, 1.7
    assert exchange_ratio(lam, mu, 0.01, THETA, RHO, 0.0) == pytest.approx((lam * mu - m) / (lam * (mu - m)), rel=1e-14)
    # a non-leaky IF (m = 0, no dead time) is homogeneous: the exchange is exact
    assert exchange_ratio(lam, mu, 0.01, 1e-3, -1e-3, 0.0) == pytest.approx(1.0, rel=1e-14)


def test_measured_exchange_follows_the_linear_regime_where_rates_are_high():
    """Poisson-driven LIFs (100 inputs, tau = 20 ms, mean drive 5 theta): the measured rate change under the
    exchange matches the high-rate prediction within 3 standard errors (+0.01), and the prediction is not
    trivial (lam = 2 lowers the rate ratio to ~0.75: refractoriness saturates the unit)."""
    m = measure_exchange([20e-3], [80], [0.5, 1.25, 2.0], neurons=8, duration=1.0, seed=1, theta=THETA, rho=RHO,
                         t_ref=T_REF)
    pred = exchange_ratio(m.lam, m.mu, m.tau, THETA, RHO, T_REF)
    assert np.all(np.minimum(m.mu, m.lam * m.mu) >= 2.5 * THETA)  # inside the regime
    assert np.all(np.abs(m.ratio - pred) <= 3 * m.error + 0.01), (m.ratio, m.error, pred)
    assert pred.min() < 0.8 and m.ratio.min() < 0.85  # far from the exact exchange's 1


def lif_copies(n: int, seed: int):
    """Two identical LIF groups (per-unit threshold, reset, rest and drive) driven by the same Poisson input."""
    model = """dv/dt = (v_rest - v + I_drive)/tau : volt (unless refractory)
               v_th : volt
               v_reset : volt
               v_rest : volt
               I_drive : volt"""
    rng = np.random.default_rng(seed)
    P = b2.PoissonGroup(40, rates=30 * b2.Hz)
    out = []
    for copy in ("a", "b"):
        G = b2.NeuronGroup(n, model, threshold="v > v_th", reset="v = v_reset", refractory=2 * b2.ms, method="exact",
                           namespace={"tau": 10 * b2.ms}, name=f"lif_{copy}")
        G.v_rest, G.v_th, G.v_reset = -70 * b2.mV, -54 * b2.mV, -65 * b2.mV
        G.v = -70 * b2.mV
        G.I_drive = 12 * b2.mV
        S = b2.Synapses(P, G, "w : volt", on_pre="v_post += w", name=f"in_{copy}")
        S.connect(p=1.0)
        out.append((G, S, b2.SpikeMonitor(G, name=f"spikes_{copy}")))
    w = rng.uniform(0.2, 1.5, len(out[0][1])) * b2.mV
    out[0][1].w = w
    out[1][1].w = w
    return P, out


@pytest.mark.parametrize("factors", [pytest.param("powers_of_two", marks=pytest.mark.slow), "any"])
def test_exact_gauge_leaves_spike_trains_identical(factors):
    """Incoming weights, drive, threshold, reset, rest and membrane times lam: the same spikes, to the step.

    With powers of two every multiplication is exact in floating point, so the gauged copy's
    arithmetic is the original's times lam bit for bit; with any lam rounding could flip a threshold
    comparison that ties to an ulp (not seen here). The rate exchange on the same units, by contrast,
    changes the spike trains (leaky units are not homogeneous)."""
    old = b2.prefs.codegen.target
    b2.prefs.codegen.target = "numpy"
    state = np.random.get_state()
    b2.seed(5)
    try:
        P, ((Ga, Sa, Ma), (Gb, Sb, Mb)) = lif_copies(10, 0)
        rng = np.random.default_rng(1)
        lam = 2.0 ** rng.integers(-2, 3, 10) if factors == "powers_of_two" else rng.uniform(0.4, 2.5, 10)
        net = b2.Network(P, Ga, Sa, Ma, Gb, Sb, Mb)
        net.run(50 * b2.ms)
        exact_gauge(Gb, lam, [Sb], voltages=("v", "v_th", "v_reset", "v_rest"), drives=("I_drive",))
        net.run(200 * b2.ms)
        assert len(Ma.i) > 100
        np.testing.assert_array_equal(Mb.i[:], Ma.i[:])
        np.testing.assert_array_equal(Mb.t_[:], Ma.t_[:])
        np.testing.assert_allclose(Gb.v_[:], Ga.v_[:] * lam, rtol=1e-12)
        # the rate exchange instead: incoming x lam (threshold, reset, rest unchanged) moves the spikes
        Sb.w = Sa.w[:] * lam[np.asarray(Sa.j[:])]
        Gb.v_th, Gb.v_reset, Gb.v_rest, Gb.I_drive = Ga.v_th[:], Ga.v_reset[:], Ga.v_rest[:], Ga.I_drive[:] * lam
        Gb.v = Ga.v[:]
        before = len(Mb.i)
        net.run(200 * b2.ms)
        counts_a = np.bincount(Ma.i[before:], minlength=10)
        counts_b = np.bincount(Mb.i[before:], minlength=10)
        assert not np.array_equal(counts_a, counts_b)
    finally:
        np.random.set_state(state)
        b2.prefs.codegen.target = old


def test_exact_gauge_checks_its_arguments():
    G = b2.NeuronGroup(2, "v : volt", name="gauge_check")
    H = b2.NeuronGroup(2, "v : volt", name="gauge_other")
    S = b2.Synapses(G, H, "w : 1", name="gauge_syn")
    with pytest.raises(ValueError, match="lam"):
        exact_gauge(G, [1.0, -1.0])
    with pytest.raises(ValueError, match="does not target"):
        exact_gauge(G, 2.0, [S])
