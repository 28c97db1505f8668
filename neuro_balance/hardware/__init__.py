"""Neuromorphic hardware: chip profiles, fixed-point formats, integer emulation and evaluation.

Examples
--------
>>> import neuro_balance as nb
>>> nb.hardware.list_profiles()[:3]
['akida1', 'akida2', 'brainscales2']
>>> q = nb.hardware.quantize(net, "loihi1", X, weight_bits=4)   # doctest: +SKIP
>>> q.forward(X), q.integer_weights, q.run(X).counters              # doctest: +SKIP
>>> ev = nb.hardware.evaluate(net, X, y, bits=[None, 4, 8])      # doctest: +SKIP
"""
from .calibration import activation_ranges
from .chip_balance import BALANCE_CHOICES, ChipBalance, balance_for_chip, range_imbalance
from .emulate import quantize
from .integer_pass import IntegerRun
from .quantized import QuantizedNetwork
from .evaluate import Evaluation, evaluate, plot_evaluation
from .profile import PROFILE_DIR, Profile, UnverifiedProfileWarning, list_profiles, load_profile
from .spec import ChipSpec
from .neurons import IntegrateFire, LoihiCUBA
from .spiking import SpikingRun, simulate

__all__ = ["Profile", "UnverifiedProfileWarning", "PROFILE_DIR", "list_profiles", "load_profile", "ChipSpec",
           "QuantizedNetwork", "IntegerRun", "quantize", "activation_ranges", "BALANCE_CHOICES", "ChipBalance",
           "balance_for_chip", "range_imbalance", "Evaluation", "evaluate", "plot_evaluation",
           "LoihiCUBA", "IntegrateFire", "SpikingRun", "simulate"]
