"""Values no other test pins, each derived by hand here, so that a wrong constant or branch fails.

* Loihi's default membrane range is ``+-(2**23 - 1)`` (nengo-loihi's ``VMAX``, lava's ``vmax``). The
  golden replay passes ``vmin``/``vmax`` explicitly, and a positive saturation never shows in ``v``: the
  largest threshold, ``(2**17 - 1) << 6 = 2**23 - 64``, is below it, so such a ``v`` spikes and resets in
  the same step. It shows in the saturation count and in which ``vmax`` is accepted.
* `spike_counts` for reset to zero divides in float64 below ``2**52`` and in int64 above it; the
  int64 branch is checked against a neuron stepped with Python integers.
* The PyTorch adapter's Adam moments after a rescaling: those of Adam's first step taken on the
  rescaled module itself (its own autograd gradient), ``(1 - b1) g`` and ``(1 - b2) g**2``.
* The reference dynamics' absolute reset (``reset="value"``, NIR's ``v = v_reset`` on a spike): spike
  trains and membrane traces worked out step by step below.
"""
from __future__ import annotations

import numpy as np
import pytest

from neuro_balance.hardware.integer_pass import spike_counts
from neuro_balance.hardware.neurons import LoihiCUBA
from neuro_balance.model.dynamics import run_steps
from neuro_balance.model.network import Network, Population, Projection
from neuro_balance.model.neurons import Neuron

VTH_MAX = (2**17 - 1) << 6    # 8388544 = 2**23 - 64, the largest Loihi threshold


# ---------------------------------------------------------------------------- Loihi's default v range
@pytest.mark.parametrize("v0, saturated", [(VTH_MAX, 1), (VTH_MAX - 1, 0)])
def test_loihi_default_membrane_saturates_at_2_to_23_minus_1(v0, saturated):
    # du = 4095 makes u this step's input: a = 1 enters as q = 1 << 6 = 64. dv = 0 keeps v, so
    # v = v0 + 64: 2**23 (one above the range: clipped to 2**23 - 1, counted) or 2**23 - 1 (inside).
    # Either value is above the threshold 2**23 - 64: a spike, and v resets to 0.
    n = LoihiCUBA(1, du=4095, dv=0, vth_mant=2**17 - 1)
    n.v[:] = v0
    assert n.step(np.array([1])).tolist() == [True]
    assert n.overflow["v"] == saturated and n.v.tolist() == [0]


def test_loihi_default_membrane_range_refuses_a_vmax_of_2_to_23():
    assert LoihiCUBA(1, vmax=2**23 - 1).v.tolist() == [0]
    with pytest.raises(ValueError, match="vmax must be in -8388607..8388607"):
        LoihiCUBA(1, vmax=2**23)
    with pytest.raises(ValueError, match="vmin must be in -8388607..8388607"):
        LoihiCUBA(1, vmin=-(2**23))


# ---------------------------------------------------------------------------- int64 spike counts
def _stepped(current: int, theta: int, window: int, strict: bool) -> int:
    """Spikes of a non-leaky neuron reset to zero, with a constant whole input, in Python integers."""
    v = count = 0
    for _ in range(window):
        v += current
        if v > theta if strict else v >= theta:
            count, v = count + 1, 0
    return count


@pytest.mark.parametrize("compare", ["gt", "ge"])
def test_reset_to_zero_spike_counts_above_2_to_52_are_those_of_a_stepped_neuron(compare):
    # theta * window and the accumulators lie far above 2**52 (the int64 branch), below 2**63.
    window, theta = 32, 105 * 2**50                      # 105 = 3 * 5 * 7: exact divisors below
    currents = [theta // m + d for m in range(1, 12) for d in (-1, 0, 1)] + [theta + 1, 2 * theta, 1, 0, -7]
    acc = np.array([c * window for c in currents], dtype=np.int64)
    assert acc.max() > 2**52 and theta * window < 2**63
    got = spike_counts(acc, np.array(theta, dtype=np.int64), window, "zero", compare)
    expected = [_stepped(c, theta, window, compare == "gt") for c in currents]
    assert got.tolist() == expected
    # the exact divisors are where gt and ge differ: theta / 3 crosses in 3 steps (ge) or 4 (gt)
    assert expected[3 * 2 + 1] == (window // 3 if compare == "ge" else window // 4)


# ---------------------------------------------------------------------------- Adam moments, rescaled
@pytest.mark.torch
def test_adam_moments_after_a_rescaling_are_those_of_the_rescaled_modules_own_gradient():
    torch = pytest.importorskip("torch")
    import neuro_balance.torch as nbt

    torch.manual_seed(3)
    nn = torch.nn
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    x, y = torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 2, dtype=torch.float64)
    b1, b2 = 0.8, 0.9

    def gradient(m):
        m.zero_grad()
        ((m(x) - y) ** 2).sum().backward()
        return [p.grad.clone() for p in m.parameters()]

    # the rescaled module, by hand: hidden unit i's incoming row and bias times 2**k_i, its outgoing column
    # times 2**-k_i (powers of two, so the rescaled gradients are exact)
    k = torch.tensor([3.0, -2.0, 1.0, 0.0], dtype=torch.float64)
    scaled = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        scaled[0].weight.copy_(module[0].weight * 2 ** k[:, None])
        scaled[0].bias.copy_(module[0].bias * 2 ** k)
        scaled[2].weight.copy_(module[2].weight * 2 ** -k[None, :])
        scaled[2].bias.copy_(module[2].bias)
    g_scaled = gradient(scaled)

    # Adam's first step on the original module, then the rescaling carried into its state
    opt = torch.optim.Adam(module.parameters(), lr=1e-3, betas=(b1, b2), amsgrad=True)
    gradient(module)
    opt.step()
    binding = nbt.from_module(module, x)
    [hidden] = [name for name, pop in binding.network.populations.items() if pop.balanced]
    nbt.apply_log_scales(module, binding, {hidden: (k * np.log(2.0)).numpy()}, opt)
    for param, g in zip(module.parameters(), g_scaled):
        state = opt.state[param]
        torch.testing.assert_close(state["exp_avg"], (1 - b1) * g, rtol=1e-13, atol=0)
        torch.testing.assert_close(state["exp_avg_sq"], (1 - b2) * g * g, rtol=1e-13, atol=0)
        torch.testing.assert_close(state["max_exp_avg_sq"], (1 - b2) * g * g, rtol=1e-13, atol=0)


# ---------------------------------------------------------------------------- absolute v_reset
def _one_unit(model: str, weight: float, **params: float) -> Network:
    neuron = Neuron(model, {k: np.array([v]) for k, v in params.items()})
    return Network([Population("input", 1, "input", "linear"),
                    Population("out", 1, "output", "linear", neuron=neuron)],
                   [Projection("input", "out", np.array([[weight]]))])


def _trace(net: Network, steps: int, reset: str) -> tuple[list[float], list[float]]:
    """Spike train and membrane after every step, for an input spike on every step."""
    spikes = run_steps(net, np.ones((steps, 1, 1)), reset=reset).outputs["out"][:, 0, 0]
    membranes = [float(run_steps(net, np.ones((t, 1, 1)), reset=reset).membranes["out"][0, 0])
                 for t in range(1, steps + 1)]
    return spikes.tolist(), membranes


def test_if_unit_resets_to_the_absolute_v_reset():
    # IF, r = 1, dt = 1: v += 0.75 each step; v > 1 spikes and v becomes -0.5 (not 0, not v - 1,
    # not v + 0.5): 0.75, 1.5 -> -0.5, 0.25, 1.0 (not > 1), 1.75 -> -0.5, 0.25, 1.0, 1.75 -> -0.5
    net = _one_unit("IF", 0.75, r=1.0, v_threshold=1.0, v_reset=-0.5)
    spikes, v = _trace(net, 8, "value")
    assert spikes == [0, 1, 0, 0, 1, 0, 0, 1]
    assert v == [0.75, -0.5, 0.25, 1.0, -0.5, 0.25, 1.0, -0.5]
    # the subtractive reset of the same unit: 0.75, 1.5 -> 0.5, 1.25 -> 0.25, 1.0, 1.75 -> 0.75, 1.5 -> 0.5
    spikes, v = _trace(net, 6, "subtract")
    assert spikes == [0, 1, 1, 0, 1, 1] and v == [0.75, 0.5, 0.25, 1.0, 0.75, 0.5]


def test_lif_unit_resets_to_the_absolute_v_reset_and_leaks_towards_v_leak():
    # LIF, tau = 2, dt = 1, r = 1, z = 1.75: v += (0.25 - v + 1.75) / 2, i.e. v = v / 2 + 1. Threshold
    # 1.5, reset to +0.5: 1.0, 1.5 (not > 1.5), 1.75 -> 0.5, 1.25, 1.625 -> 0.5, 1.25, 1.625 -> 0.5
    net = _one_unit("LIF", 1.75, tau=2.0, r=1.0, v_leak=0.25, v_threshold=1.5, v_reset=0.5)
    spikes, v = _trace(net, 8, "value")
    assert spikes == [0, 0, 1, 0, 1, 0, 1, 0]
    assert v == [1.0, 1.5, 0.5, 1.25, 0.5, 1.25, 0.5, 1.25]
