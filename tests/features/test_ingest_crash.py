"""An ingest killed while it writes leaves the lake as it was before or as it is after, never half."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from features.ingest.run import drop_files, ingest
from features.lake import Lake
from features.schemas import SOURCES


def _state(home: Path) -> dict[str, int]:
    lake = Lake(home)
    return {name: len(lake.read(name)) + len(lake.read_quarantine(name)) for name in SOURCES}


@pytest.fixture(scope="module")
def complete(dirty_city, tmp_path_factory) -> dict[str, int]:
    home = tmp_path_factory.mktemp("reference")
    ingest(home, drop_files(dirty_city))
    return _state(home)


def _start(home: Path, city: Path) -> subprocess.Popen:
    env = {**os.environ, "XYD_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "api.cli", "ingest", "--drop", str(city)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for_parts(home: Path, child: subprocess.Popen, at_least: int) -> bool:
    """True once the child has written ``at_least`` part files and not yet finished."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if len(list((home / "lake").glob("*/part-*"))) >= at_least:
            return True
        time.sleep(0.005)
    return False


@pytest.mark.parametrize("parts_before_kill", [1, 40])
def test_killed_run_leaves_the_lake_as_before_and_a_rerun_completes_it(tmp_path, dirty_city, complete, parts_before_kill):
    home = tmp_path / "home"
    child = _start(home, dirty_city)
    caught = _wait_for_parts(home, child, parts_before_kill)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert caught, "the run finished before it could be killed"
    assert _state(home) == dict.fromkeys(SOURCES, 0)  # nothing half-visible
    ingest(home, drop_files(dirty_city))
    assert _state(home) == complete
    leftovers = {p.name for p in (home / "lake").glob("*/part-*")}
    listed = {name for parts in Lake(home).manifest()["lake"].values() for name in parts}
    assert leftovers == listed  # the dead run's parts were swept


def test_killed_second_run_leaves_the_first_runs_lake_intact(tmp_path, dirty_city, complete):
    home = tmp_path / "home"
    first_source = [(n, p) for n, p in drop_files(dirty_city) if n in ("enterprise_registry", "tax_filings")]
    ingest(home, first_source)
    before = _state(home)
    child = _start(home, dirty_city)
    caught = _wait_for_parts(home, child, len(list((home / "lake").glob("*/part-*"))) + 5)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert caught
    assert _state(home) == before
    ingest(home, drop_files(dirty_city))
    assert _state(home) == complete
