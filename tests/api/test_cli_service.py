"""``xyd clients``, ``xyd authorizations``, ``xyd features publish`` and ``xyd audit verify`` as an
operator runs them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re

from click.testing import CliRunner
from sqlalchemy import text

from api.cli import main
from api.db.engine import make_engine
from api.settings import settings
from features.lake import Lake
from features.profile.build import unseen_runs
from features.profile.store import ProfileStore


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_an_operator_sets_up_a_bank_and_verifies_the_chain(model_home, champion_store, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/xyd.db"
    monkeypatch.setenv("XYD_DATABASE_URL", url)
    monkeypatch.setenv("XYD_HOME", str(model_home))
    settings.cache_clear()
    try:
        added = run("clients", "add", "--role", "bank", "--name", "宜昌银行")
        assert added.exit_code == 0 and "shown once" in added.output
        key = re.search(r"(xyd_ban_\S+)", added.output).group(1)
        with make_engine(url).connect() as connection:
            stored = connection.execute(text("SELECT key_hash FROM api_clients")).scalar_one()
        assert key not in stored and len(stored) == 64
        assert run("clients", "add", "--role", "king", "--name", "x").exit_code == 2
        assert "宜昌银行" in run("clients", "list").output
        listed = json.loads(run("clients", "list", "--json").output)
        assert [(c["id"], c["role"], c["name"], c["disabled"]) for c in listed] == [(1, "bank", "宜昌银行", False)]
        assert key.startswith(listed[0]["key_prefix"]) and key not in json.dumps(listed)
        assert run("features", "build", "--as-of", "2026-06-30").exit_code == 0
        published = run("features", "publish", "--as-of", "2026-06-30")
        assert published.exit_code == 0 and "published" in published.output
        # a profile older than the lake is not published: its evidence would be read from newer data
        info = ProfileStore(model_home).info(dt.date(2026, 6, 30))
        assert unseen_runs(Lake(model_home), info) == []
        assert unseen_runs(Lake(model_home), dataclasses.replace(info, lake_runs=[])) == \
            [r["run_id"] for r in Lake(model_home).manifest()["runs"]]
        monkeypatch.setattr("features.profile.build.unseen_runs", lambda lake, info: ["run-after-the-build"])
        refused = run("features", "publish", "--as-of", "2026-06-30")
        assert refused.exit_code == 1 and "run-after-the-build" in refused.output and "rebuild" in refused.output
        monkeypatch.undo()
        monkeypatch.setenv("XYD_DATABASE_URL", url)
        monkeypatch.setenv("XYD_HOME", str(model_home))
        code = ProfileStore(model_home).read(dt.date(2026, 6, 30))["uscc"].iloc[0]
        granted = run("authorizations", "add", "--uscc", code, "--bank-id", "1")
        assert granted.exit_code == 0, granted.output
        authorization = re.search(r"authorisation (\S+):", granted.output).group(1)
        assert run("authorizations", "add", "--uscc", "bad", "--bank-id", "1").exit_code == 1
        assert "1 in all" in run("authorizations", "list", "--uscc", code).output
        # piped (no terminal), a table is as wide as its rows: the id and the code are never split
        table = run("authorizations", "list", "--uscc", code).output
        assert authorization in table and code in table and any(authorization in line and code in line
                                                                for line in table.splitlines())
        document = json.loads(run("authorizations", "list", "--uscc", code, "--json").output)
        assert document["count"] == 1 and [(a["id"], a["uscc"], a["bank_id"], a["revoked_at"])
                                           for a in document["items"]] == [(authorization, code, 1, None)]
        assert run("authorizations", "revoke", authorization).exit_code == 0
        assert run("authorizations", "revoke", "nope").exit_code == 1
        verified = run("audit", "verify")
        assert verified.exit_code == 0 and "intact: 0 decisions" in verified.output
        assert run("clients", "disable", "1").exit_code == 0 and run("clients", "disable", "99").exit_code == 1
    finally:
        settings.cache_clear()


def _audit_verify(url: str):
    """`xyd audit verify` run against the database at ``url``."""
    settings.cache_clear()
    os.environ["XYD_DATABASE_URL"] = url
    try:
        return run("audit", "verify")
    finally:
        del os.environ["XYD_DATABASE_URL"]
        settings.cache_clear()


def test_audit_verify_names_the_first_broken_row(service):
    for i in range(3):
        assert service.ask(code=service.codes[i + 1], authorization=f"valid{i + 1}").status_code == 200
    with make_engine(service.url).begin() as connection:
        connection.execute(text("UPDATE decisions SET limit_yuan = limit_yuan + 1 WHERE seq = 2"))
    result = _audit_verify(service.url)
    assert result.exit_code == 1 and "BROKEN at row 2" in result.output
    # the newest decision deleted: the head names a row no request can be named for, and no "None" is printed
    with make_engine(service.url).begin() as connection:
        connection.execute(text("UPDATE decisions SET limit_yuan = limit_yuan - 1 WHERE seq = 2"))
        connection.execute(text("DELETE FROM decisions WHERE seq = (SELECT MAX(seq) FROM decisions)"))
    result = _audit_verify(service.url)
    assert result.exit_code == 1 and "BROKEN at row" in result.output and "None" not in result.output
