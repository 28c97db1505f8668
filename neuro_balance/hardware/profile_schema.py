"""The hardware profile schema: field checkers, the field table and the validation of a parsed YAML mapping.

Schema (version 1; ``*`` = required, any mapping may also carry ``unverified: true`` and ``note``)::

    schema_version*: 1
    name*: str               family: str        kind*: digital | digital_programmable | analog | mixed | ideal
    sources*: [str, ...]     description: str
    neuron: {model, states, reset: zero|subtract|value|modes, compare: gt|ge,
             refractory: {min, max, hold: zero|clamp|none}, max_spikes_per_step: int >= 1 | unbounded,
             variant: nengo_loihi|lava (cuba_lif) | xylosim (lif): whose emulator the arithmetic follows}
    weights*: {format: int|mantissa_exponent|axon_type_lookup|base_weight_select|shared_scale|float,
               bits | bits_allowed (required unless format is float), signed, symmetric,
               sign_by: synapse_type|paired_rows, sign_modes, first_layer_bits_allowed,
               exponent: {min, max, base, offset, shared_per, applies_to: weight|sum}, scale: {shared_per, form},
               axon_types, base_weights_per, rounding*: nearest|nearest_even|truncate|floor|toward_zero|stochastic,
               clip: saturate|error, unsigned_bits: [widths whose integers are unsigned, 0..2**b - 1]}
    inputs: {bits, signed}   activations: {bits, bits_allowed, scale: per_tensor|per_axis, rounding,
                                           requant: akida1|akida2 (the layer arithmetic of hardware.akida)}
    accumulator: {bits, signed, overflow*: wrap|saturate|error}
    state*: {<name>: {bits, signed, frac_bits, overflow*, range: [min, max]}}
    threshold: {bits | mantissa_bits, shift, signed}
    bias: {bits | mantissa_bits, exponent_bits, exponent_range: [min, max], signed}
    decay: {kind: multiplicative|bitshift|exp_fixed|analog|none, bits, offset: {<state>: int}, rounding, formula}
    analog: {gain, noise_std, mismatch_sigma, chunk_rows, calibrate, readout: {bits, signed, rounding, overflow}}
    conversion_defaults: {scale_granularity: network|layer|channel|neuron, method: max|percentile,
                          percentile, weight_bits, activation_bits, activation_method, activation_percentile,
                          max_rate: (0, 1] spikes per step, reset: zero|subtract,
                          v_floor: int <= 0 within the membrane state's range,
                          synapse_shift: 0..12 (spikes filtered by a current synapse of 2**shift steps),
                          dash_syn: 1..15, dash_mem: 0..15 (Xylo's decay shifts of converted neurons)}
    delays: {connection_steps: 0|1 (steps from a spike to the next population's input; default 0), ...}
    time, arithmetic, noise, learning, delays, limits, spike_payload_bits, stochastic,
    synapse_connectivity_bits: documentation (type-checked loosely)

A leaf checked against a vendor's tool may be written ``{value: X, verified: "<tool> <version>"}``.
A leaf whose value is not sourced is written ``{value: X, unverified: true}`` (``X`` may be null); a
mapping with ``unverified: true`` flags all its fields. Such profiles load with one
`UnverifiedProfileWarning` listing the fields. The bundled profiles write each ``sources`` entry as
``"[TAG] citation"`` and cite ``[TAG]`` in a comment on or directly above every other value that is
neither verified nor unverified (checked by tests/test_profile_citations.py)."""
from __future__ import annotations

import math
from typing import Any, Callable

from ..errors import ProfileError
from .fixed_point import OVERFLOW_MODES, ROUNDING_MODES

__all__ = ["SCHEMA_VERSION", "validate"]

SCHEMA_VERSION = 1


# ---------------------------------------------------------------------------------------- checkers
def _enum(*choices: Any) -> Callable[[Any], str | None]:
    def check(v):
        return None if v in choices else f"must be one of {', '.join(map(str, choices))}"
    return check


def _int(lo: float = -math.inf, hi: float = math.inf) -> Callable[[Any], str | None]:
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int):
            return "must be an integer"
        return None if lo <= v <= hi else f"must be in [{lo}, {hi}]"
    return check


def _num(lo: float = -math.inf, hi: float = math.inf) -> Callable[[Any], str | None]:
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return "must be a finite number"
        return None if lo <= v <= hi else f"must be in [{lo}, {hi}]"
    return check


def _bool(v):
    return None if isinstance(v, bool) else "must be true or false"


def _str(v):
    return None if isinstance(v, str) and v else "must be a non-empty string"


def _int_list(lo: int = 1, hi: int = 64) -> Callable[[Any], str | None]:
    def check(v):
        if not isinstance(v, list) or not v or any(isinstance(x, bool) or not isinstance(x, int) for x in v):
            return "must be a non-empty list of integers"
        return None if all(lo <= x <= hi for x in v) else f"entries must be in [{lo}, {hi}]"
    return check


def _pair(v):
    if (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
            and v[0] <= v[1]):
        return None
    return "must be [min, max] integers with min <= max"


def _positive(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not v > 0:
        return "must be a finite number > 0"
    return None


def _range(v):
    if _pair(v) is None and v[0] < v[1]:
        return None
    return "must be [min, max] integers with min < max (a register that holds one value computes nothing)"


def _rate(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
        return "must be a number in (0, 1] (spikes per step)"
    return None


def _any(v):
    return None


def _str_list(v):
    if isinstance(v, list) and v and all(isinstance(s, str) and s for s in v):
        return None
    return "must be a non-empty list of strings"


_BITS = _int(1, 62)
_BIAS_BITS = _int(2, 62)  # biases are signed: one bit holds only 0 and -1
# Weights are mapped to integers through float64 and summed exactly below 2**52: wider weights, or
# exponents beyond +-32 (2**-1000 overflowed the accumulator scale), leave that arithmetic.
_WEIGHT_BITS = _int(1, 32)
_EXPONENT = _int(-32, 32)
_ROUND = _enum(*ROUNDING_MODES)
_OVER = _enum(*OVERFLOW_MODES)
_SHARED = _enum("synapse_config", "connection", "layer", "channel", "neuron", "core", "synapse_type",
                "synapse_type_per_core", "per_tensor", "per_axis", "network")

# Fields the emulator reads: dotted path (``*`` = any name) -> checker. Sections listed in _STRICT
# reject unknown keys (typos there would silently change the emulation).
_FIELDS: dict[str, Callable[[Any], str | None]] = {
    "schema_version": _int(1, 1), "name": _str, "family": _str, "description": _str, "sources": _str_list,
    "kind": _enum("digital", "digital_programmable", "analog", "mixed", "ideal"),
    "neuron.model": _enum("lif", "cuba_lif", "if", "adex", "tn_lif", "programmable", "none"),
    "neuron.states": _str_list, "neuron.reset": _enum("zero", "subtract", "value", "modes"),
    "neuron.compare": _enum("gt", "ge"), "neuron.refractory.min": _int(0), "neuron.refractory.max": _int(0),
    "neuron.refractory.hold": _enum("zero", "clamp", "none"),
    "neuron.max_spikes_per_step": lambda v: None if v == "unbounded" or _int(1)(v) is None
    else "must be an integer >= 1 or unbounded",
    "neuron.reference_models": _str_list, "neuron.synapses": _int(0), "neuron.leak": _str,
    "neuron.reset_modes": _int(1), "neuron.threshold.stochastic_mask": _bool, "neuron.negative_threshold": _bool,
    "weights.format": _enum("int", "mantissa_exponent", "axon_type_lookup", "base_weight_select", "shared_scale",
                            "float"),
    "weights.bits": _WEIGHT_BITS, "weights.bits_allowed": _int_list(1, 32),
    "weights.first_layer_bits_allowed": _int_list(1, 32),
    "weights.signed": _bool, "weights.symmetric": _bool, "weights.sign_by": _enum("synapse_type", "paired_rows"),
    "weights.sign_modes.*": _pair, "weights.exponent.min": _EXPONENT, "weights.exponent.max": _EXPONENT,
    "weights.exponent.base": _int(2, 2), "weights.exponent.offset": _EXPONENT, "weights.exponent.shared_per": _SHARED,
    "weights.exponent.applies_to": _enum("weight", "sum"),
    "weights.scale.shared_per": _SHARED, "weights.scale.form": _str, "weights.rounding": _ROUND,
    "weights.clip": _enum("saturate", "error"), "weights.axon_types": _int(1), "weights.per": _str,
    "weights.base_weights_per": _str, "weights.signed_via": _str, "weights.signed_range": _pair,
    "weights.shift.*": _any,
    "inputs.bits": _BITS, "inputs.signed": _bool,
    "activations.bits": _BITS, "activations.bits_allowed": _int_list(), "activations.rounding": _ROUND,
    "activations.scale": _enum("per_tensor", "per_axis"), "activations.requant": _enum("akida1", "akida2"),
    "weights.unsigned_bits": _int_list(),
    "accumulator.bits": _BITS, "accumulator.signed": _bool, "accumulator.overflow": _OVER,
    "state.*.bits": _BITS, "state.*.signed": _bool, "state.*.frac_bits": _int(0, 62), "state.*.overflow": _OVER,
    "state.*.range": _range, "state.*.min": _int(),
    "threshold.bits": _BITS, "threshold.mantissa_bits": _BITS, "threshold.shift": _int(0, 32),
    "threshold.signed": _bool,
    "bias.bits": _BIAS_BITS, "bias.mantissa_bits": _BIAS_BITS, "bias.signed": _bool, "bias.exponent_bits": _int(0, 8),
    "bias.exponent_range": _pair,
    "decay.kind": _enum("multiplicative", "bitshift", "exp_fixed", "analog", "none"), "decay.bits": _BITS,
    "decay.offset.*": _int(0), "decay.rounding": _ROUND, "decay.formula": _str, "decay.signed": _bool,
    "analog.gain": _positive, "analog.noise_std": _num(0), "analog.mismatch_sigma": _num(0),
    "analog.chunk_rows": _int(1), "analog.calibrate": _str, "analog.readout.bits": _BITS,
    "analog.readout.signed": _bool, "analog.readout.rounding": _ROUND, "analog.readout.overflow": _OVER,
    "conversion_defaults.scale_granularity": _enum("network", "layer", "channel", "neuron"),
    "conversion_defaults.method": _enum("max", "percentile", "input"), "conversion_defaults.percentile": _num(50, 100),
    "conversion_defaults.weight_bits": _WEIGHT_BITS, "conversion_defaults.activation_bits": _BITS,
    "conversion_defaults.activation_method": _enum("max", "percentile"),
    "conversion_defaults.activation_percentile": _num(50, 100), "conversion_defaults.scale": _str,
    "conversion_defaults.calibration": _str, "conversion_defaults.max_rate": _rate,
    "conversion_defaults.reset": _enum("zero", "subtract"), "conversion_defaults.v_floor": _int(hi=0),
    "conversion_defaults.synapse_shift": _int(0, 12),
    "conversion_defaults.dash_syn": _int(1, 15), "conversion_defaults.dash_mem": _int(0, 15),
    "neuron.variant": _enum("nengo_loihi", "lava", "xylosim"),
    "delays.connection_steps": _int(0, 1),
}
_STRICT = ("weights", "accumulator", "state", "threshold", "bias", "analog", "conversion_defaults", "neuron",
           "inputs", "activations", "decay")
_DOC_SECTIONS = ("time", "arithmetic", "noise", "learning", "delays", "limits", "spike_payload_bits", "stochastic",
                 "synapse_connectivity_bits")
_TOP = {p.split(".")[0] for p in _FIELDS} | set(_DOC_SECTIONS)
_META = ("unverified", "verified", "note")


def _pattern(dotted: str) -> str | None:
    """The `_FIELDS` key matching a dotted name (``state.v.bits`` -> ``state.*.bits``), if any."""
    if dotted in _FIELDS:
        return dotted
    parts = dotted.split(".")
    for i in range(1, len(parts)):
        candidate = ".".join(parts[:i] + ["*"] + parts[i + 1:])
        if candidate in _FIELDS:
            return candidate
    return None


def _is_prefix(dotted: str) -> bool:
    """True when some schema field lies below ``dotted`` (it is a known section)."""
    parts = dotted.split(".")
    for key in _FIELDS:
        kp = key.split(".")
        if len(kp) > len(parts) and all(a == b or a == "*" for a, b in zip(kp, parts)):
            return True
    return False


def _walk(node: Any, dotted: str, where: str, unverified: list[str]) -> Any:
    """Validate ``node`` at ``dotted``; return it with unverified leaves unwrapped."""
    if isinstance(node, dict):
        if node.get("unverified") is True:
            unverified.append(dotted)
        elif "unverified" in node and node["unverified"] is not False:
            raise ProfileError(f"{where}: field '{dotted}.unverified': must be true or false, "
                               f"got {node['unverified']!r}")
        if "verified" in node and _str(node["verified"]):
            raise ProfileError(f"{where}: field '{dotted}.verified': must name the tool and version that "
                               f"confirmed the value, got {node['verified']!r}")
        if "value" in node and set(node) <= {"value", *_META}:
            value = node["value"]
            if value is None:
                return None
            return _walk(value, dotted, where, [])
        leaf = _pattern(dotted) if dotted and not _is_prefix(dotted) else None
        problem = _FIELDS[leaf](node) if leaf is not None else None  # a mapping where a value belongs
        if problem:
            raise ProfileError(f"{where}: field '{dotted}': {problem}, got {node!r}")
        out = {}
        for key, value in node.items():
            if key in _META:
                continue
            if not isinstance(key, str):
                raise ProfileError(f"{where}: field '{dotted}': keys must be strings, got {key!r}")
            child = f"{dotted}.{key}" if dotted else key
            if not dotted and key not in _TOP:
                raise ProfileError(f"{where}: field '{key}': unknown field (schema {SCHEMA_VERSION}; known: "
                                   f"{', '.join(sorted(_TOP))}), got {value!r}")
            section = child.split(".")[0]
            if section in _STRICT and _pattern(child) is None and not _is_prefix(child):
                raise ProfileError(f"{where}: field '{child}': unknown field in section '{section}', got {value!r}")
            out[key] = _walk(value, child, where, unverified)
        return out
    if node is None:
        return None
    pattern = _pattern(dotted)
    if pattern is not None:
        problem = _FIELDS[pattern](node)
        if problem:
            raise ProfileError(f"{where}: field '{dotted}': {problem}, got {node!r}")
    elif isinstance(node, str) and node.strip().upper() == "UNVERIFIED":
        raise ProfileError(f"{where}: field '{dotted}': write unverified values as "
                           f"{{value: ..., unverified: true}}, got {node!r}")
    return node


def _require(data: dict, profile_unverified: list[str], where: str) -> None:
    def need(dotted: str, what: str = "is required") -> None:
        node: Any = data
        for key in dotted.split("."):
            if not isinstance(node, dict) or node.get(key) is None:
                if any(dotted == u or dotted.startswith(u + ".") for u in profile_unverified):
                    return
                raise ProfileError(f"{where}: field '{dotted}': {what}, got {None!r}")
            node = node[key]

    for key in ("schema_version", "name", "kind", "sources", "weights", "state"):
        need(key)
    if data["schema_version"] != SCHEMA_VERSION:
        raise ProfileError(f"{where}: field 'schema_version': this version reads schema {SCHEMA_VERSION}, "
                           f"got {data['schema_version']!r}")
    weights = data["weights"]
    if not isinstance(weights, dict):
        raise ProfileError(f"{where}: field 'weights': must be a mapping, got {weights!r}")
    need("weights.rounding")
    if weights.get("format") != "float" and weights.get("bits") is None and weights.get("bits_allowed") is None:
        need("weights.bits", "is required (or weights.bits_allowed) unless weights.format is float")
    if not isinstance(data["state"], dict):
        raise ProfileError(f"{where}: field 'state': must be a mapping of state name to format, got {data['state']!r}")
    for name, fmt in data["state"].items():
        if not isinstance(fmt, dict):
            raise ProfileError(f"{where}: field 'state.{name}': must be a mapping, got {fmt!r}")
        need(f"state.{name}.overflow")
    exp = weights.get("exponent") or {}
    if exp.get("min") is not None and exp.get("max") is not None and exp["min"] > exp["max"]:
        raise ProfileError(f"{where}: field 'weights.exponent': min must be <= max, got {exp!r}")
    _check_neuron_fields(data, where)
    _check_arithmetic(data, where)


def _state_max(fmt: dict) -> int | None:
    """Highest value of a state register, from its range or its width (None when unknown)."""
    if fmt.get("range") is not None:
        return fmt["range"][1]
    if fmt.get("bits") is None:
        return None
    return (1 << (fmt["bits"] - 1)) - 1 if fmt.get("signed", True) else (1 << fmt["bits"]) - 1


def _check_arithmetic(data: dict, where: str) -> None:
    """Refuse widths and ranges that leave the chip's arithmetic degenerate (a register or threshold of 0).

    A signed state of 1 bit holds only 0 and -1; the largest threshold (mantissa, shift, membrane range,
    divided by the synaptic filter's 2**synapse_shift, as `hardware.mapping.threshold_max`) must be at
    least 1; at ``conversion_defaults.max_rate`` a unit must fire at least once per rate-code window.
    """
    states = data["state"]
    for name, fmt in states.items():
        if fmt.get("bits") == 1 and fmt.get("signed", True):
            raise ProfileError(f"{where}: field 'state.{name}.bits': a signed register of 1 bit holds only 0 and -1; "
                               f"must be >= 2 (or signed: false), got 1")
    defaults = data.get("conversion_defaults") or {}
    shift = defaults.get("synapse_shift") or 0
    neuron = data.get("neuron") or {}
    order = [s for s in (neuron.get("states") or list(states)) if s in states]
    membrane = order[-1] if order else None
    top = _state_max(states[membrane]) if membrane is not None else None
    threshold = data.get("threshold") or {}
    key = "mantissa_bits" if threshold.get("mantissa_bits") else "bits"
    if top is not None and top / 2.0 ** shift < 1:
        field = f"state.{membrane}.range" if states[membrane].get("range") is not None else f"state.{membrane}.bits"
        raise ProfileError(f"{where}: field '{field}': the membrane's largest value, {top}, over 2**{shift} (the "
                           f"synaptic filter) leaves no threshold >= 1, got {states[membrane].get(field.rsplit('.', 1)[1])!r}")
    if threshold.get(key) is not None:
        stored = ((1 << max(threshold[key] - bool(threshold.get("signed", False)), 0)) - 1) << threshold.get("shift", 0)
        if stored / 2.0 ** shift < 1:
            raise ProfileError(f"{where}: field 'threshold.{key}': the largest threshold it stores, {stored}, over "
                               f"2**{shift} (the synaptic filter) is below 1, got {threshold[key]!r}")
    rate = defaults.get("max_rate")
    activations = data.get("activations") or {}
    bits = defaults.get("activation_bits") or activations.get("bits") or max(activations.get("bits_allowed") or [8])
    if rate is not None and rate * ((1 << bits) - 1) < 1:
        raise ProfileError(f"{where}: field 'conversion_defaults.max_rate': below one spike per rate-code window of "
                           f"2**{bits} - 1 steps ({bits} activation bits), got {rate!r}")


def _state_min(fmt: dict) -> int | None:
    """Lowest value of a state register, from its range or its width (None when unknown)."""
    if fmt.get("range") is not None:
        return fmt["range"][0]
    if fmt.get("bits") is None:
        return None
    return -(1 << (fmt["bits"] - 1)) if fmt.get("signed", True) else 0


def _check_neuron_fields(data: dict, where: str) -> None:
    """Cross-field rules: a Loihi variant needs a CUBA LIF, xylosim a LIF; the v floor lies in the membrane's range."""
    neuron = data.get("neuron") or {}
    variant = neuron.get("variant")
    model = "lif" if variant == "xylosim" else "cuba_lif"
    if variant is not None and neuron.get("model") != model:
        raise ProfileError(f"{where}: field 'neuron.variant': {variant} applies to neuron.model {model} only "
                           f"(model is {neuron.get('model')!r}), got {variant!r}")
    floor = (data.get("conversion_defaults") or {}).get("v_floor")
    states = data["state"]
    if floor is None or not states:
        return
    name = "v" if "v" in states else list(states)[-1]       # the membrane: v, else the last state
    lowest = _state_min(states[name])
    if lowest is not None and floor < lowest:
        raise ProfileError(f"{where}: field 'conversion_defaults.v_floor': must be >= the lowest value of "
                           f"state.{name} ({lowest}), got {floor!r}")


def validate(data: Any, where: str) -> tuple[dict[str, Any], list[str]]:
    """Check a parsed profile against the schema.

    Parameters
    ----------
    data : Any
        The YAML document.
    where : str
        The file (or label) named in error messages.

    Returns
    -------
    clean : dict
        The profile with ``{value: X, unverified: true}`` leaves replaced by ``X``.
    unverified : list of str
        Dotted names of the fields flagged ``unverified: true``.

    Raises
    ------
    ProfileError
        Naming the file, the field and the value.
    """
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: field '(top level)': a profile must be a mapping, got {type(data).__name__}")
    unverified: list[str] = []
    clean = _walk(data, "", where, unverified)
    _require(clean, unverified, where)
    return clean, unverified
