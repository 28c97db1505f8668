"""The command line's mistakes, as a user makes them: one line and exit 1 or 2 (death by the signal for SIGINT
and SIGTERM: the shell's 130 / 143), no traceback, no Brian2 banner, and no file written, lost or overwritten."""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.app.cli import build_parser
from neuro_balance.app.results_folder import lock_path, results_folder

ROOT = Path(__file__).resolve().parents[1]
SINABS = ROOT / "tests" / "data" / "nir" / "sinabs_cnn.nir"
BANNER = "Brian 2 encountered an unexpected error"


def cli(*args, cwd=None, env=None, without=()):
    """Run ``neuro-balance ARGS`` in a subprocess; ``without`` names modules made unimportable (a missing extra)."""
    prelude = "".join(f"sys.modules[{name!r}] = None; " for name in without)
    code = f"import sys; {prelude}from neuro_balance.app.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def assert_one_line(proc, code):
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and BANNER not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not line.startswith(" ") and "usage:" not in line]
    assert len(lines) == 1, proc.stderr                          # argparse's usage lines, then one error line


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every file under ``folder`` (hidden ones too) with its bytes, and every folder (None)."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.fixture
def model(tmp_path):
    nb.save_model(nb.dag([6, 8, 8, 3], skips=[(0, 2)], seed=0), tmp_path / "m.yaml")
    return tmp_path / "m.yaml"


@pytest.fixture
def shared_weights(tmp_path, model):
    """A model whose YAML names ``shared.npz`` as its weights (a name the output ``shared.yaml`` would write)."""
    (tmp_path / "shared.npz").write_bytes((tmp_path / "m.npz").read_bytes())
    (tmp_path / "s.yaml").write_text(model.read_text().replace("weights: m.npz", "weights: shared.npz"))
    return tmp_path / "s.yaml"


MISTAKES = [
    # (arguments, exit code, message): every one refused before any work
    (["run", "--quick", "--out", "{dir}/afile"], 1, "afile: is a file; the results need a folder"),
    (["run", "--quick", "--out", "{dir}/afile/sub"], 1, "which is a file"),
    (["run", "--quick", "--out", "{dir}/full"], 1, "full: the folder exists and is not empty; give a new folder, "
                                                   "or --replace"),
    (["run", "--quick", "--out", "{dir}/full", "--replace"], 1, "full: the folder holds files but no earlier run's "
                                                                "report.json, so --replace will not replace it"),
    (["run", "--quick", "--out", ".", "--replace"], 1, ".: the folder holds files but no earlier run's report.json"),
    (["run", "--quik"], 2, "unrecognized arguments: --quik; did you mean --quick?"),
    (["run", "--quick", "--profile", "loihi1"], 2, "unrecognized arguments: --profile loihi1; did you mean "
                                                   "--profiles?"),
    (["run", "--quick", "--model", "digits_mpl"], 2, "unknown model 'digits_mpl' (no such file, and no bundled "
                                                     "model of that name); did you mean 'digits_mlp'"),
    (["balance", "{model}", "--co", "L1"], 2, "did you mean --cost?"),
    (["balance", "{model}", "--cost", "Lp2"], 2, "cost 'Lp2': did you mean Lp:2? use L1, L2, Lp:P or LP"),
    (["balance", "{model}", "--cost", "Linfinity"], 2, "cost 'Linfinity': for the cost of the largest |w| write "
                                                       "Linf; use L1, L2, Lp:P"),
    (["balance", "{model}", "--cost", "Linf()"], 2, "cost 'Linf()': not a cost; use L1, L2, Lp:P"),
    (["balance", "{model}", "-o", "{dir}/folder.yaml"], 2, "'{dir}/folder.yaml' is a folder; give a file name"),
    (["balance", "{model}", "-o", "{dir}/m.nir", "--scale-grid", "pow2"], 2, "--scale-grid: the global method"),
    (["balance", "{shared}", "-o", "{dir}/shared.yaml"], 2, "would overwrite '{dir}/shared.npz', which the input "
                                                            "'{shared}' reads"),
    (["balance", SINABS, "-o", SINABS], 2, "would overwrite the input"),
    (["simulate", "{shared}", "-o", "{dir}/shared.yaml"], 2, "would overwrite '{dir}/shared.npz'"),
    (["run", "--quick", "--workers", "2", "--out", "{dir}/w"], 2, "--workers needs Dask: pip install"),
    (["quantize", "{model}", "--profile", "speck", "--data", "digits", "--sweep", "4", "--workers", "2"], 2,
     "--workers needs Dask"),
    (["demo", "torch_resnet", "--help"], 2, "demo torch_resnet needs torch, which is not installed: pip install "
                                            "\"neuro-balance[torch]\""),
    (["demo", "order_independence", "--quik"], 2, "unrecognized arguments: --quik; did you mean --quick?"),
]


@pytest.mark.parametrize("args, code, message", MISTAKES, ids=lambda v: " ".join(map(str, v)) if isinstance(v, list)
                         else None)
def test_a_mistake_gets_one_line_and_writes_nothing(tmp_path, model, shared_weights, args, code, message):
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "earlier.txt").write_text("an earlier run's results")
    (tmp_path / "folder.yaml").mkdir()
    fill = {"dir": tmp_path, "model": model, "shared": shared_weights}
    before = tree(tmp_path)
    without = ("torch",) if args[0] == "demo" else ("distributed",)  # None in sys.modules: torch breaks scipy
    proc = cli(*[str(a).format(**fill) for a in args], cwd=tmp_path, without=without)
    assert_one_line(proc, code)
    assert message.format(**fill) in proc.stderr
    assert proc.stdout == ""                                     # no stage started, nothing printed
    assert tree(tmp_path) == before


def test_balance_that_does_not_converge_writes_nothing_unless_told(tmp_path, model):
    out = tmp_path / "out.yaml"
    proc = cli("balance", model, "--tol", "1e-300", "-o", out)   # a tolerance below float64's resolution
    assert proc.returncode == 1 and "NOT converged" in proc.stdout
    assert f"nothing written to {out}: not converged (pass --write-unconverged" in proc.stdout
    assert not out.exists() and not out.with_suffix(".npz").exists()
    proc = cli("balance", model, "--tol", "1e-300", "-o", out, "--write-unconverged")
    assert proc.returncode == 1 and f"wrote {out}" in proc.stdout
    assert nb.load_model(out).projections[0].weight.shape == nb.load_model(model).projections[0].weight.shape


def _change(stdout: str) -> tuple[float, float, str]:
    before, after, percent, word = re.search(r"cost (\S+) -> (\S+) \((\S+)% (lower|higher)\)", stdout).groups()
    assert float(percent) == pytest.approx(100 * abs(float(after) - float(before)) / float(before), abs=0.01)
    return float(before), float(after), word


def test_the_cost_change_has_its_sign_and_word(model):
    before, after, word = _change(cli("balance", model, "--cost", "L2").stdout)
    assert after < before and word == "lower"
    # the sweep with layer ties on this spiking CNN raises the L1 cost (the tie keeps spike trains, not the optimum)
    before, after, word = _change(cli("balance", SINABS, "--cost", "L1", "--method", "sweep", "--tie", "layer").stdout)
    assert after > before and word == "higher"


def test_balance_takes_the_pow2_scale_grid(tmp_path, model):
    out = tmp_path / "p.yaml"
    proc = cli("balance", model, "--method", "sweep", "--scale-grid", "pow2", "-o", out)
    assert proc.returncode == 0, proc.stderr
    before, after = nb.load_model(model), nb.load_model(out)
    ratio = np.concatenate([b.weight[a.weight != 0] / a.weight[a.weight != 0]
                            for a, b in zip(before.projections, after.projections)])
    assert np.any(ratio != 1.0)                                  # balancing moved weights ...
    assert np.all(ratio == 2.0 ** np.round(np.log2(ratio)))      # ... by exact powers of two only


@pytest.mark.parametrize("command", ["balance", "inspect", "simulate", "quantize"])
def test_the_model_argument_says_yaml_or_nir(command):
    text = " ".join(_subparsers()[command].format_help().split())
    assert "model file (YAML or NIR), or the name of a bundled model" in text and "model YAML file" not in text


def _subparsers():
    parser = build_parser()
    return next(a for a in parser._actions if a.choices and "run" in a.choices).choices


def test_a_bundled_model_is_found_by_name_from_any_folder(tmp_path):
    proc = cli("inspect", "digits_mlp", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{ROOT / 'models' / 'digits_mlp.yaml'}: Network('digits_mlp'")


def test_a_bug_still_ends_in_one_line(capsys, monkeypatch):
    """An exception no check foresaw: one line naming it, exit 1; the variable shows the traceback when asked."""
    from neuro_balance.app import cli as command_line

    def broken(args):
        return {}["missing"]

    args = argparse.Namespace(command="inspect", func=broken)
    monkeypatch.delenv(command_line.TRACEBACK_ENV, raising=False)
    assert command_line._run(args) == 1
    assert capsys.readouterr().err == ("neuro-balance inspect: internal error: KeyError: 'missing' (please report it; "
                                       "NEURO_BALANCE_TRACEBACK=1 shows the traceback)\n")
    monkeypatch.setenv(command_line.TRACEBACK_ENV, "1")
    with pytest.raises(KeyError):
        command_line._run(args)


def test_main_in_a_process_of_its_own_puts_the_signal_handlers_back(capsys):
    """A caller that runs the command line inside its process (a test, a notebook) keeps its own handlers."""
    from neuro_balance.app.cli import main

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert main(["profiles", "speck"]) == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_no_parser_abbreviates_options():
    assert not build_parser().allow_abbrev and not any(p.allow_abbrev for p in _subparsers().values())


# --- results folders ----------------------------------------------------------------------------------------


OLD_REPORT = b'{"format": "neuro_balance.report/2", "quick": true}'


def test_replace_swaps_the_whole_folder_and_a_failure_keeps_the_old_one(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "report.json").write_bytes(OLD_REPORT)
    old = tree(tmp_path)
    with pytest.raises(RuntimeError, match="stage failed"):
        with results_folder(out, replace=True) as staging:
            (staging / "half.png").write_text("half")
            raise RuntimeError("stage failed")
    assert tree(tmp_path) == old                                 # as it was: no staging folder, no lock
    with results_folder(out, replace=True) as staging:
        assert tree(out) == {"report.json": OLD_REPORT}          # the old results stay until the new are whole
        (staging / "report.md").write_text("new")
    assert tree(tmp_path) == {"results": None, "results/report.md": b"new"}  # replaced whole; nothing aside


def test_replace_never_replaces_a_folder_without_a_report(tmp_path):
    (tmp_path / "notes.txt").write_text("a user's own file")
    (tmp_path / "report.json").write_text('{"format": "something else"}')
    before = tree(tmp_path)
    for folder in (tmp_path, tmp_path / "."):
        with pytest.raises(FileExistsError, match="holds files but no earlier run's report.json"):
            with results_folder(folder, replace=True):
                pass
    assert tree(tmp_path) == before


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    out = tmp_path / "a" / "b" / "results"
    with results_folder(out) as staging:
        assert lock_path(out).read_text() == f"{os.getpid()}\n"
        with pytest.raises(FileExistsError, match=f"another run holds {lock_path(out)} \\(process {os.getpid()} is "
                                                  "writing it\\)"):
            with results_folder(out):
                pass
        (staging / "report.md").write_text("first")
    assert tree(tmp_path)["a/b/results/report.md"] == b"first" and len(tree(tmp_path)) == 4
    with pytest.raises(FileExistsError, match="not empty"):     # and a finished run is never overwritten
        with results_folder(out):
            pass


def test_a_failed_run_leaves_no_folder_it_created(tmp_path):
    with pytest.raises(ValueError):
        with results_folder(tmp_path / "new" / "deeper" / "results"):
            raise ValueError("bad model")
    assert list(tmp_path.iterdir()) == []


def test_a_signal_during_the_renames_waits_for_them(tmp_path):
    """SIGTERM during the final renames is held until they are done (it left a partial folder in 1 of 3 trials)."""
    from neuro_balance.app.clean_exit import deferred_signals

    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            assert seen == []                                    # held while the renames run
        assert seen == [signal.SIGTERM]                          # delivered once they are done
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_run_refuses_a_folder_another_run_holds(tmp_path):
    out = tmp_path / "results"
    lock_path(out).write_text(f"{os.getpid()}\n")               # a live process holds it
    proc = cli("run", "--quick", "--out", out)
    assert_one_line(proc, 1)
    assert f"another run holds {lock_path(out)} (process {os.getpid()} is writing it)" in proc.stderr
    assert os.listdir(tmp_path) == ["results.lock"]


# --- signals ------------------------------------------------------------------------------------------------


def _start_run(tmp_path, out, stage, **popen):
    """Start ``run --quick --out OUT`` and return once it has announced ``stage`` (the line that opens a stage)."""
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}        # where Brian2 would leave its files
    (tmp_path / "tmp").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "neuro_balance.app.cli", "run", "--quick", "--out", str(out),
                             "--profiles", "loihi1", "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **popen)
    for line in proc.stdout:                                     # one flushed line per event in a pipe
        if line.startswith(stage):
            time.sleep(0.3)                                      # inside the stage
            return proc
    raise AssertionError(f"the run ended before {stage!r}: {proc.communicate()}")


@pytest.mark.parametrize("signum, stage, word", [
    (signal.SIGTERM, "agents:", "terminated"),
    (signal.SIGINT, "spiking:", "interrupted"),                  # was: RuntimeError: no readout sample
    pytest.param(signal.SIGINT, "hardware:", "interrupted", marks=pytest.mark.slow),   # ~6 s into the run
])
def test_a_signal_ends_the_run_cleanly(tmp_path, signum, stage, word):
    out = tmp_path / "results"
    proc = _start_run(tmp_path, out, stage)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signum, stdout + stderr          # ended by the signal: a shell's $? is 128 + signum
    assert stderr == f"neuro-balance: {word}\n"                  # no traceback, banner or Brian2 warning
    assert os.listdir(tmp_path) == ["tmp"] and os.listdir(tmp_path / "tmp") == []   # no folder, lock or Brian2 file


@pytest.mark.slow
def test_sigint_ignored_by_the_parent_stays_ignored(tmp_path):
    """`nohup` and `cmd &` in a script start the command with SIGINT ignored; Brian2 then failed on a SIGINT."""
    out = tmp_path / "results"
    proc = _start_run(tmp_path, out, "agents:", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert proc.poll() is None                                   # still running
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM and stderr == "neuro-balance: terminated\n", stderr
    assert os.listdir(tmp_path) == ["tmp"] and os.listdir(tmp_path / "tmp") == []


def test_simulate_leaves_no_brian2_files(tmp_path, model):
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    proc = cli("simulate", model, "--rate", "1000", "--duration", "0.01", "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(tmp_path / "tmp") == []


@pytest.mark.slow
def test_replace_while_a_second_run_is_refused(tmp_path):
    """A whole quick run with --replace over an earlier folder; a second run into it meanwhile is refused."""
    out = tmp_path / "results"
    out.mkdir()
    (out / "report.json").write_bytes(OLD_REPORT)
    (tmp_path / "tmp").mkdir()
    first = subprocess.Popen([sys.executable, "-m", "neuro_balance.app.cli", "run", "--quick", "--out", str(out),
                              "--replace", "--profiles", "loihi1", "-q"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    while not lock_path(out).exists():
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    second = cli("run", "--quick", "--out", out, "--replace", "--profiles", "loihi1")
    assert_one_line(second, 1)
    assert "another run holds" in second.stderr
    stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    assert stdout == f"{out / 'report.md'}\n"
    report = json.loads((out / "report.json").read_text())
    assert report["quick"] and "hardware" in report                # the new report, not the earlier one
    assert sorted(os.listdir(tmp_path)) == ["results", "tmp"]
