"""Group commit: threads appending at once share transactions, and the chain stays one line
(on SQLite and on PostgreSQL, whose append is pipelined)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from psycopg import pq
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from api.access import clients
from api.db.engine import make_engine, sessions, upgrade, write_transaction, writing
from api.trust import audit
from api.trust.appender import ChainAppender
from tests.api.service_fixtures import decisions_origin, terminate_backend


def _row(client_id: int, n: int) -> dict:
    return {"request_id": f"r-{n}", "client_id": client_id, "uscc": "91420502MA4K0G2B2X", "authorization_id": "a",
            "model_version": "1", "policy_version": "p", "profile_as_of": "2026-06-30", "feature_set_version": "f",
            "product": None, "requested_amount": None, "pd": 0.01 * (n % 50), "score": 600.0 - n, "grade": "B",
            "decision": "approve", "limit_yuan": n, "reasons": "{}"}


def _chain(url: str):
    """A fresh chain at ``url`` with one bank, and an appender on it."""
    upgrade(url)
    engine = make_engine(url)
    factory = sessions(engine)
    with writing(factory) as session:
        client, _ = clients.add_client(session, "bank", "bank")
    return engine, factory, client, ChainAppender(engine)


def _verified_and_closed(engine, factory, appender, rows: int) -> None:
    """The chain verifies and holds ``rows`` decisions; then the appender and the engine close."""
    with factory() as session:
        verification = audit.verify(session)
    assert verification.ok and verification.rows == rows
    appender.close()
    engine.dispose()


def test_concurrent_appends_keep_order_per_caller_and_one_unbroken_chain(database_url):
    engine, factory, client, appender = _chain(database_url)

    def work(worker: int):
        return [appender.append([_row(client.id, worker * 1000 + i), _row(client.id, worker * 1000 + i + 500)])
                for i in range(25)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    stored = [row for calls in results for call in calls for row in call]
    assert len(stored) == 400 and len({row.seq for row in stored}) == 400
    for calls in results:
        for first, second in calls:  # each caller's rows back in its order, next to each other
            assert second.seq == first.seq + 1 and second.prev_hash == first.hash
    _verified_and_closed(engine, factory, appender, 400)


def _hold_the_chain(engine, appender, first_rows):
    """A context in which another writer holds the chain's lock and the appender's writer waits
    for it with ``first_rows``; yields that first request's future."""
    from contextlib import contextmanager

    @contextmanager
    def held():
        with write_transaction(engine) as other:
            other.execute(audit._READ_HEAD)  # on PostgreSQL the head's row lock is the chain's lock
            first = appender.submit(first_rows)
            deadline = time.monotonic() + 10
            while not first.running():  # the writer took it and waits for the chain
                assert time.monotonic() < deadline, "the writer never took the first request"
                time.sleep(0.001)
            yield first

    return held()


def test_decisions_ready_during_a_write_share_the_next_one(database_url):
    engine, factory, client, appender = _chain(database_url)
    with _hold_the_chain(engine, appender, [_row(client.id, 1)]) as first:
        queued = [appender.submit([_row(client.id, n), _row(client.id, n + 100)]) for n in (2, 3, 4)]
    assert len(first.result(timeout=10)) == 1
    stored = [row for waiting in queued for row in waiting.result(timeout=10)]
    assert [row.request_id for row in stored] == ["r-2", "r-102", "r-3", "r-103", "r-4", "r-104"]
    assert [row.seq for row in stored] == list(range(2, 8))
    assert len({row.created_at for row in stored}) == 1  # one write transaction for the three requests
    _verified_and_closed(engine, factory, appender, 7)


def test_a_request_that_cannot_be_written_fails_alone_not_its_whole_group(database_url):
    engine, factory, client, appender = _chain(database_url)
    unhashable = {**_row(client.id, 2), "product": "\ud800"}  # no UTF-8 for a lone surrogate
    with _hold_the_chain(engine, appender, [_row(client.id, 1)]) as first:
        bad = appender.submit([unhashable])  # the next two queue as one group
        good = appender.submit([_row(client.id, 3)])
    assert [row.request_id for row in first.result(timeout=10)] == ["r-1"]
    with pytest.raises(UnicodeEncodeError):
        bad.result(timeout=10)
    assert [row.request_id for row in good.result(timeout=10)] == ["r-3"]
    _verified_and_closed(engine, factory, appender, 2)


def test_a_request_given_up_on_before_its_write_is_not_written_and_the_others_are(database_url):
    engine, factory, client, appender = _chain(database_url)
    with _hold_the_chain(engine, appender, [_row(client.id, 1)]):
        gone = appender.submit([_row(client.id, 2)])
        kept = appender.submit([_row(client.id, 3)])
        assert gone.cancel()  # as when its waiter is cancelled (a worker shutting down)
    assert [row.seq for row in kept.result(timeout=10)] == [2]
    _verified_and_closed(engine, factory, appender, 2)


def test_closing_writes_what_has_queued_then_refuses_more(tmp_path):
    engine, factory, client, appender = _chain(f"sqlite:///{tmp_path}/chain.db")
    with ThreadPoolExecutor(1) as pool:
        with _hold_the_chain(engine, appender, [_row(client.id, 1)]):
            queued = appender.submit([_row(client.id, 2)])
            closing = pool.submit(appender.close)
            time.sleep(0.05)
            assert not closing.done()
        closing.result(timeout=10)
    assert [row.seq for row in queued.result(timeout=10)] == [2]
    with pytest.raises(RuntimeError):
        appender.submit([_row(client.id, 3)])
    engine.dispose()


def test_a_connection_lost_during_the_chain_write_is_reported_as_lost_and_the_chain_goes_on(postgres_url):
    engine, factory, client, appender = _chain(postgres_url)
    with pytest.raises(DBAPIError) as lost:
        with write_transaction(engine) as connection:
            terminate_backend(connection.connection.driver_connection.info.backend_pid)
            audit.append(connection, [_row(client.id, 1)])
    assert lost.value.connection_invalidated  # the service answers 503 DATABASE_UNAVAILABLE, not 500
    assert [row.seq for row in appender.append([_row(client.id, 2)])] == [1]  # a fresh connection, nothing half-written
    _pooled_connections_are_clean(engine)
    _verified_and_closed(engine, factory, appender, 1)


def _pooled_connections_are_clean(engine) -> None:
    """A connection the pool hands out next is outside any transaction and out of pipeline mode."""
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert driver.info.transaction_status.name == "IDLE" and driver.pgconn.pipeline_status == pq.PipelineStatus.OFF


def test_a_group_that_waits_too_long_for_the_chain_hears_one_database_error_and_the_chain_goes_on(
        postgres_url, monkeypatch):
    monkeypatch.setattr(audit, "_CHAIN_SETTINGS_PG", ("SET LOCAL synchronous_commit = off",
                                                      "SET LOCAL lock_timeout = '1s'"))
    engine, factory, client, appender = _chain(postgres_url)
    writes = []
    write = appender._write
    monkeypatch.setattr(appender, "_write", lambda rows: writes.append(len(rows)) or write(rows))
    with _hold_the_chain(engine, appender, [_row(client.id, 1)]) as first:
        group = [appender.submit([_row(client.id, n)]) for n in (2, 3)]
        for waiting in (first, *group):
            with pytest.raises(OperationalError) as busy:  # SQLAlchemy's, which the service answers with a 503
                waiting.result(timeout=10)
            assert not busy.value.connection_invalidated
    assert writes == [1, 2]  # the group failed as one: a lock that took too long is no request's own fault
    _pooled_connections_are_clean(engine)
    assert [row.seq for row in appender.append([_row(client.id, 4)])] == [1]
    _pooled_connections_are_clean(engine)
    _verified_and_closed(engine, factory, appender, 1)


def test_an_idle_writer_signs_its_checkpoint_within_its_seconds_and_closing_signs_the_last(tmp_path):
    from api.trust.signing import Checkpointer, Keyring, read_checkpoints, read_keyring

    engine, factory, client, appender = _chain(f"sqlite:///{tmp_path}/chain.db")
    path = tmp_path / "checkpoints.jsonl"
    appender.checkpointer = Checkpointer(Keyring(tmp_path / "keys").signer(), path, every_decisions=1000,
                                         every_seconds=0.2, origin=decisions_origin(engine))
    appender.append([_row(client.id, 1), _row(client.id, 2)])
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    keys = read_keyring(tmp_path / "keys" / "public-keys.json")
    assert [c.size for c in read_checkpoints(path, keys)] == [2]  # signed while idle, 0.2 s after
    appender.checkpointer.every_seconds = 3600
    appender.append([_row(client.id, 3)])
    assert [c.size for c in read_checkpoints(path, keys)] == [2]
    _verified_and_closed(engine, factory, appender, 3)
    assert [c.size for c in read_checkpoints(path, keys)] == [2, 3]


class RecordingCheckpointer:
    """A checkpointer that records what the writer tells it, and what the chain held on disk then."""

    def __init__(self, engine, fail: bool = False):
        self.engine, self.fail, self.signer = engine, fail, object()
        self.wrote_calls, self.committed_then, self.signs = [], [], 0

    def wrote(self, size: int, head: str) -> None:
        with self.engine.connect() as connection:  # another connection: sees only what was committed
            self.committed_then.append(tuple(connection.execute(
                text("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")).one()))
        self.wrote_calls.append((size, head))
        if self.fail:
            raise OSError("no space left on device")

    def seconds_until_due(self):
        return None

    def sign_now(self):
        self.signs += 1
        if self.fail:
            raise OSError("no space left on device")


def test_each_write_tells_the_checkpointer_its_newest_row_once_it_is_committed(tmp_path):
    """Promise: after each write the checkpointer hears the chain's size and head hash as they are on
    the database for every other connection (committed), the newest row of that write's group."""
    engine, factory, client, appender = _chain(f"sqlite:///{tmp_path}/chain.db")
    checkpointer = RecordingCheckpointer(engine)
    appender.checkpointer = checkpointer
    assert appender.signer is checkpointer.signer
    first = appender.append([_row(client.id, 1), _row(client.id, 2)])
    second = appender.append([_row(client.id, 3)])
    assert checkpointer.wrote_calls == [(2, first[-1].hash), (3, second[-1].hash)]
    assert checkpointer.committed_then == checkpointer.wrote_calls
    appender.close()
    assert checkpointer.signs == 1  # closing signs the last state
    _verified_and_closed(engine, factory, appender, 3)


def test_a_checkpoint_that_cannot_be_signed_is_logged_and_the_decisions_are_kept(tmp_path, caplog):
    """Promise: a checkpoint that fails (a full disk) fails no decision: the rows are written and
    answered, the failure is logged, and the writer goes on."""
    engine, factory, client, appender = _chain(f"sqlite:///{tmp_path}/chain.db")
    appender.checkpointer = RecordingCheckpointer(engine, fail=True)
    with caplog.at_level("ERROR", logger="xyd.api"):
        assert [row.seq for row in appender.append([_row(client.id, 1)])] == [1]
        assert [row.seq for row in appender.append([_row(client.id, 2)])] == [2]
        appender.close()
    failures = [r.getMessage() for r in caplog.records if "could not sign the chain's checkpoint" in r.getMessage()]
    assert len(failures) == 3 and all("no space left on device" in f for f in failures)
    _verified_and_closed(engine, factory, appender, 2)


def test_an_appender_without_a_checkpointer_signs_nothing_and_closes_at_once(tmp_path):
    engine, factory, client, appender = _chain(f"sqlite:///{tmp_path}/chain.db")
    assert appender.signer is None
    started = time.monotonic()
    appender.close()  # no writer was ever started
    assert time.monotonic() - started < 1
    with pytest.raises(RuntimeError, match="closed"):
        appender.submit([_row(client.id, 1)])
    engine.dispose()


def test_a_request_the_database_refuses_fails_alone_and_a_lone_one_is_written_once(tmp_path, monkeypatch):
    """Promise: a request whose own rows the database refuses (a request id used before) fails, and
    the requests that shared its group are written; a request alone in its group is not tried twice."""
    from sqlalchemy.exc import IntegrityError

    engine, factory, client, appender = _chain(f"sqlite:///{tmp_path}/chain.db")
    writes = []
    write = appender._write
    monkeypatch.setattr(appender, "_write", lambda rows: writes.append([r["request_id"] for r in rows]) or write(rows))
    appender.append([_row(client.id, 1)])
    with pytest.raises(IntegrityError):
        appender.append([_row(client.id, 1)])
    assert writes == [["r-1"], ["r-1"]]
    writes.clear()
    with _hold_the_chain(engine, appender, [_row(client.id, 2)]) as first:
        before = appender.submit([_row(client.id, 3)])
        again = appender.submit([_row(client.id, 1)])
        after = appender.submit([_row(client.id, 4), _row(client.id, 5)])
    assert [row.seq for row in first.result(timeout=10)] == [2]
    assert [row.seq for row in before.result(timeout=10)] == [3]
    with pytest.raises(IntegrityError):
        again.result(timeout=10)
    assert [row.request_id for row in after.result(timeout=10)] == ["r-4", "r-5"]
    assert writes == [["r-2"], ["r-3", "r-1", "r-4", "r-5"], ["r-3"], ["r-1"], ["r-4", "r-5"]]
    _verified_and_closed(engine, factory, appender, 5)


def test_the_chain_on_the_server_database_takes_groups_whole_and_makes_them_durable(postgres_url):
    """Promise (PostgreSQL, pipelined): a group of several rows goes into the chain in one write, in
    order, the head at its last row; make_durable runs there; the events chain's lock is its own
    head's row, not the decisions'."""
    from sqlalchemy.exc import OperationalError as Busy

    engine, factory, client, appender = _chain(postgres_url)
    stored = appender.append([_row(client.id, n) for n in range(1, 4)])
    more = appender.append([_row(client.id, 4)])
    assert [row.seq for row in (*stored, *more)] == [1, 2, 3, 4] and len({row.created_at for row in stored}) == 1
    assert [row.prev_hash for row in stored[1:]] == [row.hash for row in stored[:-1]]
    with factory() as session:
        assert audit.head(session) == (4, more[-1].hash)
    audit.make_durable(engine)
    with factory() as session:
        audit.lock_events(session)
        with engine.connect() as other:
            other.execute(text("SET lock_timeout = '50ms'"))
            assert other.execute(text("SELECT id FROM audit_head WHERE id = 1 FOR UPDATE")).scalar_one() == 1
            other.rollback()  # which also undoes the SET: PostgreSQL rolls a session setting back with its transaction
            other.execute(text("SET lock_timeout = '50ms'"))
            with pytest.raises(Busy):
                other.execute(text("SELECT id FROM audit_head WHERE id = 2 FOR UPDATE"))
        session.rollback()
    _verified_and_closed(engine, factory, appender, 4)


def test_a_process_that_ends_without_closing_its_appender_is_not_held_open_by_its_writer(tmp_path):
    """Promise: a command that decides and exits without closing the appender (a crash, a script)
    still exits: the writer thread never keeps the process alive."""
    import subprocess
    import sys
    from pathlib import Path

    script = ("from tests.api.test_appender import _chain, _row\n"
              f"engine, factory, client, appender = _chain('sqlite:///{tmp_path}/chain.db')\n"
              "assert [row.seq for row in appender.append([_row(client.id, 1)])] == [1]\n")
    ended = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2],
                           capture_output=True, text=True, timeout=60)
    assert ended.returncode == 0, ended.stderr


def test_what_make_durable_returns_from_is_on_disk(database_url, tmp_path):
    """Promise: a checkpoint is signed only after make_durable, so that a power cut never leaves a
    signature vouching for decisions gone. SQLite (WAL): the decisions reach the database file itself,
    so a copy of that file alone, without its write-ahead log, holds them. PostgreSQL (commits made
    with synchronous_commit off): the write-ahead log is flushed at least as far as the last commit."""
    import shutil
    import sqlite3

    engine, factory, client, appender = _chain(database_url)
    stored = appender.append([_row(client.id, n) for n in range(1, 4)])
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        copy = tmp_path / "without-its-log.db"
        shutil.copyfile(path, copy)
        with sqlite3.connect(copy) as before:
            assert before.execute("SELECT count(*) FROM decisions").fetchone()[0] == 0  # still only in the log
        audit.make_durable(engine)
        shutil.copyfile(path, copy)
        with sqlite3.connect(copy) as after:
            assert after.execute("SELECT max(seq) FROM decisions").fetchone()[0] == stored[-1].seq
    else:
        with engine.connect() as connection:
            written = connection.execute(text("SELECT pg_current_wal_insert_lsn()")).scalar_one()
            audit.make_durable(engine)
            flushed = connection.execute(text("SELECT pg_current_wal_flush_lsn() >= CAST(:written AS pg_lsn)"),
                                         {"written": written}).scalar_one()
        assert flushed
    _verified_and_closed(engine, factory, appender, 3)
