"""Shared fixtures: small generated cities, made once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from features.synth.city import CitySpec, generate_city

THREAD_POOLS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
"""The native thread pools a test may start: LightGBM's and libgomp's, NumPy's BLAS, numba's."""


def pytest_configure(config):
    """Share the cores among the suite's worker processes before they start (they inherit it, and so
    do the programs the tests run). Each pool takes every core by default: with two workers on two
    cores, four OpenMP threads spin at every barrier of LightGBM's training, and model tests took
    2.6 times as long (tests/models/test_stages.py and test_estimator.py: 79 s, 30 s with one thread
    each, on a 2-core machine with one core busy). A value already set is kept."""
    workers = getattr(config.option, "numprocesses", None)
    if isinstance(workers, int) and workers > 0 and not os.environ.get("PYTEST_XDIST_WORKER"):
        share = str(max(1, (os.cpu_count() or 1) // workers))
        for pool in THREAD_POOLS:
            os.environ.setdefault(pool, share)


def pytest_collection_modifyitems(config, items):
    """The files marked ``long(minutes=…)`` first, longest first (the README, then the processes and
    the notebooks), the rest in the order collected: the workers take files in this order
    (``--no-loadscope-reorder``), so the longest start at once instead of ending the run on one worker
    while the other waits. (xdist's own order, files with the most tests first, put the README's three
    tests last: on 2026-12-08 a run took 1,029 s of wall for 1,628 s of CPU on two cores.)"""
    def minutes(item) -> float:
        marked = item.get_closest_marker("long")
        return marked.kwargs.get("minutes", 1.0) if marked else 0.0

    items.sort(key=lambda item: -minutes(item))


SMALL_DIRTY = CitySpec(enterprises=1_500, months=12, seed=7, dirty=0.03)


@pytest.fixture(scope="session")
def dirty_city(tmp_path_factory) -> Path:
    """A small city with 3 % dirt of every kind, and its manifest."""
    out = tmp_path_factory.mktemp("cities") / "dirty"
    generate_city(SMALL_DIRTY, out)
    return out


PROFILE_CITY = CitySpec(enterprises=1_200, months=24, seed=5, dirty=0.0, loan_rate=3.0)


@pytest.fixture(scope="session")
def profile_city(tmp_path_factory) -> Path:
    """A clean 24-month city of 1,200 entities (more loans than usual, for snapshots)."""
    city = tmp_path_factory.mktemp("cities") / "profile"
    generate_city(PROFILE_CITY, city)
    return city


@pytest.fixture(scope="session")
def profile_home(profile_city, tmp_path_factory) -> Path:
    """:func:`profile_city` ingested into a lake. Tests that change the lake copy it first."""
    from features.ingest.run import drop_files, ingest

    home = tmp_path_factory.mktemp("profile-home")
    ingest(home, drop_files(profile_city))
    return home


MODEL_CITY = CitySpec(enterprises=3_000, months=36, seed=11, dirty=0.0, loan_rate=6.0)
MODEL_SPLIT = {"min_defaults": 10}


@pytest.fixture(scope="session")
def model_city(tmp_path_factory) -> Path:
    """The department files of a 36-month city with enough matured loans to train on."""
    city = tmp_path_factory.mktemp("cities") / "model"
    generate_city(MODEL_CITY, city)
    return city


@pytest.fixture(scope="session")
def model_home(model_city, tmp_path_factory) -> Path:
    """:func:`model_city` ingested."""
    from features.ingest.run import drop_files, ingest

    home = tmp_path_factory.mktemp("model-home")
    ingest(home, drop_files(model_city))
    return home


@pytest.fixture(scope="session")
def tracking_store(tmp_path_factory):
    """A private MLflow store for the session's tests."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="session")
def trained(model_home, tracking_store):
    """A challenger trained on the model city and registered in the session's store."""
    from models.run import train_challenger

    return train_challenger(model_home, split_months=MODEL_SPLIT)

