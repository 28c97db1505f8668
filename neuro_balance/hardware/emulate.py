"""Map a float `Network` onto a chip the way the chip's users do: calibrate, choose scales, map each population.

`quantize` follows nengo-loihi, lava, rockpool, sinabs, QuantizeML, sPyNNaker and snntoolbox (each
profile's ``sources`` name the tool chain a default comes from):

1. **Activation scales** per population from calibration data (max or percentile of the float
   activity, snntoolbox's data-based normalisation), or from interval bounds on inputs in [0, 1].
   Activity is a graded integer of ``activation_bits`` or, on binary-spike chips, a spike count over
   a rate-code window of ``T = 2**activation_bits - 1`` steps; the calibrated maximum of a hidden
   population fires at ``max_rate`` spikes per step (the profile's tool-chain default), so one spike
   is worth ``max / (max_rate * T)``. Inputs are spike trains of up to one spike per step.
2. **Weights, biases and thresholds** per population by the vendor rules of `mapping`.

The result's `QuantizedNetwork.forward` is the static integer emulation (`integer_pass`), the
steady-state rate model of what `simulate` steps.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import ModelError, StaticEstimateWarning
from ..seeding import check_random_state
from ..model.network import Network
from . import akida
from .calibration import activation_ranges, magnitude
from .fixed_point import IntFormat
from .mapping import map_population
from .profile import Profile, load_profile
from .quantized import QuantizedNetwork
from .spec import ChipSpec
from .static_check import stepped_check

__all__ = ["quantize"]


def quantize(net: Network, profile: Profile | str, calibration: np.ndarray | dict | None = None, *, seed: int = 0,
             check: bool = True, **overrides: Any) -> QuantizedNetwork:
    """Map ``net`` onto the chip described by ``profile`` the way the chip's users do.

    Parameters
    ----------
    net : Network
        A feedforward network (recurrent ones on Xylo and Loihi, whose spikes arrive a step later).
    profile : Profile or str
        A profile or a bundled name / YAML path (see `load_profile`).
    calibration : ndarray of shape (batch, n_in) or dict, optional
        Data for the activation scales, or the result of `activation_ranges` for ``net`` (reused
        across many calls); without it, interval bounds for inputs in [0, 1].
    seed : int
        Seed of analog mismatch (fixed at mapping time) and analog noise (per `forward`).
    check : bool
        On spiking chips with calibration data, step through a sample of it and compare the static
        estimate (`QuantizedNetwork.forward`) with the stepped run (`simulate`): the result's
        ``static_check``, and a `StaticEstimateWarning` when the gap is beyond the stated bound.
    **overrides
        See `neuro_balance.hardware.spec.OVERRIDES`, e.g. ``weight_bits=4``,
        ``granularity="neuron"``, ``weight_rounding="nearest"``, ``max_rate=0.25``, ``reset="subtract"``.

    Returns
    -------
    QuantizedNetwork

    Examples
    --------
    >>> import neuro_balance as nb, numpy as np
    >>> net = nb.mlp([4, 8, 3], seed=0)
    >>> x = np.random.default_rng(0).random((16, 4))
    >>> q = nb.hardware.quantize(net, "loihi1", x, weight_bits=6)
    >>> sorted(q.integer_weights), q.forward(x).shape
    (['h1->out', 'in->h1'], (16, 3))
    """
    prof = load_profile(profile)
    spec = ChipSpec.from_profile(prof, **overrides)
    # Xylo's hidden layer is recurrent; where every spike arrives a step later (Loihi) a delay-1
    # projection is an ordinary connection.
    if net.recurrent and prof.get("neuron.variant") != "xylosim" and not spec.spike_delay:
        raise ModelError(f"quantize: network {net.name!r} has delay-1 projections; the emulator handles "
                         "feedforward networks only (recurrent ones on Xylo and Loihi)")
    qnet = QuantizedNetwork(net.copy(), prof, spec, int(seed))
    if spec.ideal:
        return qnet
    for name in net.order:
        act = net.populations[name].activation
        if spec.spiking and net.populations[name].role == "hidden" and not (
                act.kind == "bilu" and act.a == 0.0 and act.b == 1.0):
            raise ModelError(f"populations[{name!r}].activation: a spiking chip ({spec.name}) emulates ReLU units "
                             f"only (spike counts are non-negative), got {act.spec!r}")
    if isinstance(calibration, dict):
        ranges = calibration
        missing = set(net.populations) - set(ranges)
        if missing:
            raise ModelError(f"quantize: calibration ranges lack populations {sorted(missing)}")
    else:
        ranges = activation_ranges(qnet.network, calibration)
    scales, formats = _activity_scales(net, spec, ranges, "max" if calibration is None else spec.activation_method)
    qnet.input_scale = scales[net.input.name]
    qnet.input_format = formats[net.input.name]
    network_max = None
    if spec.granularity == "network":
        network_max = max(float(np.abs(p.weight).max(initial=0.0)) for p in net.projections)
    rng = check_random_state(seed)
    stats: dict[str, dict[str, Any]] = {"weights_clipped": {}, "biases_clipped": {}, "coarsened": {}}
    for name in net.order:
        pop = net.populations[name]
        if pop.role != "input":
            map_population(qnet, pop, scales, formats, network_max, rng, stats, ranges[name])
    qnet.stats = stats
    if check and calibration is not None and not isinstance(calibration, dict) and spec.spiking and not net.recurrent:
        qnet.static_check = stepped_check(qnet, np.asarray(calibration, dtype=np.float64))
        if not qnet.static_check.trusted:
            warnings.warn(qnet.static_check.message(f"quantize({net.name!r}, {spec.name!r}): "),
                          StaticEstimateWarning, stacklevel=2)
    return qnet


def _activity_scales(net: Network, spec: ChipSpec, ranges: dict[str, np.ndarray],
                     method: str) -> tuple[dict[str, float], dict[str, IntFormat]]:
    """Real value of one activity LSB and the activity format of every population."""
    scales: dict[str, float] = {}
    formats: dict[str, IntFormat] = {}
    for name in net.order:
        pop = net.populations[name]
        values = ranges[name]
        signed = bool(np.min(values) < 0) and not spec.spiking
        bits = spec.input_bits if pop.role == "input" else spec.activation_bits
        fmt = IntFormat(bits + signed if signed else bits, signed, overflow="saturate", name=f"activity {name}")
        if spec.requant is not None:   # Akida's registers: signed above 4 bits whatever the data's sign
            fmt = akida.activity_format(bits, f"activity {name}")
        top = float(fmt.max)
        if spec.spiking and pop.role != "input":
            fmt = IntFormat(62, False, lo=0, hi=spec.window, overflow="saturate", name=f"spike count {name}")
            top = spec.max_rate * spec.window
        m = magnitude(values, method, spec.activation_percentile)
        scales[name] = m / top if m > 0 else 1.0
        formats[name] = fmt
    return scales, formats
