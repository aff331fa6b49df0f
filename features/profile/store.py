"""Built profiles on disk: ``XYD_HOME/profiles/as_of=YYYY-MM-DD/profile.parquet``.

Each file holds one row per enterprise alive on that date and, in its Parquet metadata, the
as_of, the feature-set version (:func:`features.registry.feature_set_version`), when and how it
was built and which lake runs it saw (so ``xyd features build --changed`` knows what came after).
Files are written to a temporary name and renamed: a reader sees the old profile or the new one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

METADATA_KEY = b"xyd_profile"


@dataclass
class ProfileInfo:
    """What a stored profile is: its date, feature-set version and provenance."""

    as_of: str
    feature_set_version: str
    rows: int
    built_at: str
    engine: str
    seconds: float
    lake_runs: list[str] = field(default_factory=list)
    rebuilt: list[dict] = field(default_factory=list)


class ProfileStore:
    """The profiles of one ``XYD_HOME``."""

    def __init__(self, home: Path):
        self.root = Path(home) / "profiles"

    def path(self, as_of: dt.date) -> Path:
        return self.root / f"as_of={as_of.isoformat()}" / "profile.parquet"

    def dates(self) -> list[dt.date]:
        """Every as_of with a stored profile, oldest first."""
        if not self.root.exists():
            return []
        out = []
        for path in self.root.glob("as_of=*/profile.parquet"):
            try:
                out.append(dt.date.fromisoformat(path.parent.name.removeprefix("as_of=")))
            except ValueError:
                continue  # a folder the build did not make
        return sorted(out)

    def exists(self, as_of: dt.date) -> bool:
        return self.path(as_of).exists()

    def info(self, as_of: dt.date) -> ProfileInfo:
        """The stored profile's metadata."""
        metadata = pq.read_schema(self.path(as_of)).metadata or {}
        return ProfileInfo(**json.loads(metadata[METADATA_KEY]))

    def read(self, as_of: dt.date, columns: list[str] | None = None) -> pd.DataFrame:
        """The stored profile as of a date (categories keep their fixed sets)."""
        path = self.path(as_of)
        if not path.exists():
            raise FileNotFoundError(f"no profile as of {as_of}; build it with `xyd features build --as-of {as_of}`")
        return pd.read_parquet(path, columns=columns)

    def write(self, frame: pd.DataFrame, info: ProfileInfo) -> Path:
        """Replace the profile as of ``info.as_of`` with ``frame``, atomically."""
        path = self.path(dt.date.fromisoformat(info.as_of))
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        metadata = {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(asdict(info), ensure_ascii=False)}
        table = table.replace_schema_metadata(metadata)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            pq.write_table(table, temporary, compression="zstd")
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        return path


def registered_names(home: Path, as_of: dt.date) -> pd.Series:
    """Registered names by code, as the registry known on ``as_of`` gave them."""
    from features.lake import Lake

    registry = Lake(home).read("enterprise_registry", ["uscc", "name", "reported_date"])
    if registry.empty:
        return pd.Series(dtype="str")
    known = registry[registry["reported_date"] <= pd.Timestamp(as_of)]
    newest = known.sort_values("reported_date", kind="stable").drop_duplicates("uscc", keep="last")
    return newest.set_index("uscc")["name"]
