"""The service under test, on SQLite and on the machine's PostgreSQL."""

from __future__ import annotations

import pytest

from tests.api.service_fixtures import champion_store, make_service, postgres_database  # noqa: F401


@pytest.fixture(scope="session")
def schema(tmp_path_factory):
    """An SQLite file of the repository's schema, built once by its migrations; a test copies it."""
    from api.db.engine import upgrade

    path = tmp_path_factory.mktemp("schema") / "xyd.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/xyd.db"
        return
    url, drop = postgres_database()
    yield url
    drop()


@pytest.fixture
def postgres_url():
    url, drop = postgres_database()
    yield url
    drop()


@pytest.fixture
def service(database_url, model_home, champion_store, tmp_path, monkeypatch):
    svc = make_service(database_url, model_home, tmp_path, monkeypatch, champion_store)
    with svc.client:
        yield svc
