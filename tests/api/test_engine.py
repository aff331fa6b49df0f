"""Pooled connections on PostgreSQL: checked only after sitting idle, and replaced when dropped."""

from __future__ import annotations

from api.db import engine as engine_module
from api.db.engine import make_engine, reading
from tests.api.service_fixtures import postgres_database, terminate_backend


def _backend(engine) -> int:
    with reading(engine) as connection:
        return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(monkeypatch):
    url, drop = postgres_database()
    engine = make_engine(url)
    try:
        first = _backend(engine)
        assert _backend(engine) == first, "a connection just returned is reused without a ping"
        terminate_backend(first)  # a restart or an idle timeout on the server's side
        monkeypatch.setattr(engine_module, "IDLE_BEFORE_PING_SECONDS", 0.0)
        replaced = _backend(engine)
        assert replaced != first
        assert _backend(engine) == replaced
    finally:
        engine.dispose()
        drop()


def test_reads_on_postgresql_leave_no_transaction_open():
    url, drop = postgres_database()
    engine = make_engine(url)
    try:
        with reading(engine) as connection:
            connection.exec_driver_sql("SELECT 1")
            assert connection.connection.driver_connection.info.transaction_status.name == "IDLE"
    finally:
        engine.dispose()
        drop()


def test_a_new_sqlite_database_is_readable_by_its_owner_alone(tmp_path):
    """It holds key hashes, authorisations and every decision: 0600, its WAL file too, whatever the umask."""
    import os
    import stat

    from api.access import clients
    from api.db.engine import make_engine, sessions, upgrade, writing

    url = f"sqlite:///{tmp_path}/state/xyd.db"
    previous = os.umask(0o022)
    try:
        upgrade(url)
        engine = make_engine(url)
        with writing(sessions(engine)) as session:
            clients.add_client(session, "a bank", "bank")
        for name in ("xyd.db", "xyd.db-wal"):
            assert stat.S_IMODE((tmp_path / "state" / name).stat().st_mode) == 0o600, name
        engine.dispose()
    finally:
        os.umask(previous)
