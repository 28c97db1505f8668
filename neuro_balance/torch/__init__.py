"""Balance PyTorch modules in place: trace to a `Network`, balance with the core engines, write the scales back.

Requires the optional extra ``pip install "neuro-balance[torch]"``; ``import neuro_balance`` never imports
torch. Parameters stay in the module; optimiser state (SGD with momentum, Adam, AdamW) is carried
through every rescaling so that training continues as if it had always run on the balanced weights.

Examples
--------
>>> import torch, neuro_balance as nb, neuro_balance.torch as nbt
>>> m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
>>> res = nbt.balance_(m, nb.Lp(1), torch.zeros(1, 4))      # any p > 0, Linf, residuals, BatchNorm
>>> res.converged
True
"""
from .rescale import OPTIMIZERS, apply_log_scales, balance_, to_module
from .schedule import fit
from .resnet import small_resnet
from .trace import Term, TorchBinding, from_module

__all__ = ["from_module", "TorchBinding", "Term", "balance_", "apply_log_scales", "to_module", "fit", "OPTIMIZERS", "small_resnet"]
