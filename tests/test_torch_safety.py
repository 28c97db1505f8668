"""The PyTorch adapter refuses what it cannot rescale and leaves the module as the user set it up.

A Parameter reached through two modules (``l2.weight = l1.weight``) would take two scalings at once, so
the trace refuses it naming both places; tracing and balancing keep every submodule's train/eval mode
(a frozen BatchNorm stays frozen, an MC-dropout layer keeps sampling).
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import neuro_balance as nb  # noqa: E402
import neuro_balance.torch as nbt  # noqa: E402
from neuro_balance import ModelError  # noqa: E402

pytestmark = pytest.mark.torch


class _TwoLayers(nn.Module):
    """``l2(relu(l1(x)))``, each module applied once; ``tie`` makes one of l2's parameters l1's."""

    def __init__(self, tie: str | None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2 = nn.Linear(4, 4), nn.Linear(4, 4)
        if tie is not None:
            setattr(self.l2, tie, getattr(self.l1, tie))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.relu(self.l1(x)))


@pytest.mark.parametrize("tie", ["weight", "bias"])
def test_a_parameter_shared_by_two_modules_is_refused_with_both_names(tie):
    module = _TwoLayers(tie)
    x = torch.randn(8, 4)
    with pytest.raises(ModelError, match=rf"l2\.{tie}: the same Parameter as l1\.{tie}"):
        nbt.from_module(module, x)
    before = [p.detach().clone() for p in module.parameters()]
    with pytest.raises(ModelError, match=rf"l2\.{tie}.*l1\.{tie}"):
        nbt.balance_(module, nb.Lp(2), x)
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters()))  # nothing was rescaled


def test_one_module_registered_under_two_names_is_refused():
    class Aliased(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Linear(4, 4)
            self.second = self.first  # the same module, each name applied once

        def forward(self, x):
            return self.second(torch.relu(self.first(x)))

    # torch.fx calls the module by its first name both times
    with pytest.raises(ModelError, match=r"first: applied more than once"):
        nbt.from_module(Aliased(), torch.zeros(1, 4))


def test_untied_twin_still_balances_and_keeps_its_function():
    # the same architecture without the tie balances: the refusal is about the shared Parameter only
    module = _TwoLayers(None)
    x = torch.randn(8, 4)
    with torch.no_grad():
        module.l1.weight.mul_(torch.tensor([[5.0], [0.2], [3.0], [1.0]]))
        before = module(x)
    res = nbt.balance_(module, nb.Lp(2), x)
    assert res.converged
    torch.testing.assert_close(module(x), before, rtol=1e-5, atol=1e-6)


def test_a_shared_batch_norm_parameter_is_refused():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3)
            self.c2, self.b2 = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)
            self.b2.weight = self.b1.weight

        def forward(self, x):
            return self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))

    with pytest.raises(ModelError, match=r"b2\.weight: the same Parameter as b1\.weight"):
        nbt.from_module(Shared().eval(), torch.zeros(2, 2, 5, 5))


def _frozen_bn_net() -> nn.Module:
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Dropout(0.5), nn.Linear(4 * 5 * 5, 3))
    net.train()
    net[1].eval()  # fine-tuning with a frozen BatchNorm: its running statistics must not move
    return net


def _modes(module: nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in module.named_modules()}


@pytest.mark.parametrize("call", ["from_module", "balance_"])
def test_submodule_modes_are_kept(call):
    net = _frozen_bn_net()
    mixed = _modes(net)
    assert mixed[""] and not mixed["1"]
    x = torch.randn(6, 2, 5, 5)
    if call == "from_module":
        nbt.from_module(net, x)
    else:
        nbt.balance_(net, nb.Lp(2), x)
    assert _modes(net) == mixed
    # so the frozen BatchNorm's statistics stay put through a training-mode forward pass
    stats = net[1].running_mean.clone(), net[1].running_var.clone()
    net(x)
    assert torch.equal(net[1].running_mean, stats[0]) and torch.equal(net[1].running_var, stats[1])


def test_an_eval_root_with_a_sampling_dropout_keeps_both_modes():
    net = _frozen_bn_net().eval()
    net[4].train()  # Monte-Carlo dropout at inference
    mixed = _modes(net)
    nbt.balance_(net, nb.Lp(1), torch.randn(6, 2, 5, 5))
    assert _modes(net) == mixed


def test_fit_trains_with_a_frozen_batch_norm_left_frozen():
    torch.manual_seed(1)
    net = _frozen_bn_net()
    mixed = _modes(net)
    stats = net[1].running_mean.clone(), net[1].running_var.clone()
    x, y = torch.randn(12, 2, 5, 5), torch.randint(0, 3, (12,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    nbt.fit(net, opt, nn.functional.cross_entropy, [(x, y)], epochs=2, example_input=x, balance="before+partial:1")
    assert _modes(net) == mixed
    assert torch.equal(net[1].running_mean, stats[0]) and torch.equal(net[1].running_var, stats[1])
    # a module handed over in eval mode is put in training mode, as before
    net.eval()
    nbt.fit(net, opt, nn.functional.cross_entropy, [(x, y)], epochs=1, example_input=x, balance=None)
    assert all(_modes(net).values())
