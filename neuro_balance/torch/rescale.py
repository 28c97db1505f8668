"""Apply a rescaling of a traced module's units to its parameters and to its optimiser's state, in place.

A unit with log-scale ``u`` multiplies its incoming parameters (and bias) by ``exp(u)`` and its outgoing
ones by ``exp(-u)``. Where a BatchNorm follows a module, the unit's own factor goes to the BatchNorm's
``weight`` and ``bias`` and only the incoming units' factors to the module's weight, so the function is
kept in training mode (batch statistics) as well as in eval mode.

Optimiser state is carried as if every past gradient had been taken at the rescaled weights: the loss
is invariant, so a parameter multiplied by ``s`` has gradient ``g / s``; momentum buffers and Adam's
first moments are divided by ``s``, second moments by ``s**2``. The next step is then the unbalanced
step mapped through the scaling: ``delta / s`` for SGD with or without momentum, ``delta`` itself for
Adam (up to its ``eps``), and for AdamW Adam's part unchanged plus the decoupled decay of the rescaled
weight. Coupled ``weight_decay`` (SGD, Adam) adds ``wd * w`` to the gradient, which is not invariant:
with it the mapping holds only approximately.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from ..balancing.balance import BalanceResult, balance
from ..balancing.costs import Cost
from ..balancing.scaling import factors, scale
from ..errors import ModelError
from ..model.kinds import get_kind
from .trace import TorchBinding, from_module

__all__ = ["apply_log_scales", "balance_", "to_module", "OPTIMIZERS"]

OPTIMIZERS = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)
_FIRST = ("momentum_buffer", "exp_avg")
_SECOND = ("exp_avg_sq", "max_exp_avg_sq")


def _log_parts(binding: TorchBinding, log_scales: Mapping[str, np.ndarray], projection: str):
    """(log factor of each weight from its post unit, from its pre unit, per post unit) of one projection."""
    net = binding.network
    proj = net.projection(projection)
    pre, post = net.populations[proj.pre], net.populations[proj.post]
    post_idx, pre_idx = get_kind(proj.kind).groups(proj, pre, post)
    u_post = np.asarray(log_scales.get(post.name, np.zeros(post.size)), dtype=np.float64)
    u_pre = np.asarray(log_scales.get(pre.name, np.zeros(pre.size)), dtype=np.float64)
    shape = proj.weight.shape
    return (np.broadcast_to(u_post[post_idx], shape), np.broadcast_to(-pre.degree * u_pre[pre_idx], shape), u_post)


def _multiply(param: torch.Tensor, log_factor: np.ndarray, record: dict) -> None:
    f = torch.from_numpy(np.ascontiguousarray(factors(log_factor)).reshape(param.shape))
    with torch.no_grad():
        param.copy_((param.detach().to(torch.float64) * f).to(param.dtype))
    record[param] = f


def apply_log_scales(module: torch.nn.Module, binding: TorchBinding, log_scales: Mapping[str, np.ndarray],
                     optimizer: torch.optim.Optimizer | None = None) -> None:
    """Rescale the units of ``module`` in place by ``exp(log_scales)`` (function kept), and its optimiser state.

    Parameters
    ----------
    module : torch.nn.Module
        The module ``binding`` was traced from.
    binding : TorchBinding
    log_scales : mapping of population name to ndarray of shape (size,)
        As in `neuro_balance.scale` and `BalanceResult.log_scales`; missing populations keep ``u = 0``.
    optimizer : torch.optim.SGD, Adam or AdamW, optional
        Its per-parameter state is carried along (module docstring).
    """
    if optimizer is not None and not isinstance(optimizer, OPTIMIZERS):
        raise ValueError(f"optimizer: {type(optimizer).__name__} is not supported; "
                         f"supported: {', '.join(o.__name__ for o in OPTIMIZERS)}")
    for name, u in log_scales.items():
        pop = binding.network.populations.get(name)
        if pop is None:
            raise ModelError(f"log_scales: no population {name!r} in the traced module")
        if np.any(np.asarray(u) != 0) and not pop.balanced:
            raise ModelError(f"log_scales[{name!r}]: {pop.role} population held at ground; rescaling it would "
                             "change the function")
    record: dict[torch.Tensor, torch.Tensor] = {}
    for term in binding.terms:
        if term.module is None:
            continue  # a residual identity: both ends are ground
        lin = module.get_submodule(term.module)
        from_post, from_pre, u_post = _log_parts(binding, log_scales, term.projection)
        if term.norm is None:
            _multiply(lin.weight, from_post + from_pre, record)
            if lin.bias is not None:
                _multiply(lin.bias, u_post, record)
        else:
            norm = module.get_submodule(term.norm)
            _multiply(lin.weight, from_pre, record)
            _multiply(norm.weight, u_post, record)
            _multiply(norm.bias, u_post, record)
    if optimizer is not None:
        for param, f in record.items():
            state = optimizer.state.get(param, {})
            f = f.to(param.device)
            for key in _FIRST + _SECOND:
                buf = state.get(key)
                if isinstance(buf, torch.Tensor):  # a new tensor: state loaded from another optimiser may share it
                    state[key] = (buf.to(torch.float64) / (f if key in _FIRST else f * f)).to(buf.dtype)


def balance_(module: torch.nn.Module, cost: Cost, example_input: torch.Tensor,
             optimizer: torch.optim.Optimizer | None = None, **balance_kwargs) -> BalanceResult:
    """Balance ``module``'s units in place with the core engines, and carry its optimiser state along.

    Parameters
    ----------
    module : torch.nn.Module
        See `from_module` for what is read.
    cost : Cost
        ``nb.Lp(p)`` for any p > 0, ``nb.Linf()``, or sums of Lp terms.
    example_input : torch.Tensor
        One batch of inputs, for the trace's shapes.
    optimizer : torch.optim.SGD, Adam or AdamW, optional
    **balance_kwargs
        Passed to `neuro_balance.balance` (``method``, ``tol``, ``tie``, ``fraction``, ``seed``, ...).

    Returns
    -------
    BalanceResult
        Of the traced float64 network; ``log_scales`` are what was applied to the module.

    Examples
    --------
    >>> import torch, neuro_balance as nb, neuro_balance.torch as nbt
    >>> m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> x = torch.randn(5, 4)
    >>> before = m(x)
    >>> res = nbt.balance_(m, nb.Lp(2), x)
    >>> bool(torch.allclose(m(x), before, rtol=1e-5, atol=1e-6)), res.converged
    (True, True)
    """
    binding = from_module(module, example_input)
    res = balance(binding.network, cost, **balance_kwargs)
    apply_log_scales(module, binding, res.log_scales, optimizer)
    return res


def _infer_log_scales(binding: TorchBinding, net, rtol: float) -> dict[str, np.ndarray]:
    """The log-scales that map ``binding.network`` onto ``net``, or a ModelError if ``net`` is no rescaling."""
    old = binding.network
    if set(old.populations) != set(net.populations) or \
            {p.name for p in old.projections} != {p.name for p in net.projections}:
        raise ModelError("network: its populations or projections differ from the module's trace")
    u: dict[str, np.ndarray] = {}
    for name in old.order:
        pop = old.populations[name]
        if not pop.balanced:
            u[name] = np.zeros(pop.size)
            continue
        votes = [[] for _ in range(pop.size)]
        if pop.bias is not None:
            for i, (a, b) in enumerate(zip(pop.bias, net.populations[name].bias)):
                if a != 0 and b != 0:
                    votes[i].append(np.log(b / a) if b / a > 0 else np.nan)
        for proj in old.projections:
            if proj.post != name:
                continue
            pre = old.populations[proj.pre]
            post_idx, pre_idx = get_kind(proj.kind).groups(proj, pre, pop)
            shape = proj.weight.shape
            posts, pres = np.broadcast_to(post_idx, shape), np.broadcast_to(pre_idx, shape)
            new = net.projection(proj.name).weight
            ok = (proj.weight != 0) & (new != 0)
            ratio = new[ok] / proj.weight[ok]
            if np.any(ratio <= 0):
                raise ModelError(f"network: projection {proj.name!r} is not a rescaling of the module's weights "
                                 "(a weight changed sign)")
            logs = np.log(ratio) + pre.degree * u[proj.pre][pres[ok]]
            for i, value in zip(posts[ok], logs):
                votes[i].append(value)
        u[name] = np.array([np.median(v) if v else 0.0 for v in votes])
        if not np.all(np.isfinite(u[name])):
            raise ModelError(f"network: the bias of {name!r} is not a rescaling of the module's (a sign changed)")
    expected = scale(old, u)
    for proj in expected.projections:
        got = net.projection(proj.name).weight
        if not np.allclose(got, proj.weight, rtol=rtol, atol=0):
            raise ModelError(f"network: projection {proj.name!r} is not a rescaling of the module's weights "
                             f"(max difference {np.max(np.abs(got - proj.weight)):.3g})")
    return u


def to_module(net, module: torch.nn.Module, example_input: torch.Tensor,
              optimizer: torch.optim.Optimizer | None = None, rtol: float = 1e-6) -> dict[str, np.ndarray]:
    """Carry a rescaled copy of a module's `Network` (from any engine) back into the module, in place.

    The network must be a rescaling of ``from_module(module, example_input).network`` (any balancing
    engine, the Brian2 agents, `neuro_balance.scale`): the log-scales are recovered from the weights and
    applied with `apply_log_scales`, BatchNorm and optimiser state included.

    Parameters
    ----------
    net : Network
    module : torch.nn.Module
    example_input : torch.Tensor
    optimizer : torch.optim.SGD, Adam or AdamW, optional
    rtol : float
        Relative tolerance of the check that ``net`` is a rescaling.

    Returns
    -------
    dict of ndarray
        The log-scales applied.
    """
    binding = from_module(module, example_input)
    u = _infer_log_scales(binding, net, rtol)
    apply_log_scales(module, binding, u, optimizer)
    return u
