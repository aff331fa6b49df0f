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
