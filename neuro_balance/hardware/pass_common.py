"""What the static passes share: their result, their counters and the worst-case bounds of a quantised network.

`prepare` derives, per population, float64 copies of the integer weights (times the analog mismatch,
where there is one) and the largest per-step input that activity within the populations' formats
can give; a register whose range holds that bound can never overflow, so its check may be skipped,
and sums below 2**52 are exact in float64.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..model.kinds import get_kind
from ..model.network import Population
from .calibration import with_weight
from .fixed_point import IntFormat

if TYPE_CHECKING:  # pragma: no cover
    from .quantized import QuantizedNetwork
    from .spec import ChipSpec

__all__ = ["EXACT", "COUNTERS", "IntegerRun", "new_counters", "per_feature", "Prepared", "prepare", "digital",
           "fits", "worst_state"]

EXACT = float(2 ** 52)  # float64 matmuls of integers are exact below this magnitude

#: Saturation counters of one pass, each a dict by population name.
COUNTERS = ("input_saturated", "accumulator_overflow", "state_overflow", "readout_saturated", "activation_saturated")


@dataclass
class IntegerRun:
    """What `run_integer` returns: the dequantised output, every population's integer activity, counters.

    Attributes
    ----------
    output : ndarray (batch, n_out)
    values : dict of ndarray
        Integer activity (spike counts on spiking chips) of the input and hidden populations, as the
        pass carried it (int64, or integer-valued float64); ``activity`` gives them as int64.
    counters : dict of dict
        `COUNTERS`, each by population name: values that saturated or wrapped during the pass.
    """

    output: np.ndarray
    values: dict[str, np.ndarray]
    counters: dict[str, dict[str, int]]

    @property
    def activity(self) -> dict[str, np.ndarray]:
        """Integer activity per population as int64 (the pass may carry it in float64)."""
        return {k: v if v.dtype == np.int64 else v.astype(np.int64) for k, v in self.values.items()}

    @property
    def saturation(self) -> int:
        """All counters summed."""
        return int(sum(sum(v.values()) for v in self.counters.values()))


def new_counters() -> dict[str, dict[str, int]]:
    """Empty `COUNTERS`."""
    return {k: {} for k in COUNTERS}

def per_feature(values: np.ndarray, pop: Population) -> np.ndarray:
    """A per-unit array repeated over each unit's features (a channel's positions)."""
    rep = pop.n_features // pop.size
    return values if rep == 1 else np.repeat(values, rep)


@dataclass
class Prepared:
    """Per population: float64 copies of the incoming weights and worst-case register bounds."""

    key: tuple
    weights: dict[str, np.ndarray]
    worst_input: float       # largest |per-step input| any activity in the formats can give (after a readout)
    exact: bool              # float64 matmuls of the integers over a whole window are exact


def prepare(qnet: "QuantizedNetwork", pop: Population) -> Prepared:
    """The cached `Prepared` of ``pop``, rebuilt when a weight, mismatch or bias array was replaced.

    The weights are ``effective`` as float64, times ``mismatch`` on analog synapses. On a chip with an
    analog readout every projection's contribution is saturated to the readout's range, which bounds
    the input; ``exact`` bounds the integer product sums before the readout.
    """
    net, spec = qnet.network, qnet.spec
    incoming = net.incoming(pop.name)
    lay = qnet.layers[pop.name]
    key = tuple((id(qnet.synapses[p.name].effective), id(qnet.synapses[p.name].mismatch)) for p in incoming) + (
        id(lay.bias),)
    hit = qnet.cache.get(pop.name)
    if hit is not None and hit.key == key:
        return hit
    weights, worst, products = {}, np.zeros(pop.n_features), np.zeros(pop.n_features)
    readout = 0.0 if spec.readout is None else max(spec.readout.max, -spec.readout.min) / spec.window
    for proj in incoming:
        pre, syn = net.populations[proj.pre], qnet.synapses[proj.name]
        w = syn.effective * syn.mismatch if syn.mismatch is not None else syn.effective.astype(np.float64)
        weights[proj.name] = w
        fmt = qnet.input_format if pre.role == "input" else qnet.layers[proj.pre].act_format
        per_step = np.ceil(max(fmt.max, -fmt.min) / spec.window)   # activity per step, at most
        ones = np.full((1, pre.n_features), per_step)
        bound = get_kind(proj.kind).propagate(with_weight(proj, np.abs(w)), pre, pop, ones)[0]
        products = products + bound
        if spec.readout is not None:
            worst = worst + readout
        else:   # rounding an analog sum to the nearest integer adds at most half an LSB to the window sum
            worst = worst + bound + (0.5 / spec.window if syn.mismatch is not None else 0.0)
    worst_input = float(worst.max(initial=0.0))
    prepared = Prepared(key, weights, worst_input, float(products.max(initial=0.0)) * spec.window < EXACT)
    qnet.cache[pop.name] = prepared
    return prepared


def digital(spec: "ChipSpec") -> bool:
    """Integer synapses only (no analog mismatch or readout), so the worst-case bounds hold."""
    return spec.readout is None and not spec.mismatch_sigma


def fits(fmt: IntFormat | None, bound: float) -> bool:
    """No value of magnitude at most ``bound`` can leave ``fmt`` (so its check can be skipped)."""
    return fmt is None or bound <= min(fmt.max, -fmt.min if fmt.signed else 0)

def worst_state(qnet: "QuantizedNetwork", pop: Population) -> float:
    """Largest |per-step input + bias| of ``pop`` that activity within the formats can give (digital synapses)."""
    lay = qnet.layers[pop.name]
    bias = float(np.abs(lay.bias).max(initial=0)) if lay.bias is not None else 0.0
    return prepare(qnet, pop).worst_input + bias
