"""Engines and sessions for SQLite (the embedded default) and PostgreSQL, and the migrations.

SQLite runs in WAL mode so readers never wait for the writer; a session that appends to the
audit chain starts with ``BEGIN IMMEDIATE`` (:func:`writing`) so that appends from several
processes queue instead of failing. PostgreSQL serialises them with a row lock on the chain head.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def _private_sqlite_file(url: str) -> None:
    """Create a SQLite database file readable by its owner alone (0600) before SQLite does with the
    process's umask (often world-readable): it holds API key hashes, authorisations and every
    decision. SQLite gives its -wal and -shm files the database file's permissions."""
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return
    path = Path(url.split("sqlite:///", 1)[1].split("?", 1)[0])
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings each database needs (a new SQLite file is created
    private to its owner)."""
    _private_sqlite_file(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60}, pool_size=8,
                               max_overflow=8)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
            cursor = dbapi_connection.cursor()
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=60000"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection):
            mode = connection.get_execution_options().get("xyd_begin", "DEFERRED")
            connection.exec_driver_sql(f"BEGIN {mode}")

        return engine
    engine = create_engine(url, pool_size=8, max_overflow=8)
    _ping_when_idle(engine)
    return engine


IDLE_BEFORE_PING_SECONDS = 30.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle for a while: a ping on every
    checkout (``pool_pre_ping``) was a round trip on every request. A connection the server
    dropped is replaced, and a failure that still reaches a busy connection invalidates it."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record):
        record.info["returned"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _taken(dbapi_connection, record, _proxy):
        if time.monotonic() - record.info.get("returned", time.monotonic()) < IDLE_BEFORE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(f"the database dropped an idle connection: {error}") from error


def reading(engine: Engine):
    """A connection for a few reads: on PostgreSQL without a transaction around them (no
    BEGIN and ROLLBACK round trips); SQLite's transactions cost no round trips."""
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        try:
            connection.execution_options(isolation_level="AUTOCOMMIT")
        except BaseException:
            connection.close()
            raise
    return connection


def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class _WriterLock:
    """A thread lock and an open lock file; the file is reopened in a new process, since a
    forked child sharing its parent's open file would share its flock too."""

    def __init__(self, path: str):
        self.path, self.thread_lock, self.pid, self.handle = path, threading.Lock(), None, None

    def file(self):
        if self.pid != os.getpid():
            self.handle, self.pid = open(self.path, "a"), os.getpid()
        return self.handle


_WRITER_LOCKS: dict[str, _WriterLock] = {}


@contextmanager
def _sqlite_writer(url: str):
    """One writer at a time across threads and processes, queued by the kernel (flock) rather
    than by SQLite's busy handler, whose sleeps of up to 100 ms made the tail latency."""
    path = url.split("sqlite:///", 1)[1] + ".write-lock"
    lock = _WRITER_LOCKS.get(path) or _WRITER_LOCKS.setdefault(path, _WriterLock(path))
    with lock.thread_lock:
        handle = lock.file()
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def write_transaction(engine: Engine):
    """A connection whose transaction holds the write lock from its first statement: SQLite's
    ``BEGIN IMMEDIATE`` behind a process lock; on PostgreSQL the chain head's row lock
    (:func:`api.trust.audit.append` takes it). Commits when the block ends, rolls back if it raises.
    On PostgreSQL :func:`api.trust.audit.append` commits itself, so it comes last in the block."""
    url = str(engine.url)
    guard = _sqlite_writer(url) if url.startswith("sqlite:///") else nullcontext()
    with guard, engine.connect() as connection:
        connection.execution_options(xyd_begin="IMMEDIATE")
        with connection.begin():
            yield connection


@contextmanager
def writing(factory: sessionmaker[Session]):
    """An ORM session inside :func:`write_transaction`, for the command line's writes."""
    with write_transaction(factory.kw["bind"]) as connection, factory(bind=connection) as session:
        yield session
        session.commit()  # flushes; the write transaction itself commits as the block closes


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (Alembic ``upgrade head``)."""
    _private_sqlite_file(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    command.upgrade(config, "head")
