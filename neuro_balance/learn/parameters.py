"""The trainable arrays of a `Network`, by name, and the factor a rescaling applies to each of them.

Parameters are named as in model files: a projection's name for its weight, ``"{population}.bias"``
for a bias. A new trainable array (a new layer type's parameters) is listed here, in `parameters`, and
given its log-factor under rescaling in `parameter_log_factors`; the optimiser, the regulariser and the
balancing hooks all read these two functions.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..model.kinds import get_kind
from ..model.network import Network

__all__ = ["parameters", "parameter_log_factors"]


def parameters(net: Network) -> dict[str, np.ndarray]:
    """The trainable arrays of ``net`` (not copies): weights by projection name, ``"{pop}.bias"`` biases."""
    params = {proj.name: proj.weight for proj in net.projections}
    for name, pop in net.populations.items():
        if pop.bias is not None:
            params[f"{name}.bias"] = pop.bias
    return params


def parameter_log_factors(net: Network, log_scales: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Log of the factor `scale` applies to every parameter: ``u_i - c_j u_j`` on j->i, ``u_i`` on a bias.

    Returns arrays broadcastable to each parameter's shape, keyed like `parameters`.
    """
    out = {}
    for proj in net.projections:
        pre, post = net.populations[proj.pre], net.populations[proj.post]
        post_idx, pre_idx = get_kind(proj.kind).groups(proj, pre, post)
        log = np.zeros(proj.weight.shape)
        if proj.post in log_scales:
            log = log + np.asarray(log_scales[proj.post])[post_idx]
        if proj.pre in log_scales:
            log = log - pre.degree * np.asarray(log_scales[proj.pre])[pre_idx]
        out[proj.name] = log
    for name, pop in net.populations.items():
        if pop.bias is not None:
            out[f"{name}.bias"] = np.asarray(log_scales.get(name, np.zeros(pop.size)), dtype=np.float64)
    return out
