"""Exact, function-preserving rescaling of units (theory §1, scaling operation S_lam)."""
from __future__ import annotations

import copy
from typing import Mapping

import numpy as np

from .arena import empty_like_all
from ..errors import ModelError
from ..model.kinds import get_kind
from ..model.network import Network

__all__ = ["scale", "factors", "split_pow2"]

_LN2 = np.log(2.0)
_LOG_FACTOR = 700.0  # a factor e**u with |u| above this may leave float64's normal range on its own


def factors(log_scales: np.ndarray) -> np.ndarray:
    """``exp(u)``, exactly ``2**k`` where ``u`` is a multiple ``k * log(2)`` up to rounding (a fixed-point shift).

    Power-of-two balancing adds steps ``k_i * log(2)``; their float sum can miss ``k * log(2)`` by a
    few ulps, and ``exp`` of it is then not exactly ``2**k`` (the weights' mantissas would change).
    A ``u`` within ``1e-12`` (relative) of a multiple of ``log(2)`` is taken as that multiple: any
    other ``u`` is that close with negligible probability, and its factor moves by ``<= 1e-12``.
    """
    u = np.asarray(log_scales, dtype=np.float64)
    k = np.round(u / _LN2)
    shift = np.abs(u - k * _LN2) <= 1e-12 * np.maximum(1.0, np.abs(u))
    return np.where(shift, np.exp2(k), np.exp(u))


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
    touched = [k for k, proj in enumerate(net.projections) if proj.post in u or proj.pre in u]
    weights = [net.projections[k].weight for k in touched]
    if inplace:
        out, fresh = net, weights
    else:  # every other part copied; the rescaled weights are written once, into one new allocation
        out = _copy_structure(net, rewritten=set(touched))
        fresh = empty_like_all(weights) if all(w.dtype == np.float64 for w in weights) else \
            [np.empty_like(w) for w in weights]
    for k, into in zip(touched, fresh):
        proj = out.projections[k]
        pre, post = out.populations[proj.pre], out.populations[proj.post]
        post_idx, pre_idx = get_kind(proj.kind).groups(proj, pre, post)
        # Both factors far from 1: a power of two moves from the first to the second, so that w times the
        # first stays near w's magnitude (e^454 then e^-216 overflowed on the way to e^238).
        shift = split_pow2(u[proj.post]) * _LN2 if proj.post in u and proj.pre in u else 0.0
        log_post = u[proj.post] - shift if proj.post in u else None
        log_pre = shift - pre.degree * u[proj.pre] if proj.pre in u else None
        if all(v is None or not v.size or float(np.max(np.abs(v))) <= _LOG_FACTOR for v in (log_post, log_pre)):
            f_post = factors(log_post)[post_idx] if log_post is not None else None
            f_pre = factors(log_pre)[pre_idx] if log_pre is not None else None
            proj.weight = _rescaled(proj.weight, f_post, f_pre, into)
        else:  # a factor alone beyond float64 (e^-887 on weights of 1e147): per parameter, by exponents
            log_f = np.zeros(proj.weight.shape)
            for values, idx in ((log_post, post_idx), (log_pre, pre_idx)):
                if values is not None:
                    log_f += values[idx]
            proj.weight = _times_exp(proj.weight, log_f, into)
    for name, values in u.items():
        pop = out.populations[name]
        if pop.bias is not None:
            pop.bias = _times_exp(pop.bias, values, pop.bias)
        if pop.neuron is not None:  # v_leak (LI) travels with the input it is added to
            pop.neuron = pop.neuron.with_potentials_scaled(factors(values))
    return out


def _times_exp(w: np.ndarray, log_f: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``w * exp(log_f)`` into ``out``, also where ``exp(log_f)`` alone is outside float64 but the product is not.

    Factors within ``e**±_LOG_FACTOR`` are `factors`; beyond, ``log_f = e log 2 + r`` and the product is
    ``ldexp(w * exp(r), e)`` (``r`` of a power-of-two step is 0: the factor stays exact).
    """
    if not log_f.size or float(np.max(np.abs(log_f))) <= _LOG_FACTOR:
        return np.multiply(w, factors(log_f), out=out)
    e = np.round(log_f / _LN2)
    np.multiply(w, factors(log_f - e * _LN2), out=out)
    return np.ldexp(out, e.astype(np.int64), out=out)


def split_pow2(u: np.ndarray) -> float:
    """``k`` with ``k log 2`` nearest the middle of ``u``'s range when that range reaches beyond ``|u| > 64``, else 0."""
    if not u.size or float(np.max(np.abs(u))) <= 64.0:
        return 0.0
    return float(np.round((float(u.min()) + float(u.max())) / 2.0 / _LN2))


def _copy_structure(net: Network, rewritten: set[int]) -> Network:
    """A copy of ``net`` that shares only its immutable parts and the weights of projections ``rewritten``.

    What `copy.deepcopy` gives, without its walk through every object (activations are immutable
    and shared); the caller writes new weights for the projections (indices) in ``rewritten``.
    """
    out = copy.copy(net)
    for key, value in vars(net).items():
        if key not in ("populations", "projections"):
            setattr(out, key, copy.deepcopy(value))
    out.populations = {}
    for name, pop in net.populations.items():
        out.populations[name] = new = copy.copy(pop)
        new.bias = None if pop.bias is None else pop.bias.copy()
        new.neuron = copy.deepcopy(pop.neuron)
    out.projections = []
    for k, proj in enumerate(net.projections):
        out.projections.append(new := copy.copy(proj))
        new.options = copy.deepcopy(proj.options)
        if k not in rewritten:
            new.weight = proj.weight.copy()
    return out


def _rescaled(w: np.ndarray, f_post: np.ndarray | None, f_pre: np.ndarray | None, out: np.ndarray) -> np.ndarray:
    """``w * f_post * f_pre`` (either may be None) written into ``out`` (``w`` itself or a new array).

    The first factor is applied on the way from ``w`` to ``out``, the second in place: no temporary
    the size of ``w``.
    """
    parts = [f for f in (f_post, f_pre) if f is not None]
    np.multiply(w, parts[0], out=out)
    for f in parts[1:]:
        out *= f
    return out
