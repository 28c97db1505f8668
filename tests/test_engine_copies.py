"""The engines copy the weights at most once: peak memory measured by tracemalloc, in copies of the weights."""
import tracemalloc

import numpy as np
import pytest

import neuro_balance as nb


def peak_copies(fn, net) -> float:
    """Peak bytes allocated while ``fn`` runs, in units of the network's weight bytes."""
    weight_bytes = sum(proj.weight.nbytes for proj in net.projections)
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / weight_bytes


@pytest.fixture(scope="module")
def net():
    return nb.mlp([200] * 5, seed=0)


def test_scaling_a_copy_writes_the_weights_once(net):
    u = {name: np.full(pop.size, 0.3) for name, pop in net.populations.items() if pop.balanced}
    assert peak_copies(lambda: nb.scale(net, u), net) < 1.1
    assert peak_copies(lambda: nb.scale(net, u, inplace=True), net) < 0.3  # a few rows of factors at a time


@pytest.mark.parametrize("method", ["global", "sweep", "stochastic"])
def test_balancing_holds_the_cost_matrix_and_one_copy(net, method):
    """K = |W|**p (one array per block) plus the returned copy; in place, K alone.

    The stochastic engine also holds K transposed (a unit's fan-out as one contiguous row).
    """
    extra = 1.0 if method == "stochastic" else 0.0
    assert peak_copies(lambda: nb.balance(net, nb.Lp(2), method=method), net) < 2.3 + extra
    copy = net.copy()
    assert peak_copies(lambda: nb.balance(copy, nb.Lp(2), method=method, inplace=True), net) < 1.3 + extra
