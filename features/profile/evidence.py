"""The records behind a knock-out: which listing or which penalty, by number, authority, date and
severity, and when its repair route opens.

A knock-out is a measure with consequences for an enterprise (work plan items 12 and 16); the
regulator's page must show the record it rests on, not only the count a feature holds. Evidence
is read from the lake under the same point-in-time and repair rules as the features it stands
for (:mod:`features.profile.families`: the same record filters), for the enterprises whose profile
has something to show, and published beside the profile (``published_profiles.evidence``).
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from features.lake import Lake
from features.profile import families
from features.profile.pointintime import SEQ, Requests, day_number, seen
from features.schemas import DISTRICTS

DAY = np.timedelta64(1, "D")
REPAIR_WAIT_DAYS = {"minor": 90, "general": 90, "serious": 365, "severe": 365}
"""Days after a penalty's decision before credit repair may be asked for (NDRC Order No. 58, as
the registry's repair actions read it: minor and general 3 months, serious ones a year)."""

EVIDENCE = {  # feature: (source, columns shown)
    "dishonest_listed_now": ("dishonest_debtors", ("case_no", "listing_date", "reported_date")),
    "penalty_serious_36m": ("administrative_penalties",
                            ("decision_no", "department", "decision_date", "severity", "amount", "published_date")),
}
"""The features whose records can be shown as a knock-out's evidence."""


def court_of(case_no: str) -> str:
    """The court of an enforcement case number, ``(2023)鄂0581执1000700号`` → 宜都市人民法院; the
    city's intermediate court for ``鄂05执``; the number itself when it names no known court."""
    found = re.search(r"鄂(\d{2,4})执", case_no or "")
    if not found:
        return ""
    code = "42" + found.group(1)
    if len(found.group(1)) == 2:
        return "宜昌市中级人民法院" if code == "4205" else f"湖北省法院（{code}）"
    for district in DISTRICTS:
        if district.code == code:
            return f"{district.zh}人民法院"
    return f"法院代码 {code}"


def knockout_evidence(lake: Lake, as_of: dt.date, usccs: list[str]) -> dict[str, dict[str, list[dict]]]:
    """Per enterprise (of ``usccs``) with any, per feature of :data:`EVIDENCE`: the records that
    make the feature count as of ``as_of``, each with its number, authority, dates and severity,
    and for a penalty when credit repair may be asked for."""
    from features.profile.build import load_records

    if not len(usccs):
        return {}
    records = load_records(lake, list(usccs), sources=sorted({source for source, _ in EVIDENCE.values()}))
    requests = Requests.make(list(usccs), [day_number(as_of)] * len(usccs))
    out: dict[str, dict[str, list[dict]]] = {}
    for feature, (source, columns) in EVIDENCE.items():
        view = seen(requests, source, records[source])
        counted = families.on_dishonest_list(requests, view) if feature == "dishonest_listed_now" else \
            families.serious_within_36m(requests, view)
        q, seq = view.q[counted], view.col(SEQ)[counted]
        if not len(q):
            continue
        shown = _columns_at(lake, source, seq, columns)
        for owner, row in zip(requests.uscc[q], shown.to_dict("records")):
            out.setdefault(str(owner), {}).setdefault(feature, []).append(_record(feature, row, as_of))
    for by_feature in out.values():
        for items in by_feature.values():
            items.sort(key=lambda r: r.get("date") or "", reverse=True)
    return out


def evidence_for(lake: Lake, as_of: dt.date, profile: pd.DataFrame) -> dict[str, dict[str, list[dict]]]:
    """:func:`knockout_evidence` for the enterprises of ``profile`` whose evidence features count
    anything (the few the knock-outs can hit)."""
    counted = np.zeros(len(profile), dtype=bool)
    for feature in EVIDENCE:
        if feature in profile:
            counted |= pd.to_numeric(profile[feature], errors="coerce").fillna(0).to_numpy() > 0
    return knockout_evidence(lake, as_of, list(profile["uscc"].astype(str).to_numpy()[counted]))


def _columns_at(lake: Lake, source: str, seq: np.ndarray, columns: tuple[str, ...]) -> pd.DataFrame:
    """The raw columns of the lake rows at ``seq`` (part index in the high 32 bits, row in the low)."""
    parts = lake.parts(source)
    part, row = (seq >> np.int64(32)).astype(np.int64), (seq & np.int64(0xFFFFFFFF)).astype(np.int64)
    out = pd.DataFrame(index=range(len(seq)), columns=list(columns), dtype=object)
    for index in np.unique(part):
        mine = np.flatnonzero(part == index)
        table = pq.read_table(parts[int(index)], columns=list(columns)).to_pandas()
        out.iloc[mine] = table.iloc[row[mine]].to_numpy()
    return out


def _day(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(value):
        return None
    return pd.Timestamp(value).date().isoformat()


def _record(feature: str, row: dict, as_of: dt.date) -> dict:
    if feature == "dishonest_listed_now":
        return {"number": str(row["case_no"]), "authority": court_of(str(row["case_no"])), "date": _day(row["listing_date"]),
                "kind": "失信被执行人名单 dishonest-debtor listing", "severity": None, "amount_yuan": None,
                "reported": _day(row["reported_date"]),
                "repair": "履行生效法律文书确定的义务后，法院依法删除失信信息 "
                          "(removed by the court once the judgment is performed)"}
    decided = _day(row["decision_date"])
    wait = REPAIR_WAIT_DAYS.get(str(row["severity"]), 365)
    opens = (dt.date.fromisoformat(decided) + dt.timedelta(days=wait)) if decided else None
    return {"number": str(row["decision_no"]), "authority": str(row["department"]), "date": decided,
            "kind": "行政处罚 administrative penalty", "severity": str(row["severity"]),
            "amount_yuan": None if pd.isna(row["amount"]) else int(row["amount"]) / families.FEN_PER_YUAN,
            "reported": _day(row["published_date"]),
            "repair": (f"公示期满且纠正后可申请信用修复，最早 {opens} (credit repair may be asked for from {opens}; "
                       f"{'open now' if opens <= as_of else 'not yet open'} on {as_of})") if opens else None}
