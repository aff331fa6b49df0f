"""The product's Chinese typeface: every HTML page carries the glyphs it uses.

People read every page the product writes (the regulator's decision page, the validation report,
the data-quality report), and a machine without a CJK font shows their Chinese as empty boxes.
So a page does not name a system font: :func:`with_typeface` embeds, as a web font inside the
page, the subset of Noto Sans CJK SC (SIL Open Font License 1.1, installed from PyPI with the
``mplfonts`` package) holding exactly the characters the page contains: about 50 KB for a
decision page, made in about half a second, and nothing to download when the page is opened.
Noto Sans CJK SC covers GB 18030, so rare characters of enterprise names and place names
(猇亭区) render too.

The service's pages cannot spend half a second on a font: :func:`with_linked_typeface` links a
**base font** instead (GB 2312 and every character the product's own texts use, made once and
kept on disk, served by the service at ``/v1/typeface/<hash>.woff`` and cached by the browser) and
embeds only the few characters of the page outside it, when there are any.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import os
import re
import subprocess
import sys
import uuid
from functools import lru_cache
from pathlib import Path

FAMILY = "XYD Noto Sans SC"
EXTRA_FAMILY = f"{FAMILY} extra"
FONT_FILE = "NotoSansCJKsc-Regular.otf"
PRODUCT_TEXTS = ("features/registry.py", "features/schemas.py", "models/data/policy.toml", "models/advice.py",
                 "models/bundle.py", "api/precredit/regulator_report.py", "api/common/errors.py", "api/common/fields.py",
                 "api/precredit/schemas.py", "api/objections/schemas.py", "api/trust/schemas.py", "api/routes/schemas.py",
                 "api/access/schemas.py", "api/precredit/templates/regulator_page.html", "features/templates/base.html")
"""Where the product's own Chinese is written: the base font holds every character of these files."""


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


def font_face(text: str, family: str = FAMILY) -> str:
    """An ``@font-face`` rule for ``family`` whose font holds every character of ``text`` (plus
    printable ASCII), as a data URL."""
    data = base64.b64encode(_subset(set(text) | {chr(c) for c in range(32, 127)})).decode("ascii")
    return f'@font-face{{font-family:"{family}";src:url(data:font/woff;base64,{data}) format("woff")}}'


def _subset(characters: set[str]) -> bytes:
    """The typeface cut down to ``characters``, as WOFF."""
    from fontTools import subset

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
    return buffer.getvalue()


@lru_cache(maxsize=1)
def base_characters() -> frozenset[str]:
    """GB 2312 (the 6,763 common characters and its symbols), printable ASCII and every character
    of :data:`PRODUCT_TEXTS`."""
    characters = {chr(c) for c in range(32, 127)}
    for first in range(0xA1, 0xF8):
        for second in range(0xA1, 0xFF):
            try:
                characters.add(bytes([first, second]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    root = Path(__file__).resolve().parent.parent
    for name in PRODUCT_TEXTS:
        path = root / name
        if path.exists():
            characters |= set(path.read_text("utf-8"))
    return frozenset(c for c in characters if c.isprintable())


def cache_folder() -> Path:
    """Where made fonts are kept between processes (``XYD_CACHE_DIR``, else ~/.cache/xyd)."""
    return Path(os.environ.get("XYD_CACHE_DIR") or Path.home() / ".cache" / "xyd")


@lru_cache(maxsize=1)
def base_font() -> tuple[str, bytes]:
    """The base font: its file name (a hash of what it is made from, so a browser may keep it for
    good) and WOFF bytes. Made once (about ten seconds) in a child process, then read from
    :func:`cache_folder`: making it loads fontTools and the whole typeface, about 90 MB that a
    service worker would otherwise keep for the rest of its life."""
    path = _base_font_path()
    if not path.exists():
        made = subprocess.run([sys.executable, "-c", "from features.typeface import _make_base_font; _make_base_font()"],
                              capture_output=True, text=True, env={**os.environ, "XYD_CACHE_DIR": str(cache_folder())})
        if made.returncode != 0 or not path.exists():
            raise TypefaceMissing(f"the base font could not be made in {path.parent}: "
                                  f"{made.stderr.strip().splitlines()[-1] if made.stderr.strip() else made.returncode}")
    return path.name.removeprefix("typeface-"), path.read_bytes()


def _base_font_path() -> Path:
    characters = "".join(sorted(base_characters()))
    key = hashlib.sha256((characters + str(font_path().stat().st_size)).encode("utf-8")).hexdigest()[:16]
    return cache_folder() / f"typeface-{key}.woff"


def _make_base_font() -> None:
    """Write the base font to its place in the cache (run in a child process by :func:`base_font`)."""
    path = _base_font_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # writers in other processes
    temporary.write_bytes(_subset(set(base_characters())))
    temporary.replace(path)


def with_linked_typeface(page: str, url_prefix: str) -> str:
    """``page`` using the base font at ``url_prefix + name`` (see :func:`base_font`), with the
    page's characters outside it (rare ones, if any) embedded as a second face."""
    name, _ = base_font()
    rules = [f'@font-face{{font-family:"{FAMILY}";src:url({url_prefix}{name}) format("woff")}}']
    outside = {c for c in _visible(page) if c.isprintable()} - base_characters()
    if outside:
        rules.append(font_face("".join(outside), EXTRA_FAMILY))
    return _insert(page, rules)


def with_typeface(page: str) -> str:
    """``page`` (a whole HTML document with a ``<head>``) with its own subset of the typeface
    embedded and used for all its text (sans-serif only as the fallback of last resort)."""
    return _insert(page, [font_face(_visible(page))])


def _visible(page: str) -> str:
    return re.sub(r"<style.*?</style>|<[^>]*>", " ", page, flags=re.S)


def _insert(page: str, rules: list[str]) -> str:
    style = (f"<style>{''.join(rules)}\nbody,svg text{{font-family:\"{FAMILY}\",\"{EXTRA_FAMILY}\","
             "sans-serif!important}</style>")
    head = page.find("</head>")
    if head < 0:
        raise ValueError("the page has no </head> to put its typeface in")
    return page[:head] + style + page[head:]


def use_in_matplotlib() -> str:
    """Make matplotlib draw Chinese with the product's typeface (district and industry names on a
    notebook's axes), keeping its default font for Latin text; returns the family's name."""
    from matplotlib import font_manager, rcParams

    font_manager.fontManager.addfont(str(font_path()))
    name = font_manager.FontProperties(fname=str(font_path())).get_name()
    rcParams["font.sans-serif"] = [name, *[f for f in rcParams["font.sans-serif"] if f != name]]
    rcParams["font.family"] = "sans-serif"
    rcParams["axes.unicode_minus"] = False  # the CJK font has no U+2212 minus sign
    return name
