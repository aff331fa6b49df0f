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


def store_uri() -> str:
    """The tracking store in use: ``MLFLOW_TRACKING_URI``, or the default SQLite file."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def sqlite_store(uri: str | None = None) -> Path | None:
    """The SQLite file of the tracking store in use, if it is one that exists."""
    uri = uri or store_uri()
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    return path if path.is_file() else None


def no_model(alias_or_version: str, uri: str) -> str:
    """What to say when the registry at ``uri`` has no model under ``alias_or_version``."""
    how = ("train one with `xyd train`" if alias_or_version != CHAMPION else
           "train one with `xyd train` and promote it with `xyd promote`")
    return f"no {MODEL_NAME} model {alias_or_version!r} in {uri}; {how}"


def version_from_store(alias: str, uri: str | None = None) -> str | None:
    """The version ``alias`` names, read from a SQLite tracking store without MLflow: a serving
    worker with no champion yet, or checking whether the champion moved, need not load MLflow (2 s,
    and a store MLflow opens it may also try to make). None when the store holds no model under
    that alias; :data:`CANNOT_TELL` when the store is not one read here safely (another kind, a file
    missing, another schema, an alias on two rows): ask MLflow then."""
    path = sqlite_store(uri)
    if path is None or alias.isdigit():  # a number names a version, not an alias: MLflow checks it exists
        return CANNOT_TELL
    try:
        with contextlib.closing(_read_only(path)) as store:
            return _alias(store, alias)
    except (sqlite3.Error, LookupError):
        return CANNOT_TELL


def _read_only(path: Path) -> sqlite3.Connection:
    """The store opened read-only, by a file: URI (a path holding ? or # stays one path)."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)


def _alias(store: sqlite3.Connection, name: str) -> str | None:
    """The version the alias ``name`` of the model names, None if none; LookupError if two rows do."""
    rows = store.execute("SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                         (MODEL_NAME, name)).fetchall()
    if len(rows) > 1:
        raise LookupError(name)
    return str(rows[0][0]) if rows else None


def refusal_from_store(uri: str | None = None) -> tuple[str, str] | None | str:
    """:func:`refusal` read from a SQLite tracking store without MLflow: (why, champion) when the
    challenger cannot be promoted, None when it can (or there is no champion), or
    :data:`CANNOT_TELL` when the store is not one read here safely, or has no challenger (MLflow
    then says so in its own words)."""
    path = sqlite_store(uri)
    if path is None:
        return CANNOT_TELL
    try:
        with contextlib.closing(_read_only(path)) as store:
            def bundle_of(version: str) -> str | None:
                rows = store.execute("SELECT value FROM model_version_tags WHERE name = ? AND version = ? "
                                     "AND key = 'bundle_id'", (MODEL_NAME, int(version))).fetchall()
                if len(rows) > 1:
                    raise LookupError(version)
                return rows[0][0] if rows else None

            challenger = _alias(store, CHALLENGER)
            if challenger is None:
                return CANNOT_TELL
            return refusal(challenger, _alias(store, CHAMPION), bundle_of)
    except (sqlite3.Error, LookupError, ValueError):
        return CANNOT_TELL
