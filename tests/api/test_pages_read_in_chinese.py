"""Every HTML page the product writes reads in Chinese on a machine with no CJK font: each page
embeds its own typeface, and Debian's chromium draws every Chinese character of it as a glyph,
never as the empty box of a missing one."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from features.typeface import EXTRA_FAMILY, FAMILY
from tests.golden import assert_golden

COLUMNS, CELL = 24, 40


def _characters(page: str) -> list[str]:
    visible = re.sub(r"<style.*?</style>|<[^>]*>", " ", page, flags=re.S)
    return sorted({c for c in visible if ord(c) > 0x2E7F})  # CJK punctuation, ideographs, full-width forms


def _grid(page: str, characters: list[str], linked: dict[str, bytes]) -> str:
    """The page's own fonts (``linked``: URL → the bytes the service serves there, inlined for
    chromium), and each character alone in a cell; the last cell holds a private-use character
    that no font has, drawn as the box a missing glyph gets."""
    faces = re.findall(r"@font-face\{[^}]*\}", page)
    for url, data in linked.items():
        faces = [f.replace(f"url({url})", f"url(data:font/woff;base64,{base64.b64encode(data).decode()})")
                 for f in faces]
    cells = "".join(f'<div class="c">{c}</div>' for c in [*characters, "\ue000"])
    return (f'<html><head><meta charset="utf-8"><style>{"".join(faces)} body{{margin:0;background:#fff}}'
            f'.c{{float:left;width:{CELL}px;height:{CELL}px;font:28px/{CELL}px "{FAMILY}","{EXTRA_FAMILY}";text-align:center;'
            f'color:#000;overflow:hidden}}</style></head><body>{cells}</body></html>')


def boxes(page: str, tmp_path, chromium: str, linked: dict[str, bytes] | None = None) -> list[str]:
    """The characters of ``page`` chromium draws exactly as it draws a missing glyph."""
    import matplotlib.image

    from tests.api.test_service import CHROMIUM_FLAGS

    characters = _characters(page)
    assert re.search(rf'@font-face\{{font-family:"{FAMILY}";src:url\(', page), "the page names no typeface"
    rows = (len(characters) + 1 + COLUMNS - 1) // COLUMNS
    html_file, shot = tmp_path / "grid.html", tmp_path / "grid.png"
    html_file.write_text(_grid(page, characters, linked or {}), "utf-8")
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                    f"--window-size={COLUMNS * CELL},{rows * CELL + 40}", html_file.as_uri()],
                   check=True, capture_output=True, timeout=120)
    image = matplotlib.image.imread(shot)[:, :, :3]

    def cell(k: int) -> np.ndarray:
        top, left = (k // COLUMNS) * CELL, (k % COLUMNS) * CELL
        return image[top:top + CELL, left:left + CELL]

    missing = cell(len(characters))
    return [c for k, c in enumerate(characters) if np.abs(cell(k) - missing).max() < 0.05]


def test_the_box_detector_sees_a_page_without_its_typeface(tmp_path):
    """The check itself: a page whose typeface lacks the characters shows them all as boxes."""
    from fontTools.ttLib import TTFont

    from features.typeface import font_face
    from tests.api.service_fixtures import chromium

    face = font_face("abc")  # a font with no Chinese in it
    page = f"<html><head><style>{face}</style></head><body>西陵区 猇亭区</body></html>"
    font = TTFont(io.BytesIO(base64.b64decode(face.split("base64,")[1].split(")")[0])))
    assert ord("西") not in font.getBestCmap()
    assert set(boxes(page, tmp_path, chromium())) == set("西陵区猇亭")


def test_the_regulator_page_reads_in_chinese(service, tmp_path):
    from tests.api.service_fixtures import chromium

    decision_id = service.ask().json()["request_id"]
    page = service.client.get(f"/v1/decisions/{decision_id}/report", headers=service.headers("regulator")).text
    assert len(_characters(page)) > 200
    linked = {}
    for url in re.findall(r"url\((/v1/typeface/[^)]+)\)", page):
        served = service.client.get(url)  # no key: it is a font
        assert served.status_code == 200 and "immutable" in served.headers["cache-control"]
        linked[url] = served.content
    assert linked, "the page links the service's base font"
    assert boxes(page, tmp_path, chromium(), linked) == []
    assert service.client.get("/v1/typeface/0000000000000000.woff").status_code == 404


def test_a_rare_character_outside_the_base_font_is_embedded_in_the_page(tmp_path):
    from features.typeface import base_characters, with_linked_typeface
    from tests.api.service_fixtures import chromium

    rare = "堃喆旻"
    assert not set(rare) & base_characters()
    page = with_linked_typeface(f"<html><head></head><body>宜昌{rare}科技有限公司</body></html>", "/v1/typeface/")
    assert f'font-family:"{EXTRA_FAMILY}";src:url(data:font/woff' in page
    from features.typeface import base_font
    name, data = base_font()
    assert boxes(page, tmp_path, chromium(), {f"/v1/typeface/{name}": data}) == []


def test_the_validation_report_reads_in_chinese_with_districts_by_name(trained, tmp_path):
    from tests.api.service_fixtures import chromium

    page = trained.report_path.read_text("utf-8")
    assert "西陵区 Xiling (420502)" in page or "夷陵区 Yiling (420506)" in page
    assert boxes(page, tmp_path, chromium()) == []


def test_the_quality_report_reads_in_chinese(model_home, tmp_path):
    from features.quality import quality_html, quality_table
    from tests.api.service_fixtures import chromium

    page = quality_html(quality_table(model_home))
    assert len(_characters(page)) > 20
    assert boxes(page, tmp_path, chromium()) == []


@pytest.mark.parametrize("feature, code, shown", [("district_code", "420505", "猇亭区 Xiaoting (420505)"),
                                                  ("industry_section", "C", "C 制造业 manufacturing"),
                                                  ("entity_type", "cooperative", "农民专业合作社 farmer cooperative (cooperative)"),
                                                  ("district_code", "999999", "999999")])
def test_categories_are_shown_by_name_with_their_code(feature, code, shown):
    from features.registry import category_name

    assert category_name(feature, code) == shown


GOLDEN_PAGE = Path(__file__).parent / "golden" / "regulator_page.html"


def test_the_regulator_page_of_the_documented_decision_is_the_golden_page():
    """The page of the documented example decision (api.examples), byte for byte (tests.golden)."""
    from api import examples
    from api.db.tables import Decision
    from api.precredit.regulator_report import render

    decision = Decision(**examples._SIGNED_ROW, seq=examples.RECEIPT["seq"], created_at=examples.PRE_CREDIT["decided_at"],
                        chain_format=2, prev_hash=examples.RECEIPT["prev_hash"], hash=examples.RECEIPT["hash"])
    page = render(decision, "宜昌市示例商贸有限公司", advice=None, why="无需改进 nothing to improve",
                  deliveries={"tax_filings": dt.date(2026, 6, 20)}, policy_in_force="2026.12-4")
    assert_golden(page, GOLDEN_PAGE)


CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_page_shows_chinese_english_or_both_by_its_toggle_in_chromium(service, tmp_path):
    """The language links at the top of each page (no script: a page saved to a file keeps them)
    switch what a person sees, clicked in Debian's chromium: English alone leaves no Chinese in
    the headings, the labels or the waterfall; Chinese alone leaves nothing marked English; a page
    opened plainly shows both."""
    from features.quality import quality_html
    from models.report import render as model_report
    from tests.api.service_fixtures import Browser
    from tests.features.test_quality import hand_built_quality
    from tests.models.test_report import hand_built

    decision_id = service.ask().json()["request_id"]
    pages = {"regulator": service.client.get(f"/v1/decisions/{decision_id}/report", params={"self_contained": "true"},
                                             headers=service.headers("regulator")).text,
             "quality": quality_html(*hand_built_quality()), "model report": model_report(hand_built())}
    headings = "h1, h2, h3"
    labels = {"regulator": "h1, h2, th, #summary .k, #versions td:first-child, #waterfall text, #coverage",
              "quality": headings, "model report": headings}
    shown_english = "return [...document.querySelectorAll('[lang=en]')].filter(e => e.getClientRects().length).length"
    with Browser(tmp_path) as browser:
        for name, page in pages.items():
            path = tmp_path / f"{name}.html"
            path.write_text(page, "utf-8")
            browser.open(path.as_uri())
            both = " ".join(browser.visible_text(headings))
            assert CJK.search(both) and re.search("[A-Za-z]{4}", both), (name, both)
            browser.click('a[href="#lang-en"]')
            english = browser.visible_text(labels[name])
            assert english and not [t for t in english if CJK.search(t)], (name, [t for t in english if CJK.search(t)])
            browser.click('a[href="#lang-zh"]')
            assert browser.run(shown_english) == 0, name
            chinese = browser.visible_text(headings)
            assert chinese and all(CJK.search(t) for t in chinese), (name, chinese)
            browser.click('a[href="#bilingual"]')
            assert browser.run(shown_english) > 0, name
        # a link to the English page opens it so
        browser.open((tmp_path / "regulator.html").as_uri() + "#lang-en")
        assert not [t for t in browser.visible_text("h1, h2") if CJK.search(t)]
