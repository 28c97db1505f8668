import os

import numpy as np
import pytest
import yaml
from hypothesis import given, settings

import neuro_balance as nb
from neuro_balance import ModelError
from neuro_balance.model.files import atomic_output

from strategies import networks, weight_distance


@settings(max_examples=20)
@given(networks())
def test_models_round_trip_exactly(tmp_path_factory, net):
    path = tmp_path_factory.mktemp("m") / "net.yaml"
    nb.save_model(net, path)
    back = nb.load_model(path)
    assert weight_distance(net, back) == 0.0
    assert [(p.name, p.size, p.role, p.activation, p.shape) for p in net.populations.values()] == \
           [(p.name, p.size, p.role, p.activation, p.shape) for p in back.populations.values()]
    assert [(p.name, p.pre, p.post, p.kind, p.delay) for p in net.projections] == \
           [(p.name, p.pre, p.post, p.kind, p.delay) for p in back.projections]


def write(tmp_path, doc, arrays=None, text=None):
    path = tmp_path / "m.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(doc, sort_keys=False))
    if arrays is not None:
        np.savez(tmp_path / "m.npz", **arrays)
    return path


def good_doc():
    return {"format": "neuro_balance.model/1", "name": "m", "weights": "m.npz",
            "populations": [{"name": "in", "size": 2, "role": "input"},
                            {"name": "h", "size": 3, "role": "hidden", "activation": "relu", "bias": True},
                            {"name": "out", "size": 1, "role": "output"}],
            "projections": [{"pre": "in", "post": "h"}, {"pre": "h", "post": "out"}]}


def good_arrays():
    return {"in->h": np.ones((3, 2)), "h->out": np.ones((1, 3)), "h.bias": np.zeros(3)}


def test_a_hand_written_model_loads(tmp_path):
    net = nb.load_model(write(tmp_path, good_doc(), good_arrays()))
    assert net.forward(np.ones((1, 2))).shape == (1, 1)


@pytest.mark.parametrize("edit, message", [
    (lambda d, a: d.update(format="other/2"), r"format: expected 'neuro_balance.model/1' or 'neuro_balance.model/2', got 'other/2'"),
    (lambda d, a: d["populations"][1].update(size="three"), r"populations\[1\].size: must be a positive integer, got 'three'"),
    (lambda d, a: d["populations"][1].update(activation="swish"), r"populations\[1\].activation: unknown activation 'swish'"),
    (lambda d, a: d["populations"][1].update(role="middle"), r"populations\[1\].role"),
    (lambda d, a: d["populations"][1].update(colour="red"), r"populations\[1\]: unknown field\(s\) \['colour'\]"),
    (lambda d, a: d["projections"][0].update(post="nowhere"), r"post: no population named 'nowhere'"),
    (lambda d, a: a.update({"in->h": np.ones((3, 5))}), r"in->h.*weight: shape \(3, 5\)"),
    (lambda d, a: a.update({"in->h": np.full((3, 2), np.nan)}), r"weight: contains NaN or Inf"),
    (lambda d, a: a.update({"h.bias": np.array([0.0, np.inf, 0.0])}), r"bias: contains NaN or Inf"),
    (lambda d, a: a.pop("h.bias"), r"populations\[1\].bias: m.npz has no array 'h.bias'"),
    (lambda d, a: a.update(extra=np.ones(2)), r"arrays no field refers to: \['extra'\]"),
    (lambda d, a: d["projections"][0].update(kind="fft"), r"unknown projection kind 'fft'"),
    (lambda d, a: d["projections"][0].update(stride=2), r"unknown field\(s\) \['stride'\] for kind dense"),
])
def test_bad_model_files_name_file_field_and_value(tmp_path, edit, message):
    doc, arrays = good_doc(), good_arrays()
    edit(doc, arrays)
    path = write(tmp_path, doc, arrays)
    with pytest.raises(ModelError, match=message) as info:
        nb.load_model(path)
    assert str(path) in str(info.value)


def test_unsafe_or_broken_yaml_is_refused(tmp_path):
    path = write(tmp_path, None, good_arrays(), text="!!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ModelError, match="not valid YAML"):
        nb.load_model(path)
    path = write(tmp_path, None, good_arrays(), text="populations: [unclosed\n")
    with pytest.raises(ModelError, match="not valid YAML"):
        nb.load_model(path)
    path = write(tmp_path, None, good_arrays(), text="- just\n- a list\n")
    with pytest.raises(ModelError, match="top level must be a mapping"):
        nb.load_model(path)


def test_missing_files_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        nb.load_model(tmp_path / "absent.yaml")
    path = write(tmp_path, good_doc())
    with pytest.raises(FileNotFoundError, match="m.npz"):
        nb.load_model(path)
    (tmp_path / "m.npz").write_text("not a zip")
    with pytest.raises(ModelError, match="not a readable npz"):
        nb.load_model(path)


def test_save_is_atomic_and_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]
    nb.save_model(nb.mlp([3, 4, 2]), tmp_path / "model.yaml")
    assert sorted(os.listdir(tmp_path)) == ["model.npz", "model.yaml", "out.txt"]


def test_save_refuses_other_suffixes(tmp_path):
    with pytest.raises(ModelError, match=".yaml"):
        nb.save_model(nb.mlp([3, 4, 2]), tmp_path / "model.json")


def test_a_population_held_at_ground_round_trips_and_is_never_scaled(tmp_path):
    net = nb.mlp([4, 5, 5, 3], seed=0)
    net.populations["h1"].ground = True
    nb.save_model(net, tmp_path / "g.yaml")
    back = nb.load_model(tmp_path / "g.yaml")
    assert back.populations["h1"].ground and not back.populations["h2"].ground
    res = nb.balance(nb.scale(back, {"h2": np.log(np.arange(1.0, 6.0))}), nb.Lp(2))
    assert "h1" not in res.log_scales or np.all(res.log_scales["h1"] == 0)
    np.testing.assert_array_equal(res.network.projections[0].weight, back.projections[0].weight)
    assert res.converged and res.cost_after < res.cost_before
