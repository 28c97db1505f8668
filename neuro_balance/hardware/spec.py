"""`ChipSpec`: the numbers the emulator needs, read from a `Profile` plus user overrides.

A profile documents a chip in its own vocabulary (mantissa + exponent, axon types, base currents,
ring buffers); the emulator needs one normalised answer per question: how many integer levels a
weight has and which weights share a scale, how wide the accumulator and states are and what
happens on overflow, how a threshold and a bias are stored, whether activity is a binary spike
count or a graded value. `ChipSpec.from_profile` answers them and documents each mapping rule.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import ProfileError
from .fixed_point import OVERFLOW_MODES, ROUNDING_MODES, IntFormat
from .profile import Profile, load_profile

__all__ = ["ChipSpec", "OVERRIDES", "GRANULARITIES", "METHODS", "RESETS"]

GRANULARITIES = ("network", "layer", "channel", "neuron")
METHODS = ("max", "percentile", "input")
RESETS = ("zero", "subtract")

_SHARED_TO_GRANULARITY = {
    "synapse_config": "layer", "connection": "layer", "layer": "layer", "core": "layer", "synapse_type": "layer",
    "synapse_type_per_core": "layer", "per_tensor": "layer", "network": "network", "channel": "channel",
    "per_axis": "neuron", "neuron": "neuron",
}

#: Keyword overrides accepted by `quantize` (and the CLI), with what they change.
OVERRIDES = {
    "weight_bits": "integer weight width (incl. sign; magnitude bits when the sign comes from the synapse type)",
    "activation_bits": "graded activation width, or the rate-code window 2**bits - 1 steps for binary spikes",
    "input_bits": "input width",
    "granularity": "which weights share one scale: network | layer | channel | neuron",
    "method": "weight scale from the group's max | percentile | worst-case input (sPyNNaker)",
    "percentile": "percentile of |w| for method=percentile",
    "activation_method": "activation scale from calibration max | percentile",
    "activation_percentile": "percentile for activation_method=percentile",
    "weight_rounding": "rounding of weights and biases: " + " | ".join(ROUNDING_MODES),
    "accumulator_bits": "accumulator width (None: unbounded)",
    "accumulator_overflow": " | ".join(OVERFLOW_MODES),
    "state_overflow": "overflow policy of every neuron state: " + " | ".join(OVERFLOW_MODES),
    "analog_noise": "False disables analog gain noise and mismatch (an ideal analog chip)",
    "max_rate": "spikes per step at the calibrated maximum activity (0 < max_rate <= 1); threshold = I_max / max_rate",
    "reset": "spiking reset: " + " | ".join(RESETS),
    "v_floor": "lowest membrane value of a spiking unit (None: the register's minimum)",
    "synapse_shift": "current synapse of 2**synapse_shift steps in the stepped simulation (0: none)",
}


@dataclass(frozen=True)
class ChipSpec:
    """Normalised emulation settings of one chip (see `from_profile` for the rules).

    Attributes
    ----------
    name, kind : str
    ideal : bool
        Float arithmetic everywhere (the ``float64`` profile): quantisation is the identity.
    weight_bits : int
    weight_qmin, weight_qmax : int
        Integer weight range.
    weight_form : {"float", "pow2"}
        ``pow2``: groups feeding one population differ by powers of two (a shared exponent per
        connection, Loihi; a shift per synapse type, SpiNNaker); ``float``: any scale per group.
    exp_min, exp_max : int or None
        Exponent range of ``pow2`` groups relative to the largest group of a population.
    exp_offset : int
        Left shift of every weight when it enters the accumulator (Loihi ``act_shift = 6``).
    granularity : str
    method, percentile
    weight_rounding : str
    weight_clip : {"saturate", "error"}
    split_sign : bool
        Excitatory and inhibitory input accumulate in separate unsigned buffers (SpiNNaker).
    spiking : bool
        Activity is a binary spike count over ``window`` steps (rate code); else graded values.
    window : int
        Steps of the rate code (``2**activation_bits - 1``), 1 for graded chips.
    activation_bits, input_bits : int
    activation_method, activation_percentile
    activation_rounding : str
        Rounding of the requantisation multiply on graded chips.
    max_rate : float
        Spikes per step of a hidden unit at the calibrated maximum activity; the threshold is
        ``I_max / max_rate`` (``conversion_defaults.max_rate``).
    reset : {"subtract", "zero"}
        Spike rate of a spiking unit with constant input: ``floor(I T / theta)`` (subtract) or
        ``floor(T / k)`` with ``k`` steps to cross the threshold (zero).
    v_floor : int or None
        The membrane of a spiking unit is clipped from below here (nengo-loihi's converted neurons:
        ``vmin = 0``); None: the register's minimum.
    synapse_shift : int
        Spiking chips: the stepped simulation filters spikes with an exponential current synapse of
        ``2**synapse_shift`` steps (Loihi's ``u`` with ``du = (4096 >> synapse_shift) - 1``); its DC
        gain ``2**synapse_shift`` is an exact left shift of the threshold and the bias.
    compare : {"gt", "ge"}
    max_spikes_per_step : int or None
        Spikes a unit emits in one step of the stepped simulation (``neuron.max_spikes_per_step``,
        default 1); None (``unbounded``): ``floor(v / theta)``, as sinabs's ``MultiSpike``.
    spike_delay : {0, 1}
        Steps a spike takes to reach the next population in the stepped simulation
        (``delays.connection_steps``, default 0: the same step).
    exponent_applies_to : {"weight", "sum"}
        How a connection's exponent ``e`` and the offset reach the accumulator
        (``weights.exponent.applies_to``): ``weight`` shifts each weight by ``offset + e`` (rounding
        down below zero); ``sum`` shifts the connection's summed mantissas by ``e`` (rounding down,
        lava's ``Dense``), then by the offset.
    accumulator : IntFormat or None
    current : IntFormat or None
        State the per-step input plus bias must fit (Loihi ``u``, else the membrane).
    membrane : IntFormat or None
        Integrating state; bounds the threshold.
    threshold_bits, threshold_shift : int or None
        Threshold stored as a ``threshold_bits`` mantissa shifted left by ``threshold_shift``.
    threshold_signed : bool
        The threshold register is signed (one bit fewer for the magnitude).
    bias_bits : int or None
        Signed bias mantissa width; ``bias_exp_range`` adds a per-unit exponent (Loihi).
    bias_exp_range : tuple of int or None
    analog_gain, analog_noise_std, mismatch_sigma : float
    chunk_rows : int or None
    readout : IntFormat or None
        Analog readout (BrainScaleS-2 CADC) before the digital sum.
    readout_rounding : str
    requant_frac_bits : int
        Significant bits of the requantisation multiplier on graded chips (``M * 2**-shift``).
    requant : {"akida1", "akida2"} or None
        The graded layers follow `hardware.akida`'s arithmetic (``activations.requant``) instead of
        the generic multiply and shift.
    """

    name: str
    kind: str
    ideal: bool = False
    weight_bits: int = 8
    weight_qmin: int = -128
    weight_qmax: int = 127
    weight_form: str = "float"
    exp_min: int | None = None
    exp_max: int | None = None
    exp_offset: int = 0
    granularity: str = "layer"
    method: str = "max"
    percentile: float = 99.9
    weight_rounding: str = "nearest"
    weight_clip: str = "saturate"
    split_sign: bool = False
    spiking: bool = False
    window: int = 1
    activation_bits: int = 8
    input_bits: int = 8
    activation_method: str = "max"
    activation_percentile: float = 99.9
    activation_rounding: str = "nearest"
    max_rate: float = 1.0
    reset: str = "subtract"
    v_floor: int | None = None
    synapse_shift: int = 0
    compare: str = "ge"
    max_spikes_per_step: int | None = 1
    spike_delay: int = 0
    exponent_applies_to: str = "weight"
    accumulator: IntFormat | None = None
    current: IntFormat | None = None
    membrane: IntFormat | None = None
    threshold_bits: int | None = None
    threshold_shift: int = 0
    threshold_signed: bool = False
    bias_bits: int | None = None
    bias_exp_range: tuple[int, int] | None = None
    analog_gain: float = 1.0
    analog_noise_std: float = 0.0
    mismatch_sigma: float = 0.0
    chunk_rows: int | None = None
    readout: IntFormat | None = None
    readout_rounding: str = "floor"
    requant_frac_bits: int = 16
    requant: str | None = None

    @property
    def weight_levels(self) -> int:
        """Number of integer weight values."""
        return self.weight_qmax - self.weight_qmin + 1

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_profile(cls, profile: Profile | str, **overrides: Any) -> "ChipSpec":
        """Normalise a profile; ``overrides`` are the keys of `OVERRIDES`.

        Rules (each mirrors how the chip's users map a network):

        * weight bits: ``conversion_defaults.weight_bits``, else ``weights.bits``, else the largest
          of ``weights.bits_allowed``; an override must be in ``bits_allowed`` when that exists.
        * weight range: ``sign_by`` (sign from the synapse type or a paired row) gives
          ``[-(2**b - 1), 2**b - 1]``; a width in ``unsigned_bits`` gives ``[0, 2**b - 1]`` (Akida 1's 1-bit
          weights); ``symmetric`` gives ``[-(2**(b-1) - 1), 2**(b-1) - 1]``;
          otherwise two's complement ``[-2**(b-1), 2**(b-1) - 1]`` (Loihi's mixed-sign mantissa,
          lava ``clip_weights``).
        * ``pow2`` scales for ``mantissa_exponent`` weights and power-of-two weight scales
          (sPyNNaker ``2**(16-(shift+1))``); exponent range and offset from ``weights.exponent``.
        * granularity: ``conversion_defaults.scale_granularity``, else the exponent's or scale's
          ``shared_per`` (connection / synapse config / per tensor -> layer; per axis -> neuron).
        * binary spikes (a neuron model and no graded ``activations`` section) make activity a
          spike count over ``2**activation_bits - 1`` steps; the calibrated maximum fires at
          ``conversion_defaults.max_rate`` spikes per step (default 1).
        * reset: ``conversion_defaults.reset``, else ``neuron.reset`` (``value`` resets count as
          ``zero``), unless overridden; the
          membrane floor: ``conversion_defaults.v_floor``, else the membrane register's minimum.
        """
        prof = load_profile(profile, warn=False) if not isinstance(profile, Profile) else profile
        unknown = set(overrides) - set(OVERRIDES)
        if unknown:
            raise ValueError(f"unknown override(s) {sorted(unknown)}; known: {', '.join(OVERRIDES)}")
        where = str(prof.path) if prof.path else prof.name
        g = prof.get
        if g("weights.format") == "float" or prof.kind == "ideal":
            return cls(name=prof.name, kind=prof.kind, ideal=True)

        # ---- weights
        allowed = g("weights.bits_allowed")
        bits = g("conversion_defaults.weight_bits") or g("weights.bits") or (max(allowed) if allowed else None)
        if overrides.get("weight_bits") is not None:
            bits = int(overrides["weight_bits"])
            if allowed and bits not in allowed:
                raise ProfileError(f"{where}: field 'weights.bits_allowed': weight_bits={bits} is not allowed "
                                   f"on this chip (allowed {allowed}), got {bits!r}")
            types = g("weights.axon_types")
            if g("weights.format") == "axon_type_lookup" and types is not None and bits > types:
                # One binary-weighted axon type per bit (s, 2s, 4s, -8s): as many bits as types.
                raise ProfileError(f"{where}: field 'weights.axon_types': {types} axon types encode at most "
                                   f"{types}-bit weights, got weight_bits={bits!r}")
        if not isinstance(bits, int) or bits < 1:
            raise ProfileError(f"{where}: field 'weights.bits': must be a positive integer, got {bits!r}")
        sign_by = g("weights.sign_by") or (g("weights.format") == "base_weight_select")
        if sign_by:
            qmin, qmax = -((1 << bits) - 1), (1 << bits) - 1
        elif bits in (g("weights.unsigned_bits") or ()):
            qmin, qmax = 0, (1 << bits) - 1
        elif bits == 1:
            raise ProfileError(f"{where}: field 'weights.bits': 1-bit integers are unsigned; signed weights need "
                               f">= 2 bits, got {bits!r}")
        elif g("weights.symmetric"):
            qmin, qmax = -((1 << (bits - 1)) - 1), (1 << (bits - 1)) - 1
        else:
            qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        form = "pow2" if (g("weights.format") == "mantissa_exponent" or "2**" in str(g("weights.scale.form", ""))) \
            else "float"
        shared = g("weights.exponent.shared_per") or g("weights.scale.shared_per")
        granularity = overrides.get("granularity") or g("conversion_defaults.scale_granularity") or \
            _SHARED_TO_GRANULARITY.get(shared, "layer")
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
        method = overrides.get("method") or g("conversion_defaults.method", "max")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        rounding = overrides.get("weight_rounding") or g("weights.rounding", "nearest")
        if rounding not in ROUNDING_MODES:
            raise ValueError(f"weight_rounding must be one of {ROUNDING_MODES}, got {rounding!r}")

        # ---- activity
        # Chips with an ``activations`` section or an analog readout pass graded values; the others
        # send binary spikes, so activity is a spike count over a rate-code window.
        spiking = g("activations") is None and g("analog.readout") is None
        act_bits = overrides.get("activation_bits") or g("conversion_defaults.activation_bits") or \
            g("activations.bits") or max(g("activations.bits_allowed", [8]))
        input_bits = overrides.get("input_bits") or g("inputs.bits") or act_bits
        act_method = overrides.get("activation_method") or g("conversion_defaults.activation_method", "max")
        act_pct = overrides.get("activation_percentile") or g("conversion_defaults.activation_percentile", 99.9)

        # ---- integer registers
        acc = None
        acc_bits = overrides.get("accumulator_bits", g("accumulator.bits"))
        if acc_bits is not None:
            acc = IntFormat(int(acc_bits), bool(g("accumulator.signed", True)), 0,
                            overrides.get("accumulator_overflow") or g("accumulator.overflow", "saturate"),
                            name="accumulator")
        states = g("state", {}) or {}
        order = [s for s in (g("neuron.states") or list(states)) if s in states]
        state_overflow = overrides.get("state_overflow")

        def state_format(name: str) -> IntFormat | None:
            st = states[name]
            if st.get("bits") is None:
                return None
            rng = st.get("range")
            lo = rng[0] if rng else st.get("min")
            hi = rng[1] if rng else None
            return IntFormat(int(st["bits"]), bool(st.get("signed", True)), 0,
                             state_overflow or st.get("overflow", "saturate"), lo, hi, name=f"state {name}")

        current = state_format(order[0]) if order else None
        membrane = state_format(order[-1]) if order else None
        bias_exp = g("bias.exponent_range")
        readout = None
        if g("analog.readout.bits") is not None:
            readout = IntFormat(int(g("analog.readout.bits")), bool(g("analog.readout.signed", True)), 0,
                                g("analog.readout.overflow", "saturate"), name="analog readout")
        noise = overrides.get("analog_noise", True)
        max_rate = overrides.get("max_rate") or g("conversion_defaults.max_rate", 1.0)
        if not (isinstance(max_rate, (int, float)) and 0 < max_rate <= 1):
            raise ProfileError(f"{where}: field 'conversion_defaults.max_rate': must be in (0, 1] spikes per step, "
                               f"got {max_rate!r}")
        # Reset to a value (sPyNNaker's v_reset, assumed 0 for converted networks) loses the overshoot
        # like reset to zero; subtractive and multi-mode resets (TrueNorth) keep it.
        reset = overrides.get("reset") or g("conversion_defaults.reset") or \
            ("zero" if g("neuron.reset") in ("zero", "value") else "subtract")
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
        v_floor = overrides.get("v_floor", g("conversion_defaults.v_floor"))
        synapse_shift = overrides.get("synapse_shift", g("conversion_defaults.synapse_shift", 0))
        if not (isinstance(synapse_shift, int) and 0 <= synapse_shift <= 12):
            raise ProfileError(f"{where}: field 'conversion_defaults.synapse_shift': must be an integer in 0..12, "
                               f"got {synapse_shift!r}")
        return cls(
            name=prof.name, kind=prof.kind, weight_bits=bits, weight_qmin=qmin, weight_qmax=qmax, weight_form=form,
            exp_min=g("weights.exponent.min") if form == "pow2" else None,
            exp_max=g("weights.exponent.max") if form == "pow2" else None,
            exp_offset=int(g("weights.exponent.offset", 0)), granularity=granularity, method=method,
            percentile=float(overrides.get("percentile") or g("conversion_defaults.percentile", 99.9)),
            weight_rounding=rounding, weight_clip=g("weights.clip", "saturate"),
            split_sign=bool(sign_by) and acc is not None and not acc.signed,
            spiking=spiking, window=(1 << int(act_bits)) - 1 if spiking else 1,
            activation_bits=int(act_bits), input_bits=int(input_bits), activation_method=act_method,
            activation_percentile=float(act_pct),
            activation_rounding=g("activations.rounding", "nearest"),
            max_rate=float(max_rate), reset=reset, v_floor=None if v_floor is None else int(v_floor),
            synapse_shift=synapse_shift if spiking else 0,
            compare=g("neuron.compare", "ge"),
            max_spikes_per_step=None if g("neuron.max_spikes_per_step", 1) == "unbounded"
            else int(g("neuron.max_spikes_per_step", 1)),
            spike_delay=int(g("delays.connection_steps", 0)),
            exponent_applies_to=g("weights.exponent.applies_to", "weight"),
            accumulator=acc, current=current, membrane=membrane,
            threshold_bits=g("threshold.mantissa_bits") or g("threshold.bits"),
            threshold_shift=int(g("threshold.shift", 0)), threshold_signed=bool(g("threshold.signed", False)),
            bias_bits=g("bias.mantissa_bits") or g("bias.bits"),
            bias_exp_range=tuple(bias_exp) if bias_exp else None,
            analog_gain=float(g("analog.gain", 1.0)),
            analog_noise_std=float(g("analog.noise_std", 0.0)) if noise else 0.0,
            mismatch_sigma=float(g("analog.mismatch_sigma", 0.0)) if noise else 0.0,
            chunk_rows=g("analog.chunk_rows"), readout=readout,
            readout_rounding=g("analog.readout.rounding", "floor"),
            requant=g("activations.requant"),
        )

    def with_(self, **changes: Any) -> "ChipSpec":
        """A copy with some fields changed."""
        names = {f.name for f in fields(self)}
        bad = set(changes) - names
        if bad:
            raise ValueError(f"unknown ChipSpec field(s) {sorted(bad)}")
        return replace(self, **changes)
