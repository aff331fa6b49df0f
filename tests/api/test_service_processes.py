"""The real server (``xyd serve --workers 2``) under concurrent requests from several client
processes, on SQLite and PostgreSQL: every answer right, and the audit chain one unbroken line."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from api.db.engine import make_engine, sessions
from api.trust import audit
from api.trust.signing import read_checkpoints, read_keyring
from tests.api.service_fixtures import free_port, prepare_database, start_in_an_empty_folder

pytestmark = pytest.mark.long(minutes=1.5)  # measured on 2 cores: its file goes to a worker first (tests/conftest.py)

CLIENT_PROCESSES, REQUESTS_EACH = 4, 15


def start_server(url: str, home, tmp_path, store: str, **environment: str) -> tuple[subprocess.Popen, str]:
    """``xyd serve --workers 2`` on ``url``, its state under ``tmp_path/served`` (``environment``
    adds settings), once it is ready."""
    port = free_port()
    env = {**os.environ, "XYD_HOME": str(tmp_path / "served"), "XYD_DATABASE_URL": url, "MLFLOW_TRACKING_URI": store,
           "XYD_MODEL_CHECK_SECONDS": "0", **environment}
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise AssertionError(f"the server died: {server.stderr.read().decode()[-2000:]}")
        time.sleep(0.3)
    server.kill()
    raise AssertionError("the server did not become ready in 90 s")


def _client(args) -> list[tuple[int, str, str]]:
    base, key, questions = args
    out = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for code, authorization in questions:
            response = client.post("/v1/pre-credit", json={"uscc": code, "authorization_id": authorization})
            out.append((response.status_code, response.headers.get("x-model-version", ""),
                        response.json().get("uscc", response.text)))
    return out


def test_concurrent_clients_in_several_processes_keep_the_chain_whole(database_url, model_home, champion_store,
                                                                     tmp_path):
    keys, ids, codes, authorizations = prepare_database(database_url, model_home)
    server, base = start_server(database_url, model_home, tmp_path, champion_store)
    try:
        questions = [(codes[i % 19 + 1], authorizations[f"valid{i % 19 + 1}"]) for i in range(REQUESTS_EACH)]
        with multiprocessing.get_context("spawn").Pool(CLIENT_PROCESSES) as pool:
            answers = [a for batch in pool.map(_client, [(base, keys["bank"], questions)] * CLIENT_PROCESSES)
                       for a in batch]
        assert len(answers) == CLIENT_PROCESSES * REQUESTS_EACH
        assert all(status == 200 for status, _, _ in answers), [a for a in answers if a[0] != 200][:3]
        assert len({version for _, version, _ in answers}) == 1
        with sessions(make_engine(database_url))() as session:
            result = audit.verify(session)
        assert result.ok and result.rows == CLIENT_PROCESSES * REQUESTS_EACH
        metrics = httpx.get(f"{base}/metrics").text
        assert "xyd_decisions_total" in metrics
        _limits_hold(base, keys["bank"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    # both workers signed checkpoints into the one file; on stopping, each signed its newest state
    served = tmp_path / "served"
    signed = read_checkpoints(served / "audit" / "checkpoints.jsonl", read_keyring(served / "keys" / "public-keys.json"))
    assert max(c.size for c in signed) == CLIENT_PROCESSES * REQUESTS_EACH
    with sessions(make_engine(database_url))() as session:
        held = audit.verify(session, checkpoints=signed)
    assert held.ok and held.covered == CLIENT_PROCESSES * REQUESTS_EACH
    # one access-log line per request, from both workers into one file
    lines = [json.loads(line) for line in (served / "logs" / "access.jsonl").read_text().splitlines()]
    assert sum(line["route"] == "/v1/pre-credit" and line["status"] == 200 for line in lines) == len(answers)
    assert any(line["status"] == 431 for line in lines)


def _limits_hold(base: str, key: str) -> None:
    """The real server (uvicorn's parser, not the test client) caps a request's head and a chunked body."""
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1]))) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: ")
        try:
            for _ in range(200):  # 2 MB of one header; the server answers long before
                connection.sendall(b"a" * 10_000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431") and b"HEADERS_TOO_LARGE" in answer
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1]))) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400") and json.loads(answer.split(b"\r\n\r\n", 1)[1])["code"] == "BAD_REQUEST"

    def chunks():
        for _ in range(120):
            yield b" " * 10_000

    response = httpx.post(f"{base}/v1/pre-credit", content=chunks(), timeout=30,
                          headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["code"] == "BODY_TOO_LARGE"
    assert httpx.get(f"{base}/healthz", headers={"X-Filler": "a" * 20_000}).status_code == 200


@pytest.mark.parametrize("workers, starts", [(2, 2), (4, 1)])
def test_serve_started_in_an_empty_folder_never_races_and_leaves_a_sound_store(tmp_path, workers, starts):
    """The first hour: ``xyd serve --workers N`` in a folder where nothing exists yet (no MLflow
    store, no database, no XYD_HOME: the defaults ./mlruns and ./var). The store and the database
    are made once, before the workers start: no traceback and no "already exists", every worker up
    (not ready: there is no model yet), the same whole store each time, and MLflow opens it cleanly.
    A worker reads from the store itself that there is no champion, without loading MLflow or the
    model stack. (``bench/startup_bench.py`` starts it ten times with 2 and with 4 workers; ten of each
    here took 238 s of one test worker, 2026-12-08, more than the suite's time allows.)"""
    tables = None
    for attempt in range(starts):
        made = start_in_an_empty_folder(tmp_path / str(attempt), workers)
        assert tables is None or made == tables, f"start {attempt + 1} made another store: {made ^ tables}"
        tables = made
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XYD_", "MLFLOW_"))}
    probe = ("import sys\nfrom api.model_holder import ModelHolder\nheld = ModelHolder('champion', 'cache')\n"
             "print(held.reload(), held.problem, sorted({'mlflow', 'lightgbm', 'models.bundle'} & set(sys.modules)))\n"
             "from models.tracking import client\nprint(len(client().search_registered_models()))")
    check = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path / str(starts - 1), env=env,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-2000:]
    worker_view, models = check.stdout.strip().splitlines()
    assert worker_view == ("(None, None) no xyd-pre-credit model 'champion' in sqlite:///mlruns/mlflow.db; train one "
                           "with `xyd train` and promote it with `xyd promote` []")
    assert models == "0"  # and MLflow itself opens the store the service made
