"""Neuromorphic hardware: chip profiles, fixed-point formats, integer emulation and evaluation.

Examples
--------
>>> import neuro_balance as nb
>>> nb.hardware.list_profiles()[:3]
['akida1', 'akida2', 'brainscales2']
>>> q = nb.hardware.quantize(net, "loihi1", X, weight_bits=4)   # doctest: +SKIP
>>> q.forward(X), q.integer_weights, q.stats                      # doctest: +SKIP
"""
from .emulate import QuantizedNetwork, quantize
from .profile import PROFILE_DIR, Profile, UnverifiedProfileWarning, list_profiles, load_profile
from .spec import ChipSpec

__all__ = ["Profile", "UnverifiedProfileWarning", "PROFILE_DIR", "list_profiles", "load_profile", "ChipSpec",
           "QuantizedNetwork", "quantize"]
