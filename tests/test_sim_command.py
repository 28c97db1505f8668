"""``neuro-balance simulate`` through its registered parser (the CLI test of the subcommand)."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

import neuro_balance as nb

pytest.importorskip("brian2")
from neuro_balance.app.commands import simulate  # noqa: E402
from neuro_balance.model.files import load_model, save_model  # noqa: E402


def main(argv):
    parser = argparse.ArgumentParser(prog="neuro-balance")
    simulate.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_simulate_writes_a_balanced_model_with_the_same_function(tmp_path, capsys):
    net = nb.mlp([6, 5, 4, 3], seed=3)
    save_model(net, tmp_path / "m.yaml")
    code = main(["simulate", str(tmp_path / "m.yaml"), "--rate", "1000", "--duration", "0.1", "--no-progress",
                 "-o", str(tmp_path / "out.yaml")])
    assert code == 0
    out = load_model(tmp_path / "out.yaml")
    assert nb.imbalance(out, nb.Lp(2)).max_relative < 1e-9
    x = np.random.default_rng(0).normal(size=(10, 6))
    np.testing.assert_allclose(out.forward(x), net.forward(x), rtol=1e-10, atol=1e-12)
    assert "balance events" in capsys.readouterr().out


def test_simulate_spiking_reports_rates(tmp_path, capsys):
    net = nb.mlp([6, 5, 3], seed=4)
    save_model(net, tmp_path / "m.yaml")
    np.savetxt(tmp_path / "x.txt", np.full(6, 0.5))
    code = main(["simulate", str(tmp_path / "m.yaml"), "--spiking", "--input", str(tmp_path / "x.txt"),
                 "--window", "0.1", "--duration", "0.05", "--rate", "500", "--no-progress",
                 "-o", str(tmp_path / "out.yaml")])
    assert code == 0
    assert "h1: mean rate" in capsys.readouterr().out


def test_simulate_rejects_a_bad_input_file(tmp_path):
    save_model(nb.mlp([6, 5, 3], seed=4), tmp_path / "m.yaml")
    np.savetxt(tmp_path / "x.txt", np.ones(4))
    with pytest.raises(nb.ModelError, match="expected 6 values"):
        main(["simulate", str(tmp_path / "m.yaml"), "--spiking", "--input", str(tmp_path / "x.txt"),
              "--no-progress", "-o", str(tmp_path / "out.yaml")])
