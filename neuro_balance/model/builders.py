"""Builders for common architectures; every builder returns a validated `Network`.

Weights use He-style initialisation (normal, std ``sqrt(2 / fan_in)``), biases small normals.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..seeding import check_random_state
from .network import Network, Population, Projection

__all__ = ["mlp", "dag", "rnn"]


def _he(rng: np.random.Generator, n_out: int, n_in: int) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_out, n_in))


def _populations(sizes: Sequence[int], activation: str | Sequence[str], bias: bool, output_activation: str,
                 rng: np.random.Generator) -> list[Population]:
    hidden = len(sizes) - 2
    acts = [activation] * hidden if isinstance(activation, str) else list(activation)
    if len(acts) != hidden:
        raise ValueError(f"activation: {hidden} hidden layers need {hidden} activations, got {len(acts)}")
    pops = [Population("in", int(sizes[0]), "input", "linear")]
    for k in range(hidden):
        b = rng.normal(0.0, 0.1, size=int(sizes[k + 1])) if bias else None
        pops.append(Population(f"h{k + 1}", int(sizes[k + 1]), "hidden", acts[k], b))
    b = rng.normal(0.0, 0.1, size=int(sizes[-1])) if bias else None
    pops.append(Population("out", int(sizes[-1]), "output", output_activation, b))
    return pops


def mlp(sizes: Sequence[int], activation: str | Sequence[str] = "relu", bias: bool = True, seed: int |
        np.random.Generator = 0, output_activation: str = "linear", name: str = "mlp") -> Network:
    """A layered fully connected network ``in -> h1 -> ... -> out``.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, input first, at least two entries.
    activation : str or sequence of str
        Hidden activation, one for all hidden layers or one per layer (mixed activations).
    bias : bool
        Give hidden and output units a bias.
    seed : int or numpy.random.Generator
    output_activation : str

    Examples
    --------
    >>> net = mlp([64, 32, 32, 10], seed=0)
    >>> [p.size for p in net.populations.values()]
    [64, 32, 32, 10]
    """
    if len(sizes) < 2:
        raise ValueError("sizes: an MLP needs at least an input and an output layer")
    rng = check_random_state(seed)
    pops = _populations(sizes, activation, bias, output_activation, rng)
    projs = [Projection(a.name, b.name, _he(rng, b.size, a.size)) for a, b in zip(pops[:-1], pops[1:])]
    return Network(pops, projs, name)


def dag(sizes: Sequence[int], skips: Sequence[tuple[int, int]] = ((0, 2),), activation: str | Sequence[str] = "relu",
        bias: bool = True, seed: int | np.random.Generator = 0, output_activation: str = "linear",
        name: str = "dag") -> Network:
    """A layered network plus skip projections from layer ``i`` to layer ``j > i + 1``.

    Skip projections add into their target, as in residual networks without a shared identity.

    Parameters
    ----------
    sizes : sequence of int
    skips : sequence of (int, int)
        Layer indices (0 = input, ``len(sizes) - 1`` = output) of each skip projection.
    """
    rng = check_random_state(seed)
    pops = _populations(sizes, activation, bias, output_activation, rng)
    projs = [Projection(a.name, b.name, _he(rng, b.size, a.size)) for a, b in zip(pops[:-1], pops[1:])]
    for i, j in skips:
        if not 0 <= i < j - 1 < len(pops) - 1:
            raise ValueError(f"skips: ({i}, {j}) is not a skip between layers 0..{len(pops) - 1}")
        projs.append(Projection(pops[i].name, pops[j].name, _he(rng, pops[j].size, pops[i].size)))
    return Network(pops, projs, name)


def rnn(n_in: int, hidden: Sequence[int], n_out: int, activation: str | Sequence[str] = "relu", bias: bool = True,
        seed: int | np.random.Generator = 0, spectral_radius: float = 0.9, self_loops: bool = True,
        output_activation: str = "linear", name: str = "rnn") -> Network:
    """A stacked recurrent network: each hidden layer has a delay-1 projection onto itself.

    Parameters
    ----------
    n_in, n_out : int
    hidden : sequence of int
        Sizes of the recurrent hidden layers.
    spectral_radius : float
        The recurrent matrices are rescaled to this spectral radius (stable dynamics).
    self_loops : bool
        Keep the diagonal of the recurrent matrices (self-connections) or zero it.
    """
    rng = check_random_state(seed)
    sizes = [n_in, *hidden, n_out]
    pops = _populations(sizes, activation, bias, output_activation, rng)
    projs = [Projection(a.name, b.name, _he(rng, b.size, a.size)) for a, b in zip(pops[:-1], pops[1:])]
    for pop in pops[1:-1]:
        w = rng.normal(0.0, 1.0, size=(pop.size, pop.size))
        if not self_loops:
            np.fill_diagonal(w, 0.0)
        radius = np.max(np.abs(np.linalg.eigvals(w)))
        projs.append(Projection(pop.name, pop.name, w * (spectral_radius / radius if radius > 0 else 1.0), delay=1))
    return Network(pops, projs, name)
