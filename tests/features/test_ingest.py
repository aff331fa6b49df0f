"""Ingestion end to end: every manifest row ends where it should, clean rows pass, reruns change nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from features.ingest.normalise import parse_dates, parse_periods
from features.ingest.read import IngestFileError
from features.ingest.run import drop_files, ingest
from features.lake import Lake
from features.schemas import SOURCES

REASON_FOR_KIND = {
    "bad_check_char": lambda column: "uscc:check_character",
    "unknown_enterprise": lambda column: "unknown_enterprise",
    "future_date": lambda column: f"future_date:{column}",
    "negative_amount": lambda column: f"negative:{column}",
    "malformed_date": lambda column: f"bad_date:{column}",
    "missing_required": lambda column: f"missing:{column}",
    "bad_enum": lambda column: f"bad_enum:{column}",
    "conflicting_duplicate": lambda column: "conflicting_duplicate",
}


@pytest.fixture(scope="module")
def ingested(dirty_city, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    first = ingest(home, drop_files(dirty_city))
    return home, first


@pytest.fixture(scope="module")
def manifest(dirty_city) -> pd.DataFrame:
    return pd.read_csv(dirty_city / "ground_truth" / "dirty_manifest.csv", dtype={"column": "str"},
                       keep_default_na=False)


def _quarantine(home: Path) -> pd.DataFrame:
    lake = Lake(home)
    parts = [lake.read_quarantine(name).assign(source=name) for name in SOURCES]
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True)
    frame["file"] = frame["source"] + "/" + frame["_file"].map(lambda f: Path(f).name)
    return frame.rename(columns={"_line": "line", "_reasons": "reasons"})[["source", "file", "line", "reasons"]]


def test_every_row_ends_in_exactly_one_place_and_counts_reconcile(ingested, dirty_city):
    _, report = ingested
    for file in report.files:
        assert file.rows_in == file.accepted + file.duplicate + file.quarantined, file.file
        lines = sum(1 for _ in open(file.file, "rb")) - 1 if file.file.endswith(".csv") else None
        if lines is not None:
            assert file.rows_in == lines, file.file
    assert {Path(f.file).parent.name for f in report.files} == set(SOURCES)


def test_dirty_rows_are_quarantined_with_the_right_reason_and_no_clean_row_is(ingested, manifest):
    home, _ = ingested
    quarantined = _quarantine(home)
    joined = quarantined.merge(manifest, on=["source", "file", "line"], how="left")
    assert joined["kind"].notna().all(), joined[joined["kind"].isna()].head()  # no clean row quarantined
    assert (joined["expected"] == "quarantined").all()
    expected = manifest[manifest["expected"] == "quarantined"]
    assert len(joined) == len(expected)  # and every row owed quarantine is there
    for row in joined.itertuples(index=False):
        reasons = row.reasons.split(";")
        if row.kind == "date_order":
            assert any(r.startswith("date_order:") and r.endswith(f">{row.column}") for r in reasons), row
        else:
            assert REASON_FOR_KIND[row.kind](row.column) in reasons, row


def test_duplicates_are_skipped_and_normalisable_rows_reach_the_lake(ingested, manifest, dirty_city):
    home, report = ingested
    lake = Lake(home)
    duplicates = manifest[manifest["expected"] == "duplicate"].groupby("source").size()
    by_source = pd.DataFrame([vars(f) for f in report.files]).groupby("source")[["duplicate", "accepted"]].sum()
    for source, count in duplicates.items():
        assert by_source.loc[source, "duplicate"] == count, source
    for name in SOURCES:
        stored = lake.read(name)
        assert len(stored) == by_source.loc[name, "accepted"]
        assert stored["uscc"].str.fullmatch(r"[0-9A-Z]{18}").all(), name  # full-width and padded codes normalised
        for column in SOURCES[name].columns:
            if column.required:
                assert stored[column.name].notna().all(), (name, column.name)


def test_a_second_ingest_of_the_same_files_changes_nothing_and_says_so(ingested, dirty_city):
    home, first = ingested
    lake = Lake(home)
    before = {name: len(lake.read(name)) for name in SOURCES}
    quarantine_before = len(_quarantine(home))
    again = ingest(home, drop_files(dirty_city))
    assert not again.changed
    assert again.totals()["accepted"] == 0
    assert again.totals()["duplicate"] == first.totals()["accepted"] + first.totals()["duplicate"]
    assert {name: len(lake.read(name)) for name in SOURCES} == before
    assert len(_quarantine(home)) == quarantine_before


def test_a_file_missing_required_columns_is_refused_whole_and_nothing_is_written(tmp_path, dirty_city):
    bad = tmp_path / "tax.csv"
    bad.write_text("纳税人识别号,税款所属期\n91350100M000100Y43,2025-01\n", encoding="utf-8")
    with pytest.raises(IngestFileError, match=r"missing required columns for tax_filings: sales \(销售额（元）\)"):
        ingest(tmp_path / "home", [("enterprise_registry", next((dirty_city / "enterprise_registry").iterdir())),
                                   ("tax_filings", bad)])
    assert not (tmp_path / "home" / "lake" / "_manifest.json").exists()


def _registry_csv(path: Path, rows: list[str], encoding: str, header: str | None = None) -> Path:
    header = header or "统一社会信用代码,主体名称,主体类型,行业门类,所属区县,注册资本（万元）,成立日期,注销日期,报送日期"
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_encodings_are_detected_and_formats_normalised(tmp_path, encoding):
    rows = ["91350100M000100Y43,宜昌长江商贸有限公司,企业,批发和零售业,西陵区,\"1,000.50\",2020/05/01,,20200503",
            "９１３５０１００Ｍ０００１００Ｙ４３,宜昌长江商贸有限公司,企业,F,420502,1000.5,43952,,2020年5月3日"]
    report = ingest(tmp_path, [("enterprise_registry", _registry_csv(tmp_path / "r.csv", rows, encoding))])
    assert (report.files[0].accepted, report.files[0].duplicate, report.files[0].quarantined) == (1, 1, 0)
    stored = Lake(tmp_path).read("enterprise_registry").iloc[0]
    assert stored["registered_capital"] == 1_000_500_000  # 1,000.50 万元 in fen
    assert stored["established_date"] == pd.Timestamp("2020-05-01")
    assert stored["entity_type"] == "enterprise" and stored["district_code"] == "420502"


def test_english_headers_and_corrections_keep_history(tmp_path):
    header = "uscc,name,entity_type,industry_section,district_code,registered_capital,established_date,deregistered_date,reported_date"
    first = _registry_csv(tmp_path / "a.csv", ["91350100M000100Y43,甲公司,enterprise,F,420502,10,2020-05-01,,2020-05-03"],
                          "utf-8", header)
    second = _registry_csv(tmp_path / "b.csv", ["91350100M000100Y43,甲公司,enterprise,F,420502,10,2020-05-01,2025-01-02,2025-01-05"],
                           "utf-8", header)
    ingest(tmp_path / "home", [("enterprise_registry", first)])
    report = ingest(tmp_path / "home", [("enterprise_registry", second)])
    assert report.files[0].accepted == 1  # the registry accepts corrections: a newer version
    lake = Lake(tmp_path / "home")
    versions = lake.read("enterprise_registry").sort_values("reported_date")
    assert versions["deregistered_date"].isna().tolist() == [True, False]
    current = lake.current("enterprise_registry", ("uscc",), "reported_date")
    assert len(current) == 1 and current["deregistered_date"].iloc[0] == pd.Timestamp("2025-01-02")
    # an old version delivered late does not win over the newer one
    ingest(tmp_path / "home", [("enterprise_registry", first)])
    assert lake.current("enterprise_registry", ("uscc",), "reported_date")["deregistered_date"].notna().all()


def test_date_and_period_parsers_accept_the_departments_formats():
    dates = parse_dates(pd.Series(["2024-05-01", "2024/5/1", "20240501", "2024年5月1日", "45413", "2024-13-01", ""],
                                  dtype="str"))
    assert dates.iloc[:5].tolist() == [pd.Timestamp("2024-05-01")] * 5
    assert dates.iloc[5:].isna().all()
    periods = parse_periods(pd.Series(["2024-05", "202405", "2024年5月", "2024年05月", "2024/05", "2024-5x"], dtype="str"))
    assert periods.iloc[:5].tolist() == [pd.Timestamp("2024-05-01")] * 5 and pd.isna(periods.iloc[5])


def test_future_dates_are_judged_against_the_day_of_ingestion(tmp_path):
    rows = ["91350100M000100Y43,甲公司,企业,F,420502,10,2020-05-01,,2026-12-01"]
    path = _registry_csv(tmp_path / "r.csv", rows, "utf-8")
    early = ingest(tmp_path / "h1", [("enterprise_registry", path)], today=dt.date(2026, 11, 30))
    late = ingest(tmp_path / "h2", [("enterprise_registry", path)], today=dt.date(2026, 12, 1))
    assert early.files[0].reasons == {"future_date:reported_date": 1} and late.files[0].accepted == 1


def test_impossible_calendar_days_are_not_rolled_over():
    dates = parse_dates(pd.Series(["2024/02/30", "2023-02-29", "2024-02-29", "20240431"], dtype="str"))
    assert dates.isna().tolist() == [True, True, False, True]


def test_parquet_and_xlsx_deliveries_read_like_csv(tmp_path):
    import openpyxl

    rows = [["91350100M000100Y43", "甲公司", "企业", "F", "420502", "10", "2020-05-01", None, "2020-05-03"]]
    header = ["统一社会信用代码", "主体名称", "主体类型", "行业门类", "所属区县", "注册资本（万元）", "成立日期", "注销日期", "报送日期"]
    parquet = tmp_path / "registry.parquet"
    pd.DataFrame(rows, columns=header).to_parquet(parquet)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    sheet.append([rows[0][0], "甲公司", "企业", "F", 420502, 10, dt.datetime(2020, 5, 1), None, dt.datetime(2020, 5, 3)])
    book.save(tmp_path / "registry.xlsx")
    report = ingest(tmp_path / "home", [("enterprise_registry", parquet), ("enterprise_registry", tmp_path / "registry.xlsx")])
    assert [(f.accepted, f.duplicate, f.quarantined) for f in report.files] == [(1, 0, 0), (0, 1, 0)]


@pytest.mark.parametrize("name, content", [("broken.xlsx", b"PK\x03\x04 not a workbook"),
                                           ("broken.parquet", b"PAR1 nonsense"),
                                           ("binary.csv", bytes(range(128, 256)) * 50),
                                           ("notes.txt", b"hello")])
def test_unreadable_files_are_refused_with_their_name(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(IngestFileError, match=name):
        ingest(tmp_path / "home", [("enterprise_registry", path)])
    assert not (tmp_path / "home" / "lake" / "_manifest.json").exists()


def _registry_with(tmp_path, row: str, name: str = "r.csv", encoding: str = "utf-8") -> Path:
    return _registry_csv(tmp_path / name, [row], encoding)


@pytest.mark.parametrize("capital, reason", [("1e20", "out_of_range:registered_capital"),
                                             ("1e400", "bad_number:registered_capital"),
                                             ("inf", "bad_number:registered_capital")])
def test_absurd_amounts_are_quarantined_not_crashed_on(tmp_path, capital, reason):
    rows = ["91350100M000100Y43,甲,企业,F,420502,\"1,000\",2020-05-01,,2020-05-03",
            f"91350100M000100Y43,甲,企业,F,420502,{capital},2020-05-01,,2020-05-04"]
    report = ingest(tmp_path / "home", [("enterprise_registry", _registry_csv(tmp_path / "r.csv", rows, "utf-8"))])
    assert report.files[0].accepted == 1 and report.files[0].reasons == {reason: 1}


def test_dates_years_and_terms_that_are_typing_errors_are_refused():
    dates = parse_dates(pd.Series(["2024", "0024-05-01", "45413", "1899-12-31"], dtype="str"))
    assert dates.isna().tolist() == [True, True, False, True]
    assert parse_periods(pd.Series(["2024-02-30", "2024-02"], dtype="str")).isna().tolist() == [True, False]
    from features.ingest.normalise import parse_numbers
    import pyarrow as pa

    assert parse_numbers(pa.array(["-0", "1,000", "1e400"])).to_pylist()[1:] == [1000.0, None]


def test_a_gbk_file_whose_chinese_starts_late_is_read_as_gbk(tmp_path):
    header = "统一社会信用代码,主体名称,主体类型,行业门类,所属区县,注册资本（万元）,成立日期,注销日期,报送日期\n"
    padding = "".join(f"91350100M000100Y43,A,enterprise,F,420502,10,2020-05-01,,2020-05-{d:02d}\n"
                      for d in range(1, 29)) * 800
    path = tmp_path / "late.csv"
    path.write_bytes((header + padding + "91350100M000100Y43,甲公司,企业,F,420502,10,2020-05-01,,2020-06-01\n").encode("gbk"))
    report = ingest(tmp_path / "home", [("enterprise_registry", path)])
    assert report.files[0].encoding == "gb18030" and report.files[0].quarantined == 0


def test_ragged_csv_is_refused_by_name_and_nothing_is_written(tmp_path):
    path = _registry_with(tmp_path, "91350100M000100Y43,甲,企业")
    with pytest.raises(IngestFileError, match="r.csv: unreadable CSV"):
        ingest(tmp_path / "home", [("enterprise_registry", path)])
    assert not (tmp_path / "home" / "lake" / "_manifest.json").exists()


def test_xlsx_blank_rows_are_skipped_keeping_line_numbers_and_parquet_types_are_rendered(tmp_path):
    import openpyxl

    header = ["统一社会信用代码", "主体名称", "主体类型", "行业门类", "所属区县", "注册资本（万元）", "成立日期", "注销日期",
              "报送日期", None, None]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    sheet.append([None] * 9)
    sheet.append(["91350100M000100Y43", "甲", "企业", "F", 420502, 10, dt.datetime(2020, 5, 1), None, "2099-01-01"])
    book.save(tmp_path / "r.XLSX")
    report = ingest(tmp_path / "home", [("enterprise_registry", tmp_path / "r.XLSX")])
    assert (report.files[0].rows_in, report.files[0].quarantined) == (1, 1)
    assert Lake(tmp_path / "home").read_quarantine("enterprise_registry")["_line"].tolist() == [3]
    frame = pd.DataFrame({"uscc": ["91350100M000100Y43"], "name": ["甲"], "entity_type": ["enterprise"],
                          "industry_section": ["F"], "district_code": pd.array([420502], "Int64"),
                          "registered_capital": [10.5], "established_date": [pd.Timestamp("2020-05-01")],
                          "deregistered_date": [pd.NaT], "reported_date": [pd.Timestamp("2020-05-03")]})
    frame.to_parquet(tmp_path / "r.parquet")
    report = ingest(tmp_path / "home", [("enterprise_registry", tmp_path / "r.parquet")])
    assert report.files[0].accepted == 1, report.files[0].reasons
