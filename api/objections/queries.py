"""The objection workflow's queries (no SQL in routes, none in the workflow): objections and the
profile changes banks' feeds list. (The open disputes each published profile carries are
publishing's: :mod:`api.precredit.publishing`.)"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from api.common.clock import now_iso
from api.db.tables import Authorization, Decision, Objection, ProfileChange, PublishedProfile
from api.precredit.publishing import OPEN


def get(session: Session, objection_id: str) -> Objection | None:
    return session.get(Objection, objection_id)


def open_with_key(session: Session, open_key: str) -> Objection | None:
    """The open objection to the same thing, if any."""
    return session.execute(select(Objection).where(Objection.open_key == open_key)).scalar_one_or_none()


def list_objections(session: Session, status: str | None = None, department: str | None = None,
                    due_before: dt.date | None = None, uscc: str | None = None, filed_by: int | None = None,
                    limit: int = 100, offset: int = 0) -> tuple[int, list[Objection]]:
    """Objections, soonest due first (``due_before``: due before that day, i.e. late on it)."""
    query = select(Objection)
    if status:
        query = query.where(Objection.status == status)
    if department:
        query = query.where(Objection.department == department)
    if due_before is not None:
        query = query.where(Objection.due_day < due_before)
    if uscc:
        query = query.where(Objection.uscc == uscc)
    if filed_by is not None:
        query = query.where(Objection.filed_by == filed_by)
    count = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(Objection.due_day, Objection.filed_at, Objection.id)
                           .limit(limit).offset(offset)).scalars()
    return count, list(rows)


def provisional_dues(session: Session) -> list[Objection]:
    """Objections whose due day was counted on weekdays alone (a year the calendar did not know)."""
    return list(session.execute(select(Objection).where(Objection.due_provisional.is_(True))
                                .order_by(Objection.filed_at, Objection.id)).scalars())


def claim_for_settlement(session: Session, objection_id: str, outcome: str, client_id: int, day: dt.date,
                         settlement: dict) -> bool:
    """Move an open objection to ``outcome``; False when it is not open (another settlement won:
    the conditional update is what makes two settlements at once end with exactly one)."""
    moved = session.execute(
        update(Objection).where(Objection.id == objection_id, Objection.status == OPEN)
        .values(status=outcome, open_key=None, settled_at=now_iso(), settled_day=day, settled_by=client_id,
                settlement=json.dumps(settlement, ensure_ascii=False, sort_keys=True, default=str))
        .execution_options(synchronize_session=False))
    return moved.rowcount == 1


def published_as_of(session: Session, uscc: str) -> dt.date | None:
    return session.execute(select(PublishedProfile.as_of).where(PublishedProfile.uscc == uscc)).scalar_one_or_none()


def add_changes(session: Session, usccs: list[str], objection_id: str, cause: str, as_of: dt.date) -> None:
    """Record that these enterprises' published profiles changed (what the change feeds list)."""
    changed = now_iso()
    session.add_all([ProfileChange(uscc=code, objection_id=objection_id, cause=cause, as_of=as_of, changed_at=changed)
                     for code in sorted(set(usccs))])


def changes_for_bank(session: Session, bank_id: int, after_id: int, decided_since: str, limit: int,
                     changed_from: str | None = None) -> list[tuple[ProfileChange, Decision]]:
    """The profile changes after cursor ``after_id`` (and at or after ``changed_from``) of
    enterprises this bank decided on since ``decided_since`` and before the change, each with the
    bank's latest such decision, in feed order."""
    decided_before = exists().where(and_(Decision.client_id == bank_id, Decision.uscc == ProfileChange.uscc,
                                         Decision.created_at >= decided_since,
                                         Decision.created_at < ProfileChange.changed_at))
    query = select(ProfileChange).where(ProfileChange.id > after_id, decided_before)
    if changed_from is not None:
        query = query.where(ProfileChange.changed_at >= changed_from)
    changes = session.execute(query.order_by(ProfileChange.id).limit(limit)).scalars().all()
    out = []
    for change in changes:
        decision = session.execute(
            select(Decision).where(Decision.client_id == bank_id, Decision.uscc == change.uscc,
                                   Decision.created_at >= decided_since, Decision.created_at < change.changed_at)
            .order_by(Decision.seq.desc()).limit(1)).scalar_one()
        out.append((change, decision))
    return out


def authorization(session: Session, authorization_id: str) -> Authorization | None:
    return session.get(Authorization, authorization_id)


def figures_rows(session: Session) -> list[Objection]:
    """Every objection (for the work plan's item-5 figures)."""
    return list(session.execute(select(Objection).order_by(Objection.filed_at)).scalars())


def claim_detail(session: Session, objection_id: str, settlement: dict) -> None:
    """Replace a settlement's recorded detail (once the lake has its run)."""
    session.execute(update(Objection).where(Objection.id == objection_id)
                    .values(settlement=json.dumps(settlement, ensure_ascii=False, sort_keys=True, default=str))
                    .execution_options(synchronize_session=False))


def mark_republished(session: Session, objection_id: str) -> None:
    session.execute(update(Objection).where(Objection.id == objection_id).values(republished_at=now_iso())
                    .execution_options(synchronize_session=False))


def settled_not_republished(session: Session, outcomes: tuple[str, ...]) -> list[Objection]:
    """Settlements that changed the lake and whose profile was not republished yet."""
    return list(session.execute(select(Objection).where(Objection.status.in_(outcomes),
                                                        Objection.republished_at.is_(None))
                                .order_by(Objection.settled_at)).scalars())
