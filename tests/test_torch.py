"""The PyTorch adapter: traced modules balance in place, keep their function, and carry optimiser state.

Runs only where torch is installed (``pip install torch==2.13.0 && pip install -e ".[torch,test]" &&
python -m pytest -m torch``; the first command takes the CPU build); it skips without torch. CI installs the
CPU build and runs the ``torch`` and ``dask`` tests after the default suite (``.ci/run``).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import neuro_balance as nb  # noqa: E402
import neuro_balance.torch as nbt  # noqa: E402
from neuro_balance.torch.resnet import small_resnet  # noqa: E402
from neuro_balance import ModelError  # noqa: E402

pytestmark = pytest.mark.torch


def _mlp():
    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 9), nn.LeakyReLU(0.1), nn.Linear(9, 3))


def _cnn():
    return nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 8, 3, stride=1, groups=2), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 2 * 2, 4))


CASES = {"mlp": (_mlp, (6,)), "cnn_bn": (_cnn, (2, 8, 8)), "resnet": (lambda: small_resnet(width=4, blocks=(2, 1)), (3, 8, 8))}


def _randomised(name: str, dtype=torch.float32, seed: int = 0):
    """A module with random weights and batch-norm statistics, put off balance by a random rescaling."""
    torch.manual_seed(seed)
    make, shape = CASES[name]
    module = make().to(dtype)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    module.eval()
    x = torch.randn(16, *shape, dtype=dtype)
    binding = nbt.from_module(module, x)
    rng = np.random.default_rng(seed)
    u = {n: rng.normal(0, 1.0, p.size) for n, p in binding.network.populations.items() if p.balanced}
    nbt.apply_log_scales(module, binding, u)
    return module, x


@pytest.mark.parametrize("name", sorted(CASES))
def test_traced_network_computes_the_module(name):
    module, x = _randomised(name, torch.float64)
    net = nbt.from_module(module, x).network
    np.testing.assert_allclose(net.forward(x.flatten(1).numpy()), module(x).detach().flatten(1).numpy(),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cost", [nb.Lp(2), nb.Lp(0.5), nb.Lp(3), nb.Linf()], ids=repr)
@pytest.mark.parametrize("name", sorted(CASES))
def test_balance_in_place_keeps_the_function_to_float32_precision(name, cost):
    module, x = _randomised(name)
    before = module(x).detach()
    res = nbt.balance_(module, cost, x)
    after = module(x).detach()
    assert res.cost_after < res.cost_before
    assert torch.max(torch.abs(after - before)) <= 1e-5 * torch.max(torch.abs(before))


@pytest.mark.parametrize("name", sorted(CASES))
def test_balanced_module_is_the_core_engines_balanced_network(name):
    module, x = _randomised(name, torch.float64)
    reference = nb.balance(nbt.from_module(module, x).network, nb.Lp(2), tol=1e-12).network
    nbt.balance_(module, nb.Lp(2), x, tol=1e-12)
    got = nbt.from_module(module, x).network
    for proj in reference.projections:
        np.testing.assert_allclose(got.projection(proj.name).weight, proj.weight, rtol=1e-9, atol=1e-12)
    for name_, pop in reference.populations.items():
        if pop.bias is not None:
            np.testing.assert_allclose(got.populations[name_].bias, pop.bias, rtol=1e-9, atol=1e-12)


def test_residual_stream_is_held_at_ground_and_inner_units_balance():
    module, x = _randomised("resnet", torch.float64)
    net = nbt.from_module(module, x).network
    ground = {n for n, p in net.populations.items() if p.role == "hidden" and p.ground}
    balanced = {n for n, p in net.populations.items() if p.balanced}
    assert ground and balanced  # the stream's units are pinned by the identity additions; block insides are free
    assert all("relu" in n for n in balanced)
    rep = nb.imbalance(nb.balance(net, nb.Lp(2)).network, nb.Lp(2))
    assert rep.max_relative < 1e-9


def test_batch_norm_in_training_mode_keeps_the_function_too():
    module, x = _randomised("cnn_bn", torch.float64)
    module.train()
    before = module(x).detach()
    nbt.balance_(module, nb.Lp(2), x)
    np.testing.assert_allclose(module(x).detach().numpy(), before.numpy(), rtol=1e-9, atol=1e-12)


def _one_step(module, optimizer, x, y):
    optimizer.zero_grad()
    nn.functional.cross_entropy(module(x), y).backward()
    optimizer.step()


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam", "adamw"])
def test_next_step_after_balance_is_the_unbalanced_step_mapped_through_the_scaling(kind):
    # grad L(S w) = grad L(w) / s and the buffers are carried as gradients taken at S w, so the next step
    # is delta / s for SGD and momentum, delta for Adam, and for AdamW Adam's part plus decay of S w
    module, x = _randomised("resnet", torch.float64)
    module.train()
    y = torch.randint(0, 10, (len(x),))
    lr, wd = 1e-2, 0.05
    make = {"sgd": lambda p: torch.optim.SGD(p, lr=lr), "momentum": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
            "adam": lambda p: torch.optim.Adam(p, lr=lr, eps=1e-30),
            "adamw": lambda p: torch.optim.AdamW(p, lr=lr, eps=1e-30, weight_decay=wd)}[kind]
    opt = make(module.parameters())
    for _ in range(3):
        _one_step(module, opt, x, y)
    twin = copy.deepcopy(module)
    twin_opt = make(twin.parameters())
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    before = {k: v.detach().clone() for k, v in module.named_parameters()}
    binding = nbt.from_module(twin, x)
    res = nbt.balance_(twin, nb.Lp(2), x, optimizer=twin_opt)
    scaled = {k: v.detach().clone() for k, v in twin.named_parameters()}
    factor = {k: scaled[k] / before[k] for k in before}
    _one_step(module, opt, x, y)
    _one_step(twin, twin_opt, x, y)
    assert any(torch.max(torch.abs(f - 1)) > 0.1 for f in factor.values())  # the balancing moved something
    for k, p in module.named_parameters():
        delta = p.detach() - before[k]
        delta_twin = dict(twin.named_parameters())[k].detach() - scaled[k]
        if kind in ("sgd", "momentum"):
            expected = delta / factor[k]
        elif kind == "adam":
            expected = delta
        else:  # decoupled decay acts on the weights themselves
            expected = (delta + lr * wd * before[k]) - lr * wd * scaled[k]
        np.testing.assert_allclose(delta_twin.numpy(), expected.numpy(), rtol=1e-7, atol=1e-12, err_msg=k)
    assert binding.network.n_parameters > 0 and res.converged


def test_to_module_carries_any_engines_rescaling_back():
    module, x = _randomised("cnn_bn", torch.float64)
    binding = nbt.from_module(module, x)
    balanced = nb.balance(binding.network, nb.Lp(1), method="stochastic", seed=3).network
    before = module(x).detach()
    u = nbt.to_module(balanced, module, x)
    assert any(np.any(v != 0) for v in u.values())
    got = nbt.from_module(module, x).network
    for proj in balanced.projections:
        np.testing.assert_allclose(got.projection(proj.name).weight, proj.weight, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(module(x).detach().numpy(), before.numpy(), rtol=1e-9, atol=1e-12)


def test_to_module_refuses_a_network_that_is_no_rescaling():
    module, x = _randomised("mlp", torch.float64)
    net = nbt.from_module(module, x).network
    net.projections[1].weight[0, 0] *= -3.0
    with pytest.raises(ModelError, match="not a rescaling"):
        nbt.to_module(net, module, x)


@pytest.mark.parametrize("module, message", [
    (nn.Sequential(nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 2)), "GELU is not supported"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 2 * 2, 2)), "dilation"),
    (nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, affine=False), nn.ReLU(), nn.Linear(4, 2)), "affine"),
], ids=["gelu", "dilation", "bn_no_affine"])
def test_unsupported_modules_are_refused_with_their_name(module, message):
    x = torch.zeros(2, 4) if not isinstance(module[0], nn.Conv2d) else torch.zeros(2, 1, 6, 6)
    with pytest.raises(ModelError, match=message):
        nbt.from_module(module, x)


def test_shared_module_is_refused():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(torch.relu(self.fc(x)))

    with pytest.raises(ModelError, match="fc: applied more than once"):
        nbt.from_module(Twice(), torch.zeros(1, 4))


def test_unsupported_optimizer_is_refused_before_anything_changes():
    module, x = _randomised("mlp")
    before = [p.detach().clone() for p in module.parameters()]
    with pytest.raises(ValueError, match="RMSprop is not supported"):
        nbt.balance_(module, nb.Lp(2), x, optimizer=torch.optim.RMSprop(module.parameters()))
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, module.parameters()))


def test_fit_balances_before_and_during_training_and_learns():
    torch.manual_seed(0)
    X = torch.randn(128, 6)
    y = (X[:, 0] + X[:, 1] > 0).long() + (X[:, 2] > 0.5).long()
    module = _mlp()
    opt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    batches = [(X[i:i + 32], y[i:i + 32]) for i in range(0, 128, 32)]
    history = nbt.fit(module, opt, nn.functional.cross_entropy, batches, epochs=8, example_input=X[:1],
                      balance="before+partial:2@L1")
    assert history[0]["epoch"] == 0 and history[0]["cost_after"] < history[0]["cost_before"]
    assert [h["epoch"] for h in history if "cost_after" in h] == [0, 2, 4, 6, 8]
    assert history[-1]["loss"] < history[1]["loss"]
