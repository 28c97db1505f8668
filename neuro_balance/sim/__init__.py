"""Brian2 simulation: neurons as balancing agents, spiking networks, and the numpy replay oracle.

Importing this package imports Brian2; ``import neuro_balance`` never does.
"""
from .agents import AgentRun, run_agents
from .bounds import QuantizationBound, quantization_bound
from .brian import CODINGS, READOUTS, TARGETS, BalancingNetwork, SpikeMeasurement
from .replay import BalanceEvents, ReplayResult, max_relative_difference, replay

__all__ = ["run_agents", "AgentRun", "quantization_bound", "QuantizationBound", "BalancingNetwork", "SpikeMeasurement", "BalanceEvents", "ReplayResult", "replay", "max_relative_difference", "TARGETS", "CODINGS",
           "READOUTS"]
