import numpy as np
import pytest
from hypothesis import given, strategies as st

from neuro_balance import ModelError, parse_activation

SPECS = ["relu", "linear", "leaky_relu:0.1", "bilu:-0.5,2", "bipu:2", "bipu:1.5,-0.3,2", "tanh", "sigmoid", "relu6"]


@pytest.mark.parametrize("spec", SPECS)
def test_spec_round_trips_through_the_parser(spec):
    act = parse_activation(spec)
    assert parse_activation(act.spec) == act


@given(st.sampled_from(SPECS[:6]), st.floats(1e-3, 1e3), st.lists(st.floats(-10, 10), min_size=1, max_size=20))
def test_homogeneous_units_scale_with_their_degree(spec, lam, xs):
    act = parse_activation(spec)
    x = np.array(xs)
    np.testing.assert_allclose(act(lam * x), lam ** act.degree * act(x), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("spec", ["tanh", "sigmoid", "relu6"])
def test_non_homogeneous_units_are_not_scale_equivariant(spec):
    act = parse_activation(spec)
    assert not act.homogeneous
    x = np.linspace(-3, 8, 23)
    assert not np.allclose(act(3.0 * x), 3.0 * act(x))


@pytest.mark.parametrize("spec", SPECS)
def test_derivative_matches_finite_differences(spec):
    act = parse_activation(spec)
    x = np.array([-2.3, -0.7, 0.4, 1.9, 5.5, 7.1])
    h = 1e-6
    np.testing.assert_allclose(act.derivative(x), (act(x + h) - act(x - h)) / (2 * h), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("spec", ["softplus", "leaky_relu:x", "bipu:-1", "bilu:1", "relu:3", "", "bipu:nan"])
def test_bad_activations_are_refused_with_the_spec_named(spec):
    with pytest.raises(ModelError, match="activation"):
        parse_activation(spec)
