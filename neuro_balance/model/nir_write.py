"""`to_nir`: a `Network` as a NIR graph, and `write_nir`: that graph as a ``.nir`` file, atomically.

The inverse of `neuro_balance.model.nir_read` (its module docstring has the mapping). Populations
become nodes of their own name: the input an ``Input``, a population with a `Neuron` its NIR neuron
node, an output without one an ``Output`` (linear activation only). A hidden ``relu`` population
without a neuron model becomes the unit that computes ReLU as a rate, an ``IF`` node with ``r = 1``,
``v_threshold = 1``, ``v_reset = 0`` (the usual rate conversion, reset by subtraction), marked in its
metadata so that `from_nir` reads a plain ``relu`` population back. Projections become their
chain: dense ``[Flatten] -> Affine | Linear``, conv2d ``[SumPool2d | AvgPool2d] -> Conv2d``,
elementwise ``Scale``. A population's bias goes on its first incoming dense or conv2d projection
(an ``Affine``, or the ``Conv2d``'s bias); the others carry none (``Linear``, zero ``Conv2d`` bias).
Arrays are written as float64, values unchanged.

`check_readable_by` says whether a framework's NIR importer takes what a network's file would hold:
snnTorch's takes one ``v_threshold`` per IF, LIF or CubaLIF layer ("v_threshold must be same for all
neurons"), sinabs's and the NIR standard take one per neuron.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .conv import geometry
from .network import Network, Population
from .nir_read import ACTIVATION_KEY, GROUND_KEY, NAME_KEY, recurrent_edges

__all__ = ["to_nir", "write_nir", "check_readable_by", "READERS"]

READERS = ("nir", "snntorch", "sinabs")  # the NIR standard, and frameworks whose importers differ from it


def _population_node(pop: Population) -> Any:
    import nir

    meta = {GROUND_KEY: 1} if pop.ground else {}
    if pop.neuron is not None:
        shape = pop.neuron.shape
        return getattr(nir, pop.neuron.model)(**{k: v.reshape(shape).copy() for k, v in pop.neuron.params.items()},
                                              metadata=meta)
    if pop.role == "hidden":
        if pop.activation.spec != "relu":
            raise ModelError(f"populations[{pop.name!r}].activation: {pop.activation.spec} has no NIR node "
                             "(only relu, written as a rate-coded IF unit, and NIR neuron models)")
        shape = pop.shape or (pop.size,)
        return nir.IF(r=np.ones(shape), v_threshold=np.ones(shape), v_reset=np.zeros(shape),
                      metadata={ACTIVATION_KEY: "relu", **meta})
    if pop.activation.spec != "linear":
        raise ModelError(f"populations[{pop.name!r}].activation: an output without a neuron model must be linear "
                         f"to be a NIR Output, got {pop.activation.spec}")
    if pop.shape is not None:
        raise ModelError(f"populations[{pop.name!r}].shape: a NIR Output read by the toolkit is a vector")
    return nir.Output(output_type={"output": np.array([pop.size])})


def _chain(net: Network, proj, bias: np.ndarray | None) -> list[tuple[str, Any]]:
    import nir

    pre, post = net.populations[proj.pre], net.populations[proj.post]
    where = f"projections ({proj.name})"
    if proj.kind == "dense":
        chain = []
        if pre.shape is not None:
            chain.append((f"{proj.name}.flatten", nir.Flatten(input_type={"input": np.array(pre.shape)},
                                                              start_dim=0, end_dim=-1)))
        weight = proj.weight.copy()
        chain.append((proj.name, nir.Linear(weight=weight) if bias is None else nir.Affine(weight=weight, bias=bias)))
        return chain
    if proj.kind == "conv2d":
        geo = geometry(proj.options, pre.shape)
        chain = []
        if geo.pool is not None:
            if geo.pool.kind == "max":
                raise ModelError(f"{where}.pool: NIR has no max pooling node")
            cls = nir.SumPool2d if geo.pool.kind == "sum" else nir.AvgPool2d
            chain.append((f"{proj.name}.pool", cls(kernel_size=np.array(geo.pool.size), stride=np.array(geo.pool.stride),
                                                   padding=np.array([0, 0]))))
        conv_bias = bias if bias is not None else np.zeros(post.shape[0])
        chain.append((proj.name, nir.Conv2d(input_shape=tuple(geo.in_shape[1:]), weight=proj.weight.copy(),
                                            stride=geo.stride, padding=geo.padding, dilation=(1, 1),
                                            groups=geo.groups, bias=conv_bias)))
        return chain
    if proj.kind == "elementwise":
        return [(proj.name, nir.Scale(scale=proj.weight.copy()))]
    raise ModelError(f"{where}.kind: {proj.kind} has no NIR node (dense, conv2d and elementwise do)")


def to_nir(net: Network) -> Any:
    """The NIR graph of ``net`` (see the module docstring for the mapping).

    Parameters
    ----------
    net : Network

    Returns
    -------
    nir.NIRGraph

    Raises
    ------
    ModelError
        For what NIR cannot express (another activation, max pooling, locally connected
        projections, a delay-1 projection that closes no cycle, ...), naming the population or
        projection.
    """
    import nir

    nodes: dict[str, Any] = {}
    for pop in net.populations.values():
        if "/" in pop.name:
            raise ModelError(f"populations[{pop.name!r}].name: NIR node names must not contain '/'")
        if pop.role == "input":
            nodes[pop.name] = nir.Input(input_type={"input": np.array(pop.shape or (pop.size,))})
        else:
            nodes[pop.name] = _population_node(pop)
    carrier: dict[str, str] = {}
    for proj in net.projections:
        if proj.kind in ("dense", "conv2d") and net.populations[proj.post].bias is not None:
            carrier.setdefault(proj.post, proj.name)
    for pop in net.populations.values():
        if pop.bias is not None and pop.name not in carrier:
            raise ModelError(f"populations[{pop.name!r}].bias: NIR carries a bias on an Affine or Conv2d node, and "
                             f"no dense or conv2d projection enters {pop.name!r}")
    edges: list[tuple[str, str]] = []
    ordered = [p for p in net.projections if p.delay == 0] + [p for p in net.projections if p.delay == 1]
    for proj in ordered:
        bias = net.populations[proj.post].bias if carrier.get(proj.post) == proj.name else None
        chain = _chain(net, proj, None if bias is None else bias.copy())
        previous = proj.pre
        for node_name, node in chain:
            if node_name in nodes:
                raise ModelError(f"projections ({proj.name}).name: NIR node name {node_name!r} is already used")
            nodes[node_name] = node
            edges.append((previous, node_name))
            previous = node_name
        edges.append((previous, proj.post))
    back = recurrent_edges([(p.pre, p.post) for p in ordered], net.input.name)
    for proj in ordered:
        if ((proj.pre, proj.post) in back) != (proj.delay == 1):
            raise ModelError(f"projections ({proj.name}).delay: NIR has no delay on an edge; a recurrent edge must "
                             f"close a cycle and a delay-0 edge must not, but {proj.pre!r} -> {proj.post!r} has "
                             f"delay {proj.delay}")
    out = net.output
    if out.neuron is not None:
        out_node = "output" if "output" not in nodes else f"{out.name}.output"
        nodes[out_node] = nir.Output(output_type={"output": np.array(out.neuron.shape)})
        edges.append((out.name, out_node))
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata={NAME_KEY: net.name}, type_check=False)
    except (ValueError, AssertionError) as err:
        raise ModelError(f"graph: nir refused the graph: {err}") from None


def write_nir(net: Network, path: str | os.PathLike) -> Path:
    """Write ``net`` as a NIR (HDF5) file at ``path``, atomically; returns the path."""
    import nir

    from .files import atomic_output

    path = Path(path)
    graph = to_nir(net)
    with atomic_output(path) as tmp:
        nir.write(tmp, graph)
    return path


def check_readable_by(net: Network, reader: str, source: str | os.PathLike | None = None) -> None:
    """Raise `ModelError` where ``reader``'s NIR importer would refuse the file of ``net`` (module docstring).

    Parameters
    ----------
    net : Network
    reader : {"nir", "snntorch", "sinabs"}
        ``snntorch``: every spiking population has one threshold; ``nir`` and ``sinabs`` take one per neuron.
    source : path-like, optional
        The file ``net`` was read from, named in the message.

    Raises
    ------
    ModelError
        Naming the population, its neuron model and its thresholds.
    ValueError
        For an unknown ``reader``.
    """
    if reader not in READERS:
        raise ValueError(f"reader must be one of {READERS}, got {reader!r}")
    if reader != "snntorch":
        return
    prefix = f"{source}: " if source else ""
    for name, pop in net.populations.items():
        if pop.neuron is None or "v_threshold" not in pop.neuron.params:
            continue
        values = np.unique(pop.neuron.params["v_threshold"])
        if values.size > 1:
            raise ModelError(f"{prefix}populations[{name!r}].neuron.v_threshold: snnTorch's importer takes one "
                             f"threshold per {pop.neuron.model} layer ('v_threshold must be same for all neurons'); "
                             f"this one has {values.size}, from {values[0]:.6g} to {values[-1]:.6g}")
