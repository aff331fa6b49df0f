"""The decision chain: every decision row carries the hash of the one before it.

``hash = sha256(prev_hash + "\\n" + payload)`` where ``payload`` is the row's content as canonical
JSON (sorted keys, floats as Python writes them). Appends take the chain head's lock, so writers
in several processes queue and the chain has no forks; :func:`verify` recomputes every hash in
order and names the first row that does not match.

Two formats of row live in one chain (``chain_format``):

1. the row's fields themselves (:data:`HASHED_V1`), reasons included: a receipt had to repeat all
   of it (7–8 KB) for a bank to check its answer;
2. since migration 0010, two digests and the row's place: ``{"answer": …, "decided_at": …,
   "format": 2, "record": …, "seq": …}``. ``record`` is the SHA-256 of the stored row's fields
   (:data:`RECORDED`, the enterprise's name and the reasons in full among them: what the regulator
   reads); ``answer`` the SHA-256 of the answer the bank was sent, canonicalised by RFC 8785 (JCS),
   without its ``hash``, ``receipt`` and ``decided_at`` (:func:`api.trust.signing.answer_digest`).
   A bank rebuilds this content from its answer and the receipt's ``record`` digest alone, so the
   receipt repeats nothing (:func:`api.trust.signing.verify_receipt`); the walk rebuilds ``record``
   from the row, so the stored row stays held to the chain as before.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import Connection, bindparam, exc, insert, select, update
from sqlalchemy.orm import Session

from api.common.clock import now_iso
from api.db.tables import AuditHead, ChainIdentity, Decision, Review, SignedCheckpoint, WorkflowEvent

GENESIS = "0" * 64
HASHED_V1 = ("seq", "request_id", "client_id", "uscc", "authorization_id", "model_version", "policy_version",
             "profile_as_of", "feature_set_version", "product", "requested_amount", "pd", "score", "grade", "decision",
             "limit_yuan", "reasons", "created_at")
"""A format-1 row's content: its fields themselves."""
CHAIN_FORMAT = 2
"""The format of the rows written now."""
RECORDED = ("request_id", "client_id", "uscc", "name", "authorization_id", "model_version", "policy_version",
            "profile_as_of", "feature_set_version", "product", "requested_amount", "pd", "score", "grade", "decision",
            "limit_yuan", "reasons")
"""The stored fields a format-2 row's ``record`` digest covers (its place and time are in the content itself)."""
HASHED = (*HASHED_V1, "chain_format", "name", "answer_digest")
"""Every column a row's content is computed from, in either format."""


# Core statements on the tables, built once: the ORM's unit of work, and building the statements
# anew, cost more than the rest of a decision
_HEAD = AuditHead.__table__
_READ_HEAD = select(_HEAD.c.last_seq, _HEAD.c.last_hash).where(_HEAD.c.id == 1).with_for_update()
# On PostgreSQL the chain's transaction runs with synchronous_commit off, like SQLite's WAL with
# synchronous=NORMAL: a crash of the service loses nothing, a power cut may lose the last fraction
# of a second, and the chain stays whole either way. A signed checkpoint is made only of what is on
# disk (make_durable first), so that a power cut never leaves it vouching for decisions now gone. A writer that waits this long for the chain's
# lock gives up with an error (a 503 for the bank) instead of holding its requests indefinitely.
CHAIN_LOCK_TIMEOUT = "10s"
_CHAIN_SETTINGS_PG = ("SET LOCAL synchronous_commit = off", f"SET LOCAL lock_timeout = '{CHAIN_LOCK_TIMEOUT}'")
_MOVE_HEAD = (update(_HEAD).where(_HEAD.c.id == 1)
              .values(last_seq=bindparam("new_seq"), last_hash=bindparam("new_hash")))
_INSERT = insert(Decision.__table__)
_STORED = (*HASHED, "prev_hash", "hash")


def _canonical_fields(row: dict, fields: tuple[str, ...]) -> str:
    """Canonical JSON of ``row``'s ``fields`` (floats as Python writes them, -0.0 as 0.0: some
    databases give back no negative zero)."""
    content = {k: (row[k] + 0.0 if isinstance(row[k], float) else row[k]) for k in fields}
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def record_digest(row: dict) -> str:
    """The SHA-256 (hex) of a format-2 row's stored fields (:data:`RECORDED`)."""
    return hashlib.sha256(_canonical_fields(row, RECORDED).encode("utf-8")).hexdigest()


def content_v2(seq, decided_at, answer, record, chain_format=CHAIN_FORMAT) -> str:
    """A format-2 row's canonical content, from its place, time and two digests: what a bank rebuilds
    from its answer and receipt. For a row as written (a 64-hex digest, a timestamp) it reads
    ``{"answer":"…","decided_at":"…","format":2,"record":"…","seq":N}``, byte for byte."""
    return json.dumps({"answer": answer, "decided_at": decided_at, "format": chain_format, "record": record,
                       "seq": seq}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def payload(row: dict) -> str:
    """The canonical text of a decision's content, in the row's format (``chain_format``; a row
    without one is of format 1)."""
    if (row.get("chain_format") or 1) == 1:
        return _canonical_fields(row, HASHED_V1)
    return content_v2(row["seq"], row["created_at"], row["answer_digest"], record_digest(row), row["chain_format"])


def chain_hash(prev_hash: str, row: dict) -> str:
    return content_hash(prev_hash, payload(row))


def content_hash(prev_hash: str, content: str) -> str:
    """The chain hash of a row whose canonical content (:func:`payload`) is ``content``."""
    return hashlib.sha256(f"{prev_hash}\n{content}".encode("utf-8")).hexdigest()


def _linked(rows: list[dict], seq: int, previous: str, created: str) -> tuple[list[dict], list[dict]]:
    """The rows with their place in the chain after (``seq``, ``previous``): seq, created_at,
    prev_hash and hash; and what each one's receipt needs: its canonical ``content`` and, for a row of
    format 2, its ``record`` digest."""
    out, signed = [], []
    for row in rows:
        seq += 1
        row = {**_FORMAT_1, **row, "seq": seq, "created_at": created}
        if row["chain_format"] == 1:
            record, content = None, payload(row)
        else:
            record = record_digest(row)
            content = content_v2(seq, created, row["answer_digest"], record, row["chain_format"])
        digest = content_hash(previous, content)
        out.append({**row, "prev_hash": previous, "hash": digest})
        signed.append({"content": content, "record": record})
        previous = digest
    return out, signed


_FORMAT_1 = {"chain_format": 1, "name": None, "answer_digest": None}
"""A row that names no format (an older caller's) is of format 1."""


def _stored(out: list[dict], signed: list[dict]) -> list[SimpleNamespace]:
    return [SimpleNamespace(**row, **parts) for row, parts in zip(out, signed)]


def append(connection: Connection, rows: list[dict], now=None) -> list[SimpleNamespace]:
    """Append decisions to the chain in the connection's transaction (which must hold the write
    lock: :func:`api.db.engine.write_transaction`); assigns ``seq``, ``created_at`` (taken under the lock,
    so time order is chain order), ``prev_hash`` and ``hash``; each row comes back with its
    canonical ``content`` and, in format 2 (a row's ``chain_format``; format 1 without one), its
    ``record`` digest too.

    On PostgreSQL this also commits, pipelined (:func:`_append_pipelined`); the transaction's own
    commit then finds nothing left to do."""
    if connection.dialect.name == "postgresql":
        return _append_pipelined(connection, rows, now)
    seq, previous = connection.execute(_READ_HEAD).one()
    out, signed = _linked(rows, seq, previous, now or now_iso())
    connection.execute(_INSERT, out[0] if len(out) == 1 else out)
    connection.execute(_MOVE_HEAD, {"new_seq": out[-1]["seq"], "new_hash": out[-1]["hash"]})
    return _stored(out, signed)


class _Compiled:
    """A statement's SQL for one dialect, compiled once, and the values of its literal parameters."""

    def __init__(self, statement, dialect, **kw):
        compiled = statement.compile(dialect=dialect, **kw)
        self.sql, self.params = str(compiled), compiled.params


@functools.cache
def _pipelined_statements(dialect) -> tuple[_Compiled, _Compiled, _Compiled]:
    """The head's read, the insert and the head's move, compiled for ``dialect``."""
    return (_Compiled(_READ_HEAD, dialect), _Compiled(_INSERT, dialect, column_keys=_STORED),
            _Compiled(_MOVE_HEAD, dialect))


def _append_pipelined(connection: Connection, rows: list[dict], now=None) -> list[SimpleNamespace]:
    """The PostgreSQL append in three round trips instead of five, with psycopg's pipeline mode:
    BEGIN; the chain's settings and the head's lock; the inserts, the head's move and COMMIT
    (so the chain's lock is held for one round trip instead of three). Driver errors come out as
    SQLAlchemy's; a lost connection is invalidated, and so is the rest of the pool, which SQLAlchemy
    also does when a statement it runs finds the connection lost."""
    dialect = connection.dialect
    read_head, insert_rows, move_head = _pipelined_statements(dialect)
    driver = connection.connection.driver_connection
    try:
        with driver.pipeline(), driver.cursor() as cursor:
            for setting in _CHAIN_SETTINGS_PG:
                cursor.execute(setting)
            cursor.execute(read_head.sql, read_head.params)
            seq, previous = cursor.fetchone()
            out, signed = _linked(rows, seq, previous, now or now_iso())
            cursor.executemany(insert_rows.sql, out)
            cursor.execute(move_head.sql, {**move_head.params, "new_seq": out[-1]["seq"], "new_hash": out[-1]["hash"]})
            cursor.execute("COMMIT")  # sent with the pipeline's closing sync: no round trip of its own
    except dialect.loaded_dbapi.Error as error:
        lost = dialect.is_disconnect(error, driver, None)
        if lost:
            connection.invalidate(error)
            connection.engine.dispose(close=False)  # the other pooled connections are likely gone too
        raise exc.DBAPIError.instance(None, None, error, dialect.loaded_dbapi.Error, connection_invalidated=lost,
                                      dialect=dialect) from error
    return _stored(out, signed)


def make_durable(engine) -> None:
    """Wait until every decision committed so far is on disk. PostgreSQL: one transaction that
    commits synchronously (its commit record is flushed, and every earlier one with it). SQLite in
    WAL mode: a passive checkpoint, which syncs the write-ahead log first."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            with connection.begin():
                connection.exec_driver_sql("SET LOCAL synchronous_commit = on")
                # PostgreSQL flushes at commit only a transaction that wrote WAL before its commit
                # record (RecordTransactionCommit): a transaction id alone is committed
                # asynchronously, whatever synchronous_commit says. A transactional logical message
                # is the lightest WAL a role without privileges may write (no table, no lock).
                connection.exec_driver_sql("SELECT pg_logical_emit_message(true, 'xyd', 'durable')")
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def head(session: Session, chain: str | None = None) -> tuple[int, str]:
    """A chain's size and the hash of its newest row, as its head row records them (the decisions'
    by default)."""
    row = session.get(AuditHead, CHAIN_ROW[chain or DECISIONS])
    return (row.last_seq, row.last_hash) if row is not None else (0, GENESIS)


# ------------------------------------------------------------------ the chains and their origins

DECISIONS, EVENTS = "decisions", "workflow_events"
"""The two chains: the decisions', and the workflow events' (objections, settlements,
republications and the banks' reviews)."""
CHAIN_ROW = {DECISIONS: 1, EVENTS: 2}
"""Each chain's row in audit_head and in signed_checkpoints."""
EVENTS_HEAD = CHAIN_ROW[EVENTS]


def origin(session: Session, chain: str) -> str:
    """The name a chain's checkpoints carry, as Certificate Transparency logs name theirs: this
    database's identity (made once, by the migration that introduced it) and the chain, so that a
    checkpoint of another database's chain is refused by name."""
    identity = session.get(ChainIdentity, 1)
    if identity is None:
        raise RuntimeError("the database has no chain identity: run its migrations (xyd serve does)")
    return f"xyd/{identity.database_id}/{chain}"


def sorted_checkpoints(session: Session, checkpoints: list | None) -> tuple[dict[str, list | None], str | None]:
    """The checkpoints of each chain of this database (format 1, which named none, spoke of the
    decisions'), and why the file cannot be this database's when one of them names another
    origin (None when all are ours). With no checkpoints to hold the chains to (None), None for
    each: :func:`verify` and :func:`verify_events` then walk the chains alone."""
    if checkpoints is None:
        return dict.fromkeys(CHAIN_ROW), None
    own = {origin(session, chain): chain for chain in CHAIN_ROW}
    out: dict[str, list] = {chain: [] for chain in CHAIN_ROW}
    for checkpoint in checkpoints:
        chain = DECISIONS if checkpoint.origin is None else own.get(checkpoint.origin)
        if chain is None:
            return out, (f"{checkpoint.describe()} names the chain {checkpoint.origin}, not one of this database's "
                         f"({', '.join(sorted(own))}): the checkpoints are another database's")
        out[chain].append(checkpoint)
    return out, None


@dataclass
class Verification:
    """The result of walking a chain (and of holding it against its signed checkpoints)."""

    rows: int
    ok: bool
    first_broken_seq: int | None = None
    first_broken_request: str | None = None
    problem: str | None = None
    checkpoints: int = 0  # how many signed checkpoints the chain was held against
    covered: int = 0  # the rows the newest of them vouches for
    uncovered_since: str | None = None  # when the oldest row no checkpoint covers was written (held only)


_SIGNED = SignedCheckpoint.__table__
_RECORD_SIGNED = (update(_SIGNED)
                  .where(_SIGNED.c.id == bindparam("chain_row"), _SIGNED.c.size < bindparam("new_size"))
                  .values(size=bindparam("new_size"), head=bindparam("new_head"), signed_at=bindparam("new_time"),
                          key_id=bindparam("new_key")))


def record_signed(engine, checkpoint, chain: str = DECISIONS) -> None:
    """Keep, in the chain's own database, the largest checkpoint signed over it (a smaller one, signed
    by a worker that wrote less, changes nothing): what the checkpoints file must still hold."""
    with engine.begin() as connection:
        connection.execute(_RECORD_SIGNED, {"chain_row": CHAIN_ROW[chain], "new_size": checkpoint.size,
                                            "new_head": checkpoint.head, "new_time": checkpoint.time,
                                            "new_key": checkpoint.key_id})


def _against_the_record(session: Session, checkpoints: list, chain: str) -> str | None:
    """Why the checkpoints file cannot be what was signed, by the chain's own record of the largest
    checkpoint signed over it: the record gone, or the file holding nothing as large (emptied or
    cut short), or holding another head for that size. None when the file holds it."""
    record = session.get(SignedCheckpoint, CHAIN_ROW[chain])
    if record is None:
        return ("the chain's record of its signed checkpoints is missing (was it deleted?): the checkpoints file "
                "cannot be held to it")
    if not record.size:
        return None
    if not any(c.size == record.size and c.head == record.head for c in checkpoints):
        newest = max((c.size for c in checkpoints), default=0)
        held = (f"its newest vouches for {newest:,} rows" if checkpoints else "it holds no checkpoint")
        return (f"the chain records a checkpoint of {record.size:,} rows ending in {(record.head or '')[:12]}… "
                f"signed at {record.signed_at} by key {record.key_id}, but the checkpoints file does not hold it "
                f"({held}): the file was emptied, cut short or replaced")
    return None


@dataclass(frozen=True)
class _Chain:
    """What walking one chain needs: its table, its hashed columns and their canonical text, and the
    words its messages use."""

    name: str
    table: type
    hashed: tuple[str, ...]
    text: object  # the row's canonical text: payload or event_payload
    subject: str  # the column that names a row in a message
    row: str  # what its messages call a place in it: "row" or "event"
    item: str  # and what stands there: "a decision" or "an event"
    deleted: str  # what a head ahead of the table adds: "" or ": events were deleted"
    head: str  # what its messages call its head: "the chain head" or "the events head"


def _walk(session: Session, chain: _Chain, batch: int, checkpoints, seen=None) -> Verification:
    """Recompute ``chain`` from its first row up to its head as it stands when the check starts
    (writers may go on appending meanwhile); stop at the first row that breaks it. ``seen`` is
    given each intact row, in order. With ``checkpoints`` (this chain's, signatures checked), the row
    each names must still hash to the head it signed, none may reach past the chain's end, and the
    file must hold the largest checkpoint the chain records as signed (:func:`record_signed`)."""
    held = checkpoints is not None
    checkpoints = list(checkpoints or ())
    head_row = session.get(AuditHead, CHAIN_ROW[chain.name])
    if head_row is None:  # every migrated database holds it: without it nothing vouches for the table's end
        return Verification(0, False, 1, None, f"{chain.head} row is missing: the table's end cannot be checked "
                                               "(was it deleted?)")
    end = head_row.last_seq
    wanted: dict[int, list] = {}
    for checkpoint in checkpoints:
        wanted.setdefault(checkpoint.size, []).append(checkpoint)
    signed = sorted(wanted)
    vouched = 0  # the largest checkpointed size found intact so far
    previous, expected, checked, last = GENESIS, 1, 0, 0
    columns = [getattr(chain.table, c) for c in (*chain.hashed, "prev_hash", "hash")]
    row_word = chain.row

    first_uncovered = (signed[-1] if signed else 0) + 1
    uncovered_since = None

    def outcome(ok: bool, *broken) -> Verification:
        return Verification(checked, ok, *broken, checkpoints=len(checkpoints), covered=signed[-1] if signed else 0,
                            uncovered_since=uncovered_since)

    while True:
        rows = session.execute(select(*columns).where(chain.table.seq > last, chain.table.seq <= end)
                               .order_by(chain.table.seq).limit(batch)).all()
        if not rows:
            break
        for row in rows:
            record = row._asdict()
            problem = None
            if record["seq"] != expected:
                problem = f"{row_word} {expected} is missing (the next {row_word} is {record['seq']})"
            elif record["prev_hash"] != previous:
                problem = f"its previous-hash does not match the {row_word} before it"
            elif content_hash(previous, chain.text(record)) != record["hash"]:
                problem = "its content does not match its hash"
            if problem and signed and signed[-1] >= expected:
                problem += f"; a signed checkpoint covers this {row_word} ({row_word}s 1–{vouched} are as signed)"
            if not problem:
                disagreeing = next((c for c in wanted.get(record["seq"], ()) if c.head != record["hash"]), None)
                if disagreeing is not None:  # the first checkpoint of this size that signed another hash
                    problem = (f"its hash is {record['hash'][:12]}…, {disagreeing.describe()} signed "
                               f"{disagreeing.head[:12]}… for it: {chain.item} in {row_word}s {vouched + 1}–"
                               f"{record['seq']} was rewritten, reordered or removed and the chain rehashed after "
                               f"the checkpoint was signed ({row_word}s 1–{vouched} are as signed)")
                elif record["seq"] in wanted:
                    vouched = record["seq"]
            if problem:
                return outcome(False, record["seq"], record[chain.subject], problem)
            if seen is not None:
                seen(record)
            if held and record["seq"] == first_uncovered:
                uncovered_since = record["created_at"]
            previous, expected, checked, last = record["hash"], expected + 1, checked + 1, record["seq"]
    if checked != end or head_row.last_hash != previous:
        return outcome(False, checked + 1, None,
                       f"{chain.head} says {end} {row_word}s ending in {head_row.last_hash[:12]}…, the table "
                       f"gives {checked} ending in {previous[:12]}…{chain.deleted}")
    beyond = [c for c in checkpoints if c.size > checked]
    if beyond:
        latest = max(beyond, key=lambda c: c.size)
        return outcome(False, checked + 1, None,
                       f"the chain ends at {row_word} {checked}, but {latest.describe()} signed {latest.size} "
                       f"{row_word}s ending in {latest.head[:12]}…: {row_word}s {checked + 1}–{latest.size} were "
                       "deleted (the chain was cut short and its head moved back)")
    if held:
        mismatch = _against_the_record(session, checkpoints, chain.name)
        if mismatch:
            return outcome(False, None, None, mismatch)
    return outcome(True)


def verify(session: Session, batch: int = 5_000, checkpoints=None) -> Verification:
    """Recompute the decisions' chain up to its head; stop at the first row that breaks it.

    With ``checkpoints`` (:func:`api.trust.signing.read_checkpoints`, signatures already checked, of
    this chain: :func:`sorted_checkpoints`), the row each one names must still hash to the head it
    signed: a chain rewritten and rehashed, or cut short with its head moved back, is found, which
    the chain alone cannot show. And the checkpoints must include the largest one the chain records
    as signed (:func:`record_signed`): a checkpoints file emptied or cut short is named, not read as
    vouching for fewer rows. Without ``checkpoints`` (None) the chain is walked alone."""
    return _walk(session, _DECISIONS_CHAIN, batch, checkpoints)


# ------------------------------------------------------------------ workflow events

EVENT_HASHED = ("seq", "kind", "subject", "uscc", "client_id", "detail", "created_at")
REVIEWED = "review.recorded"
"""The event that puts a bank's review of a decision in the events chain."""


def event_payload(row: dict) -> str:
    """The canonical text of a workflow event (``detail`` is itself canonical JSON text)."""
    return json.dumps({k: row[k] for k in EVENT_HASHED}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


_DECISIONS_CHAIN = _Chain(DECISIONS, Decision, HASHED, payload, "request_id", "row", "a decision", "", "the chain head")
_EVENTS_CHAIN = _Chain(EVENTS, WorkflowEvent, EVENT_HASHED, event_payload, "subject", "event", "an event",
                       ": events were deleted", "the events head")


def lock_events(session: Session) -> None:
    """Take the events chain's lock first in every write of the objection workflow (and of a
    publish, which rewrites the profiles the workflow marks): one order of locks, no deadlock
    between a filing and a republication on PostgreSQL, and feed ids committed in their order."""
    session.execute(select(AuditHead.id).where(AuditHead.id == EVENTS_HEAD).with_for_update())


def _canonical(detail: dict) -> str:
    return json.dumps(detail, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def append_event(session: Session, kind: str, subject: str, uscc: str, client_id: int | None,
                 detail: dict) -> WorkflowEvent:
    """Append one workflow event (an objection filed, settled, republished, a review recorded) to the
    events chain, in the session's write transaction (:func:`api.db.engine.writing`), under the events
    head's lock."""
    head_row = session.execute(select(AuditHead).where(AuditHead.id == EVENTS_HEAD).with_for_update()).scalar_one()
    row = {"seq": head_row.last_seq + 1, "kind": kind, "subject": subject, "uscc": uscc, "client_id": client_id,
           "detail": _canonical(detail), "created_at": now_iso()}
    digest = content_hash(head_row.last_hash, event_payload(row))
    event = WorkflowEvent(**row, prev_hash=head_row.last_hash, hash=digest)
    session.add(event)
    head_row.last_seq, head_row.last_hash = row["seq"], digest
    session.flush()
    return event


REVIEW_FIELDS = ("request_id", "client_id", "outcome", "limit_yuan", "reviewer", "note", "reviewed_at")


def review_detail(review) -> dict:
    """What the events chain keeps of a bank's review: every field the regulator's page shows."""
    return {field: getattr(review, field) for field in REVIEW_FIELDS}


def chain_review(session: Session, review, uscc: str) -> WorkflowEvent:
    """Put a review just added to the session into the events chain, in the same transaction: a
    review edited, removed or added behind the service's back is then named by :func:`verify_events`."""
    session.flush()
    return append_event(session, REVIEWED, review.request_id, uscc, review.client_id, review_detail(review))


def verify_events(session: Session, batch: int = 5_000, checkpoints=None) -> Verification:
    """Recompute the workflow events' chain up to its head (held against its ``checkpoints`` as
    :func:`verify` holds the decisions'), then hold every bank's review to the event that recorded
    it: a review whose fields differ from its event, a review no event recorded, or an event whose
    review is gone is named."""
    recorded: dict[str, dict] = {}

    def seen(record: dict) -> None:
        if record["kind"] == REVIEWED:
            recorded[record["subject"]] = json.loads(record["detail"])

    result = _walk(session, _EVENTS_CHAIN, batch, checkpoints, seen)
    if not result.ok:
        return result
    for review in session.execute(select(Review).order_by(Review.reviewed_at, Review.request_id)).scalars():
        event = recorded.pop(review.request_id, None)
        if event is None:
            problem = "no event of the chain records it: it was added outside the service"
        elif _canonical(review_detail(review)) != _canonical(event):
            changed = [f for f in REVIEW_FIELDS if _canonical({f: getattr(review, f)}) != _canonical({f: event.get(f)})]
            problem = f"its {', '.join(changed)} differ from what the chain recorded: it was edited"
        else:
            continue
        return Verification(result.rows, False, None, review.request_id, f"the review of decision "
                            f"{review.request_id}: {problem}", result.checkpoints, result.covered)
    if recorded:
        request_id = next(iter(recorded))
        return Verification(result.rows, False, None, request_id, f"the review of decision {request_id} that the "
                            "chain recorded is gone from the reviews: it was deleted", result.checkpoints,
                            result.covered)
    return result
