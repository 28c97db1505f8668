"""The quantised data model: a network's integer weights, biases, thresholds and scales on one chip."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import NumericalError
from ..model.kinds import get_kind
from ..model.network import Network
from .fixed_point import IntFormat
from .profile import Profile
from .spec import ChipSpec

if TYPE_CHECKING:  # pragma: no cover
    from .akida import AkidaParams
    from .integer_pass import IntegerRun

__all__ = ["QuantizedNetwork", "LayerParams", "SynapseParams"]


@dataclass
class LayerParams:
    """Integer parameters of one non-input population."""

    name: str
    s_acc: np.ndarray                  # (size,) real value of one accumulator LSB per unit
    bias: np.ndarray | None            # (size,) per-step integer bias
    theta: np.ndarray | None = None    # (size,) spiking thresholds in accumulator LSBs
    multiplier: np.ndarray | None = None  # (size,) graded requantisation multipliers ...
    shift: np.ndarray | None = None       # ... and right shifts: activity = acc * multiplier >> shift
    act_format: IntFormat | None = None
    s_act: float = 1.0
    coarsened: float = 1.0
    gain: float = 1.0                  # analog gain x repeats (BrainScaleS-2 num_sends)
    akida: "AkidaParams | None" = None  # the Akida layer's stored integers (profiles with activations.requant)


@dataclass
class SynapseParams:
    """Integer weights of one projection."""

    name: str
    mantissa: np.ndarray               # integer weights as stored
    exponent: np.ndarray               # (post size,) shift relative to the population's base scale
    effective: np.ndarray              # mantissa << (offset + exponent), what enters the accumulator
    scale: np.ndarray                  # (post size,) real value of one mantissa LSB per post unit
    mismatch: np.ndarray | None = None  # analog per-synapse gain factors


@dataclass
class QuantizedNetwork:
    """A network mapped onto a chip. Build it with `quantize`.

    Attributes
    ----------
    network : Network
        The float network it was made from.
    profile : Profile
    spec : ChipSpec
        The normalised chip settings (after overrides).
    integer_weights : dict of ndarray
        Stored integer weight (mantissa) of every projection, by projection name.
    integer_biases : dict of ndarray
        Per-step integer bias of every population with a bias, in accumulator LSBs.
    thresholds : dict of ndarray
        Integer thresholds of spiking populations.
    activation_scales : dict of float
        Real value of one activity LSB (one spike count on spiking chips) per population.
    stats : dict
        What the mapping clipped: ``weights_clipped``, ``biases_clipped`` and ``coarsened`` per
        projection or population. Saturation during a pass is in `run`'s result.
    static_check : StaticCheck or None
        On spiking chips quantised with calibration data: how far `forward` is from `simulate` on a
        sample of it (`neuro_balance.hardware.static_check`); None when not checked.
    cache : dict
        What the integer pass derives from the parameters (float copies of the weights, worst-case
        register bounds), keyed by population and rebuilt when a parameter array is replaced.
    """

    network: Network
    profile: Profile
    spec: ChipSpec
    seed: int
    input_scale: float = 1.0
    input_format: IntFormat | None = None
    layers: dict[str, LayerParams] = field(default_factory=dict)
    synapses: dict[str, SynapseParams] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    static_check: Any = None
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def integer_weights(self) -> dict[str, np.ndarray]:
        """Stored integer weights per projection name."""
        return {name: s.mantissa for name, s in self.synapses.items()}

    @property
    def integer_biases(self) -> dict[str, np.ndarray]:
        """Per-step integer biases per population."""
        return {name: lay.bias for name, lay in self.layers.items() if lay.bias is not None}

    @property
    def thresholds(self) -> dict[str, np.ndarray]:
        """Integer thresholds per spiking population."""
        return {name: lay.theta for name, lay in self.layers.items() if lay.theta is not None}

    @property
    def activation_scales(self) -> dict[str, float]:
        """Real value of one activity LSB per population."""
        out = {self.network.input.name: self.input_scale}
        out.update({name: lay.s_act for name, lay in self.layers.items()})
        return out

    def __repr__(self) -> str:
        s = self.spec
        if s.ideal:
            return f"QuantizedNetwork({self.network.name!r} on {s.name}: float64)"
        code = (f"spike counts over {s.window} steps, max rate {s.max_rate:g}/step, reset {s.reset}" if s.spiking
                else f"{s.activation_bits}-bit activity")
        return (f"QuantizedNetwork({self.network.name!r} on {s.name}: {s.weight_bits}-bit weights "
                f"[{s.weight_qmin}, {s.weight_qmax}] per {s.granularity}, {code})")

    def dequantized(self) -> Network:
        """The float network whose parameters are the quantised ones (mantissa x scale).

        Its `Network.forward` is what the chip would compute with exact arithmetic: no register
        overflow, no rate-code or requantisation rounding.
        """
        out = self.network.copy()
        if self.spec.ideal:
            return out
        for proj in out.projections:
            syn = self.synapses[proj.name]
            post_idx, _ = get_kind(proj.kind).groups(proj, out.populations[proj.pre], out.populations[proj.post])
            w = syn.mantissa * syn.scale[post_idx]
            if syn.mismatch is not None:
                w = w * syn.mismatch
            proj.weight = np.asarray(w, dtype=np.float64)
        for name, lay in self.layers.items():
            pop = out.populations[name]
            if pop.bias is not None:
                pop.bias = lay.bias * self.spec.window * lay.s_acc
        return out

    def run(self, x: np.ndarray, seed: int | None = None) -> "IntegerRun":
        """The static integer emulation with its saturation counters (see `integer_pass.run_integer`).

        Raises
        ------
        NumericalError
            For an input that is NaN or infinite (a chip's inputs are integers: it would be cast to
            garbage), or an output that is not finite.
        """
        from .integer_pass import run_integer

        x = np.asarray(x, dtype=np.float64)
        bad = ~np.isfinite(x)
        if bad.any():
            first = np.argwhere(bad)[0].tolist()
            raise NumericalError(f"NaN: {int(bad.sum())} input value(s) are NaN or infinite (the first at index "
                                 f"{first}); {self.spec.name}'s inputs are integers and have no such value")
        run = run_integer(self, x, seed)
        if not np.isfinite(run.output).all():
            raise NumericalError(f"NaN: the emulation on {self.spec.name} gives {int((~np.isfinite(run.output)).sum())} "
                                 f"non-finite output value(s) from finite inputs: the profile's arithmetic is degenerate "
                                 "for this network")
        return run

    def forward(self, x: np.ndarray, seed: int | None = None) -> np.ndarray:
        """The steady-state rate model of what `simulate` runs; returns the output activity as float.

        No side effects: the saturation counters of the same pass come from `run`.

        Parameters
        ----------
        x : ndarray of shape (batch, n_in)
        seed : int, optional
            Seed of the analog noise (default: the seed given to `quantize`).

        Returns
        -------
        ndarray of shape (batch, n_out)
        """
        return self.run(x, seed).output
