"""NIR graphs built with the nir package for the NIR tests: MLP, DAG, recurrent and conv, plus a comparison."""
from __future__ import annotations

import numpy as np

nir = __import__("pytest").importorskip("nir")


def _w(rng, *shape, scale=1.0):
    return rng.normal(0.0, scale / np.sqrt(np.prod(shape[1:])), size=shape)


def lif(rng, shape, threshold=1.0):
    return nir.LIF(tau=rng.uniform(5.0, 20.0, shape), r=rng.uniform(0.5, 2.0, shape), v_leak=rng.normal(0, 0.1, shape),
                   v_threshold=np.full(shape, threshold), v_reset=rng.uniform(-0.2, 0.0, shape))


def if_node(rng, shape, threshold=1.0):
    return nir.IF(r=np.ones(shape), v_threshold=rng.uniform(0.5, 1.5, shape) * threshold, v_reset=np.zeros(shape))


def mlp_graph(seed=0):
    """Input(6) -> Affine -> LIF(10) -> Affine -> LIF(3) -> Output."""
    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type={"input": np.array([6])}),
             "fc1": nir.Affine(weight=_w(rng, 10, 6, scale=3), bias=rng.normal(0, 0.2, 10)), "lif1": lif(rng, (10,)),
             "fc2": nir.Affine(weight=_w(rng, 3, 10, scale=3), bias=rng.normal(0, 0.2, 3)), "lif2": lif(rng, (3,)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def dag_graph(seed=0):
    """Skips: input -> if2 and if1 -> li (several edges into one node add); an LI readout."""
    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type={"input": np.array([5])}),
             "a1": nir.Affine(weight=_w(rng, 8, 5, scale=2), bias=rng.normal(0, 0.2, 8)), "if1": if_node(rng, (8,)),
             "a2": nir.Affine(weight=_w(rng, 8, 8, scale=2), bias=rng.normal(0, 0.2, 8)), "if2": if_node(rng, (8,)),
             "skip": nir.Linear(weight=_w(rng, 8, 5)),
             "a3": nir.Affine(weight=_w(rng, 3, 8), bias=rng.normal(0, 0.2, 3)),
             "skip2": nir.Linear(weight=_w(rng, 3, 8)),
             "li": nir.LI(tau=rng.uniform(2, 4, 3), r=np.ones(3), v_leak=rng.normal(0, 0.1, 3)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    edges = [("input", "a1"), ("a1", "if1"), ("if1", "a2"), ("a2", "if2"), ("if2", "a3"), ("a3", "li"),
             ("li", "output"), ("input", "skip"), ("skip", "if2"), ("if1", "skip2"), ("skip2", "li")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def recurrent_graph(seed=0):
    """A LIF population with a recurrent Linear onto itself, then a CubaLIF output."""
    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}),
             "a1": nir.Affine(weight=_w(rng, 6, 4, scale=3), bias=rng.normal(0, 0.2, 6)), "lif": lif(rng, (6,)),
             "rec": nir.Linear(weight=_w(rng, 6, 6)),
             "a2": nir.Affine(weight=_w(rng, 3, 6, scale=3), bias=rng.normal(0, 0.2, 3)),
             "cuba": nir.CubaLIF(tau_syn=rng.uniform(2, 5, 3), tau_mem=rng.uniform(5, 10, 3), r=np.ones(3),
                                 v_leak=np.zeros(3), v_threshold=np.full(3, 0.5), v_reset=np.zeros(3),
                                 w_in=rng.uniform(1, 2, 3)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    edges = [("input", "a1"), ("a1", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "a2"), ("a2", "cuba"),
             ("cuba", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def conv_graph(seed=0):
    """Conv2d -> IF map -> SumPool2d and AvgPool2d branches -> Conv2d -> IF map -> Flatten -> Affine -> IF -> Scale -> LI."""
    rng = np.random.default_rng(seed)
    c1 = nir.Conv2d(input_shape=(8, 8), weight=_w(rng, 4, 2, 3, 3, scale=3), stride=1, padding=1, dilation=1, groups=1,
                    bias=rng.normal(0, 0.2, 4))
    c2 = nir.Conv2d(input_shape=(4, 4), weight=_w(rng, 4, 2, 3, 3, scale=3), stride=1, padding=0, dilation=1,
                    groups=2, bias=rng.normal(0, 0.2, 4))
    c3 = nir.Conv2d(input_shape=(4, 4), weight=_w(rng, 4, 4, 3, 3), stride=1, padding=0, dilation=1, groups=1,
                    bias=np.zeros(4))
    pool = dict(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    nodes = {"input": nir.Input(input_type={"input": np.array([2, 8, 8])}), "c1": c1, "map1": if_node(rng, (4, 8, 8)),
             "c2.pool": nir.SumPool2d(**pool), "c2": c2, "c3.pool": nir.AvgPool2d(**pool), "c3": c3,
             "map2": if_node(rng, (4, 2, 2)),
             "fc.flatten": nir.Flatten(input_type={"input": np.array([4, 2, 2])}, start_dim=0, end_dim=-1),
             "fc": nir.Affine(weight=_w(rng, 5, 16, scale=3), bias=rng.normal(0, 0.2, 5)), "if3": if_node(rng, (5,)),
             "gain": nir.Scale(scale=rng.uniform(0.5, 2.0, 5)),
             "li": nir.LI(tau=np.full(5, 3.0), r=np.ones(5), v_leak=np.zeros(5)),
             "output": nir.Output(output_type={"output": np.array([5])})}
    edges = [("input", "c1"), ("c1", "map1"), ("map1", "c2.pool"), ("c2.pool", "c2"), ("c2", "map2"),
             ("map1", "c3.pool"), ("c3.pool", "c3"), ("c3", "map2"), ("map2", "fc.flatten"), ("fc.flatten", "fc"),
             ("fc", "if3"), ("if3", "gain"), ("gain", "li"), ("li", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


GRAPHS = {"mlp": mlp_graph, "dag": dag_graph, "recurrent": recurrent_graph, "conv": conv_graph}


def node_fields(node) -> dict:
    """A node's parameters (the dataclass fields but metadata and types) as numpy arrays."""
    skip = {"metadata", "input_type", "output_type"}
    out = {k: np.asarray(getattr(node, k)) for k in node.__dataclass_fields__ if k not in skip}
    if isinstance(node, (nir.Input, nir.Flatten)):
        out["type"] = np.asarray(next(iter(node.input_type.values())))
    if isinstance(node, nir.Output):
        out["type"] = np.asarray(next(iter(node.output_type.values())))
    return out


def assert_same_graph(a, b) -> None:
    """Same node names and types, every array equal bit for bit (after float64), same edges."""
    assert sorted(a.nodes) == sorted(b.nodes)
    assert sorted(map(tuple, a.edges)) == sorted(map(tuple, b.edges))
    for name, node in a.nodes.items():
        other = b.nodes[name]
        assert type(node) is type(other), name
        fa, fb = node_fields(node), node_fields(other)
        assert fa.keys() == fb.keys(), name
        for key in fa:
            x, y = fa[key], fb[key]
            if x.dtype.kind == "f" or y.dtype.kind == "f":
                x, y = x.astype(np.float64), y.astype(np.float64)
            assert x.shape == y.shape and np.array_equal(x.view(np.uint8) if x.dtype.kind == "f" else x,
                                                         y.view(np.uint8) if y.dtype.kind == "f" else y), (name, key)
