"""``xyd train``, ``xyd promote``, ``xyd score`` and ``xyd monitor`` as an analyst runs them: tables,
files, exit codes."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner

from api.cli import main
from tests.conftest import MODEL_SPLIT

pytestmark = pytest.mark.long(minutes=1.5)  # measured on 2 cores: its file goes to a worker first (tests/conftest.py)


@pytest.fixture
def home(model_home, tmp_path, monkeypatch):
    copy = tmp_path / "home"
    shutil.copytree(model_home, copy, ignore=shutil.ignore_patterns("models", "pre-credit"))
    monkeypatch.setenv("XYD_HOME", str(copy))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow/mlflow.db")
    return copy


def run(*args: str):
    return CliRunner().invoke(main, list(args))


SPLIT = [f"--{k.replace('_', '-')}={v}" for k, v in MODEL_SPLIT.items()]


def test_a_serving_worker_reads_which_version_an_alias_names_from_the_store_as_mlflow_does(tmp_path, monkeypatch):
    """What a serving worker asks at start and at every check (api.model_holder), read from the SQLite
    store without MLflow; where it cannot tell, MLflow is asked (and makes a missing store)."""
    from models import registry_store, tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert registry_store.version_from_store("champion") == registry_store.CANNOT_TELL  # no store yet
    mlflow_client = tracking.client()
    mlflow_client.search_registered_models()  # MLflow makes the store
    assert registry_store.version_from_store("champion") is None
    with pytest.raises(tracking.ModelNotFound) as missing:
        tracking.version_for("champion")
    assert str(missing.value) == registry_store.no_model("champion", registry_store.store_uri())
    mlflow_client.create_registered_model(tracking.MODEL_NAME)
    for _ in range(2):
        mlflow_client.create_model_version(tracking.MODEL_NAME, tmp_path.as_uri())
    mlflow_client.set_registered_model_alias(tracking.MODEL_NAME, "champion", "2")
    assert registry_store.version_from_store("champion") == tracking.version_for("champion") == "2"
    mlflow_client.set_registered_model_alias(tracking.MODEL_NAME, "champion", "1")  # moved: read again, not kept
    assert registry_store.version_from_store("champion") == "1"
    assert registry_store.version_from_store("challenger") is None
    assert registry_store.version_from_store("2") == registry_store.CANNOT_TELL  # a version, not an alias: MLflow's
    assert registry_store.version_from_store("champion", "postgresql://127.0.0.1/mlflow") == registry_store.CANNOT_TELL
    other = tmp_path / "not-mlflow.db"
    sqlite3.connect(other).execute("CREATE TABLE experiments (id INTEGER)").connection.commit()
    assert registry_store.version_from_store("champion", f"sqlite:///{other}") == registry_store.CANNOT_TELL


def test_train_promote_score_from_the_command_line(home):
    result = run("train", *SPLIT)
    assert result.exit_code == 0, result.output
    assert "challenger 1" in result.output and "out of time: auc" in result.output and "oot window" in result.output
    result = run("promote", "--dry-run")
    assert "dry run: the gate" in result.output and "nothing was changed" in result.output
    refused = "dry run: the gate refuses" in result.output
    assert result.exit_code == (1 if refused else 0)  # a script reads the verdict from the exit status
    assert run("score", "--as-of", "2026-06-30").exit_code == 1  # still no champion
    result = run("promote")
    assert result.exit_code in (0, 1), result.output
    assert "promotion gate" in result.output and "ECE out of time" in result.output
    if result.exit_code == 1:
        assert "the gate does not hold" in result.output
        result = run("promote", "--force", "--reason", "pilot bank accepted the model")
        assert result.exit_code == 0 and "forced: pilot bank accepted the model" in result.output
    assert "is now the champion" in result.output
    assert run("features", "build", "--as-of", "2026-06-30").exit_code == 0
    result = run("score", "--as-of", "2026-06-30")
    assert result.exit_code == 0, result.output
    assert "pre-credit list as of 2026-06-30 · model 1" in result.output
    assert (home / "pre-credit" / "pre_credit_list_2026-06-30.csv").exists()
    scored = json.loads(run("score", "--as-of", "2026-06-30", "--json").output)
    assert scored["model_version"] == "1" and scored["csv"].endswith("pre_credit_list_2026-06-30.csv")
    assert sum(g["enterprises"] for g in scored["by_grade"]) == scored["enterprises"] > 0
    assert {g["grade"] for g in scored["by_grade"]} <= set("ABCDE")

    result = run("train", "--explore", *SPLIT)
    assert result.exit_code == 0 and "explored: not registered" in result.output
    result = run("train", *SPLIT)  # the same lake and settings: the same bundle, registered once
    assert result.exit_code == 0 and "challenger 1 (this bundle was registered before" in result.output
    result = run("promote")
    assert result.exit_code == 1 and "already the champion" in result.output
    # said from the SQLite store itself, before MLflow or the model stack loads (a refusal that took
    # 13 s and 660 MB, then 4 s with MLflow's import alone)
    probe = ("import sys\nfrom api.cli import main\ntry:\n    main(['promote', '--dry-run'])\nexcept SystemExit as e:\n"
             "    print(e.code, sorted({'mlflow', 'lightgbm', 'shap', 'optbinning', 'models.bundle'} & set(sys.modules)))")
    said = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert said.stdout.split()[0] == "1" and said.stdout.strip().endswith("[]"), (said.stdout, said.stderr)
    assert "already the champion" in said.stderr
    from models import registry_store, tracking

    assert registry_store.refusal_from_store() == tracking.already_champion() == ("version 1 is already the champion", "1")
    # another version holding the champion's bundle, named challenger: read from the store or through
    # MLflow, the same refusal
    mlflow_client = tracking.client()
    first = mlflow_client.get_model_version(tracking.MODEL_NAME, "1")
    again = mlflow_client.create_model_version(tracking.MODEL_NAME, first.source, run_id=first.run_id,
                                               tags={"bundle_id": first.tags["bundle_id"]})
    mlflow_client.set_registered_model_alias(tracking.MODEL_NAME, tracking.CHALLENGER, again.version)
    light, through_mlflow = registry_store.refusal_from_store(), tracking.already_champion()
    assert light == through_mlflow and light[1] == "1" and f"version {again.version}: the challenger is identical" in light[0]
    result = run("promote")
    assert result.exit_code == 1 and "identical to the champion" in result.output
    # a store it cannot read safely is left to MLflow
    assert registry_store.refusal_from_store("http://127.0.0.1:5000") == registry_store.CANNOT_TELL
    unknown = home / "not-mlflow.db"
    sqlite3.connect(unknown).execute("CREATE TABLE registered_model_aliases (alias TEXT)").connection.commit()
    assert registry_store.refusal_from_store(f"sqlite:///{unknown}") == registry_store.CANNOT_TELL

    result = run("monitor", "--as-of", "2026-06-30", "--fail-on", "watch")
    assert result.exit_code == 0, result.output  # nothing changed in the city: stable
    assert "verdict: stable" in result.output and "recent applicants" in result.output and "PSI" in result.output
    result = run("monitor", "--as-of", "2026-06-30", "--json", "--fail-on", "watch")
    measured = json.loads(result.stdout)  # one document, for a scheduled job's log or a dashboard
    assert result.exit_code == 0 and measured["verdict"] == "stable" and measured["rules"][0].startswith("no rule fired")
    assert measured["model_version"] == "1" and set(measured["populations"]) >= {"recent applicants"}
    assert measured["applicants"][0]["variable"] == "score" and measured["applicants"][0]["measure"] == "PSI"
    assert {"missing", "realised", "silent", "population"} <= set(measured)


def test_refusals_exit_one_with_a_reason(home):
    result = run("score", "--as-of", "2026-06-30")
    assert result.exit_code == 1 and "train one with `xyd train`" in result.output
    result = run("promote")
    assert result.exit_code == 1 and "no xyd-pre-credit model 'challenger'" in result.output
    result = run("train", "--oot-months", "40")
    assert result.exit_code == 1 and "take 40 grant months, but 11 months" in " ".join(result.output.split())
    assert run("train", *SPLIT).exit_code == 0
    result = run("promote", "--force")
    assert result.exit_code == 2 and "--force needs --reason" in result.output
    result = run("score", "--as-of", "2026-01-31", "--model", "challenger")
    assert result.exit_code == 1 and "no profile as of 2026-01-31" in result.output
    result = run("promote", "--dry-run", "--force", "--reason", "x")
    assert result.exit_code == 2 and "cannot be forced" in result.output
    result = run("monitor", "--as-of", "2026-06-30")
    assert result.exit_code == 1 and "no xyd-pre-credit model 'champion'" in result.output
