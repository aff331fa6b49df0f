"""Work plan item 5's figures of the objection workflow, per department and in total: objections
per 100,000 records held, the share found valid, the share settled on time, settlement times in
working days (the monthly quality report and ``xyd quality`` print them)."""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from api.objections import queries
from api.objections.workflow import working_days_taken
from api.precredit.decide import today_in_china


@dataclass
class Item5Row:
    department: str
    records: int
    objections: int
    per_100k: float
    settled: int
    valid: int
    valid_share: float | None
    valid_share_ci: tuple[float, float] | None
    on_time: int
    on_time_share: float | None
    on_time_share_ci: tuple[float, float] | None
    median_working_days: float | None
    worst_working_days: int | None
    open_late: int


def item5_figures(factory: sessionmaker[Session], home: Path, today: dt.date | None = None) -> list[Item5Row]:
    """Work plan item 5's figures per department and in total (the last row): objections per
    100,000 records held, the share found valid (corrected or removed) of those settled, the share
    settled within 5 working days (open ones past due count as late), median and worst settlement
    time in working days; shares with Wilson 95 % intervals. Repair notices are not objections."""
    from models.fairness import wilson

    today = today or today_in_china()
    records = records_by_department(home)
    with factory() as session:
        rows = [o for o in queries.figures_rows(session) if o.kind == "objection"]
    departments = sorted(set(records) | {o.department for o in rows})
    out = []
    for department in [*departments, None]:
        mine = [o for o in rows if department is None or o.department == department]
        held = sum(records.values()) if department is None else records.get(department, 0)
        settled = [o for o in mine if o.status != queries.OPEN]
        valid = sum(o.status in ("corrected", "removed") for o in settled)
        times = [t for t in (working_days_taken(o, home) for o in settled) if t is not None]
        late_open = sum(o.status == queries.OPEN and o.due_day < today for o in mine)
        on_time = sum(o.settled_day <= o.due_day for o in settled)
        judged = len(settled) + late_open
        out.append(Item5Row(
            department or "合计 total", held, len(mine), len(mine) / held * 100_000 if held else float("nan"),
            len(settled), valid, valid / len(settled) if settled else None,
            wilson(valid, len(settled)) if settled else None,
            on_time, on_time / judged if judged else None, wilson(on_time, judged) if judged else None,
            float(statistics.median(times)) if times else None, max(times) if times else None, late_open))
    return out


def records_by_department(home: Path) -> dict[str, int]:
    """Current lake records per owning department (the reporting department where a source names one)."""
    from features.lake import Lake
    from features.schemas import SOURCES

    lake = Lake(home)
    counts: dict[str, int] = {}
    for source in SOURCES.values():
        if source.name == "loan_outcomes" or not lake.parts(source.name):
            continue
        if source.reporting_department_column:
            column = lake.read_arrow(source.name, [source.reporting_department_column]).column(0).to_pandas()
            for department, n in column.astype(str).value_counts().items():
                counts[department] = counts.get(department, 0) + int(n)
        else:
            rows = sum(_rows(p) for p in lake.parts(source.name))
            counts[source.department_zh] = counts.get(source.department_zh, 0) + rows
    return counts


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows
