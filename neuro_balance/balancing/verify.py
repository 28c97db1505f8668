"""Checks that a balancing result is one: finite log-scales and parameters, and the function kept on a probe batch.

Every engine ends here (`balance._balance`). When the graph's record of each array's largest and
smallest ``|w|`` and the factors' range bound every scaled parameter inside float64's normal range
(`within_range`, O(units)), nothing else is read; otherwise a scaled copy is compared with the input
parameter by parameter (`check_parameters`: overflow, underflow to 0, or into the subnormals), and
located when it fails. The probe batch is the input network's own forward pass against the result's
on a few fixed inputs (`check_function`).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import NumericalError
from ..model.kinds import get_kind
from ..model.network import Network
from ..seeding import check_random_state
from .scaling import split_pow2

__all__ = ["PROBE_RTOL", "step_error", "unscaled", "cost_text", "probe_batch", "check_log_scales",
           "within_range", "check_parameters", "check_neurons", "check_function", "check_imbalance"]

PROBE_RTOL = 1e-8  # largest change of the output on the probe batch, relative to its largest finite |output|
_MAX = float(np.finfo(np.float64).max)
_LOG_MAX = math.log(_MAX)
_LOG_TINY = math.log(float(np.finfo(np.float64).tiny))  # below it, float64 numbers lose precision (subnormal)


def step_error(name: str, unit: int, err: Exception) -> NumericalError:
    """The `NumericalError` for a Python float error (``exp`` overflow, ``log(0)``) while balancing one unit."""
    kind = "overflow" if isinstance(err, OverflowError) else "underflow to 0"
    return NumericalError(f"{kind}: balancing unit {name}[{unit}] needs a cost or factor outside float64 ({err}); "
                          "the balanced state of this cost is not representable in float64")


def unscaled(value: float, log_factor: float) -> float:
    """``value * exp(log_factor)``, ``inf`` when that exceeds float64 (a cost of parameters beyond it)."""
    if not log_factor or not value:
        return value
    with np.errstate(over="ignore"):
        return float(np.exp(math.log(value) + log_factor)) if value > 0 else value


def cost_text(value: float, log_value: float) -> str:
    """A cost to 6 digits, written from its natural log ``log_value`` when it is outside float64 (0 or inf)."""
    if (0 < value < math.inf) or not math.isfinite(log_value):
        return f"{value:.6g}"
    exponent = math.floor(log_value / math.log(10))
    return f"{math.exp(log_value - exponent * math.log(10)):.6g}e{exponent:+d} (outside float64)"


def probe_batch(net: Network) -> np.ndarray:
    """Four fixed standard-normal inputs (three steps of two for a recurrent network)."""
    shape = (3, 2, net.input.n_features) if net.recurrent else (4, net.input.n_features)
    return check_random_state(20240524).standard_normal(shape)


def _unit(net: Network, name: str, flat_index: int) -> int:
    """The unit of population ``name`` that feature ``flat_index`` belongs to."""
    pop = net.populations[name]
    return flat_index // max(1, pop.n_features // pop.size)


def check_log_scales(log_scales: dict[str, np.ndarray]) -> None:
    """Refuse a NaN or infinite log-scale, naming the first unit that has one."""
    for name, u in log_scales.items():
        bad = ~np.isfinite(u)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            kind = "NaN" if np.isnan(u[i]) else "overflow"
            raise NumericalError(f"{kind}: balancing found no finite factor for unit {name}[{i}] "
                                 f"(log-scale {u[i]}); {int(bad.sum())} unit(s) of {name!r} alike")


def _where(net: Network, proj, log_scales: dict[str, np.ndarray], original: np.ndarray, want_zero: bool) -> str:
    """The first parameter of ``proj`` whose scaled value leaves float64, with the factor it needed."""
    pre, post = net.populations[proj.pre], net.populations[proj.post]
    post_idx, pre_idx = get_kind(proj.kind).groups(proj, pre, post)
    shape = original.shape
    log_f = np.broadcast_to(log_scales[proj.post][post_idx] if proj.post in log_scales else 0.0, shape) - \
        pre.degree * np.broadcast_to(log_scales[proj.pre][pre_idx] if proj.pre in log_scales else 0.0, shape)
    with np.errstate(divide="ignore"):
        log_w = np.log(np.abs(original)) + log_f
    k = int(np.argmin(np.where(original != 0, log_w, np.inf)) if want_zero else np.argmax(log_w))
    i, j = np.broadcast_to(post_idx, shape).flat[k], np.broadcast_to(pre_idx, shape).flat[k]
    return (f"projection {proj.name!r}, unit {proj.post}[{i}] <- {proj.pre}[{j}]: |w| = {abs(original.flat[k]):.3g} "
            f"times e^{log_f.flat[k]:.6g} = 10^{log_w.flat[k] / math.log(10):.6g}")


def within_range(net: Network, log_scales: dict[str, np.ndarray], magnitudes: dict[str, tuple[float, float]]) -> bool:
    """Whether scaling ``net`` by ``log_scales`` surely keeps every parameter finite and out of the subnormals.

    Bounds from each array's largest and smallest ``|w|`` (``magnitudes``, as `graph.CostGraph` records
    them; a smallest of 0 bounds nothing unless every factor is >= 1) and the range of its factors, in
    O(units); False means "not sure" (a scaled copy is then checked parameter by parameter).
    """
    def span(name: str, times: float) -> tuple[float, float]:
        u = log_scales.get(name)
        if u is None or not u.size:
            return 0.0, 0.0
        ends = (times * float(u.min()), times * float(u.max()))
        return min(ends), max(ends)

    def moved(proj) -> float:
        """The log of the power of two `scale` moves from the post factor to the pre one."""
        both = proj.post in log_scales and proj.pre in log_scales
        return split_pow2(log_scales[proj.post]) * math.log(2.0) if both else 0.0

    arrays = [(p.name, span(p.post, 1.0), span(p.pre, -net.populations[p.pre].degree), moved(p))
              for p in net.projections if p.post in log_scales or p.pre in log_scales]
    arrays += [(f"bias of {name}", span(name, 1.0), (0.0, 0.0), 0.0) for name, pop in net.populations.items()
               if pop.bias is not None and name in log_scales]
    for key, (post_lo, post_hi), (pre_lo, pre_hi), m in arrays:
        if key not in magnitudes:
            return False
        top, bottom = magnitudes[key]
        for hi, lo in ((post_hi - m, post_lo - m), (post_hi + pre_hi, post_lo + pre_lo)):  # w f_post, then w f_post f_pre
            if top > 0 and not math.log(top) + hi < _LOG_MAX - 1.0:
                return False
            if lo < 0 and not (bottom > 0 and math.log(bottom) + lo > _LOG_TINY + 1.0):
                return False
    return True


def check_parameters(before: Network, after: Network, log_scales: dict[str, np.ndarray] | None) -> None:
    """Refuse a scaled copy with a parameter that overflowed, underflowed to 0 or lost bits as a subnormal.

    ``before`` is the unscaled network, ``after`` its copy scaled by ``log_scales`` (None: by factors
    not given, e.g. the gauge of spiking units; the message then names the array only). A parameter
    that was already subnormal and did not shrink is not counted (it lost nothing here).
    """
    arrays = [(p.weight, p) for p in after.projections] + \
        [(pop.bias, name) for name, pop in after.populations.items() if pop.bias is not None]
    olds = [p.weight for p in before.projections] + [pop.bias for pop in before.populations.values()
                                                       if pop.bias is not None]
    tiny = float(np.finfo(np.float64).tiny)
    for (w, what), old in zip(arrays, olds):
        with np.errstate(all="ignore"):
            finite = math.isfinite(float(np.sum(w))) or np.isfinite(w).all()  # a sum is inf or NaN if any term is
            lost = np.count_nonzero((np.abs(w) < tiny) & (np.abs(w) < np.abs(old)))  # zeros and subnormals that shrank
        if finite and not lost:
            continue
        zeros = np.count_nonzero(w) < np.count_nonzero(old)
        limit, gone = ("overflow", "exceed float64's largest number (1.8e308)") if not finite else \
            ("underflow to 0", "fall below float64's smallest number (4.9e-324)") if zeros else \
            ("underflow", "fall below float64's smallest normal number (2.2e-308), keeping only some of their bits")
        if log_scales is None:
            detail = f"population {what!r} bias" if isinstance(what, str) else f"projection {what.name!r}"
        elif isinstance(what, str):
            u = log_scales.get(what, np.zeros(1))
            k = int(np.argmax(np.abs(u)))
            detail = f"population {what!r} bias, unit {what}[{k}]: factor e^{u[k]:.6g}"
        else:
            detail = _where(before, what, log_scales, old, want_zero=finite)
        raise NumericalError(f"{limit}: the balanced parameters {gone}: {detail}. The balanced state of this "
                             "cost is not representable in float64")
    check_neurons(after)


def check_neurons(after: Network) -> None:
    """Refuse a neuron parameter (a potential scaled with its unit) that is not finite."""
    for name, pop in after.populations.items():
        if pop.neuron is not None:
            for key, values in pop.neuron.params.items():
                if not np.all(np.isfinite(values)):
                    raise NumericalError(f"overflow: neuron parameter {key!r} of population {name!r} is not finite "
                                         "after balancing")


def check_function(after: Network, x: np.ndarray, y0: np.ndarray) -> None:
    """Refuse ``after`` unless its output on the probe batch ``x`` is ``y0`` (the input network's) to `PROBE_RTOL`.

    An entry where only the result's is not finite is a change, unless the input network's own
    forward pass overflows somewhere on the batch (its function is then beyond float64 there, and the
    two overflow at different entries): then only entries finite in both are compared.
    """
    with np.errstate(all="ignore"):
        y1 = after.forward(x)
    known = np.isfinite(y0)
    if not known.any():
        return
    top = float(np.max(np.abs(y0[known])))
    broke = known & ~np.isfinite(y1) if known.all() else np.zeros_like(known)
    with np.errstate(all="ignore"):
        err = float(np.max(np.abs(y1[known & np.isfinite(y1)] - y0[known & np.isfinite(y1)]), initial=0.0))
    if not broke.any() and err <= PROBE_RTOL * top + np.finfo(float).tiny:
        return
    if broke.any():
        with np.errstate(all="ignore"):
            acts = after.forward(x, return_all=True)
        first = next(n for n in after.order if not np.isfinite(acts[n]).all())
        bad = np.isnan(acts[first])
        kind = "NaN" if bad.any() else "overflow"
        k = int(np.flatnonzero((~np.isfinite(acts[first])).reshape(-1, acts[first].shape[-1]).any(axis=0))[0])
        raise NumericalError(f"{kind}: the balanced network's forward pass on a probe batch leaves float64 at unit "
                             f"{first}[{_unit(after, first, k)}] while the input network's stays finite: the balanced "
                             "state of this cost is not representable in float64")
    raise NumericalError(f"precision: balancing changed the network's output on a probe batch by {err:.3g} "
                         f"(relative {err / top if top else math.inf:.3g}), more than float64 rounding allows "
                         f"({PROBE_RTOL:g})")


def check_imbalance(graph, u: dict[str, np.ndarray]) -> None:
    """Raise `NumericalError` naming the first anchored unit whose in- or out-cost at log-scales ``u`` is not finite and > 0.

    Called when the final imbalance is NaN or infinite: its two sides left float64 somewhere.
    """
    with np.errstate(all="ignore"):
        pt = graph.evaluate(u)
    flat = graph.flat
    for side, values in (("in", pt.A), ("out", pt.B)):
        total = values.sum(axis=0)
        bad = flat.anchored & ~(np.isfinite(total) & (total > 0))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            name = next(n for n, sl in flat.slices.items() if sl.start <= k < sl.stop)
            kind = "NaN" if np.isnan(total[k]) else "overflow" if np.isinf(total[k]) else "underflow to 0"
            raise NumericalError(f"{kind}: the {side}-cost of unit {name}[{k - flat.slices[name].start}] is {total[k]} "
                                 f"at the balancing factor e^{flat.pack(u)[k]:.6g}, so its imbalance is not a "
                                 "number: the balanced state of this cost is not representable in float64")
    raise NumericalError("NaN: the max relative imbalance of the result is not a number")
