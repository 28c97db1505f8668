"""Brian2 simulation: neurons as balancing agents, spiking networks, drift, and the numpy replay oracle.

Modules, one job each: `spec` (arguments checked once), `units` (times and rates as numbers or
quantities), `equations` (the agents' model strings), `neurons` (the spiking units: IF, LIF, a NIR
graph's own models), `build` (Brian2 objects from a network), `attach` (agents on a user's own
Brian2 model), `lif` (the rate exchange on leaky neurons, measured and predicted, and the exact
gauge), `drift` (the homeostasis prediction), `network` (running: `BalancingNetwork`), `device` (the
only module touching Brian2's device, preferences, code cache and clocks), `results` (reading),
`replay` (the numpy oracle), `bounds` (spike-count bounds), `agents` (`run_agents`).
Importing this package imports Brian2; ``import neuro_balance`` never does.
"""
from .agents import AgentRun, run_agents
from .attach import AgentEquations, Attachment, agent_equations, attach_balancing
from .bounds import QuantizationBound, quantization_bound
from .device import TARGETS, cache_directory
from .network import BalancingNetwork
from .neurons import LIF, NIRSteps
from .replay import BalanceEvents, ReplayResult, max_relative_difference, replay, trajectory_difference
from .results import SpikeMeasurement
from .spec import CODINGS, INVARIANCES, READOUTS, SCHEDULES, Drift

__all__ = ["run_agents", "AgentRun", "agent_equations", "AgentEquations", "attach_balancing", "Attachment",
           "quantization_bound", "QuantizationBound", "BalancingNetwork", "LIF", "NIRSteps", "SpikeMeasurement",
           "BalanceEvents", "ReplayResult", "replay", "max_relative_difference", "trajectory_difference",
           "TARGETS", "CODINGS", "READOUTS", "INVARIANCES",
           "SCHEDULES", "Drift", "cache_directory"]
