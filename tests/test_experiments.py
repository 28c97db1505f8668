"""Experiments (small settings), their JSON/PNG output, the ``demo`` command and the bundled model."""
from __future__ import annotations

import gzip
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuro_balance.learn import digits_models, experiments
from neuro_balance.learn.experiments.balance_vs_learning_rate import ARMS

ROOT = Path(__file__).resolve().parents[1]


# matrices of a few thousand entries: BLAS threads only add overhead (fixture in conftest.py)
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def test_gd_regularizer_only_the_regularised_run_balances(tmp_path):
    res = experiments.run("gd_regularizer", **experiments.QUICK["gd_regularizer"])
    s = res["summary"]
    assert s["deficit_ratio_l2"] < 0.9 * s["deficit_ratio_plain"]
    assert len(res["curves"]["l2_deficit"]) == res["config"]["epochs"] + 1
    # the first-epoch decay follows exp(-8 alpha t) to within the O(lr**2) terms
    assert s["fitted_deficit_decay_rate"] == pytest.approx(s["predicted_deficit_decay_rate"], rel=0.2)
    paths = experiments.save(res, tmp_path)
    assert json.loads(paths["json"].read_text())["name"] == "gd_regularizer"
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_balance_disrupted_starts_balanced_and_drifts_like_lr_squared():
    res = experiments.run("balance_disrupted", **experiments.QUICK["balance_disrupted"])
    s = res["summary"]
    assert s["initial_max_relative_imbalance"] < 1e-10
    assert res["curves"]["deficit_lr0.01"][0] < 1e-16
    assert s["final_deficit_lr0.2"] > s["final_deficit_lr0.01"]
    (ratio,) = s["drift_ratios_per_halving"]
    assert 3.5 < ratio < 4.5


def test_order_independence_runs_agree_with_the_global_solution():
    res = experiments.run("order_independence", runs=12)
    s = res["summary"]
    assert s["max_relative_deviation_from_global"] < 1e-8
    assert s["max_relative_deviation_from_mean"] < 1e-8
    assert (s["cost_max"] - s["cost_min"]) <= 1e-10 * s["cost_global"]
    assert s["cost_global"] < s["cost_initial"] and s["norm_mean"] < s["norm_initial"]
    assert len(res["curves"]["deviation_from_global"]) == 12


def _idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + \
        array.astype(np.uint8).tobytes()


def test_balance_and_learning_on_digits_and_on_idx_files(tmp_path):
    res = experiments.run("balance_and_learning", **experiments.QUICK["balance_and_learning"])
    assert set(res["summary"]) == {"1", "0.01"}
    for rows in res["summary"].values():
        assert set(rows) == {"plain", "L1 NB"}
        for r in rows.values():
            assert 0.0 <= r["final_mean"] <= 1.0 and r["final_std"] >= 0.0
            assert r["best_mean"] >= r["final_mean"] - 1e-12
    assert res["summary"]["1"]["plain"]["n_train"] == 1347 and res["summary"]["0.01"]["plain"]["n_train"] == 10
    table = experiments.summary_text(res)
    assert "L1 NB" in table and "0.01" in table
    # MNIST path: tiny IDX files with an easy rule (the label is the brightest of 10 pixels)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 200), ("t10k", 100)):
        images = rng.integers(0, 100, size=(n, 4, 4))
        labels = rng.integers(0, 10, size=n)
        images.reshape(n, -1)[np.arange(n), labels] = 255
        (tmp_path / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(labels))
    res = experiments.balance_and_learning(mnist=tmp_path, seeds=(0, 1), fractions=(1.0, 0.5), epochs=20,
                                           sizes=(16, 12, 10), lr=0.1, conditions=("plain", "FB", "L2 NB"),
                                           target=0.5)
    assert abs(res["summary"]["0.5"]["FB"]["n_train"] - 100) <= 10  # per-class rounding
    assert res["summary"]["1"]["plain"]["final_mean"] > 0.5  # far above chance (0.1): the pipeline learns
    paths = experiments.save(res, tmp_path / "out", figure=False)
    assert json.loads(paths["json"].read_text())["config"]["data"] == str(tmp_path)


def test_save_writes_strict_json_with_nan_as_null(tmp_path):
    res = {"name": "order_independence", "config": {}, "curves": {"a": np.arange(3)},
           "summary": {"x": math.nan, "y": np.float64(2.5), "n": np.int64(3)}}
    paths = experiments.save(res, tmp_path, figure=False)
    data = json.loads(paths["json"].read_text())
    assert data["summary"] == {"x": None, "y": 2.5, "n": 3} and data["curves"]["a"] == [0, 1, 2]


def test_unknown_experiment_and_condition_are_rejected():
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        experiments.run("nope")
    with pytest.raises(ValueError, match="conditions"):
        experiments.balance_and_learning(conditions=("plain", "magic"))


def test_balance_vs_learning_rate_runs_every_arm_and_optimiser(tmp_path):
    res = experiments.run("balance_vs_learning_rate", nets=[{"name": "tiny", "sizes": (64, 8, 10), "n_train": 100,
                                                             "epochs": 4}],
                          seeds=(0, 1), optimizers={"sgd": (1e-3, 0.5), "adam": (1e-2,)}, tuned_epochs=2,
                          eval_every=2, batch_size=25)
    s, c = res["summary"], res["curves"]
    assert set(s) == {"sgd", "adam"} and set(s["sgd"]["tiny"]) == {"0.001", "0.5"}
    assert set(s["sgd"]["tiny"]["0.5"]) == set(ARMS)
    assert res["config"]["nets"][0]["n_train_used"] == 100  # stratified: 10 images of each digit
    for arm, curve in c["sgd"]["tiny"]["0.5"].items():
        # balancing (FB) and regularisers leave the initial function alone: every arm starts equal
        assert curve["mean"][0] == c["sgd"]["tiny"]["0.5"]["plain"]["mean"][0], arm
        assert curve["epochs"] == [0, 2, 4]
    assert c["adam"]["tiny"]["0.01"]["plain"]["epochs"] == [0, 2]
    # lr 1e-3 for 4 epochs hardly moves; lr 0.5 learns: the sweep is not a copy of one run
    assert s["sgd"]["tiny"]["0.5"]["plain"]["final_mean"] > s["sgd"]["tiny"]["0.001"]["plain"]["final_mean"] + 0.1
    text = experiments.summary_text(res)
    assert "does not" in text and "commute with rescaling" in text and "FB + L1 NB" in text
    paths = experiments.save(res, tmp_path)
    assert json.loads(paths["json"].read_text())["name"] == "balance_vs_learning_rate"
    assert paths["png"].stat().st_size > 10_000


def test_balance_vs_learning_rate_reads_idx_files(tmp_path):
    rng = np.random.default_rng(1)
    for prefix, n in (("train", 200), ("t10k", 60)):
        images = rng.integers(0, 100, size=(n, 4, 4))
        labels = np.arange(n) % 10
        images.reshape(n, -1)[np.arange(n), labels] = 255
        (tmp_path / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(images))
        (tmp_path / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels)))
    res = experiments.run("balance_vs_learning_rate", mnist=tmp_path, seeds=(0,), arms=("plain", "L1 NB"),
                          nets=[{"name": "idx", "sizes": (784, 8, 10), "n_train": 100, "epochs": 2}],
                          optimizers={"sgd": (0.1,)}, eval_every=1)
    assert res["config"]["data"] == str(tmp_path) and res["config"]["n_test"] == 60
    assert res["config"]["nets"][0]["n_train_used"] == 100
    assert len(res["curves"]["sgd"]["idx"]["0.1"]["L1 NB"]["mean"]) == 3


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "neuro_balance.app.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_demo_lists_every_script_in_demos_under_its_file_name():
    proc = _cli("demo")
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines()[1:] if line.strip()}
    assert listed == {p.stem for p in (ROOT / "demos").glob("*.py")}
    assert set(experiments.EXPERIMENTS) <= listed  # every experiment has its script


def test_demo_runs_a_script_through_the_command_line(tmp_path):
    proc = _cli("demo", "order_independence", "--quick", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "max_relative_deviation_from_global" in proc.stdout
    assert (tmp_path / "order_independence.json").is_file() and (tmp_path / "order_independence.png").is_file()


def test_demo_suggests_the_name_of_a_mistyped_demo():
    proc = _cli("demo", "gd-regularizer")
    assert proc.returncode == 2
    assert "did you mean 'gd_regularizer'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["nosuchdemo"], "invalid choice"),
    (["order_independence", "--seeds", "3"], "unrecognized arguments: --seeds"),
    (["balance_and_learning", "--mnist", "absent-folder"], "not a directory"),
    (["gd_regularizer", "--quick", "--seeds", "0"], "--seeds: must be >= 1"),
])
def test_demo_rejects_bad_names_and_options(tmp_path, capsys, args, message):
    from neuro_balance.app import cli

    try:
        code = cli.main(["demo", *args, "--out", str(tmp_path / "out")])
    except SystemExit as stop:
        code = stop.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_train_digits_model_reaches_93_percent():
    net, accuracy = digits_models.train_digits_model()
    assert accuracy >= 0.93
    assert [p.size for p in net.populations.values()] == [64, 32, 32, 10]


def test_bundled_digits_model_loads_and_is_accurate():
    path = ROOT / "models" / "digits_mlp.yaml"
    if not path.is_file():
        pytest.skip("models/digits_mlp.yaml not generated (scripts/train_digits_model.py)")
    from neuro_balance.learn.datasets import digits
    from neuro_balance.model.files import load_model
    from neuro_balance.learn.training import evaluate

    d = digits()
    _, accuracy = evaluate(load_model(path), d.X_test, d.y_test)
    assert accuracy >= 0.93
