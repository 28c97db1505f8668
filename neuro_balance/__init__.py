"""neuro_balance: exact synaptic balancing for spiking and neuromorphic networks.

Public API (re-exports only). Brian2 is imported only by `neuro_balance.sim`.
"""
from .model.activations import Activation, parse_activation
from .model.builders import dag, mlp, rnn
from .model.conv import conv_net  # also registers the conv2d and locally_connected kinds
from .balancing.costs import Cost, Linf, Lp, parse_cost
from .balancing.balance import BalanceResult, balance, balance_unit
from .errors import ModelError, ProfileError
from .model.files import load_model, save_model
from .model.neurons import Neuron
from .model.nir_read import from_nir  # nir and h5py are imported only when a graph is read or written
from .model.nir_write import to_nir
from .balancing.metrics import ImbalanceReport, imbalance, path_norm
from .model.network import Network, Population, Projection
from .balancing.scaling import scale
from .learn import datasets
from . import hardware
from .learn.training import BalanceSchedule, TrainResult, train

__all__ = [
    "Activation", "parse_activation", "Cost", "Lp", "Linf", "parse_cost", "BalanceResult", "balance", "balance_unit",
    "ModelError", "ProfileError", "ImbalanceReport", "imbalance", "path_norm", "Network", "Population",
    "Projection", "scale", "mlp", "dag", "rnn", "conv_net", "load_model", "save_model", "hardware", "datasets", "train", "TrainResult",
    "BalanceSchedule", "Neuron", "from_nir", "to_nir",
]
__version__ = "0.1.0"
