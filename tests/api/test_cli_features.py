"""``xyd features`` as an analyst or operator uses it: output, files written, exit codes."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from api.cli import main
from features.profile.store import ProfileStore
from features.registry import FEATURES, feature_set_version


@pytest.fixture
def home(profile_home, tmp_path, monkeypatch):
    copy = tmp_path / "home"
    shutil.copytree(profile_home, copy)
    monkeypatch.setenv("XYD_HOME", str(copy))
    return copy


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_list_json_gives_every_feature_with_its_meaning_and_legal_basis():
    result = run("features", "list", "--json")
    assert result.exit_code == 0
    payload = json.loads(result.output)
    assert payload["feature_set_version"] == feature_set_version()
    assert payload["count"] == len(FEATURES) >= 60
    for feature in payload["features"]:
        assert feature["zh"] and feature["en"] and feature["legal_basis"] and feature["unit"]
        assert feature["monotone"] in (-1, 0, 1) and feature["code"]
    families = {f["family"] for f in payload["features"]}
    assert {"tax", "utilities", "property", "ip", "court", "penalties", "commitments", "firmographics",
            "coverage"} <= families


def test_list_prints_a_table_and_filters_by_family():
    result = run("features", "list", "--family", "penalties")
    assert result.exit_code == 0
    assert "PN01" in result.output and "PN06" in result.output and "TX01" not in result.output


def test_build_writes_the_profile_and_prints_a_summary(home):
    result = run("features", "build", "--as-of", "2026-06-30")
    assert result.exit_code == 0, result.output
    assert "enterprises in the profile" in result.output and "written to" in result.output
    profile = ProfileStore(home).read(pd.Timestamp("2026-06-30").date())
    assert len(profile) > 900 and profile["uscc"].is_unique


def test_build_by_uscc_file_names_the_bad_line_and_writes_nothing(home, tmp_path):
    assert run("features", "build", "--as-of", "2026-06-30").exit_code == 0
    path = ProfileStore(home).path(pd.Timestamp("2026-06-30").date())
    written = path.stat().st_mtime_ns
    codes = tmp_path / "codes.txt"
    first = ProfileStore(home).read(pd.Timestamp("2026-06-30").date())["uscc"].iloc[0]
    broken = first[:-1] + ("0" if first[-1] != "0" else "1")
    codes.write_text(f"uscc\n{first}\n\n{broken}\n", encoding="utf-8")
    result = run("features", "build", "--as-of", "2026-06-30", "--uscc", str(codes))
    assert result.exit_code == 1
    assert f"{codes}:4" in result.output and "check_character" in result.output
    assert path.stat().st_mtime_ns == written


def test_build_by_uscc_file_accepts_gbk_full_width_codes(home, tmp_path):
    assert run("features", "build", "--as-of", "2026-06-30").exit_code == 0
    first = ProfileStore(home).read(pd.Timestamp("2026-06-30").date())["uscc"].iloc[0]
    wide = first.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    codes = tmp_path / "codes.csv"
    codes.write_bytes(f"统一社会信用代码\n{wide}\n".encode("gbk"))
    result = run("features", "build", "--as-of", "2026-06-30", "--uscc", str(codes))
    assert result.exit_code == 0, result.output
    assert "rebuilt (alive on as_of)" in result.output


def test_build_refusals_exit_one_and_usage_errors_two(home):
    result = run("features", "build", "--as-of", "2026-06-30", "--uscc", __file__)
    assert result.exit_code == 1  # a Python file holds no codes
    result = run("features", "build")
    assert result.exit_code == 2 and "--as-of" in result.output
    result = run("features", "build", "--as-of", "30/06/2026")
    assert result.exit_code == 2
    result = run("features", "build", "--as-of", "2026-06-30", "--scheduler", "tcp://127.0.0.1:1")
    assert result.exit_code == 2 and "--engine dask" in result.output


def test_build_without_a_lake_says_to_ingest_first(tmp_path, monkeypatch):
    monkeypatch.setenv("XYD_HOME", str(tmp_path / "nothing"))
    result = run("features", "build", "--as-of", "2026-06-30")
    assert result.exit_code == 1 and "ingest the registry first" in result.output


def test_show_prints_one_enterprise_and_refuses_unknown_ones(home):
    assert run("features", "build", "--as-of", "2026-06-30").exit_code == 0
    first = ProfileStore(home).read(pd.Timestamp("2026-06-30").date())["uscc"].iloc[0]
    result = run("features", "show", first, "--as-of", "2026-06-30", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["uscc"] == first
    result = run("features", "show", "91350100M000100Y43", "--as-of", "2026-06-30")
    assert result.exit_code == 1 and "not in the profile" in result.output
    result = run("features", "show", first, "--as-of", "2026-01-01")
    assert result.exit_code == 1 and "no profile as of 2026-01-01" in result.output


def test_snapshots_writes_the_training_frame(home):
    result = run("features", "snapshots")
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(home / "snapshots" / "training.parquet")
    assert {"loan_no", "default_12m", "as_of", "tax_sales_12m"} <= set(frame.columns)
    assert "defaulted within 12 months" in result.output


def test_an_unreachable_dask_scheduler_is_a_clear_refusal(home):
    result = run("features", "build", "--as-of", "2026-06-30", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9")
    assert result.exit_code == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output


def test_changed_ignores_folders_it_did_not_make_and_show_refuses_another_feature_set(home):
    assert run("features", "build", "--as-of", "2026-06-30").exit_code == 0
    (home / "profiles" / "as_of=latest").mkdir()
    result = run("features", "build", "--changed")
    assert result.exit_code == 0 and "enterprises rebuilt" in result.output
    store = ProfileStore(home)
    as_of = pd.Timestamp("2026-06-30").date()
    info = store.info(as_of)
    info.feature_set_version = "000000000000"
    store.write(store.read(as_of), info)
    first = store.read(as_of)["uscc"].iloc[0]
    result = run("features", "show", first, "--as-of", "2026-06-30")
    assert result.exit_code == 1 and "feature set 000000000000" in result.output
    result = run("features", "build", "--as-of", "2026-06-30", "--changed")
    assert result.exit_code == 1 and "rebuild it in full" in result.output
