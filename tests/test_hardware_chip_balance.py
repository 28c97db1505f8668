"""Balancing before quantisation: the choices keep the float function, auto decides on calibration data only."""
from pathlib import Path

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.errors import GridError
from neuro_balance.hardware import balance_for_chip, quantize, range_imbalance
from neuro_balance.hardware.chip_balance import balanced_candidates

pytestmark = pytest.mark.filterwarnings("ignore::neuro_balance.hardware.UnverifiedProfileWarning")

MODELS = Path(__file__).resolve().parent.parent / "models"


def _accuracy(net, X, y):
    return float(np.mean(net.forward(X).argmax(axis=1) == y))


@pytest.fixture(scope="module")
def digits():
    from neuro_balance.learn.datasets import digits as load

    return load()


def test_every_choice_keeps_the_float_function_and_linf_equalises_ranges():
    net = nb.mlp([10, 8, 6, 3], seed=0)
    net.projections[0].weight[:3] *= 40.0                    # three units with far larger incoming ranges
    x = np.random.default_rng(0).random((20, 10))
    for choice, candidate in balanced_candidates(net).items():
        np.testing.assert_allclose(candidate.forward(x), net.forward(x), rtol=1e-9, atol=1e-12)
    cands = balanced_candidates(net)
    assert range_imbalance(net) > 0.9 and range_imbalance(cands["linf"]) < 1e-8
    for u in nb.balance(net, nb.Linf(include_bias=False), method="sweep", scale_grid="pow2").log_scales.values():
        np.testing.assert_array_equal(u / np.log(2.0), np.rint(u / np.log(2.0)))   # pow2: exact shifts


def test_auto_uses_no_test_data_and_keeps_plain_quantisation_without_a_significant_gain():
    # A balanced network (nothing to gain): auto must keep it as it is.
    net = nb.balance(nb.mlp([10, 8, 3], seed=1), nb.Linf(include_bias=False)).network
    x = np.random.default_rng(1).random((200, 10))
    res = balance_for_chip(net, "speck", x, "auto", weight_bits=4)
    assert res.choice == "none" and res.network is net and set(res.calibration_error) == {"none", "linf", "lp", "pow2"}
    with pytest.raises(ValueError, match="calibration"):
        balance_for_chip(net, "speck", None, "auto")
    with pytest.raises(ValueError, match="balance must be"):
        balance_for_chip(net, "speck", x, "l3")


def test_auto_is_never_more_than_half_a_point_below_plain_quantisation_on_a_shipped_model(digits):
    # Quick fixture: the shipped unregularised Adam MLP on a per-layer and a per-network chip at 4 bits
    # (the slow test below runs every shipped model on every chip at its own width and at 4 bits).
    net = nb.load_model(MODELS / "digits_mlp_adam.yaml")
    for profile in ("loihi1", "xylo_audio2"):
        plain = quantize(net, profile, digits.X_train, weight_bits=4)
        res = balance_for_chip(net, profile, digits.X_train, "auto", weight_bits=4)
        auto = quantize(res.network, profile, digits.X_train, weight_bits=4)
        a_plain = float(np.mean(plain.forward(digits.X_test).argmax(1) == digits.y_test))
        a_auto = float(np.mean(auto.forward(digits.X_test).argmax(1) == digits.y_test))
        assert a_auto >= a_plain - 0.005, (profile, res.choice, a_plain, a_auto)


@pytest.mark.slow
def test_balancing_the_batch_norm_folded_cnn_beats_plain_4_bit_quantisation_on_per_layer_scale_chips(digits):
    # Folding gamma / sigma into the weights spreads per-channel ranges apart (imbalance 0.8): with
    # one scale per layer (loihi1, spinnaker1) or per network (xylo), small channels lose their levels.
    net = nb.load_model(MODELS / "digits_cnn_bn.yaml")
    assert range_imbalance(net) > 0.5
    for profile in ("loihi1", "spinnaker1", "xylo_audio2"):
        plain = quantize(net, profile, digits.X_train, weight_bits=4)
        res = balance_for_chip(net, profile, digits.X_train, "auto", weight_bits=4)
        auto = quantize(res.network, profile, digits.X_train, weight_bits=4)
        a_plain = float(np.mean(plain.forward(digits.X_test).argmax(1) == digits.y_test))
        a_auto = float(np.mean(auto.forward(digits.X_test).argmax(1) == digits.y_test))
        assert res.choice != "none" and a_auto > a_plain + 0.005, (profile, res, a_plain, a_auto)


@pytest.mark.slow
def test_auto_on_every_shipped_model_and_chip(digits):
    from neuro_balance.hardware import evaluate
    from neuro_balance.hardware.evaluate import Evaluation

    for path in sorted(MODELS.glob("*.yaml")):
        net = nb.load_model(path)
        if net.recurrent:
            continue
        try:   # every chip in one grid: the balanced candidates and their calibration ranges are made once per model
            ev = evaluate(net, digits.X_test, digits.y_test, calibration=digits.X_train,
                          bits=[None, 4], variants=["quantized", "balanced_auto"])
        except GridError as err:   # a chip that cannot run the model (tanh units on a spiking chip) is left out
            failed = {cell[0] for cell, _ in err.result.failed}
            ev = Evaluation([r for r in err.result.records if r is not None and r["profile"] not in failed],
                            float("nan"))
        for prof in ev.profiles:
            for b in ev.bits:
                plain, auto = ev.mean(prof, b, "quantized"), ev.mean(prof, b, "balanced_auto")
                if plain is not None:
                    assert auto >= plain - 0.005, (path.stem, prof, b, plain, auto)
