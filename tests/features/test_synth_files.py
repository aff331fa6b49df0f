"""The synthetic city's files: layout, encodings, headers, determinism and the dirt manifest."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features import uscc
from features.schemas import SOURCES
from features.synth.city import CitySpec, generate_city
from features.synth.deliver import DIRT_KINDS, applicable_kinds
from tests.delivered import excel_serial_to_date, read_delivery

TODAY = date.today()


def _files(city: Path) -> dict[str, str]:
    return {str(p.relative_to(city)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(city.rglob("*")) if p.is_file() and p.name != "city.json"}


def _all_rows(city: Path, name: str) -> pd.DataFrame:
    source = SOURCES[name]
    parts = []
    for path in sorted((city / name).iterdir()):
        frame = read_delivery(source, path)
        frame.insert(0, "file", f"{name}/{path.name}")
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def manifest(dirty_city: Path) -> pd.DataFrame:
    return pd.read_csv(dirty_city / "ground_truth" / "dirty_manifest.csv", dtype={"column": "str"},
                       keep_default_na=False)


@pytest.fixture(scope="module")
def rows(dirty_city: Path) -> dict[str, pd.DataFrame]:
    return {name: _all_rows(dirty_city, name) for name in SOURCES}


def _split(rows: pd.DataFrame, manifest: pd.DataFrame, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(clean rows, dirty rows with their manifest entry) of one source."""
    entries = manifest[manifest["source"] == name]
    merged = rows.merge(entries, on=["file", "line"], how="left", indicator=True)
    return rows[(merged["_merge"] == "left_only").to_numpy()], merged[merged["_merge"] == "both"]


def _registered(rows, manifest) -> set[str]:
    """Codes of the registry's rows that ingestion accepts (clean, or clean once normalised)."""
    clean, dirty = _split(rows["enterprise_registry"], manifest, "enterprise_registry")
    repaired = dirty.loc[dirty["expected"] == "accepted", "uscc"].map(uscc.normalise)
    return set(clean["uscc"]) | set(repaired)


def test_one_folder_per_source_and_ground_truth_apart(dirty_city):
    assert sorted(p.name for p in dirty_city.iterdir() if p.is_dir()) == sorted([*SOURCES, "ground_truth"])
    truth = {p.name for p in (dirty_city / "ground_truth").iterdir()}
    assert truth == {"loans.parquet", "entities.parquet", "dirty_manifest.csv"}
    summary = json.loads((dirty_city / "city.json").read_text("utf-8"))
    assert summary["spec"]["seed"] == 7 and summary["window"] == ["2025-07", "2026-06"]


def test_monthly_sources_arrive_one_file_per_month(dirty_city):
    files = sorted(p.name for p in (dirty_city / "tax_filings").iterdir())
    # the window's last month is filed after the window closes, so it has not arrived yet
    assert files == [f"tax_filings_2025-{m:02d}.csv" for m in range(7, 13)] + \
        [f"tax_filings_2026-{m:02d}.csv" for m in range(1, 6)]


def test_encodings_are_the_departments_own(dirty_city):
    registry = (dirty_city / "enterprise_registry" / "enterprise_registry.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        registry.decode("utf-8")
    assert "统一社会信用代码" in registry.decode("gbk")
    tax = next((dirty_city / "tax_filings").iterdir()).read_bytes()
    assert tax.startswith(b"\xef\xbb\xbf") and tax.count(b"\xef\xbb\xbf") == 1
    water = next((dirty_city / "water").iterdir()).read_bytes()
    assert not water.startswith(b"\xef\xbb\xbf") and "用水量" in water.decode("utf-8")
    assert (dirty_city / "administrative_penalties" / "administrative_penalties.xlsx").exists()


def test_headers_are_the_schemas_chinese_headers(rows):
    # read_delivery asserts the header; here: every source has rows and all its columns
    for name, frame in rows.items():
        assert len(frame) > 0, name
        assert list(frame.columns[2:]) == SOURCES[name].column_names


def test_xlsx_dates_are_real_date_cells(dirty_city):
    import openpyxl

    sheet = openpyxl.load_workbook(dirty_city / "intellectual_property" / "intellectual_property.xlsx",
                                   read_only=True).active
    first = next(sheet.iter_rows(min_row=2, max_row=2, values_only=True))
    assert isinstance(first[3], datetime)  # 申请日期


def test_same_seed_same_bytes_other_seed_other_city(tmp_path):
    spec = CitySpec(enterprises=300, months=6, seed=11, dirty=0.05)
    generate_city(spec, tmp_path / "a")
    generate_city(spec, tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    generate_city(CitySpec(enterprises=300, months=6, seed=12, dirty=0.05), tmp_path / "c")
    a, c = _files(tmp_path / "a"), _files(tmp_path / "c")
    assert a["enterprise_registry/enterprise_registry.csv"] != c["enterprise_registry/enterprise_registry.csv"]


def test_every_kind_of_dirt_appears_where_it_applies(manifest):
    for name, source in SOURCES.items():
        kinds = set(manifest.loc[manifest["source"] == name, "kind"])
        assert kinds <= set(applicable_kinds(source)), name
    assert set(manifest["kind"]) == set(DIRT_KINDS)
    assert (manifest["expected"] == manifest["kind"].map(DIRT_KINDS)).all()


def test_manifest_lines_hold_the_damage_they_name(rows, manifest):
    registry_codes = _registered(rows, manifest)
    for name, source in SOURCES.items():
        clean, dirty = _split(rows[name], manifest, name)
        assert len(dirty) == (manifest["source"] == name).sum(), name
        key = list(source.natural_key)
        for entry in dirty.itertuples(index=False):
            row = entry._asdict()
            kind, column = row["kind"], row["column"]
            value = row.get(column, "") if column else ""
            if kind == "bad_check_char":
                assert uscc.check(value).rule == "check_character"
            elif kind == "unknown_enterprise":
                assert uscc.check(value).valid and value not in registry_codes
            elif kind in ("fullwidth_code", "padded_lowercase_code"):
                assert value != uscc.normalise(value) and uscc.check(value).valid
                assert name == "enterprise_registry" or uscc.normalise(value) in registry_codes
            elif kind == "future_date":
                assert _parse(source, value) > TODAY
            elif kind == "negative_amount":
                assert value.startswith("-")
            elif kind == "malformed_date":
                with pytest.raises(ValueError):
                    _parse(source, value)
            elif kind == "missing_required":
                assert value == "" and source.column(column).required
            elif kind == "bad_enum":
                assert value.upper() not in source.column(column).enum_lookup()
            elif kind == "date_order":
                earlier = next(a for a, b in source.date_order if b == column and row[a])
                assert _parse(source, value) < _parse(source, row[earlier])
            elif kind == "excel_serial_date":
                assert value.isdigit() and len(value) == 5
                assert date(2000, 1, 1) <= excel_serial_to_date(value).date() <= TODAY
            elif kind in ("exact_duplicate", "conflicting_duplicate"):
                same_key = clean[(clean[key] == pd.Series({k: row[k] for k in key})).all(axis=1)]
                same_key = same_key[same_key["line"] < row["line"]]
                assert len(same_key) >= 1, (name, row)
                content = source.column_names
                identical = (same_key[content] == pd.Series({c: row[c] for c in content})).all(axis=1)
                assert identical.any() == (kind == "exact_duplicate"), (name, row)


def _parse(source, text: str) -> date:
    fmt = "%Y-%m-%d" if source.delivery.format == "xlsx" else source.delivery.date_format
    return datetime.strptime(text, fmt).date()


def test_clean_rows_are_clean(rows, manifest):
    """What the manifest does not name must pass every rule ingestion will apply."""
    known = _registered(rows, manifest)
    for name, source in SOURCES.items():
        clean, dirty = _split(rows[name], manifest, name)
        in_place = dirty[dirty["kind"].isin(["fullwidth_code", "padded_lowercase_code", "excel_serial_date"])]
        codes = pd.concat([clean["uscc"], in_place["uscc"].map(uscc.normalise)])
        assert uscc.check_series(codes).isna().all(), name
        assert codes.isin(known).all(), name
        for col in source.columns:
            values = clean[col.name]
            if col.required:
                assert (values != "").all(), (name, col.name)
            if col.kind == "enum":
                assert values[values != ""].str.upper().isin(col.enum_lookup()).all(), (name, col.name)
            if col.kind == "money":
                assert not values.str.startswith("-").any(), (name, col.name)
        if not source.accepts_corrections:
            keys = pd.concat([clean, in_place])[list(source.natural_key)]
            assert not keys.duplicated().any(), name
        else:
            versions = clean[[*source.natural_key, "reported_date"]]
            assert not clean.duplicated(source.column_names).any(), name
            assert len(versions) == len(clean)


def test_clean_dates_are_ordered_and_not_after_the_window(rows, manifest):
    for name, source in SOURCES.items():
        clean, _ = _split(rows[name], manifest, name)
        dates = {c.name: pd.to_datetime(clean[c.name].replace("", None), format=_fmt(source))
                 for c in source.columns if c.kind == "date"}
        assert (dates["reported_date"] <= pd.Timestamp("2026-06-30")).all(), name
        for earlier, later in source.date_order:
            both = dates[earlier].notna() & dates[later].notna()
            assert (dates[earlier][both] <= dates[later][both]).all(), (name, earlier, later)


def _fmt(source) -> str:
    return "%Y-%m-%d" if source.delivery.format == "xlsx" else source.delivery.date_format


def test_no_dirt_means_an_empty_manifest(tmp_path):
    generate_city(CitySpec(enterprises=200, months=3, seed=3), tmp_path / "clean")
    manifest = pd.read_csv(tmp_path / "clean" / "ground_truth" / "dirty_manifest.csv")
    assert len(manifest) == 0 and list(manifest.columns) == ["source", "file", "line", "kind", "expected", "column"]


def test_ground_truth_matches_what_banks_reported(dirty_city, rows, manifest):
    loans = pd.read_parquet(dirty_city / "ground_truth" / "loans.parquet")
    reported, _ = _split(rows["loan_outcomes"], manifest, "loan_outcomes")
    assert set(loans["loan_no"]) == set(reported["loan_no"])
    assert loans["true_pd"].between(0, 1, inclusive="neither").all()
    assert (loans["realised_capacity_12m"] >= 0).all()
    known = reported.set_index("loan_no")["default_12m"]
    truth = loans.set_index("loan_no")["defaulted_12m"]
    said_yes = known[known == "是"].index
    said_no = known[known == "否"].index
    assert truth[said_yes].all() and not truth[said_no].any()
    entities = pd.read_parquet(dirty_city / "ground_truth" / "entities.parquet")
    assert len(entities) == 1_500 and entities["uscc"].is_unique


def test_a_failed_run_leaves_no_city_behind(tmp_path, monkeypatch):
    from features.synth import city

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(city, "_deliver", boom)
    with pytest.raises(RuntimeError):
        generate_city(CitySpec(enterprises=50, months=2), tmp_path / "broken")
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_not_overwritten_without_force(tmp_path):
    out = tmp_path / "city"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        generate_city(CitySpec(enterprises=20, months=2), out)
    assert (out / "keep.txt").read_text() == "mine"
    generate_city(CitySpec(enterprises=20, months=2), out, force=True)
    assert not (out / "keep.txt").exists() and (out / "city.json").exists()


@pytest.mark.parametrize("field, value, words", [
    ("enterprises", 0, "enterprises must be at least 1; got 0"),
    ("months", 0, "months must be between 1 and 120; got 0"),
    ("dirty", 0.9, "dirty must be a share between 0 and 0.5; got 0.9"),
    ("loan_rate", -1, "loan rate must not be negative; got -1"),
    ("end", "June 2026", "end must be a month written YYYY-MM; got 'June 2026'"),
])
def test_bad_parameters_are_refused_in_words(tmp_path, field, value, words):
    spec = CitySpec(**{field: value})
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        generate_city(spec, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_codes_are_unique_and_match_the_registered_type_and_district(rows, manifest):
    registry, _ = _split(rows["enterprise_registry"], manifest, "enterprise_registry")
    first = registry.drop_duplicates("uscc")
    assert first["uscc"].is_unique
    type_char = first["entity_type"].map({"企业": "1", "个体工商户": "2", "农民专业合作社": "3"})
    assert (first["uscc"].str[1] == type_char).all()
    district = first["district_code"].map({d.zh: d.code for d in __import__("features.schemas").schemas.DISTRICTS})
    assert (first["uscc"].str[2:8] == district).all()
    assert np.isin(first["uscc"].str[:2].unique(), ["91", "92", "93"]).all()


def test_dirt_on_a_leap_day_moves_it_safely():
    from features.synth.deliver import _shift_date

    assert _shift_date("2024-02-29", "%Y-%m-%d", years=70) == "2094-02-28"
    assert _shift_date("20240229", "%Y%m%d", days=-1) == "20240228"
