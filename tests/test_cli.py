"""The command line through a subprocess, as a user runs it."""
import os
import subprocess
import sys

import numpy as np
import pytest

import neuro_balance as nb


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "neuro_balance.app.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.yaml"
    nb.save_model(nb.dag([6, 8, 8, 3], skips=[(0, 2)], seed=0), path)
    return path


def snapshot(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


@pytest.mark.parametrize("method", ["global", "stochastic", "sweep"])
def test_balance_writes_a_balanced_model_with_the_same_function(model, tmp_path, method):
    out = tmp_path / "balanced.yaml"
    proc = cli("balance", model, "--cost", "Lp:0.7", "--method", method, "--tol", "1e-9", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "converged" in proc.stdout and str(out) in proc.stdout
    before, after = nb.load_model(model), nb.load_model(out)
    x = np.random.default_rng(0).normal(size=(4, 6))
    np.testing.assert_allclose(after.forward(x), before.forward(x), rtol=1e-10, atol=1e-12)
    assert nb.imbalance(after, nb.Lp(0.7)).max_relative <= 1e-9


def test_inspect_prints_a_table_per_population(model):
    proc = cli("inspect", model, "--cost", "L1")
    assert proc.returncode == 0, proc.stderr
    for name in ("in", "h1", "h2", "out", "total cost", "max imbalance"):
        assert name in proc.stdout


@pytest.mark.parametrize("args, code, message", [
    (["balance", "{model}", "--cost", "Lp:-1"], 2, "p must be"),
    (["balance", "{model}", "--cost", "L0"], 2, "p must be"),
    (["balance", "{model}", "--method", "magic"], 2, "invalid choice"),
    (["balance", "{model}", "--tol", "-3"], 2, "must be > 0"),
    (["balance", "{model}", "-o", "{model}"], 2, "would overwrite the input"),
    (["balance", "{model}", "-o", "{dir}/x.json"], 2, "must end in .yaml"),
    (["balance", "{dir}/absent.yaml", "-o", "{dir}/x.yaml"], 1, "absent.yaml: no such model file"),
    (["balance", "{bad}", "-o", "{dir}/x.yaml"], 1, "populations[1].size: must be a positive integer, got -4"),
    (["inspect", "{bad}"], 1, "populations[1].size"),
    (["frobnicate"], 2, "unknown command 'frobnicate'"),
    (["balanse", "{model}"], 2, "did you mean 'balance'?"),
    (["balance", "{model}", "--cost", "Lq"], 2, "cost 'Lq'"),
    (["balance", "{model}", "--cost", "Lq"], 2, "use L1, L2, Lp:P or LP for any P > 0"),
    (["simulate", "{model}", "--rate", "-5", "-o", "{dir}/x.yaml"], 2, "must be > 0"),
    (["simulate", "{bad}", "-o", "{dir}/x.yaml"], 1, "populations[1].size"),
    (["quantize", "{model}", "--profile", "nochip"], 2, "unknown profile 'nochip'; bundled: akida1"),
    (["quantize", "{model}", "--profile", "loihi"], 2, "did you mean 'loihi1' or 'loihi2'?"),
    (["profiles", "spek"], 2, "did you mean 'speck'?"),
    (["run", "--profiles", "lohi1,speck"], 2, "did you mean 'loihi1'"),
    (["quantize", "{model}", "--profile", "loihi1", "--data", "{dir}/missing.npz"], 1,
     "--data {dir}/missing.npz: no such file"),
    (["quantize", "{model}", "--profile", "loihi1", "--weight-bits", "0"], 2,
     "--weight-bits: must be a positive integer, got '0'"),
    (["quantize", "{model}", "--profile", "akida1", "--weight-bits", "8"], 2, "akida1 offers 1, 2, 4 bits, got 8"),
    (["quantize", "{dir}/absent.yaml", "--profile", "loihi1"], 1, "no such model file"),
    (["demo", "nosuchdemo", "--out", "{dir}/d"], 2, "invalid choice"),
    (["run", "--target", "gpu"], 2, "invalid choice"),
    (["profiles", "--bogus"], 2, "unrecognized arguments"),
])
def test_bad_input_fails_cleanly_and_touches_nothing(model, tmp_path, args, code, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(model.read_text().replace("size: 8", "size: -4", 1))
    before = snapshot(tmp_path)
    proc = cli(*[a.format(model=model, dir=tmp_path, bad=bad) for a in args])
    assert proc.returncode == code
    assert message.format(dir=tmp_path) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "hardware_profiles" not in proc.stderr          # a usage error never blames a file inside the package
    assert snapshot(tmp_path) == before


def test_bare_command_lists_the_commands():
    proc = cli()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    for name in ("run", "balance", "inspect", "simulate", "quantize", "profiles", "demo"):
        assert f"\n    {name} " in proc.stderr


def test_help_explains_every_command():
    proc = cli("--help")
    assert proc.returncode == 0
    for name in ("run", "balance", "inspect", "simulate", "quantize", "profiles", "demo"):
        assert name in proc.stdout
        sub = cli(name, "--help")
        assert sub.returncode == 0 and "usage" in sub.stdout


@pytest.mark.parametrize("args, expect_files, expect_text", [
    (["--version"], [], "neuro-balance " + nb.__version__ + "\n"),
    (["profiles"], [], "\nloihi1 "),
    (["quantize", "{model}", "--profile", "speck", "--weight-bits", "4"], [], "on speck: QuantizedNetwork"),
    (["simulate", "{model}", "--rate", "1000", "--duration", "0.02", "-o", "{dir}/agents.yaml"],
     ["agents.yaml", "agents.npz"], "wrote {dir}/agents.yaml"),
    pytest.param(["simulate", "{model}", "--rate", "1000", "--duration", "0.02"], [],
                 "nothing written (pass -o FILE.yaml", marks=pytest.mark.slow),  # the one above runs simulate
    (["balance", "{model}"], [], "nothing written (pass -o FILE.yaml"),
    (["inspect", "{model}", "--cost", "Linf"], [], "the largest |w| in the network (the Linf cost is a maximum"),
    (["inspect", "{model}", "--cost", "L3"], [], "cost Lp(3.0)\n"),
    (["demo", "order_independence", "--quick", "--out", "{dir}/demo"],
     ["demo/order_independence.json", "demo/order_independence.png"], "wrote {dir}/demo/order_independence.json"),
])
def test_every_other_subcommand_runs_through_a_subprocess(model, tmp_path, args, expect_files, expect_text):
    before = set(os.listdir(tmp_path))
    proc = cli(*[a.format(model=model, dir=tmp_path) for a in args])
    assert proc.returncode == 0, proc.stderr
    assert expect_text.format(dir=tmp_path) in proc.stdout
    for name in expect_files:
        assert (tmp_path / name).stat().st_size > 0
    assert {n.split("/")[0] for n in expect_files} == set(os.listdir(tmp_path)) - before   # and nothing else


def test_a_closed_pipe_ends_quietly():
    """`neuro-balance profiles | head`: the reader leaves early; no BrokenPipeError traceback."""
    proc = subprocess.run(f"{sys.executable} -m neuro_balance.app.cli profiles --details | true", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert proc.stderr == ""


def test_cost_help_documents_every_spelling():
    proc = cli("balance", "--help")
    assert "L3 is Lp:3" in " ".join(proc.stdout.split())
