"""Hypothesis strategies shared by every engine's tests: random networks and costs."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import neuro_balance as nb
from neuro_balance import Network, Population, Projection

HOMOGENEOUS = ("relu", "leaky_relu:0.1", "linear", "bilu:-0.5,2.0")
# BiPU units (degree c != 1): every engine must carry c in its steps; a lost c only shows on them.
# Integer degrees, so that a power-of-two factor stays one on the out side too (lam**-c, scale_grid="pow2").
BIPU = ("bipu:2.0", "bipu:3.0", "bipu:2.0,-0.5,1.5")


def random_weights(rng: np.random.Generator, n_out: int, n_in: int, spread: float = 1.0) -> np.ndarray:
    """Gaussian weights with log-normal row and column gains, so units start far from balance."""
    w = rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)
    return w * np.exp(spread * rng.normal(size=(n_out, 1))) * np.exp(spread * rng.normal(size=(1, n_in)))


@st.composite
def networks(draw, recurrent: bool | None = None, tanh: bool = True, skips: bool = True, max_width: int = 64,
             max_depth: int = 6, bipu: bool = True) -> Network:
    """Random networks: 2-6 weight layers, widths 1-64, skip edges, delay-1 edges with self-loops, tanh and BiPU mixed in."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    depth = draw(st.integers(2, max_depth))
    widths = [draw(st.integers(1, 8))] + [draw(st.integers(1, max_width)) for _ in range(depth - 1)] + [
        draw(st.integers(1, 6))]
    kinds = list(HOMOGENEOUS) + (["tanh"] if tanh else []) + (list(BIPU) if bipu else [])
    pops = [Population("in", widths[0], "input", "linear")]
    for k in range(1, depth):
        act = draw(st.sampled_from(kinds))
        if act in BIPU:  # one BiPU population at most: x**c compounding through layers overflows float64
            kinds = [a for a in kinds if a not in BIPU]
        bias = rng.normal(size=widths[k]) if draw(st.booleans()) else None
        pops.append(Population(f"h{k}", widths[k], "hidden", act, bias))
    pops.append(Population("out", widths[-1], "output", "linear",
                           rng.normal(size=widths[-1]) if draw(st.booleans()) else None))
    projs = [Projection(a.name, b.name, random_weights(rng, b.size, a.size)) for a, b in zip(pops[:-1], pops[1:])]
    if skips and depth > 2:
        for _ in range(draw(st.integers(0, 2))):
            i = draw(st.integers(0, depth - 2))
            j = draw(st.integers(i + 2, depth))
            name = f"skip{i}-{j}-{len(projs)}"
            projs.append(Projection(pops[i].name, pops[j].name, random_weights(rng, pops[j].size, pops[i].size),
                                    name=name))
    want_recurrent = draw(st.booleans()) if recurrent is None else recurrent
    if want_recurrent and depth > 1:
        for _ in range(draw(st.integers(1, 2))):
            i = draw(st.integers(1, depth - 1))
            j = draw(st.integers(1, depth - 1))
            w = 0.3 * random_weights(rng, pops[j].size, pops[i].size, spread=0.3)
            projs.append(Projection(pops[i].name, pops[j].name, w, delay=1, name=f"rec{i}-{j}-{len(projs)}"))
    return Network(pops, projs, f"random{seed}")


def exponents() -> st.SearchStrategy[float]:
    """p in [0.3, 4]."""
    return st.floats(0.3, 4.0, allow_nan=False, allow_infinity=False)


def costs(linf: bool = True, mixed: bool = True) -> st.SearchStrategy[nb.Cost]:
    """Lp for p in [0.3, 4], L-infinity, and weighted sums of two Lp terms."""
    options = [exponents().map(nb.Lp)]
    if linf:
        options.append(st.just(nb.Linf()))
    if mixed:
        options.append(st.tuples(exponents(), exponents(), st.floats(0.01, 10.0)).map(
            lambda t: nb.Lp(t[0]) + t[2] * nb.Lp(t[1])))
    return st.one_of(*options)


def inputs_for(net: Network, seed: int = 0, batch: int = 5, steps: int = 4) -> np.ndarray:
    """Random inputs of the right shape ((T, batch, n) for recurrent networks)."""
    rng = np.random.default_rng(seed)
    n = net.input.n_features
    return rng.normal(size=(steps, batch, n) if net.recurrent else (batch, n))


def random_log_scales(net: Network, seed: int = 0, spread: float = 1.0) -> dict[str, np.ndarray]:
    """Random log-scales for every balanced population."""
    rng = np.random.default_rng(seed)
    return {name: spread * rng.normal(size=pop.size) for name, pop in net.populations.items() if pop.balanced}


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|a|, tiny): error relative to the output's scale."""
    scale = max(float(np.max(np.abs(a))), 1e-300) if a.size else 1.0
    return float(np.max(np.abs(a - b))) / scale if a.size else 0.0


def weight_distance(a: Network, b: Network) -> float:
    """Largest per-projection relative difference of weights (and biases) between two networks."""
    worst = 0.0
    for pa, pb in zip(a.projections, b.projections):
        worst = max(worst, relative_error(pa.weight, pb.weight))
    for name, pop in a.populations.items():
        if pop.bias is not None:
            worst = max(worst, relative_error(pop.bias, b.populations[name].bias))
    return worst
