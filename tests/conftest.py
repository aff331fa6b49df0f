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
