"""Exact, function-preserving rescaling of units (theory §1, scaling operation S_lam)."""
from __future__ import annotations

import copy
from typing import Mapping

import numpy as np

from ..errors import ModelError
from ..model.kinds import get_kind
from ..model.network import Network

__all__ = ["scale", "factors"]

_LN2 = np.log(2.0)


def factors(log_scales: np.ndarray) -> np.ndarray:
    """``exp(u)``, exactly ``2**k`` where ``u`` is an exact multiple ``k * log(2)`` (a fixed-point shift)."""
    u = np.asarray(log_scales, dtype=np.float64)
    k = np.round(u / _LN2)
    return np.where(k * _LN2 == u, np.exp2(k), np.exp(u))


def scale(net: Network, log_scales: Mapping[str, np.ndarray], *, inplace: bool = False,
          strict: bool = True) -> Network:
    """Rescale units: every parameter on an edge j->i is multiplied by ``exp(u_i - c_j * u_j)``.

    A unit's bias is an edge from the ground unit, so it is multiplied by ``exp(u_i)``, and so are
    the potentials of its neuron model, if it has one (`model.neurons`). For hidden
    units with homogeneous activations (degree ``c_j``) this leaves ``Network.forward`` unchanged.

    Parameters
    ----------
    net : Network
    log_scales : mapping of population name to ndarray of shape (size,)
        Log-scales ``u`` (``lam = exp(u)``); populations not named keep ``u = 0``.
    inplace : bool
        Modify ``net`` instead of returning a scaled copy.
    strict : bool
        Refuse to scale input, output or non-homogeneous populations (which would change the
        function). ``strict=False`` allows it, e.g. for negative controls.

    Returns
    -------
    Network

    Examples
    --------
    >>> import neuro_balance as nb, numpy as np
    >>> net = nb.mlp([3, 4, 2], seed=0)
    >>> x = np.ones((1, 3))
    >>> bool(np.allclose(nb.scale(net, {"h1": np.log([1, 2, 3, 4])}).forward(x), net.forward(x)))
    True
    """
    u = {}
    for name, values in log_scales.items():
        if name not in net.populations:
            raise ModelError(f"log_scales: no population named {name!r}")
        pop = net.populations[name]
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (pop.size,):
            raise ModelError(f"log_scales[{name!r}]: shape {values.shape} does not match ({pop.size},)")
        if not np.all(np.isfinite(values)):
            raise ModelError(f"log_scales[{name!r}]: contains NaN or Inf")
        if strict and not pop.balanced and np.any(values != 0):
            raise ModelError(f"log_scales[{name!r}]: {pop.role} population with activation "
                             f"{pop.activation} cannot be scaled without changing the function")
        u[name] = values
    touched = [proj for proj in net.projections if proj.post in u or proj.pre in u]
    if inplace:
        out = net
    else:  # every other part copied; the rescaled weights are written once, by their first product
        out = copy.deepcopy(net, memo={id(proj.weight): proj.weight for proj in touched})
    for proj in out.projections:
        if proj.post not in u and proj.pre not in u:
            continue
        pre, post = out.populations[proj.pre], out.populations[proj.post]
        post_idx, pre_idx = get_kind(proj.kind).groups(proj, pre, post)
        f_post = factors(u[proj.post])[post_idx] if proj.post in u else None
        f_pre = factors(-pre.degree * u[proj.pre])[pre_idx] if proj.pre in u else None
        proj.weight = _rescaled(proj.weight, f_post, f_pre, inplace)
    for name, values in u.items():
        pop = out.populations[name]
        if pop.bias is not None:
            pop.bias *= factors(values)
        if pop.neuron is not None:  # v_leak (LI) travels with the input it is added to
            pop.neuron = pop.neuron.with_potentials_scaled(factors(values))
    return out


_ROWS = 64  # rows per chunk of an outer-product rescaling: the factor block stays in cache


def _rescaled(w: np.ndarray, f_post: np.ndarray | None, f_pre: np.ndarray | None, inplace: bool) -> np.ndarray:
    """``w * f_post * f_pre`` (either may be None) written once: into ``w`` itself, or into one new array.

    Dense projections (factors of shapes ``(n, 1)`` and ``(1, m)``) go through the weights once, a
    chunk of rows at a time; other kinds apply the factors one after the other.
    """
    out = w if inplace else np.empty_like(w)
    parts = [f for f in (f_post, f_pre) if f is not None]
    if len(parts) == 2 and w.ndim == 2 and f_post.shape == (w.shape[0], 1) and f_pre.shape == (1, w.shape[1]):
        for start in range(0, w.shape[0], _ROWS):
            rows = slice(start, start + _ROWS)
            if inplace:
                out[rows] *= f_post[rows] * f_pre
            else:
                np.multiply(w[rows], f_post[rows] * f_pre, out=out[rows])
        return out
    for k, f in enumerate(parts):
        if inplace or k:
            out *= f
        else:
            np.multiply(w, f, out=out)
    return out
