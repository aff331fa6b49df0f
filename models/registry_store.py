"""Why a challenger cannot be promoted, answered without importing MLflow where that is safe.

A refusal should come at once (#29: "Refusals before heavy imports"), but importing MLflow alone
takes about 2 s. When the tracking store is the default kind, a SQLite file, the two facts the
refusal rests on (which versions the ``champion`` and ``challenger`` aliases name, and each one's
``bundle_id`` tag) are read from it directly, read-only. Anything this module does not recognise
(another kind of store, a file missing, a schema without those tables or columns, an alias on two
rows) makes it say "cannot tell", and the caller asks MLflow (:func:`models.tracking.already_champion`,
which applies the same rule, :func:`refusal`, through MLflow's client).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

MODEL_NAME = "xyd-pre-credit"
CHALLENGER, CHAMPION = "challenger", "champion"
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
CANNOT_TELL = "cannot tell"


def refusal(challenger: str, champion: str | None, bundle_of: Callable[[str], str | None]) -> tuple[str, str] | None:
    """The one rule: the challenger cannot be promoted when it is the champion's version, or holds
    the champion's bundle (the same data and settings retrained). Returns (why, the champion's
    version), or None when it is another model or there is no champion yet."""
    if champion is None:
        return None
    if champion == challenger:
        return f"version {challenger} is already the champion", champion
    bundles = [bundle_of(v) for v in (challenger, champion)]
    if bundles[0] and bundles[0] == bundles[1]:
        return (f"version {challenger}: the challenger is identical to the champion (bundle {bundles[0]}, version "
                f"{champion}): the same data and settings retrain the same model; nothing to promote", champion)
    return None


def sqlite_store(uri: str | None = None) -> Path | None:
    """The SQLite file of the tracking store in use, if it is one that exists."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    return path if path.is_file() else None


def refusal_from_store(uri: str | None = None) -> tuple[str, str] | None | str:
    """:func:`refusal` read from a SQLite tracking store without MLflow: (why, champion) when the
    challenger cannot be promoted, None when it can (or there is no champion), or
    :data:`CANNOT_TELL` when the store is not one read here safely, or has no challenger (MLflow
    then says so in its own words)."""
    path = sqlite_store(uri)
    if path is None:
        return CANNOT_TELL
    try:
        # read-only, by a file: URI (a path holding ? or # stays one path), and closed after
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as store:
            def alias(name: str) -> str | None:
                rows = store.execute("SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                                     (MODEL_NAME, name)).fetchall()
                if len(rows) > 1:
                    raise LookupError(name)
                return str(rows[0][0]) if rows else None

            def bundle_of(version: str) -> str | None:
                rows = store.execute("SELECT value FROM model_version_tags WHERE name = ? AND version = ? "
                                     "AND key = 'bundle_id'", (MODEL_NAME, int(version))).fetchall()
                if len(rows) > 1:
                    raise LookupError(version)
                return rows[0][0] if rows else None

            challenger = alias(CHALLENGER)
            if challenger is None:
                return CANNOT_TELL
            return refusal(challenger, alias(CHAMPION), bundle_of)
    except (sqlite3.Error, LookupError, ValueError):
        return CANNOT_TELL
