"""Golden pages: a page the product writes, held byte for byte to a file a reviewer reads.

A change to a page's layout, words or Content-Security-Policy shows as a diff, one tag a line. After
an intended change, regenerate with ``XYD_UPDATE_GOLDEN=1`` and read the diff before committing it.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path


def without_glyphs(page: str) -> str:
    """The page with its embedded typeface left out (a subset per page: the typeface's tests read it)."""
    return re.sub(r"@font-face\{[^}]*\}", "@font-face{…}", page)


def assert_golden(page: str, golden: Path) -> None:
    """``page`` is the golden file's text, or the diff between them is the failure's message."""
    if os.environ.get("XYD_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(page, "utf-8")
    expected = golden.read_text("utf-8")

    def split(text: str) -> list[str]:
        return text.replace("><", ">\n<").splitlines()

    assert page == expected, "\n".join(difflib.unified_diff(split(expected), split(page), "golden", "rendered",
                                                            lineterm=""))


def page_text(page: str) -> str:
    """The words of ``page`` as a person reads them with both languages shown: tags, styles and
    the SVG's markup left out, runs of white space as one space."""
    import html

    body = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    # a block or a cell ends a word; an inline tag (span, b, a, small) does not
    body = re.sub(r"</?(?:br|p|div|h\d|table|tr|td|th|ul|ol|li|nav|title|svg|text|figure|figcaption)\b[^>]*>", " ", body)
    body = re.sub(r"<[^>]*>", "", body)
    return " ".join(html.unescape(body).split())
