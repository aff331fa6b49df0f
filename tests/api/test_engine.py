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
