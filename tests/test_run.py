"""The main job, ``neuro-balance run --quick``, end to end through a subprocess."""
import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "neuro_balance.app.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "report"
    proc = cli("run", "--quick", "--out", out, "--profiles", "loihi1,speck,brainscales2", "--no-progress")
    return proc, out


def test_quick_run_succeeds_and_writes_its_report(quick_run):
    proc, out = quick_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for name in ("report.md", "report.json", "accuracy_vs_bits.json"):
        assert (out / name).stat().st_size > 0
    text = (out / "report.md").read_text()
    for section in ("Neurons as balancing agents", "Spiking network", "Quantised accuracy", "loihi1", "speck"):
        assert section in text


def test_quick_run_numbers_hold_the_claims(quick_run):
    _, out = quick_run
    r = json.loads((out / "report.json").read_text())
    assert all(stage["applied"] for stage in r["stages"].values())
    assert r["agents"]["converged"] and r["agents"]["imbalance_after"] <= 1e-8
    assert r["agents"]["max_relative_weight_difference"] <= 1e-6
    assert r["agents"]["function_relative_change"] <= 1e-10
    s = r["spiking"]
    assert s["output_change"] <= s["output_bound"]
    assert abs(s["rate_ratio_mean"] - 1) <= 0.01 and s["active_units"] > 0
    assert {rec["profile"] for rec in r["hardware"]["records"]} == {"loihi1", "speck", "brainscales2"}


@pytest.mark.parametrize("name", ["agents_convergence", "balance_histogram", "spiking_raster", "accuracy_vs_bits"])
def test_quick_run_figures_are_rendered_and_not_blank(quick_run, name):
    import matplotlib.image as mpimg

    _, out = quick_run
    image = mpimg.imread(out / f"{name}.png")
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert np.std(image[..., :3]) > 0.05  # more than a blank canvas


def test_quick_run_prints_plain_lines_when_stdout_is_not_a_terminal(quick_run):
    proc, out = quick_run
    for stage in ("agents balancing", "balancing while spiking", "hardware profiles", "hardware, rescaled"):
        assert proc.stdout.count(f"[{stage}]") == 1 and f"[{stage}] done in" in proc.stdout  # one line per stage
    assert "\r" not in proc.stdout + proc.stderr and "%|" not in proc.stdout + proc.stderr  # no bar text in a log
    assert proc.stdout.strip().splitlines()[-1] == f"report: {out / 'report.md'}"


def test_run_refuses_unknown_profiles_and_models_and_leaves_no_folder(tmp_path):
    proc = cli("run", "--quick", "--profiles", "loihi9", "--out", tmp_path / "x")
    assert proc.returncode == 2 and "unknown profile" in proc.stderr
    proc = cli("run", "--quick", "--model", tmp_path / "absent.yaml", "--out", tmp_path / "y")
    assert proc.returncode == 1 and "absent.yaml" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_run_on_a_tanh_model_with_skips_says_which_stages_did_not_apply(tmp_path):
    """A model no file in models/ resembles: tanh units (not homogeneous: nothing to balance, no spikes) and skips."""
    import neuro_balance as nb

    net = nb.dag([64, 20, 16, 10], skips=[(0, 2), (1, 3)], activation=["relu", "tanh"], seed=0, name="tanh_skip")
    nb.save_model(net, tmp_path / "tanh_skip.yaml")
    out = tmp_path / "report"
    proc = cli("run", "--quick", "--model", tmp_path / "tanh_skip.yaml", "--profiles", "loihi1,float64", "--out", out,
               "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == f"{out / 'report.md'}\n"                             # -q: nothing but the report's path
    r = json.loads((out / "report.json").read_text())
    assert r["stages"]["agents"]["applied"] and r["agents"]["converged"]
    assert not r["stages"]["spiking"]["applied"] and "got tanh" in r["stages"]["spiking"]["reason"]
    assert r["stages"]["hardware"]["applied"] and "ReLU units only" in r["hardware_skipped"]["loihi1"]
    text = (out / "report.md").read_text()
    assert "| spiking rate equivalence | no |" in text and "loihi1: not run:" in text
    assert sorted(p.name for p in out.iterdir()) == ["accuracy_vs_bits.json", "accuracy_vs_bits.png",
                                                     "agents_convergence.png", "balance_histogram.png",
                                                     "report.json", "report.md"]


# The default model, models/digits_mlp.yaml, is the one `quick_run` runs in the default suite (same claims and
# more: every stage applied); the slow test runs every other shipped model.
OTHER_MODELS = sorted(p for p in (Path(__file__).resolve().parents[1] / "models").glob("*.yaml")
                      if p.name != "digits_mlp.yaml")


def test_quick_run_runs_the_default_model(quick_run):
    _, out = quick_run
    assert Path(json.loads((out / "report.json").read_text())["model"]).name == "digits_mlp.yaml"


@pytest.mark.slow
@pytest.mark.parametrize("model", OTHER_MODELS, ids=lambda p: p.stem)
def test_run_quick_succeeds_on_every_shipped_model(tmp_path, model):
    proc = cli("run", "--quick", "--model", model, "--profiles", "loihi1,akida2,float64", "--out", tmp_path / "r")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads((tmp_path / "r" / "report.json").read_text())
    assert r["stages"]["agents"]["applied"] and r["agents"]["converged"]
    for name, stage in r["stages"].items():
        assert stage["applied"] or stage["reason"], name


def test_run_agents_progress_covers_every_run_of_the_spiking_call():
    import neuro_balance as nb
    from neuro_balance.sim import run_agents

    seen = []
    net = nb.mlp([4, 5, 3], seed=0)
    run_agents(net, nb.Lp(2), np.full(4, 0.5), duration=0.02, window=0.05,
               progress=lambda elapsed, completed, start, duration: seen.append(completed))
    # five runs (transient, window, balancing, transient, window): 0.1 + 0.05 + 0.02 + 0.1 + 0.05 s
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    assert any(0 < c <= 0.15 / 0.32 for c in seen)       # reported before balancing starts
    assert any(c > 0.17 / 0.32 for c in seen)            # and after it ends


def test_run_agents_checks_the_function_of_a_conv_model():
    import neuro_balance as nb
    from neuro_balance.sim import run_agents

    net = nb.load_model(Path(__file__).resolve().parents[1] / "models" / "digits_cnn.yaml")
    run = run_agents(net, nb.Lp(2), duration=0.005)
    assert run.function_change <= 1e-10


def test_cython_compilation_is_announced_once_with_the_cache_and_counted(capsys):
    """What `run --target cython` shows while Brian2 compiles: one announcement naming the cache, a count that moves."""
    from neuro_balance.app.progress import Progress
    from neuro_balance.app.stages import compile_reporter
    from neuro_balance.sim import cache_directory

    progress = Progress("lines")
    assert compile_reporter("numpy", None, progress) is None            # nothing compiles on numpy
    notes = []
    with progress.stage("agents balancing") as stage:
        report = compile_reporter("cython", stage, progress)
        for done, total in ((1, 3), (2, 3), (3, 3), (4, 4)):          # as the sim calls it: the total is an estimate
            report(f"compiling object {done} (first use; cached afterwards)", done, total)
            notes.append(stage.note)
    with progress.stage("balancing while spiking") as stage:                # a second stage compiles more code
        compile_reporter("cython", stage, progress)("compiling object 5", 5, 5)
    out = capsys.readouterr().out
    assert out.count("cython: compiling this network's Brian2 code, first use only (measured for the digits") == 1
    assert f"cached in {cache_directory()}; delete that folder to clear it" in out
    assert notes == ["compiling 1 of about 3", "compiling 2 of about 3", "compiling 3", "compiling 4"]
    assert out.count("  compiling: 1 of about 3 code objects") == 1 and "compiling: 4" not in out   # a line per 15 s
    assert out.index("cython: compiling") < out.index("[agents balancing] done in")


def test_quiet_progress_prints_nothing(capsys):
    from neuro_balance.app.progress import Progress

    progress = Progress("quiet")
    with progress.stage("x", total=2) as stage:
        stage.update(1)
        progress.log("a line")
    assert capsys.readouterr() == ("", "")
