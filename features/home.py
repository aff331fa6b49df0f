"""Where the platform keeps its state: one folder, ``XYD_HOME`` (default ``./var``).

The lake, quarantine, ingest reports, profiles, the SQLite database and the demo city all live
under it, so two runs with different homes never touch each other.
"""

from __future__ import annotations

import os
from pathlib import Path


def xyd_home() -> Path:
    """The state folder named by ``XYD_HOME``, or ``./var``; created if missing."""
    home = Path(os.environ.get("XYD_HOME") or "var").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def keys_directory(home: Path) -> Path:
    """Where the signing keys live under ``home``: 0700, private keys 0600, never in the database."""
    return Path(home) / "keys"


def checkpoints_file(home: Path) -> Path:
    """The append-only file of the audit chains' signed checkpoints under ``home``."""
    return Path(home) / "audit" / "checkpoints.jsonl"
