"""Source schemas are complete and consistent: the single source of truth others rely on."""

import re

import pytest

from features import schemas
from features.schemas import SOURCES, Column, EnumValue, Source

CJK = re.compile(r"[\u4e00-\u9fff]")

ISSUE_SOURCES = {"enterprise_registry", "tax_filings", "tax_grades", "electricity", "water", "gas", "real_estate",
                 "intellectual_property", "court_executions", "dishonest_debtors", "administrative_penalties",
                 "credit_commitments", "loan_outcomes"}


def test_every_source_the_platform_receives_is_declared():
    assert set(SOURCES) == ISSUE_SOURCES


@pytest.mark.parametrize("name", sorted(ISSUE_SOURCES))
def test_source_declares_keys_dates_headers_and_lawful_basis(name):
    source = SOURCES[name]
    assert source.natural_key and all(source.column(k).required for k in source.natural_key)
    assert source.column(source.event_date).kind in ("date", "period")
    assert source.column(source.known_date).kind == "date"
    assert "uscc" in source.column_names and source.column("uscc").kind == "uscc"
    assert CJK.search(source.title_zh) and CJK.search(source.catalogue_category)
    assert CJK.search(source.legal_basis) and "〔" in source.legal_basis  # cites a numbered document
    for column in source.columns:
        assert CJK.search(column.zh), (name, column.name)
        assert re.fullmatch(r"[a-z][a-z0-9_]*", column.name), column.name
        assert column.description
    header_map = source.header_map()
    assert all(header_map[c.zh] == c.name and header_map[c.name] == c.name for c in source.columns)


def test_enum_spellings_map_to_one_code_each():
    for source in SOURCES.values():
        for column in source.columns:
            if column.kind == "enum":
                lookup = column.enum_lookup()
                assert {lookup[v.zh.upper()] for v in column.values} == {v.code for v in column.values}


def test_money_is_declared_with_the_unit_departments_write():
    assert SOURCES["enterprise_registry"].column("registered_capital").unit == "wan_yuan"
    assert SOURCES["administrative_penalties"].column("amount").unit == "wan_yuan"
    assert SOURCES["tax_filings"].column("sales").unit == "yuan"
    assert schemas.MONEY_UNITS == {"yuan": 100, "wan_yuan": 1_000_000}


def test_only_sources_whose_records_change_accept_corrections():
    assert not SOURCES["tax_filings"].accepts_corrections and not SOURCES["electricity"].accepts_corrections
    assert SOURCES["administrative_penalties"].accepts_corrections  # repairs arrive as corrections
    assert SOURCES["dishonest_debtors"].accepts_corrections  # removals arrive as corrections


def test_unknown_source_is_refused_with_the_list_of_known_ones():
    with pytest.raises(ValueError, match="unknown source 'taxes'; known sources: enterprise_registry, tax_filings"):
        schemas.get_source("taxes")


@pytest.mark.parametrize("kwargs, words", [
    ({"kind": "decimal"}, "kind must be one of"),
    ({"kind": "money"}, "money needs a unit"),
    ({"kind": "enum"}, "an enum needs values"),
])
def test_column_declarations_are_checked(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Column("x", "某列", description="d", **kwargs)


def test_source_declarations_are_checked():
    base = dict(name="s", title_zh="源", title_en="s", department_zh="部门", department_en="d",
                catalogue_category="类", legal_basis="依据", natural_key=("uscc",), event_date="d",
                known_date="d", delivery=schemas.Delivery("csv"))
    uscc = Column("uscc", "代码", "uscc", "code")
    with pytest.raises(ValueError, match="declares unknown columns"):
        Source(columns=(uscc,), **base)
    day = Column("d", "日期", "date", "day")
    with pytest.raises(ValueError, match="a header maps to two columns"):
        Source(columns=(uscc, day, Column("e", "日期", "date", "other")), **base)
    assert Source(columns=(uscc, day), **base).column("d") is day
    assert EnumValue("a", "甲", "a").aliases == ()
