"""The `profiles` and `quantize` subcommands, driven through their argparse registration."""
import argparse
import json

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.app.commands import profiles, quantize

pytestmark = pytest.mark.filterwarnings("ignore::neuro_balance.hardware.UnverifiedProfileWarning")


def parse(argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    profiles.register(sub)
    quantize.register(sub)
    return parser.parse_args(argv)


def test_profiles_prints_one_row_per_profile(capsys):
    args = parse(["profiles"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for name in nb.hardware.list_profiles():
        assert f"\n{name} " in out
    assert "u:24 wrap, v:24 saturate" in out


def test_profiles_details_lists_sources_and_bad_name_is_a_usage_error(capsys):
    args = parse(["profiles", "truenorth", "--details"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "sources:" in out and "unverified: neuron.compare, weights.rounding" in out
    with pytest.raises(SystemExit) as exit_:
        parse(["profiles", "truenrth"])
    assert exit_.value.code == 2 and "did you mean 'truenorth'?" in capsys.readouterr().err


def test_quantize_reports_levels_saturation_and_accuracy(tmp_path, capsys):
    rng = np.random.default_rng(0)
    net = nb.mlp([6, 8, 3], seed=0)
    nb.save_model(net, tmp_path / "m.yaml")
    X = rng.random((30, 6))
    y = net.forward(X).argmax(1)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    args = parse(["quantize", str(tmp_path / "m.yaml"), "--profile", "akida1", "--weight-bits", "2",
                  "--data", str(tmp_path / "d.npz"), "--balance", "pow2", "--json", str(tmp_path / "r.json")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "accuracy: float 1.0000" in out and "in->h1" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["projections"]["in->h1"]["levels"] <= 3          # 2-bit symmetric: -1, 0, 1
    assert set(report["populations"]) == {"in", "h1", "out"}
    args = parse(["quantize", str(tmp_path / "m.yaml"), "--profile", "akida1", "--weight-bits", "8"])
    with pytest.raises(SystemExit) as exit_:
        args.func(args)
    assert exit_.value.code == 2 and "akida1 offers 1, 2, 4 bits, got 8" in capsys.readouterr().err
