"""The Xylo (SynSense Xylo Audio 2) network in integer arithmetic, step by step as xylosim 0.1.3 computes it.

A Xylo network has input channels, one population of hidden neurons with recurrent synapses
(several feedforward layers live in it as blocks of the recurrent matrix) and readout neurons.
xylosim 0.1.3 (``src/v2/cpp/XyloLayer.cpp``, ``XyloIAFNeuron.cpp``) runs one step as:

1. **Deliver** input spikes (at most 15 per channel per step), then the hidden spikes of the
   *previous* step (at most 31 per neuron) to the hidden neurons through ``w_rec``, then the same
   previous hidden spikes to the readout neurons through ``w_out``. Every single spike adds the
   int8 weight shifted left by its layer's shift (``w << shift``, 0..7) to ``isyn`` with a
   saturating int16 addition, one spike after the other, pre-synaptic neurons in index order.
2. **Neuron update**, hidden then readout, each neuron::

       isyn -= dec(isyn, dash_syn)
       dv    = sat16(int16(-dec(v, dash_mem)) + isyn)
       dv    = sat16(dv + bias)
       v     = sat16(v + dv)
       while v >= threshold and n < cap: v -= threshold; n += 1      # cap 31 hidden, 1 readout

   with ``dec(x, d) = x >> d`` (a floor shift), or ``sign(x)`` where that is 0: every state
   leaks at least one LSB per step. ``int16(-dec(v, 0))`` wraps for ``v = -32768`` (a membrane at
   -32768 with ``dash_mem = 0`` stays there). There is no refractory period.
3. **Record** ``isyn`` (after its decay), ``v`` (after the spikes) and the spike counts.

`run` implements this for a batch of inputs at once; `XyloParams` holds the integers in the
layout of xylosim's constructor (``[pre, post]`` weights). The saturating additions of step 1 are
summed in one product where no partial sum can leave int16, else spike source by spike source.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

__all__ = ["XyloParams", "XyloTrace", "XyloTotals", "run", "run_totals", "decay", "INPUT_CAP", "HIDDEN_CAP",
           "READOUT_CAP", "STATE_MIN", "STATE_MAX", "WEIGHT_SHIFT_MAX", "DASH_MAX", "SPIKE_DELAY"]

INPUT_CAP = 15        # MAX_NUM_INP_SPIKES (XyloIAFNeuron.h)
HIDDEN_CAP = 31       # MAX_NUM_SPIKES
READOUT_CAP = 1       # MAX_NUM_OUT_SPIKES
STATE_MIN, STATE_MAX = -(1 << 15), (1 << 15) - 1     # BITS_STATE 16
WEIGHT_SHIFT_MAX = 7  # 3-bit weight shifts
DASH_MAX = 15         # 4-bit dashes
SPIKE_DELAY = 1       # steps from a hidden spike to its arrival at recurrent and readout synapses
_SATURATION_KEYS = ("isyn", "v", "isyn_out", "v_out")


def decay(x: np.ndarray, dash: np.ndarray) -> np.ndarray:
    """xylosim's ``decay``: ``x >> dash``, or ``sign(x)`` where the shift gives 0.

    Examples
    --------
    >>> decay(np.array([100, 1, -1, -100, 0]), np.array(4))
    array([ 6,  1, -1, -7,  0])
    """
    d = x >> dash
    return np.where(d == 0, np.sign(x), d)


def _wrap16(x: np.ndarray) -> np.ndarray:
    """Two's complement int16 wrap (a C++ assignment to ``int16_t``)."""
    return ((x - STATE_MIN) & 0xFFFF) + STATE_MIN


def _sat(x: np.ndarray) -> np.ndarray:
    return np.clip(x, STATE_MIN, STATE_MAX)


@dataclass
class XyloParams:
    """The integers of one Xylo network, as xylosim's ``XyloLayer`` takes them.

    Attributes
    ----------
    w_in : ndarray (n_in, n_hidden)
    w_rec : ndarray (n_hidden, n_hidden)
    w_out : ndarray (n_hidden, n_out)
        int8 weights, ``[pre, post]``.
    threshold, bias, dash_mem, dash_syn : ndarray (n_hidden,)
    threshold_out, bias_out, dash_mem_out, dash_syn_out : ndarray (n_out,)
        int16 thresholds (>= 1 here) and biases, 4-bit dashes (``dash_syn >= 1``: 0 discards the input).
    shift_in, shift_rec, shift_out : int
        Weight shifts 0..7.
    """

    w_in: np.ndarray
    w_rec: np.ndarray
    w_out: np.ndarray
    threshold: np.ndarray
    threshold_out: np.ndarray
    bias: np.ndarray
    bias_out: np.ndarray
    dash_mem: np.ndarray
    dash_mem_out: np.ndarray
    dash_syn: np.ndarray
    dash_syn_out: np.ndarray
    shift_in: int = 0
    shift_rec: int = 0
    shift_out: int = 0

    def __post_init__(self) -> None:
        for name in ("w_in", "w_rec", "w_out", "threshold", "threshold_out", "bias", "bias_out", "dash_mem",
                     "dash_mem_out", "dash_syn", "dash_syn_out"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        n_in, n_hid = self.w_in.shape
        n_out = self.w_out.shape[1]
        checks = [("w_in", self.w_in, -128, 127, (n_in, n_hid)), ("w_rec", self.w_rec, -128, 127, (n_hid, n_hid)),
                  ("w_out", self.w_out, -128, 127, (n_hid, n_out)),
                  ("threshold", self.threshold, 1, STATE_MAX, (n_hid,)),
                  ("threshold_out", self.threshold_out, 1, STATE_MAX, (n_out,)),
                  ("bias", self.bias, STATE_MIN, STATE_MAX, (n_hid,)),
                  ("bias_out", self.bias_out, STATE_MIN, STATE_MAX, (n_out,)),
                  ("dash_mem", self.dash_mem, 0, DASH_MAX, (n_hid,)),
                  ("dash_mem_out", self.dash_mem_out, 0, DASH_MAX, (n_out,)),
                  ("dash_syn", self.dash_syn, 1, DASH_MAX, (n_hid,)),
                  ("dash_syn_out", self.dash_syn_out, 1, DASH_MAX, (n_out,)),
                  ("shift_in", np.asarray(self.shift_in), 0, WEIGHT_SHIFT_MAX, ()),
                  ("shift_rec", np.asarray(self.shift_rec), 0, WEIGHT_SHIFT_MAX, ()),
                  ("shift_out", np.asarray(self.shift_out), 0, WEIGHT_SHIFT_MAX, ())]
        for name, arr, lo, hi, shape in checks:
            if arr.shape != shape:
                raise ValueError(f"XyloParams.{name}: expected shape {shape}, got {arr.shape}")
            if arr.size and (arr.min() < lo or arr.max() > hi):
                raise ValueError(f"XyloParams.{name}: values must be in {lo}..{hi}, got {arr.min()}..{arr.max()}")
        self.shift_in, self.shift_rec, self.shift_out = int(self.shift_in), int(self.shift_rec), int(self.shift_out)

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(n_in, n_hidden, n_out)``."""
        return self.w_in.shape[0], self.w_in.shape[1], self.w_out.shape[1]


@dataclass
class XyloTrace:
    """Per-step records of `run`, each ``(steps, batch, n)``: what xylosim records after every step; and how
    many additions saturated in all (``isyn``, ``v``, ``isyn_out``, ``v_out``)."""

    spikes: np.ndarray
    v: np.ndarray
    isyn: np.ndarray
    out_spikes: np.ndarray
    v_out: np.ndarray
    isyn_out: np.ndarray
    saturated: dict[str, int]


def _deliver(isyn: np.ndarray, counts: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, int]:
    """Add ``counts[:, j]`` spikes of weight ``weights[j]`` per source ``j``, each addition saturating.

    One source's spikes all have the sign of its weight, so their saturating sum is one clipped
    addition; sources are added in index order. Every partial sum lies between ``isyn`` plus the
    negative and plus the positive contributions: where both bounds fit int16 nothing can saturate
    and the sum is one product (float64, exact: every value stays far below 2**53); only the other
    currents are added source by source. Returns the currents and how many additions saturated.
    """
    active = np.flatnonzero(counts.any(axis=0))       # sources that spike in this step
    if not active.size:
        return isyn, 0
    c, w = counts[:, active].astype(np.float64), weights[active]
    pos = c @ np.maximum(w, 0)
    neg = c @ np.minimum(w, 0)
    total = isyn + (pos + neg).astype(np.int64)
    risky = (isyn + pos > STATE_MAX) | (isyn + neg < STATE_MIN)
    if not risky.any():
        return total, 0
    rows, cols = np.nonzero(risky)
    acc = isyn[rows, cols]
    saturated = 0
    for j in active[counts[np.ix_(np.unique(rows), active)].any(axis=0)]:
        raw = acc + (counts[rows, j] * weights[j, cols]).astype(np.int64)
        acc = _sat(raw)
        saturated += int(np.count_nonzero(raw != acc))
    total[rows, cols] = acc
    return total, saturated


def _synapse(isyn: np.ndarray, counts: np.ndarray, weights: np.ndarray, dash_syn: np.ndarray) -> tuple[np.ndarray,
                                                                                                           int]:
    """A step of the synaptic current: the step's spikes arrive (`_deliver`), then the current decays."""
    isyn, saturated = _deliver(isyn, counts, weights)
    return isyn - decay(isyn, dash_syn), saturated


def _membrane(v: np.ndarray, isyn: np.ndarray, dash_mem: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, int]:
    """``dv = sat(int16(-dec(v)) + isyn)``, ``dv = sat(dv + bias)``, ``v = sat(v + dv)``; returns ``v`` and how
    many of the three additions saturated."""
    saturated = 0
    dv = _wrap16(-decay(v, dash_mem))
    for term in (isyn, bias):
        dv = dv + term
        saturated += int(np.count_nonzero((dv < STATE_MIN) | (dv > STATE_MAX)))
        dv = _sat(dv)
    v = v + dv
    saturated += int(np.count_nonzero((v < STATE_MIN) | (v > STATE_MAX)))
    return _sat(v), saturated


def _fire(v: np.ndarray, threshold: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """``while v >= threshold and n < cap: v -= threshold`` (threshold >= 1: ``v`` stays >= 0, no wrap)."""
    n = np.where(v >= threshold, np.minimum((v - threshold) // threshold + 1, cap), 0)
    return v - n * threshold, n


def _steps(params: XyloParams, inputs: Iterable[np.ndarray], batch: int) -> Iterator[tuple[np.ndarray, ...]]:
    """Step the network from rest; yields per step ``spikes, v, isyn, out_spikes, v_out, isyn_out`` and the
    saturation counts ``(isyn, v, isyn_out, v_out)`` of that step."""
    n_in, n_hid, n_out = params.sizes
    # int8 << shift as float64 (exact) for the products of `_deliver`
    w_hid = np.concatenate([params.w_in << params.shift_in, params.w_rec << params.shift_rec]).astype(np.float64)
    w_out = (params.w_out << params.shift_out).astype(np.float64)
    isyn = np.zeros((batch, n_hid), dtype=np.int64)
    v = np.zeros_like(isyn)
    isyn_o = np.zeros((batch, n_out), dtype=np.int64)
    v_o = np.zeros_like(isyn_o)
    pending = deque(np.zeros_like(isyn) for _ in range(SPIKE_DELAY))
    for raster in inputs:
        raster = np.asarray(raster)
        if raster.shape != (batch, n_in):
            raise ValueError(f"xylo.run: expected {batch} x {n_in} input spike counts per step, got {raster.shape}")
        if raster.size and (raster.min() < 0 or raster.max() > 255):
            raise ValueError(f"xylo.run: input spike counts must be in 0..255 (uint8), got "
                             f"{raster.min()}..{raster.max()}")
        arriving = np.minimum(pending.popleft(), HIDDEN_CAP)
        inp = np.minimum(raster.astype(np.int64), INPUT_CAP)
        isyn, s1 = _synapse(isyn, np.concatenate([inp, arriving], axis=1), w_hid, params.dash_syn)
        isyn_o, s2 = _synapse(isyn_o, arriving, w_out, params.dash_syn_out)
        v, s3 = _membrane(v, isyn, params.dash_mem, params.bias)
        v, spikes = _fire(v, params.threshold, HIDDEN_CAP)
        v_o, s4 = _membrane(v_o, isyn_o, params.dash_mem_out, params.bias_out)
        v_o, out = _fire(v_o, params.threshold_out, READOUT_CAP)
        pending.append(spikes)
        yield spikes, v, isyn, out, v_o, isyn_o, (s1, s3, s2, s4)


def run(params: XyloParams, raster: np.ndarray) -> XyloTrace:
    """Run a Xylo network from rest on input spike counts (module docstring).

    Parameters
    ----------
    params : XyloParams
    raster : ndarray of int, shape (steps, n_in) or (steps, batch, n_in)
        Input spikes per step and channel (0..255, as xylosim's uint8 input; more than 15 count as 15).

    Returns
    -------
    XyloTrace
        Records of shape ``(steps, batch, n)`` (``(steps, n)`` for a 2-D raster).
    """
    raster = np.asarray(raster)
    single = raster.ndim == 2
    if single:
        raster = raster[:, None, :]
    if raster.ndim != 3:
        raise ValueError(f"xylo.run: expected a raster of shape (steps, [batch,] n_in), got {np.shape(raster)}")
    steps = list(_steps(params, raster, raster.shape[1]))
    if not steps:
        raise ValueError("xylo.run: the raster has no steps")
    records = [np.stack(r) for r in zip(*(step[:6] for step in steps))]
    if single:
        records = [r[:, 0] for r in records]
    saturated = np.sum([step[6] for step in steps], axis=0)
    return XyloTrace(*records, dict(zip(_SATURATION_KEYS, map(int, saturated))))


@dataclass
class XyloTotals:
    """What `run_totals` returns, each ``(batch, n)``: spike counts and summed currents over all steps,
    final membranes, and how many additions saturated (``isyn``, ``v``, ``isyn_out``, ``v_out``)."""

    spikes: np.ndarray
    out_spikes: np.ndarray
    isyn_out: np.ndarray
    v: np.ndarray
    v_out: np.ndarray
    saturated: dict[str, int]


def run_totals(params: XyloParams, inputs: Iterable[np.ndarray], batch: int) -> XyloTotals:
    """`run` without per-step records, for long runs of large batches.

    Parameters
    ----------
    params : XyloParams
    inputs : iterable of ndarray (batch, n_in)
        Input spike counts of each step.
    batch : int

    Returns
    -------
    XyloTotals
    """
    n_in, n_hid, n_out = params.sizes
    spikes = np.zeros((batch, n_hid), dtype=np.int64)
    out = np.zeros((batch, n_out), dtype=np.int64)
    isyn_out = np.zeros((batch, n_out), dtype=np.int64)
    v, v_out = spikes.copy(), out.copy()
    sat = np.zeros(4, dtype=np.int64)
    for s, v, _, o, v_out, i_o, counts in _steps(params, inputs, batch):
        spikes += s
        out += o
        isyn_out += i_o
        sat += counts
    return XyloTotals(spikes, out, isyn_out, v, v_out, dict(zip(_SATURATION_KEYS, map(int, sat))))
