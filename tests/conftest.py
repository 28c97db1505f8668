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

from brian_flags import COMPILE_ARGS

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


@pytest.fixture
def numpy_codegen():
    """Brian2's numpy target for tests of plain Brian2 objects (its default, Cython, compiles for a minute cold)."""
    brian2 = pytest.importorskip("brian2")
    old = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = "numpy"
    yield
    brian2.prefs.codegen.target = old


@pytest.fixture(scope="session")
def cython_target():
    """Brian2's Cython target with one set of compiler flags for the whole run: every Cython test shares one build.

    Compiled with `brian_flags.COMPILE_ARGS` (-O0: the tests check exactness, not speed), with
    Brian2's floating-point flags. The code cache is the project's (`neuro_balance.sim.cache_directory`,
    moved with ``$NEURO_BALANCE_CACHE``), so a warm cache is reused across runs; a cold one compiles
    once per run. ``$NEURO_BALANCE_TEST_CYTHON_CACHE`` puts the tests' build somewhere else (an empty
    directory measures a cold start).
    """
    brian2 = pytest.importorskip("brian2")
    prefs = brian2.prefs
    old = prefs.codegen.runtime.cython.cache_dir, list(prefs.codegen.cpp.extra_compile_args_gcc)
    if os.environ.get("NEURO_BALANCE_TEST_CYTHON_CACHE"):
        prefs.codegen.runtime.cython.cache_dir = os.environ["NEURO_BALANCE_TEST_CYTHON_CACHE"]
    prefs.codegen.cpp.extra_compile_args_gcc = list(COMPILE_ARGS)
    yield
    prefs.codegen.runtime.cython.cache_dir, prefs.codegen.cpp.extra_compile_args_gcc = old
