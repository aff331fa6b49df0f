"""Shared fixtures: small generated cities, made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.synth.city import CitySpec, generate_city

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
