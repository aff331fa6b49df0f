"""The pre-credit capability's queries (no SQL in routes): authorisations, published profiles,
reviews and decisions. (Clients and their keys are :mod:`api.access.clients`'.)"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, Row, bindparam, func, select
from sqlalchemy.orm import Session

from api.common.clock import now_iso
from api.db.tables import ApiClient, Authorization, Decision, PublishedProfile, Review, SourceDelivery
from api.trust import audit


def _page(session: Session, query, order, limit: int, offset: int) -> tuple[int, list]:
    """How many rows the query matches, and one page of them in a stable order."""
    count = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    return count, list(session.execute(query.order_by(*order).limit(limit).offset(offset)).scalars())


# ------------------------------------------------------------------ authorisations

def add_authorization(session: Session, uscc: str, bank_id: int, purpose: str, data_scope: str,
                      valid_from: dt.date, valid_until: dt.date, template_version: str,
                      document_hash: str) -> Authorization:
    bank = session.get(ApiClient, bank_id)
    if bank is None or bank.role != "bank":
        raise ValueError(f"client {bank_id} is not a bank")
    if valid_until < valid_from:
        raise ValueError(f"valid_until {valid_until} is before valid_from {valid_from}")
    record = Authorization(id=str(uuid.uuid4()), uscc=uscc, bank_id=bank_id, purpose=purpose, data_scope=data_scope,
                           valid_from=valid_from, valid_until=valid_until, revoked_at=None,
                           template_version=template_version, document_hash=document_hash, created_at=now_iso())
    session.add(record)
    session.flush()
    return record


def revoke_authorization(session: Session, authorization_id: str) -> Authorization | None:
    record = session.get(Authorization, authorization_id)
    if record is not None and record.revoked_at is None:
        record.revoked_at = now_iso()
    return record


def list_authorizations(session: Session, uscc: str | None = None, bank_id: int | None = None,
                        limit: int = 100, offset: int = 0) -> tuple[int, list[Authorization]]:
    query = select(Authorization)
    if uscc:
        query = query.where(Authorization.uscc == uscc)
    if bank_id is not None:
        query = query.where(Authorization.bank_id == bank_id)
    return _page(session, query, (Authorization.created_at, Authorization.id), limit, offset)


# ------------------------------------------------------------------ published profiles

@dataclass
class ProfileRow:
    uscc: str
    name: str | None
    as_of: dt.date
    feature_set_version: str
    values: list
    evidence: dict | None = None  # feature → the records behind it (features.profile.evidence)
    disputes: list | None = None  # the open objections on it (api.precredit.publishing.dispute_entry)


def profile_for(session: Session, uscc: str) -> ProfileRow | None:
    row = session.get(PublishedProfile, uscc)
    if row is None:
        return None
    return ProfileRow(row.uscc, row.name, row.as_of, row.feature_set_version, json.loads(row.features),
                      json.loads(row.evidence) if row.evidence else None,
                      json.loads(row.disputes) if row.disputes else None)


# Built once (building a statement cost as much as running it). An authorisation and the profile
# of the enterprise it names come in one round trip: the profile only matters once the
# authorisation has been found to name the code asked about.
_PROFILE = PublishedProfile.__table__
_WITH_PROFILES = (select(Authorization.__table__, *(c.label(f"profile_{c.name}") for c in _PROFILE.c))
                  .outerjoin(_PROFILE, _PROFILE.c.uscc == Authorization.__table__.c.uscc))
# one id (a single question) needs no expanding IN, whose SQL is rendered anew on every call
_AUTHORIZATION_WITH_PROFILE = _WITH_PROFILES.where(Authorization.__table__.c.id == bindparam("id"))
_AUTHORIZATIONS_WITH_PROFILES = _WITH_PROFILES.where(Authorization.__table__.c.id.in_(bindparam("ids", expanding=True)))


def authorizations_with_profiles(connection: Connection | Session, ids: list[str]
                                 ) -> tuple[dict[str, Row], dict[str, ProfileRow]]:
    """The authorisations with these ids (plain rows, by id) and the published profiles of the
    enterprises they name (by code)."""
    authorizations, profiles = {}, {}
    ids = list(set(ids))
    rows = connection.execute(_AUTHORIZATION_WITH_PROFILE, {"id": ids[0]}) if len(ids) == 1 else \
        connection.execute(_AUTHORIZATIONS_WITH_PROFILES, {"ids": ids})
    for row in rows:
        authorizations[row.id] = row
        if row.profile_uscc is not None:
            profiles[row.profile_uscc] = ProfileRow(
                row.profile_uscc, row.profile_name, row.profile_as_of, row.profile_feature_set_version,
                json.loads(row.profile_features), json.loads(row.profile_evidence) if row.profile_evidence else None,
                json.loads(row.profile_disputes) if row.profile_disputes else None)
    return authorizations, profiles


def published_summary(session: Session) -> dict:
    count, newest = session.execute(select(func.count(), func.max(PublishedProfile.as_of))).one()
    versions = [v for (v,) in session.execute(select(PublishedProfile.feature_set_version).distinct())]
    return {"enterprises": count, "newest_as_of": newest.isoformat() if newest else None, "feature_set_versions": versions}


# ------------------------------------------------------------------ decisions

def deliveries_for(session: Session, as_of: dt.date) -> dict[str, dt.date | None]:
    """Each source's latest delivery as the profiles published for ``as_of`` saw it."""
    rows = session.execute(select(SourceDelivery.source, SourceDelivery.delivered).where(SourceDelivery.as_of == as_of))
    return {source: delivered for source, delivered in rows}


def review_of(session: Session, request_id: str) -> Review | None:
    """The bank's human review of a decision, if it has recorded one."""
    return session.get(Review, request_id)


def add_review(session: Session, decision: Decision, outcome: str, limit_yuan: int | None, reviewer: str,
               note: str | None) -> Review:
    """Record the bank's review of ``decision`` and put it in the workflow events' chain, under that
    chain's lock, taken first (the caller commits; then :func:`api.trust.anchor.sign_events`)."""
    audit.lock_events(session)
    review = Review(request_id=decision.request_id, client_id=decision.client_id, outcome=outcome,
                    limit_yuan=limit_yuan, reviewer=reviewer, note=note, reviewed_at=now_iso())
    session.add(review)
    audit.chain_review(session, review, decision.uscc)
    return review


def get_decision(session: Session, request_id: str) -> Decision | None:
    return session.execute(select(Decision).where(Decision.request_id == request_id)).scalar_one_or_none()


def list_decisions(session: Session, uscc: str | None = None, client_id: int | None = None,
                   created_from: str | None = None, created_until: str | None = None,
                   limit: int = 100, offset: int = 0) -> tuple[int, list[Decision]]:
    query = select(Decision)
    if uscc:
        query = query.where(Decision.uscc == uscc)
    if client_id is not None:
        query = query.where(Decision.client_id == client_id)
    if created_from:
        query = query.where(Decision.created_at >= created_from)
    if created_until:
        query = query.where(Decision.created_at < created_until)
    return _page(session, query, (Decision.seq,), limit, offset)


def decisions_by_client(session: Session) -> pd.DataFrame:
    """Decisions served per client and decision (for monitoring)."""
    rows = session.execute(select(ApiClient.name, Decision.decision, func.count()).join(
        ApiClient, ApiClient.id == Decision.client_id).group_by(ApiClient.name, Decision.decision)).all()
    return pd.DataFrame(rows, columns=["client", "decision", "decisions"])
