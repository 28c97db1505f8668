"""Calibration: the float activity of every population, from data or from interval bounds, and its magnitude."""
from __future__ import annotations

import numpy as np

from ..model.kinds import get_kind
from ..model.network import Network, Projection

__all__ = ["activation_ranges", "with_weight", "magnitude"]


def activation_ranges(net: Network, calibration: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-population float activity used to choose activation scales.

    Parameters
    ----------
    net : Network
    calibration : ndarray of shape (batch, n_in), optional
        Data: every population's activity on it is returned. Without it: interval bounds
        ``[lo, hi]`` per feature for inputs in ``[0, 1]``, stacked as a ``(2, n_features)`` array
        (monotone activations only).

    Returns
    -------
    dict of ndarray, by population name
    """
    if calibration is not None:
        return net.forward(np.asarray(calibration, dtype=np.float64), return_all=True)
    n_in = net.input.n_features
    bounds = {net.input.name: np.stack([np.zeros((1, n_in)), np.ones((1, n_in))])}
    for name in net.order:
        pop = net.populations[name]
        if pop.role == "input":
            continue
        lo = np.zeros((1, pop.n_features)) + (pop.bias_features() if pop.bias is not None else 0.0)
        hi = lo.copy()
        for proj in net.incoming(name):
            pre = net.populations[proj.pre]
            plo, phi = bounds[proj.pre]
            kind = get_kind(proj.kind)
            pos = with_weight(proj, np.maximum(proj.weight, 0.0))
            neg = with_weight(proj, np.minimum(proj.weight, 0.0))
            lo = lo + kind.propagate(pos, pre, pop, plo) + kind.propagate(neg, pre, pop, phi)
            hi = hi + kind.propagate(pos, pre, pop, phi) + kind.propagate(neg, pre, pop, plo)
        bounds[name] = np.stack([pop.activation(lo), pop.activation(hi)])
    return {name: b.reshape(2, -1) for name, b in bounds.items()}


def with_weight(proj: Projection, weight: np.ndarray) -> Projection:
    """A projection like ``proj`` carrying ``weight`` (no copy of anything else)."""
    return Projection(proj.pre, proj.post, weight, proj.kind, proj.delay, proj.name, proj.options)


def magnitude(values: np.ndarray, method: str, percentile: float) -> float:
    """The largest ``|value|`` (``max``) or the ``percentile`` of the non-zero ones (snntoolbox)."""
    mag = np.abs(values).ravel()
    if method == "percentile":
        nonzero = mag[mag > 0]
        return float(np.percentile(nonzero, percentile)) if nonzero.size else 0.0
    return float(mag.max(initial=0.0))
