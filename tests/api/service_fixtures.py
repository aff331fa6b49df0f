"""A running service for tests: a database (SQLite or the machine's PostgreSQL), a champion in a
private MLflow store, the model city's profile published, and clients of every role."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api.access import clients
from api.db.engine import make_engine, sessions, upgrade, writing
from api.main import create_app
from api.precredit import publishing, repository
from api.settings import Settings
from features.lake import Lake
from features.profile.build import build, unseen_runs
from features.profile.evidence import evidence_for
from features.profile.store import ProfileStore, registered_names
from features.registry import feature_names, feature_set_version
from features.uscc import random_codes

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
UNKNOWN = str(random_codes(np.random.default_rng(99), 1, entity_type="1")[0])
"""A valid code of no enterprise the platform knows."""
AS_OF = dt.date(2026, 6, 30)


def ensure_postgres() -> None:
    """Start the machine's PostgreSQL cluster if it is down (as .ci/run does)."""
    engine = create_engine(POSTGRES_ADMIN)
    try:
        with engine.connect():
            return
    except Exception:
        clusters = sorted(Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").exists() else []
        if not clusters:
            raise
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", clusters[0].name, "main", "start"], check=False)
        for _ in range(30):
            try:
                with engine.connect():
                    return
            except Exception:
                time.sleep(1)
        raise
    finally:
        engine.dispose()


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def started_server(config, seconds: float = 60):
    """A real uvicorn server for ``config`` (a ``uvicorn.Config``) running in a thread, once it
    listens: (server, thread); stop it with ``server.should_exit = True`` and ``thread.join()``."""
    import threading

    import uvicorn

    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + seconds
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the server did not start listening"
    return server, thread


ORIGIN = "xyd/00000000-0000-4000-8000-000000000000/decisions"
"""A chain's name for checkpoints signed without a database (a database names its own: decisions_origin)."""


def decisions_origin(engine) -> str:
    """The origin the decisions' checkpoints of the database behind ``engine`` carry."""
    from api.trust import audit

    with sessions(engine)() as session:
        return audit.origin(session, audit.DECISIONS)


def debian_program(program: str, package: str) -> str:
    """The path of a program from Debian's ``package``, installed with apt the first time if the
    machine lacks it (as .ci/run does before the tests)."""
    found = shutil.which(program)
    if not found and shutil.which("apt-get") and os.geteuid() == 0:
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=environment, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=False, env=environment,
                       capture_output=True)
        found = shutil.which(program)
    assert found, f"the tests need Debian's {package} (apt-get install {package})"
    return found


NGINX_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
"""The production front door's configuration (README, "Behind nginx")."""


@contextlib.contextmanager
def nginx_in_front(upstream_port: int, seconds: float = 10):
    """Debian's nginx started with deploy/nginx.conf as written but for its two ports (it listens on
    a free one and passes to 127.0.0.1:``upstream_port``), once it accepts connections. Yields a
    namespace: ``port``; after it is stopped, ``errors`` (its error log)."""
    import tempfile
    from types import SimpleNamespace

    nginx = debian_program("nginx", "nginx")
    written = NGINX_CONF.read_text("utf-8")
    assert written.count("server 127.0.0.1:8000;") == 1 and written.count("listen 8080 ") == 1
    port = free_port()
    # nginx's workers drop root for its unprivileged user, which must reach the prefix (pytest's own
    # folders are the owner's alone): a folder of its own under the system's temporary folder
    prefix = Path(tempfile.mkdtemp(prefix="xyd-nginx-"))
    prefix.chmod(0o755)
    config = prefix / "nginx.conf"
    config.write_text(written.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
                      .replace("listen 8080 ", f"listen 127.0.0.1:{port} "), "utf-8")
    process = subprocess.Popen([nginx, "-p", f"{prefix}/", "-c", str(config), "-g", "daemon off;"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    front = SimpleNamespace(port=port, errors="")
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, f"nginx did not start listening within {seconds} s"
                time.sleep(0.05)
        yield front
    finally:
        process.terminate()
        process.wait(timeout=30)
        log = prefix / "error.log"
        front.errors = log.read_text(errors="replace") if log.exists() else ""
        shutil.rmtree(prefix, ignore_errors=True)


def chromium(driver: bool = False) -> str:
    """Debian's chromium (or, with ``driver``, its ChromeDriver)."""
    return debian_program(*(("chromedriver", "chromium-driver") if driver else ("chromium", "chromium")))


class Browser:
    """Debian's chromium driven through ChromeDriver's WebDriver protocol (plain HTTP, no client
    library): open a page, click a link, read what a person sees. Use as a context manager."""

    def __init__(self, tmp_path: Path, offline: bool = False):
        import httpx

        from tests.api.test_service import CHROMIUM_FLAGS

        binary, driver = chromium(), chromium(driver=True)
        # offline: no host but this one resolves, as on a network that reaches nothing else
        cut = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"] if offline else []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.process = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        options = {"binary": binary, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'webdriver-profile'}",
                                              "--window-size=1280,1000", *cut]}
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = self.http.post("/session", json={"capabilities": {"alwaysMatch": {
                    "browserName": "chrome", "goog:chromeOptions": options}}})
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.session = f"/session/{answer.json()['value']['sessionId']}"

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.http.delete(self.session)
        finally:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.http.close()

    def _call(self, path: str, body: dict):
        answer = self.http.post(self.session + path, json=body).json()["value"]
        if isinstance(answer, dict) and "error" in answer:
            raise RuntimeError(f"WebDriver {path}: {answer['error']}: {answer.get('message')}")
        return answer

    def open(self, url: str) -> None:
        self._call("/url", {"url": url})

    def click(self, selector: str) -> None:
        """Click the first element ``selector`` finds, as a person would."""
        element = self._call("/element", {"using": "css selector", "value": selector})
        self._call(f"/element/{next(iter(element.values()))}/click", {})

    def run(self, script: str, *args):
        """``script`` (a function body) run in the page; what it returns."""
        return self._call("/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, selector: str, seconds: float = 30) -> list[str]:
        """The visible text of ``selector`` once some element it finds is shown (a page that builds
        itself with its own script), or an assertion naming what never appeared."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            shown = self.visible_text(selector)
            if shown:
                return shown
            time.sleep(0.2)
        raise AssertionError(f"nothing matching {selector!r} appeared within {seconds} s")

    def visible_text(self, selector: str) -> list[str]:
        """The text a person sees in each element ``selector`` finds that is shown at all."""
        return self.run("return [...document.querySelectorAll(arguments[0])]"
                        ".filter(e => e.getClientRects().length).map(e => (e.innerText ?? e.textContent).trim())", selector)


def postgres_database() -> tuple[str, callable]:
    """A fresh database on the machine's PostgreSQL, and how to drop it."""
    ensure_postgres()
    name = f"xyd_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        terminate_connections(name)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", drop


def terminate_backend(pid: int) -> None:
    """End one PostgreSQL server process, as a restart or an idle timeout on the server's side would."""
    _terminate("pid = :value", pid)


def terminate_connections(database: str) -> None:
    """End every PostgreSQL server process connected to ``database``, as a server restart would."""
    _terminate("datname = :value", database)


def _terminate(which: str, value) -> None:
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {which}"),
                           {"value": value})
    admin.dispose()


@dataclass
class Service:
    """Everything a service test needs: the HTTP client, keys by role, authorisations."""

    client: TestClient
    url: str
    keys: dict[str, str]
    ids: dict[str, int]
    codes: list[str]
    authorizations: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def ask(self, role: str = "bank", code: str | None = None, authorization: str = "valid", **extra):
        body = {"uscc": code or self.codes[0], "authorization_id": self.authorizations.get(authorization, authorization),
                **extra}
        return self.client.post("/v1/pre-credit", json=body, headers=self.headers(role))


def prepare_database(url: str, home) -> tuple[dict, dict, list[str], dict]:
    """Migrate, publish the profile, add clients and authorisations of every kind."""
    upgrade(url)
    factory = sessions(make_engine(url))
    store = ProfileStore(home)  # built once per home: the service tests of a session share the model city's
    reusable = store.exists(AS_OF) and store.info(AS_OF).feature_set_version == feature_set_version() \
        and not unseen_runs(Lake(home), store.info(AS_OF))
    profile = store.read(AS_OF) if reusable else build(home, AS_OF).profile
    codes = list(profile["uscc"].iloc[:40])
    listed = profile.loc[profile["dishonest_listed_now"] == 1, "uscc"]
    penalised = profile.loc[(profile["penalty_serious_36m"] >= 1) & (profile["dishonest_listed_now"] == 0), "uscc"]
    thin = profile.loc[(profile["has_tax_filings"] == 0) & (profile["dishonest_listed_now"] == 0), "uscc"].head(3)
    keys, ids, authorizations = {}, {}, {}
    today = dt.date.today()
    evidence = evidence_for(Lake(home), AS_OF, profile)
    with writing(factory) as session:
        publishing.publish_profiles(session, profile, feature_names(), feature_set_version(), AS_OF,
                                    registered_names(home, AS_OF), evidence=evidence,
                                    deliveries=Lake(home).deliveries(AS_OF))
        for role, name in (("bank", "宜昌银行"), ("other_bank", "三峡银行"), ("regulator", "人行宜昌市分行"),
                           ("operator", "平台运营"), ("disabled", "停用银行")):
            client, key = clients.add_client(session, name, "bank" if role in ("other_bank", "disabled") else role)
            keys[role], ids[role] = key, client.id
        clients.set_disabled(session, ids["disabled"], True)
        digest = hashlib.sha256(b"signed letter").hexdigest()

        def grant(label, code, bank, start, until):
            record = repository.add_authorization(session, code, ids[bank], "信易贷预授信", "纳税,水电气", start, until,
                                                  "2024", digest)
            authorizations[label] = record.id

        year = dt.timedelta(days=365)
        grant("valid", codes[0], "bank", today - year, today + year)
        for i in range(1, 20):
            grant(f"valid{i}", codes[i], "bank", today - year, today + year)
        grant("expired", codes[0], "bank", today - 2 * year, today - dt.timedelta(days=1))
        grant("future", codes[0], "bank", today + dt.timedelta(days=3), today + year)
        grant("revoked", codes[0], "bank", today - year, today + year)
        grant("other_bank", codes[0], "other_bank", today - year, today + year)
        grant("other_enterprise", codes[1], "bank", today - year, today + year)
        grant("unknown_enterprise", UNKNOWN, "bank", today - year, today + year)
        # enterprises a knock-out hits, for the evidence on their pages
        for label, found in (("listed", listed), ("penalised", penalised)):
            if len(found):
                grant(label, str(found.iloc[0]), "bank", today - year, today + year)
        for k, code in enumerate(thin):  # files the tax bureau's records are missing from
            grant(f"thin{k}", str(code), "bank", today - year, today + year)
        repository.revoke_authorization(session, authorizations["revoked"])
    return keys, ids, codes, authorizations


def past_city_policy(folder: Path):
    """The packaged policy with its freshness limit widened: the model city's profiles are as of
    a fixed past day (AS_OF), which the packaged limit would refuse on any later day. The limit
    itself is tested with the packaged policy (test_service.py)."""
    from models.policy import DEFAULT_POLICY, Policy

    text = DEFAULT_POLICY.read_text("utf-8")
    assert "max_profile_age_days = " in text
    path = Path(folder) / "policy-for-a-past-city.toml"
    text = text.replace("max_profile_age_days = ", "max_profile_age_days = 36500  # was ")
    path.write_text(re.sub(r'^version = "([^"]+)"', r'version = "\1+past-city"', text, count=1, flags=re.M), "utf-8")
    return Policy.load(path)


@pytest.fixture(scope="session")
def champion_store(model_home, tmp_path_factory):
    """A private MLflow store whose champion was trained on the model city."""
    from models.run import promote, train_challenger
    from tests.conftest import MODEL_SPLIT

    folder = tmp_path_factory.mktemp("service-mlflow")
    if not ProfileStore(model_home).exists(AS_OF):  # the champion measures fair lending on the whole stored list
        build(model_home, AS_OF)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
        train_challenger(model_home, policy=past_city_policy(folder), split_months=MODEL_SPLIT)
        promote(model_home, force=True, reason="service tests")
        yield f"sqlite:///{folder}/mlflow.db"


def make_service(url: str, home, tmp_path, monkeypatch, store: str, alias: str = "champion",
                 home_is_the_services: bool = False, **settings) -> Service:
    """The service on ``url`` with its state under ``tmp_path/service-home``, or under ``home``
    itself (the lake and profiles it was published from) with ``home_is_the_services``, as objection
    settlements need; ``settings`` override the test defaults."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    keys, ids, codes, authorizations = prepare_database(url, home)
    app = create_app(Settings(**{"home": home if home_is_the_services else tmp_path / "service-home", "database_url": url, "model_check_seconds": 0,
                                 "model_alias": alias, "max_body_bytes": 200_000, **settings}))
    # a caller on the loopback, as a bank's gateway on the same host would be (the log keeps valid IPs only)
    return Service(TestClient(app, client=("127.0.0.1", 50000)), url, keys, ids, codes, authorizations)


def store_tables(database) -> set[str]:
    """An MLflow SQLite store's tables, after checking that no migration was left half done."""
    import sqlite3

    with sqlite3.connect(database) as store:
        tables = {name for (name,) in store.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        versions = store.execute("SELECT version_num FROM alembic_version").fetchall()
    assert len(versions) == 1, f"{database}: the store's schema version is {versions}"
    assert not [t for t in tables if t.startswith("_alembic_tmp")], f"{database}: a migration left {tables}"
    return tables


def start_in_an_empty_folder(folder, workers: int) -> set[str]:
    """Start ``xyd serve --workers N`` in ``folder`` (made here, empty; no XYD_* or MLflow variable,
    so the defaults ./var and ./mlruns), wait until every worker has looked for its model and one
    answers /readyz (503: no model), stop it; assert no traceback and no "already exists" in its log.
    Returns the MLflow store's tables. Used by tests/api/test_service_processes.py and
    bench/startup_bench.py."""
    import sys

    import httpx

    folder.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XYD_", "MLFLOW_"))}
    env["XYD_MODEL_CHECK_SECONDS"] = "0"
    port, said = free_port(), folder / "stderr.txt"
    with said.open("wb") as errors:
        server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers",
                                   str(workers)], cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        deadline = time.monotonic() + 120
        # each worker says, in one line, that it has no model: then it has opened the store
        while said.read_text("utf-8", "replace").count("no model loaded") < workers:
            assert server.poll() is None and time.monotonic() < deadline, said.read_text("utf-8", "replace")
            time.sleep(0.2)
        while True:  # a worker listens just after its start-up has looked for the model
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, said.read_text("utf-8", "replace")
                time.sleep(0.1)
        assert ready.status_code == 503  # up, with no model to decide with
    finally:
        server.terminate()
        server.wait(timeout=60)
    log = said.read_text("utf-8", "replace")
    assert "Traceback" not in log and "already exists" not in log, log[-3000:]
    assert (folder / "var").is_dir()
    return store_tables(folder / "mlruns" / "mlflow.db")
