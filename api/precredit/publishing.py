"""Publishing profiles: the rows the service decides on, replaced in one write under the events
chain's lock, with each enterprise's open objections marked again on its new row. The disputes a
profile carries are kept here, where the profile is written: the objection workflow asks for them
to be refreshed (:func:`refresh_disputes`) whenever an objection opens or closes."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from api.common.clock import now_iso
from api.db.tables import Objection, PublishedProfile, SourceDelivery
from api.trust.audit import lock_events


def publish_profiles(session: Session, profile: pd.DataFrame, features: list[str], feature_set_version: str,
                     as_of: dt.date, names: pd.Series | None = None, chunk: int = 5_000,
                     evidence: dict[str, dict] | None = None, deliveries: dict[str, str | None] | None = None
                     ) -> int:
    """Make ``profile``'s rows the ones the service decides on (replacing each enterprise's
    earlier row). Values are kept as a JSON list in ``features`` order; missing as null.
    ``evidence``: per enterprise, the records behind its knock-out features
    (:func:`features.profile.evidence.evidence_for`); ``deliveries``: each source's latest delivery
    as of that day (:meth:`features.lake.Lake.deliveries`)."""
    lock_events(session)  # a filing meanwhile marks the rows after they are rewritten, not before
    published = now_iso()
    codes = profile["uscc"].astype(str).to_numpy()
    columns = []
    for name in features:
        series = profile[name]
        if isinstance(series.dtype, pd.CategoricalDtype):
            columns.append(series.astype("object").where(series.notna(), None).to_numpy())
        else:
            values = series.to_numpy(dtype=np.float64)
            columns.append(np.where(np.isnan(values), None, values).astype(object))
    matrix = np.stack(columns, axis=1) if columns else np.zeros((len(codes), 0), dtype=object)
    name_of = names.to_dict() if names is not None else {}
    evidence = evidence or {}
    if deliveries is not None:
        session.execute(delete(SourceDelivery).where(SourceDelivery.as_of == as_of))
        session.add_all([SourceDelivery(as_of=as_of, source=source, published_at=published,
                                        delivered=None if day is None else dt.date.fromisoformat(day))
                         for source, day in deliveries.items()])
    for start in range(0, len(codes), chunk):
        part = codes[start:start + chunk]
        session.execute(delete(PublishedProfile).where(PublishedProfile.uscc.in_(list(part))))
        session.execute(insert(PublishedProfile), [
            {"uscc": code, "name": name_of.get(code), "as_of": as_of, "feature_set_version": feature_set_version,
             "features": json.dumps(row.tolist(), ensure_ascii=False, separators=(",", ":")), "published_at": published,
             "evidence": json.dumps(evidence[code], ensure_ascii=False) if code in evidence else None}
            for code, row in zip(part, matrix[start:start + chunk])])
    published_codes = set(codes.tolist())  # their open objections stay marked on the new rows
    refresh_disputes(session, [c for c in enterprises_with_open_objections(session) if c in published_codes])
    return len(codes)


OPEN = "open"
"""An objection's status while it is being checked (:mod:`api.objections.workflow`)."""


def dispute_entry(objection: Objection) -> dict:
    """What a published profile keeps of an open objection: enough to mark a decision's reasons."""
    return {"objection_id": objection.id, "kind": objection.kind, "source": objection.source,
            "record": json.loads(objection.record_key) if objection.record_key else None,
            "feature": objection.feature, "features": json.loads(objection.features),
            "filed": objection.filed_day.isoformat(), "due": objection.due_day.isoformat()}


_SET_DISPUTES = (update(PublishedProfile.__table__).where(PublishedProfile.__table__.c.uscc == bindparam("code"))
                 .values(disputes=bindparam("value")))


def refresh_disputes(session: Session, usccs: list[str], chunk: int = 5_000) -> None:
    """Write each enterprise's open objections into its published profile (null when none): one
    read and one batched update per chunk of enterprises (a full publish refreshes every
    enterprise with an open objection)."""
    codes = sorted(set(usccs))
    for start in range(0, len(codes), chunk):
        part = codes[start:start + chunk]
        found: dict[str, list[dict]] = {code: [] for code in part}
        for objection in session.execute(select(Objection).where(Objection.uscc.in_(part), Objection.status == OPEN)
                                         .order_by(Objection.filed_at)).scalars():
            found[objection.uscc].append(dispute_entry(objection))
        session.execute(_SET_DISPUTES, [{"code": code, "value": json.dumps(entries, ensure_ascii=False) if entries else None}
                                        for code, entries in found.items()])


def enterprises_with_open_objections(session: Session) -> list[str]:
    """Enterprises with at least one open objection or repair notice."""
    return [code for (code,) in session.execute(select(Objection.uscc).where(Objection.status == OPEN).distinct())]
