"""Random NIR graphs for the Brian2 NIR tests: a recipe drawn by hypothesis, the graph built with the nir package."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

nir = __import__("pytest").importorskip("nir")

SPIKING = ("IF", "LIF", "CubaLIF")
HIDDEN = SPIKING + ("LI", "CubaLI", "I")
OUTPUT = ("IF", "LIF", "LI")
SIM_DT = 1e-4
"""The Brian2 clock step of every test run (s); ``Recipe.h = None`` steps the graph by it (snnTorch's export)."""


@dataclass(frozen=True)
class Recipe:
    """What a random graph is made of (shown by hypothesis when a test fails).

    ``hidden`` and ``out`` are (model, size) pairs; the chain input -> hidden... -> out is dense, each
    projection an ``Affine`` (bias) or a ``Linear`` (``affine``). ``skip``: a ``Linear`` from the
    input to the output population. ``recurrent``: a ``Linear`` from hidden ``[a]`` back to hidden
    ``[b]`` (``b <= a``; ``a == b`` is a population onto itself, self-connections included). ``h``:
    the graph's Euler step (`NIRSteps.dt`; None: the simulation step ``SIM_DT``).
    """

    seed: int
    n_in: int
    hidden: tuple[tuple[str, int], ...]
    out: tuple[str, int]
    affine: tuple[bool, ...]
    skip: bool
    recurrent: tuple[int, int] | None
    h: float | None
    self_loops: bool = True

    @property
    def step(self) -> float:
        """The Euler step ``h`` in the unit of the time constants."""
        return SIM_DT if self.h is None else self.h


@st.composite
def recipes(draw, hidden_models=HIDDEN, max_hidden: int = 2, recurrent: bool | str | None = None,
            self_loops: bool = True) -> Recipe:
    """Random recipes: 1-``max_hidden`` hidden populations of ``hidden_models``, sizes 1-8, skips, a recurrent edge.

    ``recurrent``: None (drawn), False (none), True (any), ``"self"`` (a population onto itself) or
    ``"back"`` (from a later hidden population to an earlier one; two hidden populations then).
    """
    n_hidden = 2 if recurrent == "back" else draw(st.integers(1, max_hidden))
    hidden = tuple((draw(st.sampled_from(hidden_models)), draw(st.integers(1, 8))) for _ in range(n_hidden))
    out = (draw(st.sampled_from(OUTPUT)), draw(st.integers(1, 8)))
    rec = None
    if recurrent or (recurrent is None and draw(st.booleans())):
        a = draw(st.integers(1 if recurrent == "back" else 0, n_hidden - 1))
        b = a if recurrent == "self" else draw(st.integers(0, a - 1 if recurrent == "back" else a))
        rec = (a, b)
    return Recipe(draw(st.integers(0, 2**32 - 1)), draw(st.integers(1, 8)), hidden, out,
                  tuple(draw(st.booleans()) for _ in range(n_hidden + 1)), draw(st.booleans()), rec,
                  draw(st.sampled_from([None, 1.0, 0.5])), self_loops)


def neuron_node(rng: np.random.Generator, model: str, n: int, h: float):
    """A NIR neuron node with random parameters whose step ``h`` keeps the Euler update stable (``h / tau <= 1/2``).

    ``r`` is of order ``tau / h`` (snnTorch's export), so an input ``z`` moves the membrane by about ``z``
    per step, and potentials are of order 1: the units fire on a few steps in ten.
    """
    tau = h * rng.uniform(2.0, 20.0, n)
    tau_syn = h * rng.uniform(2.0, 6.0, n)
    gain = lambda t: t / h * rng.uniform(0.5, 1.5, n)  # noqa: E731
    theta = rng.uniform(0.5, 2.0, n)
    spiking = dict(v_threshold=theta, v_reset=-theta * rng.uniform(0.0, 0.5, n))
    leak = rng.normal(0.0, 0.2, n)
    if model == "IF":
        return nir.IF(r=rng.uniform(0.5, 2.0, n), **spiking)
    if model == "LIF":
        return nir.LIF(tau=tau, r=gain(tau), v_leak=leak, **spiking)
    if model == "CubaLIF":
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau, r=gain(tau), v_leak=leak, w_in=rng.uniform(0.5, 2.0, n),
                           **spiking)
    if model == "LI":
        return nir.LI(tau=tau, r=gain(tau), v_leak=leak)
    if model == "CubaLI":
        return nir.CubaLI(tau_syn=tau_syn, tau_mem=tau, r=gain(tau), v_leak=leak, w_in=rng.uniform(0.5, 2.0, n))
    if model == "I":
        return nir.I(r=rng.uniform(0.05, 0.2, n))
    raise ValueError(f"unknown model {model!r}")


def _step_gain(node, h: float) -> np.ndarray:
    """How far one step moves a graded unit's output per unit of steady input ``z`` (its loop gain per step)."""
    if isinstance(node, nir.I):
        return h * node.r
    if isinstance(node, nir.LI):
        return h / node.tau * node.r
    return h / node.tau_mem * node.r * node.w_in  # CubaLI at its current's steady state


def _weight(rng: np.random.Generator, n_out: int, n_in: int, gain: float) -> np.ndarray:
    """Gaussian weights with log-normal row and column gains: units start far from balance."""
    w = rng.normal(1.0, 1.0, (n_out, n_in)) * gain / np.sqrt(n_in)  # mostly excitatory: most units fire
    return w * np.exp(0.5 * rng.normal(size=(n_out, 1))) * np.exp(0.5 * rng.normal(size=(1, n_in)))


def graph(recipe: Recipe):
    """The NIR graph of ``recipe`` (nodes ``input``, ``h0``..., ``out``; weight nodes ``w0``..., ``skip``, ``rec``)."""
    rng = np.random.default_rng(recipe.seed)
    h = recipe.step
    pops = [("input", recipe.n_in)] + [(f"h{k}", n) for k, (_, n) in enumerate(recipe.hidden)] + [("out", recipe.out[1])]
    models = [m for m, _ in recipe.hidden] + [recipe.out[0]]
    nodes = {"input": nir.Input(input_type={"input": np.array([recipe.n_in])}),
             "output": nir.Output(output_type={"output": np.array([recipe.out[1]])})}
    edges = []
    for k, ((pre, n_pre), (post, n_post)) in enumerate(zip(pops[:-1], pops[1:])):
        w = _weight(rng, n_post, n_pre, 2.0)
        nodes[f"w{k}"] = (nir.Affine(weight=w, bias=rng.normal(0.0, 0.3, n_post)) if recipe.affine[k]
                          else nir.Linear(weight=w))
        nodes[post] = neuron_node(rng, models[k], n_post, h)
        edges += [(pre, f"w{k}"), (f"w{k}", post)]
    edges.append(("out", "output"))
    if recipe.skip:
        nodes["skip"] = nir.Linear(weight=_weight(rng, recipe.out[1], recipe.n_in, 1.0))
        edges += [("input", "skip"), ("skip", "out")]
    if recipe.recurrent is not None:
        a, b = recipe.recurrent
        w = _weight(rng, pops[b + 1][1], pops[a + 1][1], 0.7)
        if a == b and not recipe.self_loops:
            np.fill_diagonal(w, 0.0)
        if models[b] not in SPIKING:  # a graded loop: keep its gain per step below 1.002, so 1000 steps stay finite
            w *= 2e-3 / max(np.linalg.norm(_step_gain(nodes[f"h{b}"], h)[:, None] * w, 2), 1e-300)
        nodes["rec"] = nir.Linear(weight=w)
        edges += [(f"h{a}", "rec"), ("rec", f"h{b}")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def input_spikes(seed: int, steps: int, n: int, p: float = 0.4) -> np.ndarray:
    """Binary input ``(steps, n)``: each unit fires on a step with probability ``p``."""
    return (np.random.default_rng([seed, 1]).random((steps, n)) < p).astype(np.float64)
