"""Shared test settings: hypothesis profiles and the one-BLAS-thread fixture.

Hypothesis profiles (choose with ``HYPOTHESIS_PROFILE=NAME``; CI sets ``ci`` in ``.ci/run``):

* ``default``  random examples, 40 per test (the README's test command);
* ``ci``       derandomized: the same examples on every run, so CI failures reproduce exactly;
* ``dev``      random examples, 250 per test: run it before a merge to search further than CI does.

A test's own ``@settings(max_examples=...)`` wins over the profile's count.
"""
import os

import pytest
import threadpoolctl
from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, max_examples=40,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True, database=None,
                          print_blob=True)
settings.register_profile("dev", parent=settings.get_profile("default"), max_examples=250)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default"))


@pytest.fixture
def one_blas_thread():
    """Tests that multiply matrices of a few thousand entries: BLAS threads only add overhead."""
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield
