"""Objections (异议) and credit repair as a workflow: filed → settled (upheld, corrected, removed,
repaired) → republished, each step a row in the workflow events' chain.

* **Filing** names one lake record (source and natural key) or one profile feature of one
  enterprise; the platform operator files on the enterprise's behalf, a bank only with the
  enterprise's valid authorisation. From filing, the enterprise's published profile carries the
  open dispute, so the next decision says so (:mod:`api.precredit.decide`).
* **Deadline**: 5 working days after the filing day (China's calendar, :mod:`features.workdays`;
  work plan item 5).
* **Settlement** by an operator acting for the owning department. Exactly one of two settlements
  at once wins (a conditional update); the loser hears 409. A correction, repair or removal enters
  the lake (:mod:`features.corrections`), the affected profiles are rebuilt with the ``--changed``
  machinery and republished, and each bank that decided on the enterprise in the last 90 days finds
  it in its change feed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.common.refusals import Conflict, Forbidden, Invalid, NotFound
from api.db.engine import writing
from api.db.tables import Objection
from api.objections import queries
from api.objections.schemas import ObjectionPublic
from api.precredit import publishing, repository
from api.precredit.decide import check_authorization, normalised_code, today_in_china
from api.trust import anchor, audit

log = logging.getLogger("xyd.api.objections")
KINDS = ("objection", "repair")
OUTCOMES = {"objection": ("upheld", "corrected", "removed"), "repair": ("upheld", "repaired")}
CHANGING = ("corrected", "removed", "repaired")
"""Outcomes that change the lake, and so the profile."""
DEADLINE_WORKING_DAYS = 5
SHA256 = re.compile(r"^[0-9a-f]{64}$")


@contextlib.contextmanager
def chained_writing(factory: sessionmaker[Session], home: Path):
    """A write of the workflow (:func:`api.db.engine.writing`) under the events chain's lock, taken
    first (:func:`api.trust.audit.lock_events`), and, once it has committed, a signed checkpoint of the
    events chain's new head (:func:`api.trust.anchor.sign_events`)."""
    with writing(factory) as session:
        audit.lock_events(session)
        yield session
    anchor.sign_events(factory.kw["bind"], home)


def due(filed: dt.date, home: Path | None = None):
    """The settlement deadline: 5 working days after the filing day (a
    :class:`~features.workdays.Deadline`). A filing is never refused for the calendar: in a year
    China's calendar does not know yet (neither the package nor a notice transcribed under
    ``home``) the days are counted on weekdays alone and the deadline is provisional, until
    :func:`confirm_dues` recomputes it."""
    from features.workdays import deadline

    return deadline(filed, DEADLINE_WORKING_DAYS, home)


def confirm_dues(factory: sessionmaker[Session], home: Path) -> list[tuple[str, dt.date, dt.date]]:
    """Recompute every provisional due day the calendar can now judge (the package upgraded or the
    year's notice transcribed), each as an ``objection.due_confirmed`` event in the workflow's
    chain: (objection id, provisional day, confirmed day) for each confirmed. Run by
    ``xyd objections list`` and at the service's start; safe to run from several processes."""
    with factory() as session:
        if not queries.provisional_dues(session):
            return []
    confirmed = []
    with chained_writing(factory, home) as session:
        for objection in queries.provisional_dues(session):  # read again under the lock
            now = due(objection.filed_day, home)
            if now.provisional:
                continue
            before, objection.due_day, objection.due_provisional = objection.due_day, now.day, False
            audit.append_event(session, "objection.due_confirmed", objection.id, objection.uscc, None,
                               {"provisional_due_day": before.isoformat(), "due_day": now.day.isoformat()})
            confirmed.append((objection.id, objection.uscc, before, now.day))
        # a published profile's open disputes carry their due days (decisions cite them)
        publishing.refresh_disputes(session, sorted({uscc for _, uscc, _, _ in confirmed}))
    return [(objection_id, before, after) for objection_id, _, before, after in confirmed]


@dataclass
class Filing:
    """What an objection names and why (``record`` a natural key, or ``feature``)."""

    uscc: str
    grounds: str
    kind: str = "objection"
    source: str | None = None
    record: dict[str, str] | None = None
    feature: str | None = None
    attachments: tuple[str, ...] = ()
    authorization_id: str | None = None


def _check_filing(filing: Filing) -> None:
    if filing.kind not in KINDS:
        raise Invalid("INVALID_OBJECTION", f"kind must be one of {', '.join(KINDS)}; got {filing.kind!r}",
                      "异议类型无效")
    if not filing.grounds or not filing.grounds.strip():
        raise Invalid("INVALID_OBJECTION", "an objection states its grounds", "请填写异议理由")
    if (filing.source is None) == (filing.feature is None) or (filing.source is not None and not filing.record):
        raise Invalid("INVALID_OBJECTION", "an objection names either one record (source and record key) or "
                      "one profile feature", "异议须指向一条信用记录（来源与记录编号）或画像中的一项指标")
    if filing.kind == "repair" and filing.source is None:
        raise Invalid("INVALID_OBJECTION", "a repair notice names the record repaired (source and record key)",
                      "信用修复须指向被修复的记录")
    bad = [a for a in filing.attachments if not SHA256.match(a)]
    if bad:
        raise Invalid("INVALID_OBJECTION", f"attachments are given by their SHA-256 (64 lower-case hex digits); "
                      f"got {bad[0]!r}", "附件须以 SHA-256 摘要提交")


def _what_it_names(home: Path, filing: Filing, code: str) -> dict:
    """The disputed thing: its source, key and hash, the features resting on it and the owning
    department; :class:`~api.common.refusals.NotFound` when the lake holds no such record of this enterprise (the same answer
    whether the record is missing or another enterprise's: a filing cannot probe the lake)."""
    from features.corrections import RecordError, find, source_of
    from features.lake import Lake
    from features.registry import FEATURES

    if filing.feature is not None:
        feature = next((f for f in FEATURES if f.name == filing.feature), None)
        if feature is None:
            raise Invalid("UNKNOWN_FEATURE", f"no profile feature is called {filing.feature!r}", "画像中没有该指标")
        from features.schemas import SOURCES

        department = SOURCES[feature.sources[0]].department_zh if feature.sources else "平台运营"
        return {"source": None, "record_key": None, "key_hash": None, "feature": feature.name,
                "features": [feature.name], "department": department}
    try:
        source = source_of(filing.source)
        record = find(Lake(home), source.name, filing.record)
    except RecordError as error:
        raise Invalid("INVALID_RECORD_KEY", str(error), "记录编号不符合该来源的规则") from None
    if record is None or record.uscc != code:
        raise NotFound("RECORD_NOT_FOUND", f"the platform holds no {source.name} record "
                      f"{' / '.join(str(v) for v in filing.record.values())} of {code}", "平台没有该企业的这条记录")
    if filing.kind == "repair" and not source.repair_column:
        raise Invalid("NOT_REPAIRABLE", f"{source.name} records carry no repair date; object to the record instead",
                      "该类记录不适用信用修复")
    department = (str(record.values[source.reporting_department_column])
                  if source.reporting_department_column and record.values.get(source.reporting_department_column)
                  else source.department_zh)
    features = [f.name for f in FEATURES if source.name in f.sources]
    return {"source": source.name, "record_key": json.dumps(record.key, ensure_ascii=False),
            "key_hash": str(record.key_hash), "feature": None, "features": features, "department": department}


def file(factory: sessionmaker[Session], home: Path, caller, filing: Filing) -> Objection:
    """File an objection (or a repair notice) for ``caller`` (an operator, or a bank holding the
    enterprise's valid authorisation); the open dispute reaches the published profile at once.
    Every refusal is a :class:`~api.common.refusals.Refusal` and changes nothing."""
    _check_filing(filing)
    code = normalised_code(filing.uscc)
    today = today_in_china()
    if caller.role == "bank":
        if not filing.authorization_id:
            raise Forbidden("AUTHORIZATION_REQUIRED", "a bank files an objection only with the enterprise's "
                          "authorisation (authorization_id)", "金融机构代为提出异议须持有企业授权")
        with factory() as session:
            check_authorization(queries.authorization(session, filing.authorization_id), caller.id, code, today)
    elif caller.role != "operator":
        raise Forbidden("ROLE_FORBIDDEN", f"a {caller.role} may not file objections; it is for: operator, bank",
                      f"当前角色（{caller.role}）无权提出异议")
    named = _what_it_names(home, filing, code)
    deadline = due(today, home)
    open_key = "|".join((filing.kind, code, named["source"] or "", named["key_hash"] or named["feature"] or ""))
    objection = Objection(
        id=str(uuid.uuid4()), kind=filing.kind, uscc=code, source=named["source"], record_key=named["record_key"],
        key_hash=named["key_hash"], feature=named["feature"], features=json.dumps(named["features"]),
        department=named["department"], grounds=filing.grounds.strip(), attachments=json.dumps(list(filing.attachments)),
        filed_by=caller.id, authorization_id=filing.authorization_id if caller.role == "bank" else None,
        filed_at=repository.now_iso(), filed_day=today, due_day=deadline.day, due_provisional=deadline.provisional,
        status=queries.OPEN, open_key=open_key)
    try:
        with chained_writing(factory, home) as session:
            session.add(objection)
            session.flush()
            audit.append_event(session, "objection.filed", objection.id, code, caller.id, _filed_detail(objection))
            publishing.refresh_disputes(session, [code])
    except IntegrityError:
        with factory() as session:
            existing = queries.open_with_key(session, open_key)
        raise Conflict("DUPLICATE_OBJECTION", f"objection {existing.id if existing else '?'} to the same "
                      f"{'record' if named['source'] else 'feature'} is still open (filed "
                      f"{existing.filed_day if existing else '?'}, due {existing.due_day if existing else '?'})",
                      "对同一记录的异议仍在处理中") from None
    return objection


def _filed_detail(o: Objection) -> dict:
    return {"kind": o.kind, "source": o.source, "record": json.loads(o.record_key) if o.record_key else None,
            "feature": o.feature, "department": o.department, "grounds": o.grounds,
            "attachments": json.loads(o.attachments), "authorization_id": o.authorization_id,
            "filed_day": o.filed_day.isoformat(), "due_day": o.due_day.isoformat(),
            **({"due_provisional": True} if o.due_provisional else {})}


@dataclass
class Settlement:
    outcome: str
    note: str
    changes: dict[str, str] | None = None  # corrected: column → corrected value, as the department writes it
    repaired_on: dt.date | None = None  # repaired: the repair date


def settle(factory: sessionmaker[Session], home: Path, caller, objection_id: str, settlement: Settlement) -> Objection:
    """Settle an open objection for its department (``caller`` an operator). A correction, repair
    or removal enters the lake in the same step; then the affected profiles are rebuilt and
    republished (:func:`republish`). Refused (:mod:`api.common.refusals`) as not found for no such
    objection, a conflict when it is no longer open (another settlement won), invalid for an outcome
    or correction the record cannot take."""
    from features.corrections import RecordError, correct, find, remove, repair, run_for
    from features.lake import Lake

    if caller.role != "operator":
        raise Forbidden("ROLE_FORBIDDEN", f"a {caller.role} may not settle objections; it is for: operator",
                      f"当前角色（{caller.role}）无权处理异议")
    with factory() as session:
        objection = queries.get(session, objection_id)
    if objection is None:
        raise NotFound("OBJECTION_NOT_FOUND", "no such objection", "异议不存在")
    _check_settlement(objection, settlement)
    if objection.status != queries.OPEN:
        raise _already(objection)
    detail = {"outcome": settlement.outcome, "note": settlement.note.strip(), "department": objection.department,
              "changes": settlement.changes, "repaired_on": settlement.repaired_on}
    if settlement.changes and settlement.changes.get("uscc"):
        detail["moved_to"] = normalised_code(settlement.changes["uscc"])
    lake = Lake(home)
    reference = f"objection:{objection.id}"
    # the lake's lock first, and the record found under it before the database is written: a
    # settlement waiting for an ingestion, or searching the lake, must not hold every decision
    with lake.locked() if settlement.outcome in CHANGING else contextlib.nullcontext():
        done = record = None
        if settlement.outcome in CHANGING:
            done = run_for(lake, reference)  # tried before and the database commit failed: the lake has it
            record = None if done else find(lake, objection.source, json.loads(objection.record_key))
            if done is None and record is None:
                raise Conflict("RECORD_GONE", f"the disputed {objection.source} record is no longer in the lake "
                              "(withdrawn by another settlement)", "该记录已不在平台")
        with chained_writing(factory, home) as session:
            if not queries.claim_for_settlement(session, objection.id, settlement.outcome, caller.id,
                                                today_in_china(), detail):
                with factory() as fresh:
                    raise _already(queries.get(fresh, objection.id))
            if settlement.outcome in CHANGING:
                # the lake's write sits inside the settlement's transaction: refused, the objection
                # stays open; committed and the database then fails, a retry finds it (run_for)
                try:
                    if done is not None:
                        detail["lake_run"] = done
                    elif settlement.outcome == "corrected":
                        detail["lake_run"] = correct(lake, record, settlement.changes, reference)
                    elif settlement.outcome == "repaired":
                        detail["lake_run"] = repair(lake, record, settlement.repaired_on, reference)
                    else:
                        detail["lake_run"] = remove(lake, record, reference)
                except RecordError as error:
                    raise Invalid("INVALID_CORRECTION", str(error), "更正内容不符合该来源的规则") from None
                queries.claim_detail(session, objection.id, detail)
            audit.append_event(session, "objection.settled", objection.id, objection.uscc, caller.id, detail)
            publishing.refresh_disputes(session, [objection.uscc])
    with factory() as session:
        settled = queries.get(session, objection.id)
    if settlement.outcome in CHANGING:
        try:
            republish(factory, home, settled)
        except Exception:  # settled and in the lake: `xyd objections republish` finishes it
            log.exception("objection %s is settled but its profile was not republished", objection.id)
        with factory() as session:
            settled = queries.get(session, objection.id)
    return settled


def republish_pending(factory: sessionmaker[Session], home: Path) -> list[tuple[str, list[str] | str]]:
    """Republish every settlement that changed the lake but whose profile was not republished (its
    rebuild failed, or the service stopped in between): per objection, the enterprises republished
    or the error met."""
    with factory() as session:
        pending = queries.settled_not_republished(session, CHANGING)
    out = []
    for objection in pending:
        try:
            out.append((objection.id, republish(factory, home, objection)))
        except Exception as error:  # reported per objection; the others still go
            out.append((objection.id, f"{type(error).__name__}: {error}"))
    return out


def _already(objection: Objection) -> Conflict:
    return Conflict("OBJECTION_SETTLED", f"objection {objection.id} was already settled ({objection.status}, "
                   f"{objection.settled_at})", "该异议已处理完毕")


def _check_settlement(objection: Objection, settlement: Settlement) -> None:
    allowed = OUTCOMES[objection.kind]
    if settlement.outcome not in allowed:
        raise Invalid("INVALID_SETTLEMENT", f"a {objection.kind} is settled as one of {', '.join(allowed)}; "
                      f"got {settlement.outcome!r}", "处理结果无效")
    if not settlement.note or not settlement.note.strip():
        raise Invalid("INVALID_SETTLEMENT", "a settlement states the department's finding (note)", "请填写核查意见")
    if settlement.outcome in CHANGING and objection.source is None:
        raise Invalid("INVALID_SETTLEMENT", "an objection to a feature is upheld, or corrected at its records: "
                      "file an objection to the record behind it", "对指标的异议须针对其所依据的记录更正")
    if (settlement.outcome == "corrected") != bool(settlement.changes):
        raise Invalid("INVALID_SETTLEMENT", "a correction, and only a correction, names the corrected values "
                      "(changes: column → value)", "更正须列明更正后的字段值")
    if (settlement.outcome == "repaired") != (settlement.repaired_on is not None):
        raise Invalid("INVALID_SETTLEMENT", "a repair, and only a repair, names its date (repaired_on)",
                      "信用修复须注明修复日期")


def republish(factory: sessionmaker[Session], home: Path, objection: Objection) -> list[str]:
    """Rebuild (``--changed``) the stored profile the enterprise is published from and republish
    the enterprises the settlement changed; record the change for the banks' feeds and the
    republication in the events chain. Returns the enterprises republished."""
    from features.lake import Lake
    from features.profile.build import rebuild_changed
    from features.profile.evidence import evidence_for
    from features.profile.store import ProfileStore, registered_names
    from features.registry import feature_names

    settlement = json.loads(objection.settlement)
    affected = [objection.uscc, *([settlement["moved_to"]] if settlement.get("moved_to") else [])]
    with factory() as session:
        as_of = queries.published_as_of(session, objection.uscc)
    store = ProfileStore(home)
    if as_of is None or not store.exists(as_of):
        return []  # nothing published from this home: the next build and publish picks the change up
    lake = Lake(home)
    with lake.locked():  # one rebuild of the stored profile at a time, and no ingestion meanwhile
        rebuild_changed(home, dates=[as_of])
    profile = store.read(as_of)
    rows = profile[profile["uscc"].astype(str).isin(affected)]
    info = store.info(as_of)
    evidence = evidence_for(lake, as_of, rows)
    names = registered_names(home, as_of)
    with chained_writing(factory, home) as session:
        publishing.publish_profiles(session, rows, feature_names(), info.feature_set_version, as_of,
                                    names[names.index.isin(affected)] if names is not None else None,
                                    evidence=evidence)
        publishing.refresh_disputes(session, affected)
        queries.add_changes(session, affected, objection.id, objection.status, as_of)
        queries.mark_republished(session, objection.id)
        audit.append_event(session, "objection.republished", objection.id, objection.uscc, None,
                           {"as_of": as_of.isoformat(), "enterprises": sorted(set(affected)),
                            "lake_run": settlement.get("lake_run")})
    return sorted(set(affected))


def working_days_taken(objection: Objection, home: Path | None = None) -> int | None:
    """Working days from filing to settlement (None while open, or when the settlement day is in a
    year China's calendar does not hold yet)."""
    from features.workdays import NoticeFileError, UnknownCalendarYear, working_days_between

    if objection.settled_day is None:
        return None
    try:
        return working_days_between(objection.filed_day, objection.settled_day, home)
    except (UnknownCalendarYear, NoticeFileError):
        return None


# ------------------------------------------------------------------ as the API and the command line show them

def shown(objection, today: dt.date | None = None, home=None, bank: bool = False) -> ObjectionPublic:
    """An objection as the API shows it (``home``: where a transcribed holiday notice may be). A
    bank is not shown where a corrected record went: that is another enterprise's record."""
    today = today or today_in_china()
    settlement = json.loads(objection.settlement) if objection.settlement else None
    if bank and settlement:
        settlement.pop("moved_to", None)
        if settlement.get("changes"):
            settlement["changes"] = {k: v for k, v in settlement["changes"].items() if k != "uscc"}
    return ObjectionPublic(
        id=objection.id, kind=objection.kind, uscc=objection.uscc, source=objection.source,
        record=json.loads(objection.record_key) if objection.record_key else None, feature=objection.feature,
        features=json.loads(objection.features), department=objection.department, grounds=objection.grounds,
        attachments=json.loads(objection.attachments), filed_by=objection.filed_by,
        authorization_id=objection.authorization_id, filed_at=objection.filed_at, filed_day=objection.filed_day,
        due_day=objection.due_day, due_provisional=bool(objection.due_provisional), status=objection.status,
        overdue=objection.status == queries.OPEN and objection.due_day < today, settled_at=objection.settled_at,
        settled_day=objection.settled_day, working_days_taken=working_days_taken(objection, home),
        settlement=settlement,
        republished_at=objection.republished_at)


def due_before(late_on: dt.date | None, due_by: dt.date | None) -> dt.date | None:
    """The first day an objection may not be due on to be listed: after ``due_by``, and (for the
    overdue list) not today or later."""
    days = [d for d in (late_on, None if due_by is None or due_by == dt.date.max else due_by + dt.timedelta(days=1))
            if d is not None]
    return min(days) if days else None
