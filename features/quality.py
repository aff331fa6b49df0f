"""Data-quality figures per source and reporting department (work plan items 4, 5 and 12).

From what the lake and the quarantine hold, for every source and department that reports it:

- **compliance rate** (合规率): accepted rows / (accepted + quarantined) rows received;
- **timeliness** (及时率, 双公示 only): share of penalties published within 7 working days of the
  decision (first version of each decision);
- **wrong codes** (错码): rows quarantined for breaking a USCC rule; **unknown codes**: valid codes
  the registry does not know;
- **duplicates** (重复): rows received again with the same key and content (skipped) and rows with a
  known key but other content (quarantined as conflicting);
- **coverage**: share of the registry's existing entities with at least one accepted record.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.lake import Lake
from features.schemas import ADMINISTRATIVE_PENALTIES, SOURCES, Source
from features.typeface import with_typeface

REGISTRY = "enterprise_registry"
COLUMNS = ["source", "department", "received", "accepted", "quarantined", "compliance_rate", "wrong_codes",
           "unknown_codes", "duplicates", "timeliness", "coverage"]


def _departments(source: Source, frame: pd.DataFrame) -> pd.Series:
    column = source.reporting_department_column
    if column and column in frame:
        return frame[column].astype("str").fillna("").replace("", "(blank)")
    return pd.Series(source.department_zh, index=frame.index, dtype="str")


def _of(departments: pd.Series, department: str | None) -> pd.Series:
    """Rows reported by ``department`` (all rows for None)."""
    return departments == department if department is not None else pd.Series(True, index=departments.index)


def _existing_entities(lake: Lake) -> pd.Index:
    registry = lake.read(REGISTRY, ["uscc", "deregistered_date", "reported_date"])
    if registry.empty:
        return pd.Index([])
    latest = registry.sort_values("reported_date").drop_duplicates("uscc", keep="last")
    return pd.Index(latest.loc[latest["deregistered_date"].isna(), "uscc"])


def _on_time(accepted: pd.DataFrame) -> pd.Series:
    """Per decision (its first version), whether it was published within 7 working days,
    indexed by the department that reported it."""
    first = accepted.sort_values("reported_date").drop_duplicates("decision_no")
    days = np.busday_count(first["decision_date"].to_numpy().astype("datetime64[D]"),
                           first["published_date"].to_numpy().astype("datetime64[D]"))
    return pd.Series(days <= 7, index=first["department"].astype("str").to_numpy())


def _duplicates_received(lake: Lake) -> dict[str, int]:
    totals: dict[str, int] = {}
    for run in lake.manifest()["runs"]:
        for source, counts in run.get("sources", {}).items():
            totals[source] = totals.get(source, 0) + counts.get("duplicate", 0)
    return totals


def quality_table(home: Path) -> pd.DataFrame:
    """One row per source and reporting department, plus one per source for all departments."""
    lake = Lake(home)
    existing = _existing_entities(lake)
    skipped = _duplicates_received(lake)
    rows = []
    for name, source in SOURCES.items():
        accepted = lake.read(name)
        quarantined = lake.read_quarantine(name)
        if accepted.empty and quarantined.empty:
            continue
        reasons = quarantined["_reasons"].astype("str") if len(quarantined) else pd.Series(dtype="str")
        departments = {"accepted": _departments(source, accepted), "quarantined": _departments(source, quarantined)}
        timely = _on_time(accepted) if name == ADMINISTRATIVE_PENALTIES.name and len(accepted) else pd.Series()
        names = sorted(set(departments["accepted"]) | set(departments["quarantined"]))
        for department in [*names, None] if len(names) > 1 else [None]:
            ok = accepted[_of(departments["accepted"], department)]
            in_quarantine = _of(departments["quarantined"], department)
            bad = quarantined[in_quarantine]
            bad_reasons = reasons[in_quarantine] if len(reasons) else reasons
            received = len(ok) + len(bad)
            coverage = (pd.Index(ok["uscc"].unique()).isin(existing).sum() / len(existing)
                        if len(existing) and len(ok) else np.nan)
            rows.append({
                "source": name, "department": department or ("(all)" if len(names) > 1 else names[0]),
                "received": received, "accepted": len(ok), "quarantined": len(bad),
                "compliance_rate": len(ok) / received if received else np.nan,
                "wrong_codes": int(bad_reasons.str.contains("uscc:", regex=False).sum()),
                "unknown_codes": int(bad_reasons.str.contains("unknown_enterprise", regex=False).sum()),
                "duplicates": int(bad_reasons.str.contains("conflicting_duplicate", regex=False).sum())
                + (skipped.get(name, 0) if department is None else 0),
                "timeliness": (timely.mean() if department is None else timely[timely.index == department].mean())
                if len(timely) else np.nan,
                "coverage": coverage,
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def quality_html(table: pd.DataFrame, title: tuple[str, str] = ("数据质量报告", "data quality"),
                 sections: tuple[tuple[tuple[str, str], pd.DataFrame, str], ...] = ()) -> str:
    """A self-contained HTML page of the quality table, rates as percentages; ``title`` and each
    heading in Chinese and English; ``sections``: more tables, each (heading, already formatted
    table, note), after it (the objections' item-5 figures)."""
    from markupsafe import Markup

    from features.pages import render_page

    shown = table.copy()
    for column in ("compliance_rate", "timeliness", "coverage"):
        shown[column] = shown[column].map(lambda v: "–" if pd.isna(v) else f"{v:.1%}")

    def as_table(frame: pd.DataFrame) -> Markup:  # pandas escapes every cell (escape=True)
        return Markup(frame.to_html(index=False, border=0, classes="quality", escape=True))

    return with_typeface(render_page(
        "features", "quality_page.html", title=title, table=as_table(shown),
        sections=[(heading, as_table(frame), note) for heading, frame, note in sections],
        notes=__doc__.split("\n\n", 1)[1].split("\n")))
