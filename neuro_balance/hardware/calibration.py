"""Calibration: the float activity of every population, from data or from interval bounds, and its magnitude."""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..model.kinds import get_kind
from ..model.network import Network, Projection

__all__ = ["activation_ranges", "with_weight", "magnitude", "SETTLE_STEPS"]

SETTLE_STEPS = 100   # steps of constant input after which a recurrent network's activity is taken


def activation_ranges(net: Network, calibration: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-population float activity used to choose activation scales.

    Parameters
    ----------
    net : Network
    calibration : ndarray of shape (batch, n_in), optional
        Data: every population's activity on it is returned (a recurrent network's after
        `SETTLE_STEPS` steps of constant input). Without it: interval bounds
        ``[lo, hi]`` per feature for inputs in ``[0, 1]``, stacked as a ``(2, n_features)`` array
        (monotone activations only).

    Returns
    -------
    dict of ndarray, by population name
    """
    if calibration is not None:
        x = np.asarray(calibration, dtype=np.float64)
        if net.recurrent and x.ndim == 2:
            # A rate-coded chip holds each input for a whole window: the recurrent net's steady state.
            acts = net.forward(np.broadcast_to(x, (SETTLE_STEPS, *x.shape)), return_all=True)
            return {name: a[-1] for name, a in acts.items()}
        return net.forward(x, return_all=True)
    if net.recurrent:
        raise ModelError(f"activation_ranges: network {net.name!r} is recurrent; its activity ranges need "
                         "calibration data (interval bounds do not settle)")
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
