"""Each bank's change feed: the enterprises it decided on whose profile a settled objection or
repair changed afterwards, each with the decision it was given and what it would be told now."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy.orm import Session, sessionmaker

from api.common.refusals import Invalid, Refusal
from api.objections import queries
from api.precredit import repository
from api.precredit.decide import check_authorization, today_in_china

FEED_DAYS = 90
"""A bank hears of changes to enterprises it decided on in this many days."""


def parse_since(since: str | None) -> tuple[int, str | None]:
    """A feed position: a cursor a page gave (digits), or a day or time (ISO 8601, UTC) to start
    from; an :class:`~api.common.refusals.Invalid` naming the forms otherwise."""
    if since is None or since == "":
        return 0, None
    if re.fullmatch(r"[0-9]{1,18}", since):
        return int(since), None
    try:
        moment = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise Invalid("INVALID_SINCE", f"since must be a cursor from an earlier page (digits) or a day or time "
                      f"(2026-12-01, 2026-12-01T08:00:00Z); got {since!r}", "since 参数无效") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return 0, moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def change_feed(factory: sessionmaker[Session], bundle, bank_id: int, since: str | None, limit: int) -> dict:
    """The bank's change feed from ``since``: enterprises it decided on in the last 90 days whose
    profile a settlement changed after its decision, each with its latest decision before the
    change and what it would be told now (computed, not recorded; only while the authorisation it
    decided with still allows asking). Nothing of another bank's decisions enters it."""
    from features.registry import feature_names

    after, changed_from = parse_since(since)
    now = dt.datetime.now(dt.timezone.utc)
    decided_since = (now - dt.timedelta(days=FEED_DAYS)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    today = today_in_china()
    with factory() as session:
        found = queries.changes_for_bank(session, bank_id, after, decided_since, limit, changed_from)
        profiles = {code: repository.profile_for(session, code) for code in {c.uscc for c, _ in found}}
        allowed = {}
        for change, decision in found:
            try:
                check_authorization(queries.authorization(session, decision.authorization_id), bank_id, change.uscc, today)
                allowed[change.id] = None
            except Refusal as error:
                allowed[change.id] = f"not recomputed: {error.message}"
    asked = [(c, profiles[c.uscc]) for c, _ in found if allowed[c.id] is None and profiles.get(c.uscc) is not None
             and bundle is not None and profiles[c.uscc].feature_set_version == bundle.meta["feature_set_version"]]
    now_of = {}
    if asked:
        from api.precredit.decide import disputed_knockouts

        decisions = bundle.decide_rows([p.values for _, p in asked], feature_names(), [c.uscc for c, _ in asked],
                                       disputed=[disputed_knockouts(p) for _, p in asked])
        for i, (change, _) in enumerate(asked):
            now_of[change.id] = {"grade": str(decisions.grade[i]), "decision": str(decisions.decision[i]),
                                 "limit_yuan": int(decisions.limit[i]), "pd": round(float(decisions.pd[i]), 6)}
    items = []
    for change, decision in found:
        note = allowed[change.id] or (None if change.id in now_of else
                                      "not recomputed: no champion model, or the profile's feature set differs")
        profile = profiles.get(change.uscc)
        items.append({"cursor": str(change.id), "uscc": change.uscc, "name": profile.name if profile else None,
                      "cause": change.cause, "objection_id": change.objection_id, "changed_at": change.changed_at,
                      "profile_as_of": change.as_of, "previous_request_id": decision.request_id,
                      "previous_decided_at": decision.created_at,
                      "previous": {"grade": decision.grade, "decision": decision.decision,
                                   "limit_yuan": decision.limit_yuan, "pd": decision.pd},
                      "now": now_of.get(change.id), "now_note": note})
    return {"items": items, "next": items[-1]["cursor"] if items else (str(after) if changed_from is None else
                                                                         since)}
