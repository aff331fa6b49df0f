"""Quality figures on a hand-made delivery, computed by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from features.ingest.run import ingest
from features.quality import COLUMNS, quality_html, quality_table
from tests.golden import assert_golden, without_glyphs

A, B, C, D = "91420502DTX83JLQ2Q", "91420502KNWWWTNW9J", "9142050200QDPFU24R", "91420502L04R9YAQ33"
TODAY = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("quality")
    registry = folder / "registry.csv"
    registry.write_text(
        "统一社会信用代码,主体名称,主体类型,行业门类,所属区县,注册资本（万元）,成立日期,注销日期,报送日期\n"
        f"{A},甲,企业,F,420502,10,2020-01-01,,2020-01-02\n"
        f"{B},乙,企业,F,420502,10,2020-01-01,,2020-01-02\n"
        f"{C},丙,企业,F,420502,10,2020-01-01,,2020-01-02\n"
        f"{D},丁,企业,F,420502,10,2020-01-01,2025-01-01,2025-01-02\n", encoding="utf-8")
    penalties = folder / "penalties.csv"
    # 2026-03-02 is a Monday: +7 working days = 2026-03-11, +10 = 2026-03-16
    penalties.write_text(
        "行政处罚决定书文号,行政相对人统一社会信用代码,处罚机关,处罚决定日期,失信程度,罚款金额（万元）,公示日期,信用修复日期,报送日期\n"
        f"宜市监罚决〔2026〕1号,{A},市市场监管局,2026-03-02,一般,1.00,2026-03-11,,2026-03-12\n"
        f"宜市监罚决〔2026〕2号,{A[:-1]}0,市市场监管局,2026-03-02,一般,1.00,2026-03-04,,2026-03-05\n"
        f"宜环罚决〔2026〕1号,{B},市生态环境局,2026-03-02,较重,5.00,2026-03-03,,2026-03-04\n"
        f"宜环罚决〔2026〕2号,{C},市生态环境局,2026-03-02,较重,5.00,2026-03-16,,2026-03-17\n", encoding="utf-8")
    ingest(folder / "home", [("enterprise_registry", registry), ("administrative_penalties", penalties)], today=TODAY)
    return folder / "home"


def test_compliance_wrong_codes_and_timeliness_per_department(home):
    table = quality_table(home).set_index(["source", "department"])
    market = table.loc[("administrative_penalties", "市市场监管局")]
    assert (market["received"], market["accepted"], market["quarantined"]) == (2, 1, 1)
    assert market["compliance_rate"] == 0.5 and market["wrong_codes"] == 1
    assert market["timeliness"] == 1.0  # published on the 7th working day
    ecology = table.loc[("administrative_penalties", "市生态环境局")]
    assert ecology["compliance_rate"] == 1.0 and ecology["timeliness"] == 0.5  # one on the 10th
    overall = table.loc[("administrative_penalties", "(all)")]
    assert overall["received"] == 4 and overall["timeliness"] == pytest.approx(2 / 3)


def test_coverage_counts_existing_entities_only(home):
    table = quality_table(home).set_index(["source", "department"])
    # A, B and C exist (D is deregistered); A, B and C have a penalty
    assert table.loc[("administrative_penalties", "(all)"), "coverage"] == 1.0
    assert table.loc[("enterprise_registry", "市市场监管局"), "accepted"] == 4


def test_html_report_shows_the_table_in_percentages(home):
    page = quality_html(quality_table(home))
    assert page.startswith("<!doctype html>") and "市生态环境局" in page and "50.0%" in page


GOLDEN_PAGE = Path(__file__).parent / "golden" / "quality_page.html"


def hand_built_quality() -> tuple[pd.DataFrame, tuple[str, str], tuple]:
    """A quality table of two rows, the page's title and one more section: the arguments of :func:`quality_html`."""
    table = pd.DataFrame([
        {"source": "administrative_penalties", "department": "(all)", "received": 120, "accepted": 118,
         "quarantined": 2, "compliance_rate": 118 / 120, "wrong_codes": 1, "unknown_codes": 1, "duplicates": 0,
         "timeliness": 0.875, "coverage": 0.042},
        {"source": "administrative_penalties", "department": "市生态环境局", "received": 40, "accepted": 40,
         "quarantined": 0, "compliance_rate": 1.0, "wrong_codes": 0, "unknown_codes": 0, "duplicates": 3,
         "timeliness": 0.5, "coverage": float("nan")}], columns=COLUMNS)
    figures = pd.DataFrame({"部门 department": ["市税务局"], "异议 objections": [2], "按期 on time": ["100.0%"]})
    return table, ("数据质量报告", "data quality"), ((("异议处理", "objections (work plan item 5)"), figures, "说明 <notes>"),)


def test_the_quality_page_of_a_hand_built_table_is_the_golden_page():
    """The data-quality page on the base layout, byte for byte but for its embedded glyphs (tests.golden)."""
    assert_golden(without_glyphs(quality_html(*hand_built_quality())), GOLDEN_PAGE)
