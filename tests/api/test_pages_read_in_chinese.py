"""Every HTML page the product writes reads in Chinese on a machine with no CJK font: each page
embeds its own typeface, and Debian's chromium draws every Chinese character of it as a glyph,
never as the empty box of a missing one."""

from __future__ import annotations

import base64
import io
import re
import subprocess

import numpy as np
import pytest

from features.typeface import FAMILY

COLUMNS, CELL = 24, 40


def _characters(page: str) -> list[str]:
    visible = re.sub(r"<style.*?</style>|<[^>]*>", " ", page, flags=re.S)
    return sorted({c for c in visible if ord(c) > 0x2E7F})  # CJK punctuation, ideographs, full-width forms


def _grid(page: str, characters: list[str]) -> str:
    """The page's own embedded font, and each character alone in a cell; the last cell holds a
    private-use character that no font has, drawn as the box a missing glyph gets."""
    faces = re.findall(r"@font-face\{[^}]*\}", page)
    cells = "".join(f'<div class="c">{c}</div>' for c in [*characters, "\ue000"])
    return (f'<html><head><meta charset="utf-8"><style>{"".join(faces)} body{{margin:0;background:#fff}}'
            f'.c{{float:left;width:{CELL}px;height:{CELL}px;font:28px/{CELL}px "{FAMILY}";text-align:center;'
            f'color:#000;overflow:hidden}}</style></head><body>{cells}</body></html>')


def boxes(page: str, tmp_path, chromium: str) -> list[str]:
    """The characters of ``page`` chromium draws exactly as it draws a missing glyph."""
    import matplotlib.image

    from tests.api.test_service import CHROMIUM_FLAGS

    characters = _characters(page)
    assert faces_embedded(page), "the page embeds no typeface"
    rows = (len(characters) + 1 + COLUMNS - 1) // COLUMNS
    html_file, shot = tmp_path / "grid.html", tmp_path / "grid.png"
    html_file.write_text(_grid(page, characters), "utf-8")
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                    f"--window-size={COLUMNS * CELL},{rows * CELL + 40}", html_file.as_uri()],
                   check=True, capture_output=True, timeout=120)
    image = matplotlib.image.imread(shot)[:, :, :3]

    def cell(k: int) -> np.ndarray:
        top, left = (k // COLUMNS) * CELL, (k % COLUMNS) * CELL
        return image[top:top + CELL, left:left + CELL]

    missing = cell(len(characters))
    return [c for k, c in enumerate(characters) if np.abs(cell(k) - missing).max() < 0.05]


def faces_embedded(page: str) -> bool:
    return bool(re.search(rf'@font-face\{{font-family:"{FAMILY}";src:url\(data:font/woff;base64,', page))


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
    assert boxes(page, tmp_path, chromium()) == []


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
