"""Rounding, overflow and shared exponents against hand-computed cases."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from neuro_balance.hardware.fixed_point import (FixedPointOverflowError, IntFormat, quantize_shared_exponent,
                                                round_div, round_int, shared_exponent, shift_round, wrap)

X = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4, -2.6])


@pytest.mark.parametrize("mode, expected", [
    ("nearest", [-3, -2, -1, 1, 2, 3, 2, -3]),          # half away from zero
    ("nearest_even", [-2, -2, 0, 0, 2, 2, 2, -3]),      # half to even
    ("truncate", [-3, -2, -1, 0, 1, 2, 2, -3]),         # two's complement truncation = floor
    ("floor", [-3, -2, -1, 0, 1, 2, 2, -3]),
    ("toward_zero", [-2, -1, 0, 0, 1, 2, 2, -2]),
])
def test_rounding_modes_match_hand_computed_values(mode, expected):
    assert round_int(X, mode).tolist() == expected


@pytest.mark.parametrize("mode, expected", [
    ("floor", [3, -4, 2, -3, 3, -3, 0, -1]),
    ("toward_zero", [3, -3, 2, -2, 3, -3, 0, 0]),
    ("nearest", [4, -4, 3, -3, 3, -3, 1, -1]),
    ("nearest_even", [4, -4, 2, -2, 3, -3, 0, 0]),
])
def test_integer_division_rounds_like_hand_computation(mode, expected):
    assert round_div(np.array([7, -7, 5, -5, 6, -6, 1, -1]), 2, mode).tolist() == expected


@given(st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=30), st.integers(1, 5000),
       st.sampled_from(["nearest", "nearest_even", "floor", "toward_zero"]))
def test_exact_integer_division_agrees_with_rounding_the_quotient(nums, den, mode):
    nums = np.array(nums)
    # Quotients of small integers are exact enough in float64 to decide ties correctly.
    assert np.array_equal(round_div(nums, den, mode), round_int(nums / den, mode))


def test_stochastic_rounding_is_seeded_unbiased_and_keeps_integers():
    x = np.full(200_000, 0.25)
    a, b = round_int(x, "stochastic", 7), round_int(x, "stochastic", 7)
    assert np.array_equal(a, b)
    assert set(np.unique(a)) == {0, 1}
    assert abs(a.mean() - 0.25) < 0.005        # binomial std 0.001: five sigma
    assert np.all(round_int(np.full(100, 3.0), "stochastic", 1) == 3)
    assert np.all(round_int(np.full(100, -2.75), "stochastic", 1) >= -3)
    q = round_div(np.full(200_000, 5), 4, "stochastic", seed=3)   # 1.25
    assert set(np.unique(q)) == {1, 2} and abs(q.mean() - 1.25) < 0.005


def test_right_shift_rounds_with_the_mode_and_left_shift_is_exact():
    assert shift_round(np.array([5, -5, 6]), -1, "floor").tolist() == [2, -3, 3]
    assert shift_round(np.array([5, -5, 6]), -1, "toward_zero").tolist() == [2, -2, 3]
    assert shift_round(np.array([3, -3]), 4).tolist() == [48, -48]


VALUES = np.array([127, 128, -128, -129, 300, -300])


def test_wrap_is_twos_complement_and_counts_overflows():
    out, n = IntFormat(8, True, overflow="wrap").fit(VALUES)
    assert out.tolist() == [127, -128, -128, 127, 44, -44] and n == 4
    assert wrap(np.array([15, 16, -1]), 4, signed=False).tolist() == [15, 0, 15]


def test_saturate_clips_to_the_range_and_counts():
    out, n = IntFormat(8, True, overflow="saturate").fit(VALUES)
    assert out.tolist() == [127, 127, -128, -128, 127, -128] and n == 4
    loihi_v = IntFormat(24, True, overflow="saturate", lo=-(2**23 - 1), hi=2**23 - 1)
    assert loihi_v.fit(np.array([-2**23, 2**23]))[0].tolist() == [-(2**23 - 1), 2**23 - 1]


def test_error_policy_raises_naming_the_quantity_and_range():
    with pytest.raises(FixedPointOverflowError, match=r"acc: 4 value\(s\) outside \[-128, 127\]"):
        IntFormat(8, True, overflow="error", name="acc").fit(VALUES)
    assert IntFormat(8, True, overflow="error").fit(np.array([-128, 127]))[1] == 0


def test_fractional_bits_scale_the_real_value():
    fmt = IntFormat(16, True, frac_bits=15)         # s0.15 (sPyNNaker-style fraction)
    k, _ = fmt.from_float(np.array([0.5, -0.25]))
    assert k.tolist() == [16384, -8192] and fmt.to_float(k).tolist() == [0.5, -0.25]


def lava_weight_exp(w):
    """lava utils/weightutils.py _determine_weight_exp for mixed-sign weights, written out."""
    scale = min(127 / w.max(), -128 / w.min())
    return -(int(math.floor(math.log2(scale))) + 1)


def test_shared_exponent_is_lavas_weight_exponent():
    rng = np.random.default_rng(0)
    for _ in range(500):
        w = rng.normal(size=20) * 10.0 ** rng.uniform(-3, 3)
        if w.max() <= 0 or w.min() >= 0:
            continue
        e = shared_exponent(np.array([w.max()]), np.array([w.min()]), -128, 127)[0]
        # lava stores w * 2**-weight_exp as an even value in [-256, 254] (two per mantissa step),
        # so its mantissa step is 2**(weight_exp + 1).
        assert e == lava_weight_exp(w) + 1


def test_shared_exponent_is_the_smallest_that_fits_and_respects_the_range():
    e = shared_exponent(np.array([1.0, 127.0, 128.0, 0.0]), np.array([0.0, 0.0, 0.0, 0.0]), -128, 127)
    assert e.tolist() == [-6, 0, 1, 0]              # 1 = 64 * 2**-6 ... 127 fits exactly, 128 needs 2**1
    assert shared_exponent(np.array([1e-9]), np.array([0.0]), -128, 127, exp_min=-7).tolist() == [-7]


def test_mantissa_with_shared_exponent_takes_at_most_2_to_the_bits_values():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 40))
    group = np.arange(50)[:, None]
    for bits in (2, 3, 4, 8):
        m, e, clipped = quantize_shared_exponent(x, group, 50, IntFormat(bits), "nearest")
        assert clipped == 0 and e.shape == (50,)
        for g in range(50):
            assert len(np.unique(m[g])) <= 2 ** bits
        err = np.abs(m * 2.0 ** e[:, None] - x)
        assert np.all(err <= 2.0 ** e[:, None] / 2 + 1e-12)   # nearest: half a step at most
