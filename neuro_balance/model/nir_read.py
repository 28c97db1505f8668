"""`from_nir`: a NIR graph (or ``.nir`` file) as a `Network`, validated node by node.

Mapping (NIR node -> toolkit):

* ``Input`` -> the input population (``shape (n,)`` a vector, ``(C, H, W)`` a feature map);
* ``IF``, ``LIF``, ``CubaLIF`` (spiking, activation ``relu``: their rate model) and ``LI``,
  ``CubaLI``, ``I`` (activation ``linear``) -> a population carrying a `Neuron` (its parameters);
  a feature map is one unit per channel;
* ``Output`` -> the output population: the neuron node that feeds it when it is fed by exactly one
  neuron node, otherwise a linear population of its own receiving projections;
* the chain of nodes on the way from one population node to the next -> one projection named
  after its weight node: ``[Flatten] -> Affine | Linear`` (dense), ``[SumPool2d | AvgPool2d] ->
  Conv2d`` (conv2d, the pool as its ``pool`` option), ``Scale`` (elementwise). ``Affine`` and
  ``Conv2d`` biases become the post population's bias (several add up);
* several edges into one node add (skip connections); an edge that closes a cycle, met in a depth-
  first walk from the input that follows the file's edge order, is recurrent (``delay: 1``: it reads
  the previous step).

Nested graphs (snnTorch's recurrent layers) are flattened first, their inner nodes named
``"{graph}.{node}"``. Anything else (``Delay``, ``Threshold``, ``Conv1d``, dilated convolutions,
padded pooling, a weight node feeding several nodes, ...) is refused with a `ModelError` naming the
node and the field.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError, UntrustedFileError
from . import elementwise  # noqa: F401  (registers the elementwise kind)
from .network import Network, Population, Projection
from .neurons import NEURON_MODELS, Neuron
from .nir_hdf5 import read_tree
from .safe_yaml import reason, short

__all__ = ["from_nir", "read_nir_graph", "ACTIVATION_KEY", "NAME_KEY", "GROUND_KEY", "recurrent_edges"]

ACTIVATION_KEY = "neuro_balance.activation"  # node metadata: a plain unit written as an IF node
NAME_KEY = "neuro_balance.name"  # graph metadata: the network's name
GROUND_KEY = "neuro_balance.ground"  # node metadata: a hidden population held at scale 1
_WEIGHTS = ("Affine", "Linear", "Conv2d", "Scale")
_SHAPERS = ("Flatten", "SumPool2d", "AvgPool2d")
SUPPORTED = ("Input", "Output") + tuple(NEURON_MODELS) + _WEIGHTS + _SHAPERS


def read_nir_graph(path: str | os.PathLike) -> Any:
    """Read a ``.nir`` (HDF5) file as a ``nir.NIRGraph``; any failure is a one-line `ModelError` naming the node.

    The file is untrusted: it is read with `neuro_balance.model.nir_hdf5.read_tree` (a regular file
    only, every dataset checked against its stored size before it is read), and each node is built
    on its own, so an error names it.
    """
    import nir  # the optional heavy imports happen only here

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        tree = read_tree(path)
    except OSError as err:
        raise ModelError(f"{path}: not a readable NIR file ({err.strerror or type(err).__name__})") from None
    except UntrustedFileError as err:
        raise ModelError(f"{path}: not a readable NIR file ({err})") from None
    try:  # our own checks name node and field; nir's type check rejects grouped convolutions
        return _nir_node(nir, tree, "")
    except ModelError as err:
        raise ModelError(f"{path}: {err}") from None


def _nir_node(nir: Any, data: Any, name: str) -> Any:
    """The NIR node of one group of the file (``name`` its dotted path, '' for the whole graph)."""
    label = f"node {name!r}" if name else "graph"
    if not isinstance(data, dict):
        raise ModelError(f"{label}: a dataset where a node group belongs")
    kind = data.get("type")
    if not isinstance(kind, str) or not isinstance(getattr(nir, kind, None), type) \
            or not issubclass(getattr(nir, kind), nir.NIRNode):
        raise ModelError(f"{label}.type: {short(kind)} is not a NIR node type")
    if kind == "NIRGraph":
        nodes, edges = data.get("nodes", {}), data.get("edges", np.zeros((0, 2), dtype=object))
        if not isinstance(nodes, dict):
            raise ModelError(f"{label}.nodes: must be a group of nodes")
        edges = np.asarray(edges, dtype=object)
        if edges.size and (edges.ndim != 2 or edges.shape[1] != 2):
            raise ModelError(f"{label}.edges: must be pairs of node names, got shape {list(edges.shape)}")
        pairs = []
        for a, b in edges.reshape(-1, 2):
            ends = tuple(e.decode("utf-8", "replace") if isinstance(e, bytes) else e for e in (a, b))
            if not all(isinstance(e, str) for e in ends):
                raise ModelError(f"{label}.edges: must be pairs of node names, got {short((a, b))}")
            pairs.append(ends)
        meta = data.get("metadata", {})
        children = {str(k): _nir_node(nir, v, f"{name}.{k}" if name else str(k)) for k, v in nodes.items()}
        try:
            return nir.NIRGraph(nodes=children, edges=pairs, metadata=meta if isinstance(meta, dict) else {},
                                type_check=False)
        except Exception as err:  # noqa: BLE001 - nir's own checks raise many types
            raise ModelError(f"{label}: not a valid NIRGraph ({reason(err)})") from None
    try:
        return nir.dict2NIRNode(data)
    except Exception as err:  # noqa: BLE001 - a missing or extra field, a wrong shape: nir raises many types
        raise ModelError(f"{label}: not a valid {kind} node ({reason(err)})") from None


def _integers(value: Any, where: str) -> list[int]:
    """The integers of a scalar or 1-D value (whole floats allowed), or a `ModelError` naming ``where``."""
    try:
        array = np.asarray(value)
        ok = array.ndim <= 1 and (array.dtype.kind in "iu" or (
            array.dtype.kind == "f" and bool(np.all(np.isfinite(array))) and bool(np.all(array == np.round(array)))))
    except Exception:  # noqa: BLE001 - a value numpy cannot hold as an array at all
        ok = False
    if not ok:
        raise ModelError(f"{where}: must be integers, got {short(value)}")
    return [int(v) for v in array.ravel()]


def _shape(value: Any, where: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        value = next(iter(value.values()), None)
        return None if value is None else _shape(value, where)
    return tuple(_integers(value, where))


def _text(value: Any) -> str | None:
    """A metadata string (HDF5 gives bytes or str), or None when it is not one."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _flatten(nodes: dict, edges: list, prefix: str = "") -> tuple[dict, list]:
    """Inline nested graphs: inner nodes become ``"{graph}.{node}"``; their Input/Output are contracted."""
    import nir

    flat, flat_edges, passthrough = {}, [], set()
    ports: dict[str, tuple[str, str]] = {}
    for name, node in nodes.items():
        full = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            inner, inner_edges = _flatten(node.nodes, node.edges, f"{full}.")
            ins = [f"{full}.{k}" for k, n in node.nodes.items() if isinstance(n, nir.Input)]
            outs = [f"{full}.{k}" for k, n in node.nodes.items() if isinstance(n, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise ModelError(f"node {full!r}: a nested graph needs one Input and one Output node")
            ports[full] = (ins[0], outs[0])
            passthrough.update((ins[0], outs[0]))
            flat.update(inner)
            flat_edges += inner_edges
        else:
            flat[full] = node
    for a, b in edges:
        a, b = f"{prefix}{a}", f"{prefix}{b}"
        flat_edges.append((ports[a][1] if a in ports else a, ports[b][0] if b in ports else b))
    for name in passthrough:  # connect every predecessor of an inner port to every successor
        preds = [a for a, b in flat_edges if b == name]
        succs = [b for a, b in flat_edges if a == name]
        flat_edges = [(a, b) for a, b in flat_edges if name not in (a, b)] + [(a, b) for a in preds for b in succs]
        del flat[name]
    return flat, flat_edges


def recurrent_edges(order: list[tuple[str, str]], start: str) -> set[tuple[str, str]]:
    """Edges that close a cycle in a depth-first walk from ``start`` following ``order`` (back edges)."""
    succ: dict[str, list[str]] = {}
    for a, b in order:
        succ.setdefault(a, []).append(b)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back = set()
    stack = [(start, iter(succ.get(start, [])))]
    state[start] = 1
    while stack:
        node, it = stack[-1]
        nxt = next(it, None)
        if nxt is None:
            state[node] = 2
            stack.pop()
        elif state.get(nxt) == 1:
            back.add((node, nxt))
        elif nxt not in state:
            state[nxt] = 1
            stack.append((nxt, iter(succ.get(nxt, []))))
    return back


def _array(node: Any, name: str, field: str) -> np.ndarray:
    value = getattr(node, field)
    try:
        value = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelError(f"node {name!r}.{field}: must be an array of numbers, got {type(value).__name__}") from None
    if not np.all(np.isfinite(value)):
        raise ModelError(f"node {name!r}.{field}: contains NaN or Inf")
    return value


def _pair(node: Any, name: str, field: str, allowed: tuple[int, ...] | None = None) -> list[int]:
    value = getattr(node, field)
    if isinstance(value, str):
        raise ModelError(f"node {name!r}.{field}: {short(value)} is not supported; give integers")
    items = _integers(value, f"node {name!r}.{field}")
    if len(items) not in (1, 2) or (allowed is not None and any(v not in allowed for v in items)):
        raise ModelError(f"node {name!r}.{field}: {short(items)} is not supported"
                         + (f" (only {list(allowed)})" if allowed else ""))
    return items * 2 if len(items) == 1 else items


def _group_count(node: Any, name: str) -> int:
    """A Conv2d node's ``groups``: one positive integer."""
    groups = _integers(node.groups, f"node {name!r}.groups")
    if len(groups) != 1 or groups[0] < 1:
        raise ModelError(f"node {name!r}.groups: must be one positive integer, got {short(node.groups)}")
    return groups[0]


def _neuron_population(name: str, node: Any, kind: str) -> Population:
    params = {field: _array(node, name, field) for field in NEURON_MODELS[kind]}
    if kind in ("CubaLIF", "CubaLI"):  # nir broadcasts w_in; keep the node's shape
        params["w_in"] = np.broadcast_to(params["w_in"], params["r"].shape).copy()
    try:
        neuron = Neuron(kind, params)
    except ModelError as err:
        raise ModelError(f"node {name!r}: {err}") from None
    shape = neuron.shape
    if len(shape) not in (1, 3) or min(shape, default=0) < 1:
        raise ModelError(f"node {name!r}.{NEURON_MODELS[kind][0]}: shape {list(shape)} is not (n,) or (C, H, W)")
    meta = getattr(node, "metadata", None)
    meta = meta if isinstance(meta, dict) else {}
    plain = meta.get(ACTIVATION_KEY)
    if plain is not None and _text(plain) is None:
        raise ModelError(f"node {name!r}.metadata.{ACTIVATION_KEY}: must be a string, got {short(plain)}")
    plain = _text(plain)
    if plain is not None and kind == "IF" and all(np.all(params[k] == v) for k, v in
                                                  (("r", 1.0), ("v_threshold", 1.0), ("v_reset", 0.0))):
        neuron, activation = None, str(plain)  # a plain unit written by `to_nir`
    else:
        activation = "relu" if neuron.spiking else "linear"
    size = shape[0] if len(shape) == 3 else shape[0]
    ground = meta.get(GROUND_KEY)
    if ground is not None and np.size(ground) != 1:
        raise ModelError(f"node {name!r}.metadata.{GROUND_KEY}: must be one value, got {short(ground)}")
    ground = ground is not None and bool(np.asarray(ground).item())
    try:
        return Population(name, size, "hidden", activation, None, shape if len(shape) == 3 else None, ground=ground,
                          neuron=neuron)
    except ModelError as err:  # the activation stored in the metadata names no unit
        raise ModelError(f"node {name!r}.metadata.{ACTIVATION_KEY}: {err}") from None


def _chain_projection(names: list[str], nodes: dict, pre: Population, post_name: str) -> tuple[Projection, Any]:
    """The projection of a chain of non-population nodes ``names`` (in order); also its bias array or None."""
    kinds = [type(nodes[n]).__name__ for n in names]
    pattern = "-".join(kinds)
    last = names[-1]
    node = nodes[last]
    if pattern in ("Affine", "Linear", "Flatten-Affine", "Flatten-Linear"):
        if kinds[0] == "Flatten":
            flat = nodes[names[0]]
            dims = tuple(_integers(getattr(flat, f), f"node {names[0]!r}.{f}") for f in ("start_dim", "end_dim"))
            if pre.shape is None or dims not in (([0], [-1]), ([0], [2])):
                raise ModelError(f"node {names[0]!r}.start_dim: only a Flatten of a whole (C, H, W) map to a vector "
                                 f"is supported, got start_dim={flat.start_dim}, end_dim={flat.end_dim}")
        weight = _array(node, last, "weight")
        if weight.ndim != 2 or weight.shape[1] != pre.n_features:
            raise ModelError(f"node {last!r}.weight: shape {list(weight.shape)} does not fit the "
                             f"{pre.n_features} features of {pre.name!r}")
        bias = _array(node, last, "bias") if kinds[-1] == "Affine" else None
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ModelError(f"node {last!r}.bias: shape {list(bias.shape)} does not match ({weight.shape[0]},)")
        return Projection(pre.name, post_name, weight, "dense", 0, last), bias
    if pattern in ("Conv2d", "SumPool2d-Conv2d", "AvgPool2d-Conv2d"):
        options: dict[str, Any] = {}
        if len(names) == 2:
            pool = nodes[names[0]]
            if any(_pair(pool, names[0], "padding")):
                raise ModelError(f"node {names[0]!r}.padding: padded pooling is not supported")
            options["pool"] = {"kind": "sum" if kinds[0] == "SumPool2d" else "avg",
                               "size": _pair(pool, names[0], "kernel_size"), "stride": _pair(pool, names[0], "stride")}
        weight = _array(node, last, "weight")
        if weight.ndim != 4:
            raise ModelError(f"node {last!r}.weight: expected (C_out, C_in, kH, kW), got shape {list(weight.shape)}")
        _pair(node, last, "dilation", allowed=(1,))
        options.update(kernel=list(weight.shape[2:]), stride=_pair(node, last, "stride"),
                       padding=_pair(node, last, "padding"), groups=_group_count(node, last))
        bias = _array(node, last, "bias")
        if bias.shape != (weight.shape[0],):
            raise ModelError(f"node {last!r}.bias: shape {list(bias.shape)} does not match ({weight.shape[0]},)")
        return Projection(pre.name, post_name, weight, "conv2d", 0, last, options), bias
    if pattern == "Scale":
        return Projection(pre.name, post_name, _array(node, last, "scale").ravel(), "elementwise", 0, last), None
    raise ModelError(f"node {last!r}: the chain {' -> '.join(names)} ({' -> '.join(kinds)}) between {pre.name!r} and "
                     f"{post_name!r} is not supported; supported: [Flatten] -> Affine|Linear, "
                     "[SumPool2d|AvgPool2d] -> Conv2d, Scale")


def from_nir(graph: Any, name: str | None = None) -> Network:
    """Build a `Network` from a NIR graph or a ``.nir`` file (see the module docstring for the mapping).

    Parameters
    ----------
    graph : nir.NIRGraph or path-like
    name : str, optional
        The network's name (default: the one `to_nir` stored in the graph's metadata, else the
        file's stem, else ``"nir"``).

    Returns
    -------
    Network

    Raises
    ------
    ModelError
        For an unsupported node type or chain, shapes that do not fit, NaN or Inf parameters, or an
        unreadable file; the message names the file, the node and the field.

    Examples
    --------
    >>> import nir, numpy as np
    >>> g = nir.NIRGraph.from_list(nir.Affine(np.eye(2), np.zeros(2)),
    ...                            nir.IF(np.ones(2), np.ones(2), np.zeros(2)))
    >>> from_nir(g)
    Network('nir': input[2], if[2]; 1 projections, 6 parameters)
    """
    where, stem = "", "nir"
    if isinstance(graph, (str, os.PathLike)):
        where, stem = f"{graph}: ", Path(graph).stem
        graph = read_nir_graph(graph)
    meta = getattr(graph, "metadata", None)
    stored = _text(meta.get(NAME_KEY)) if isinstance(meta, dict) else None  # HDF5 gives bytes or str
    try:
        return _build(graph, name or stored or stem)
    except ModelError as err:
        raise ModelError(f"{where}{err}") from None


def _build(graph: Any, name: str) -> Network:
    import nir

    if not isinstance(graph, nir.NIRGraph):
        raise ModelError(f"graph: expected a nir.NIRGraph, got {type(graph).__name__}")
    nodes, edges = _flatten(graph.nodes, graph.edges)
    for node_name, node in nodes.items():
        kind = type(node).__name__
        if kind not in SUPPORTED:
            raise ModelError(f"node {node_name!r}: type {kind} is not supported; supported: {', '.join(SUPPORTED)}")
        if "/" in node_name:
            raise ModelError(f"node {node_name!r}: names must not contain '/'")
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise ModelError(f"edges: ({a!r}, {b!r}) refers to no node {end!r}")
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(f"nodes: exactly one Input and one Output node are needed, found {inputs} and {outputs}")
    pops: dict[str, Population] = {}
    in_name, out_name = inputs[0], outputs[0]
    in_shape = _shape(nodes[in_name].input_type, f"node {in_name!r}.shape")
    if in_shape is None or len(in_shape) not in (1, 3) or min(in_shape) < 1:
        raise ModelError(f"node {in_name!r}.shape: {in_shape} is not (n,) or (C, H, W)")
    pops[in_name] = Population(in_name, in_shape[0], "input", "linear",
                               shape=in_shape if len(in_shape) == 3 else None)
    for node_name, node in nodes.items():
        if type(node).__name__ in NEURON_MODELS:
            pops[node_name] = _neuron_population(node_name, node, type(node).__name__)
    into_output = [a for a, b in edges if b == out_name]
    if len(into_output) == 1 and into_output[0] in pops and pops[into_output[0]].role == "hidden":
        pops[into_output[0]].role = "output"
        edges = [(a, b) for a, b in edges if b != out_name]
    else:
        out_shape = _shape(nodes[out_name].output_type, f"node {out_name!r}.shape")
        if out_shape is None or len(out_shape) != 1:
            raise ModelError(f"node {out_name!r}.shape: {out_shape} is not (n,)")
        pops[out_name] = Population(out_name, out_shape[0], "output", "linear")
    succ: dict[str, list[str]] = {}
    preds: dict[str, list[str]] = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
        preds.setdefault(b, []).append(a)
    projections, biases, pop_edges, in_chains = [], {}, [], []
    for a, b in edges:
        if a not in pops:
            continue
        chain, node = [], b
        while node not in pops:
            if len(preds.get(node, [])) != 1 or len(succ.get(node, [])) != 1:
                raise ModelError(f"node {node!r}: a {type(nodes[node]).__name__} node must have exactly one input and "
                                 f"one output edge, has {len(preds.get(node, []))} and {len(succ.get(node, []))}")
            chain.append(node)
            node = succ[node][0]
            if len(chain) > 3:
                break
        if not chain:
            raise ModelError(f"edges: ({a!r}, {b!r}) joins two population nodes directly; put a weight node "
                             "(Affine, Linear, Conv2d or Scale) between them")
        proj, bias = _chain_projection(chain, nodes, pops[a], node)
        in_chains += chain
        if pops[node].role == "input":
            raise ModelError(f"node {chain[-1]!r}: feeds the Input node {node!r}")
        projections.append(proj)
        pop_edges.append((a, node))
        if bias is not None:
            biases.setdefault(node, []).append((type(nodes[chain[-1]]).__name__, bias))
    used = {in_name, out_name} | {a for a, _ in pop_edges} | {b for _, b in pop_edges} | set(in_chains)
    unused = sorted(set(nodes) - used)
    if unused:
        raise ModelError(f"node {unused[0]!r}: not connected to the rest of the graph")
    back = recurrent_edges(pop_edges, in_name)
    for proj, edge in zip(projections, pop_edges):
        proj.delay = 1 if edge in back else 0
    for post, parts in biases.items():
        pop = pops[post]
        if all(kind == "Conv2d" for kind, _ in parts) and not any(np.any(b) for _, b in parts):
            continue  # Conv2d always carries a bias; all zero means none
        for _, b in parts:
            if b.shape != (pop.size,):
                raise ModelError(f"node {post!r}: an incoming bias of shape {list(b.shape)} does not fit its "
                                 f"{pop.size} units")
        pop.bias = parts[0][1].copy()  # the first bias as it is (bit for bit), the others added
        for _, b in parts[1:]:
            pop.bias += b
    ranked = list(dict.fromkeys([in_name] + [b for _, b in pop_edges] + list(pops)))  # first reached first
    try:
        net = Network([pops[k] for k in ranked], projections, name)
        rank = {k: i for i, k in enumerate(net.order)}  # populations and projections in topological order
        projections.sort(key=lambda p: rank[p.post])
        return Network([pops[k] for k in net.order], projections, name)
    except ModelError as err:
        raise ModelError(f"graph: {err}") from None
