"""The product's Chinese typeface: every HTML page carries the glyphs it uses.

People read every page the product writes (the regulator's decision page, the validation report,
the data-quality report), and a machine without a CJK font shows their Chinese as empty boxes.
So a page does not name a system font: :func:`with_typeface` embeds, as a web font inside the
page, the subset of Noto Sans CJK SC (SIL Open Font License 1.1, installed from PyPI with the
``mplfonts`` package) holding exactly the characters the page contains: about 50 KB for a
decision page, made in about half a second, and nothing to download when the page is opened.
Noto Sans CJK SC covers GB 18030, so rare characters of enterprise names and place names
(猇亭区) render too.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import re
from functools import lru_cache
from pathlib import Path

FAMILY = "XYD Noto Sans SC"
FONT_FILE = "NotoSansCJKsc-Regular.otf"


class TypefaceMissing(RuntimeError):
    """The font file is not installed (the ``mplfonts`` package is part of the product's dependencies)."""


@lru_cache(maxsize=1)
def font_path() -> Path:
    """Where the installed Noto Sans CJK SC is (found without importing ``mplfonts``, which would
    load matplotlib)."""
    spec = importlib.util.find_spec("mplfonts")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "fonts" / FONT_FILE
        if path.exists():
            return path
    raise TypefaceMissing(f"{FONT_FILE} is not installed: pip install the product's dependencies (mplfonts)")


def font_face(text: str) -> str:
    """An ``@font-face`` rule for :data:`FAMILY` whose font holds every character of ``text``
    (plus printable ASCII), as a data URL."""
    from fontTools import subset

    characters = set(text) | {chr(c) for c in range(32, 127)}
    options = subset.Options()
    options.layout_features = []  # no ligatures or vertical forms on these pages; twice as fast
    options.hinting = False
    options.flavor = "woff"
    font = subset.load_font(str(font_path()), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(characters)))
    subsetter.subset(font)
    buffer = io.BytesIO()
    subset.save_font(font, buffer, options)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'@font-face{{font-family:"{FAMILY}";src:url(data:font/woff;base64,{data}) format("woff")}}'


def with_typeface(page: str) -> str:
    """``page`` (a whole HTML document with a ``<head>``) with its own subset of the typeface
    embedded and used for all its text (sans-serif only as the fallback of last resort)."""
    visible = re.sub(r"<[^>]*>", " ", page)
    style = (f"<style>{font_face(visible)}\nbody,svg text{{font-family:\"{FAMILY}\",sans-serif!important}}"
             "</style>")
    head = page.find("</head>")
    if head < 0:
        raise ValueError("the page has no </head> to put its typeface in")
    return page[:head] + style + page[head:]
