"""Unified Social Credit Code (统一社会信用代码, GB 32100-2015): normalise, validate, generate.

A code has 18 characters from a 31-character set (digits and upper-case letters without
I, O, S, V, Z)::

    position 1      registration authority (登记管理部门代码), e.g. 9 = market regulator
    position 2      entity type within that authority (机构类别代码), e.g. 91 = enterprise
    positions 3-8   administrative division (GB/T 2260)
    positions 9-17  organisation code (GB 11714): 8 body characters and a mod-11 check
    position 18     check character, mod 31 over positions 1-17

The scalar functions explain a single code; :func:`check_series` does the same for millions of
codes at once (ingestion) and :func:`make_codes` builds valid codes in bulk (the synthetic city).
The rule codes returned by both are the same, so a quarantined row and ``xyd uscc check`` agree.
"""

from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from typing import TYPE_CHECKING

import numpy as np

# pandas and Arrow are imported by the bulk functions that use them: `xyd uscc check CODE` checks
# one code with NumPy's tables alone and must start in a fraction of a second
if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters a USCC may contain, in the order of their check values."""

CHECK_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
"""Weights of positions 1-17 for the mod-31 check character: 3**i mod 31."""

ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
"""GB 11714 weights of the eight organisation-code body characters."""

LENGTH = 18

# 登记管理部门代码 → {机构类别代码: (中文, English)}, GB 32100-2015 appendix.
ENTITY_TYPES: dict[str, dict[str, tuple[str, str]]] = {
    "1": {"1": ("机关", "government body"), "2": ("事业单位", "public institution"),
          "3": ("中央编办直接管理机构编制的群众团体", "mass organisation"), "9": ("其他", "other")},
    "2": {"1": ("外国常驻新闻机构", "foreign news agency office"), "9": ("其他", "other")},
    "3": {"1": ("律师执业机构", "law firm"), "2": ("公证处", "notary office"),
          "3": ("基层法律服务所", "legal service office"), "4": ("司法鉴定机构", "forensic institute"),
          "5": ("仲裁委员会", "arbitration commission"), "9": ("其他", "other")},
    "4": {"1": ("外国在华文化中心", "foreign cultural centre"), "9": ("其他", "other")},
    "5": {"1": ("社会团体", "social organisation"), "2": ("民办非企业单位", "private non-enterprise unit"),
          "3": ("基金会", "foundation"), "9": ("其他", "other")},
    "6": {"1": ("外国旅游部门常驻代表机构", "foreign tourism office"),
          "2": ("港澳台地区旅游部门常驻内地（大陆）代表机构", "HK/Macao/Taiwan tourism office"),
          "9": ("其他", "other")},
    "7": {"1": ("宗教活动场所", "place of worship"), "2": ("宗教院校", "religious college"),
          "9": ("其他", "other")},
    "8": {"1": ("基层工会", "trade union"), "9": ("其他", "other")},
    "9": {"1": ("企业", "enterprise"), "2": ("个体工商户", "individual business"),
          "3": ("农民专业合作社", "farmer cooperative")},
    "A": {"1": ("军队事业单位", "military public institution"), "9": ("其他", "other")},
    "N": {"1": ("组级集体经济组织", "group-level collective"), "2": ("村级集体经济组织", "village collective"),
          "3": ("乡镇级集体经济组织", "township collective"), "9": ("其他", "other")},
    "Y": {"1": ("其他", "other")},
}

# GB/T 2260 province-level codes; a division outside the shipped table must start with one.
PROVINCE_CODES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82".split()
)

RULES = ("length", "charset", "registration_authority", "entity_type", "division",
         "organisation_check", "check_character")
"""Rule codes in the order they are checked; the first failing rule is reported."""

_FULLWIDTH_SPACE = "\u3000"
_BOM = "\ufeff"  # a UTF-8 BOM left at the start of a pasted or piped file


@dataclass(frozen=True)
class Division:
    """One row of the shipped administrative-division table."""

    code: str
    name: str
    level: str


@lru_cache(maxsize=1)
def divisions() -> dict[str, Division]:
    """The shipped Hubei/Yichang division table (features/data/divisions_hubei.csv), by code."""
    text = resources.files("features").joinpath("data/divisions_hubei.csv").read_text("utf-8")
    return {row["code"]: Division(**row) for row in csv.DictReader(text.splitlines())}


@lru_cache(maxsize=1)
def _fully_listed_prefectures() -> frozenset[str]:
    """Prefecture prefixes (4 digits) whose county-level divisions the table lists completely."""
    return frozenset(code[:4] for code, d in divisions().items()
                     if d.level not in ("province", "prefecture"))


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one code: ``rule`` and ``reason`` are ``None`` when it is valid."""

    input: str
    normalised: str
    valid: bool
    rule: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict:
        """A JSON-ready dict, with the entity type spelled out for valid codes."""
        out = {"input": self.input, "normalised": self.normalised, "valid": self.valid,
               "rule": self.rule, "reason": self.reason}
        if self.valid:
            zh, en = ENTITY_TYPES[self.normalised[0]][self.normalised[1]]
            out["entity_type"] = {"zh": zh, "en": en}
            out["division"] = self.normalised[2:8]
        return out


def normalise(code: str) -> str:
    """Trim, fold full-width characters to half-width (NFKC) and upper-case a code.

    >>> normalise(" ９１４２０５００ma4abcde1x ")
    '91420500MA4ABCDE1X'
    """
    text = code.replace(_FULLWIDTH_SPACE, " ").replace(_BOM, "")
    return unicodedata.normalize("NFKC", text).strip().upper()


def _org_value(char: str) -> int:
    """GB 11714 value of a character: digits as themselves, A=10 … Z=35."""
    return int(char) if char.isdigit() else ord(char) - ord("A") + 10


def organisation_check_char(body: str) -> str:
    """The GB 11714 check character for an 8-character organisation-code body."""
    total = sum(_org_value(c) * int(w) for c, w in zip(body, ORG_WEIGHTS))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def check_char(first17: str) -> str:
    """The GB 32100 mod-31 check character for the first 17 characters of a code."""
    total = sum(CHARSET.index(c) * int(w) for c, w in zip(first17, CHECK_WEIGHTS))
    return CHARSET[(31 - total % 31) % 31]


def _division_problem(division: str) -> str | None:
    if not division.isdigit():
        return f"administrative division {division!r} (positions 3-8) must be 6 digits"
    if division[:2] not in PROVINCE_CODES:
        return f"administrative division {division} starts with unknown province code {division[:2]}"
    table = divisions()
    if division in table:
        return None
    if division[:4] in _fully_listed_prefectures():
        return f"administrative division {division} is not a division of {table[division[:4] + '00'].name}"
    if division[:2] == "42" and division[:4] + "00" not in table:
        return f"administrative division {division} names no prefecture of Hubei"
    return None


def check(code: str | None) -> CheckResult:
    """Normalise ``code`` and validate it, naming the first rule it breaks.

    >>> check("91420500MA4ABCDE1X").valid
    False
    >>> check("91420500MA4ABCDE1X").rule
    'organisation_check'
    """
    code = "" if code is None else str(code)
    norm = normalise(code)

    def bad(rule: str, reason: str) -> CheckResult:
        return CheckResult(code, norm, False, rule, reason)

    if len(norm) != LENGTH:
        return bad("length", f"has {len(norm)} characters, a USCC has 18")
    outside = sorted({c for c in norm if c not in CHARSET})
    if outside:
        return bad("charset", "characters outside the USCC set (no I, O, S, V, Z): " + "".join(outside))
    authority, kind = norm[0], norm[1]
    if authority not in ENTITY_TYPES:
        return bad("registration_authority", f"registration authority {authority!r} (position 1) is not assigned")
    if kind not in ENTITY_TYPES[authority]:
        return bad("entity_type", f"entity type {kind!r} (position 2) does not exist under authority {authority!r}")
    problem = _division_problem(norm[2:8])
    if problem:
        return bad("division", problem)
    expected_org = organisation_check_char(norm[8:16])
    if norm[16] != expected_org:
        return bad("organisation_check",
                   f"organisation-code check character (position 17) should be {expected_org!r}, found {norm[16]!r}")
    expected = check_char(norm[:17])
    if norm[17] != expected:
        return bad("check_character", f"check character (position 18) should be {expected!r}, found {norm[17]!r}")
    return CheckResult(code, norm, True)


def is_valid(code: str) -> bool:
    """True when ``code`` (after normalisation) is a valid USCC."""
    return check(code).valid


# ---------------------------------------------------------------- bulk (vectorised) versions

_CHARSET_VALUE = np.full(256, -1, dtype=np.int64)
_CHARSET_VALUE[np.frombuffer(CHARSET.encode(), dtype=np.uint8)] = np.arange(31)
_ORG_VALUE = np.full(256, -1, dtype=np.int64)
_ORG_VALUE[np.frombuffer(b"0123456789", dtype=np.uint8)] = np.arange(10)
_ORG_VALUE[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)] = np.arange(10, 36)
_ORG_CHECK_CHARS = np.frombuffer(b"0123456789X0", dtype=np.uint8)  # index 11 - sum % 11
_CHARSET_VALUE_SMALL = _CHARSET_VALUE.astype(np.int8)  # compact copies for bulk gathers


def _type_tables() -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables: is a byte an assigned authority; is a (authority, type) pair assigned."""
    authority_ok = np.zeros(256, dtype=bool)
    type_ok = np.zeros((256, 256), dtype=bool)
    for authority, kinds in ENTITY_TYPES.items():
        authority_ok[ord(authority)] = True
        for kind in kinds:
            type_ok[ord(authority), ord(kind)] = True
    return authority_ok, type_ok


_AUTHORITY_OK, _ENTITY_TYPE_OK = _type_tables()
_ORG_VALUE_SMALL = _ORG_VALUE.astype(np.int8)


def _arrow_text(codes: pd.Series) -> pa.Array:
    import pyarrow as pa

    arr = pa.array(codes.astype("str"), type=pa.string(), from_pandas=True)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def normalise_array(arr: pa.Array) -> pa.Array:
    """:func:`normalise` for an Arrow string array (nulls stay null)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = arr
    wide = pc.invert(pc.fill_null(pc.string_is_ascii(arr), True))
    if pc.any(wide).as_py():  # only non-ASCII codes need folding; most are plain already
        folded = pc.filter(arr, wide)
        folded = pc.utf8_normalize(pc.replace_substring(pc.replace_substring(folded, _FULLWIDTH_SPACE, " "),
                                                        _BOM, ""), "NFKC")
        out = pc.replace_with_mask(arr, wide, folded)
    out = pc.utf8_upper(pc.utf8_trim_whitespace(out))
    # Arrow and Python upper-case a few non-ASCII letters differently (ß); such a code is
    # invalid either way, but both paths must show the same normalised text.
    odd = ~pc.fill_null(pc.string_is_ascii(out), True).to_numpy(zero_copy_only=False)
    if odd.any():
        values = out.to_numpy(zero_copy_only=False).copy()
        raw = arr.to_numpy(zero_copy_only=False)
        values[odd] = [normalise(v) for v in raw[odd]]
        out = pa.array(values, pa.string(), from_pandas=True)
    return out


def normalise_series(codes: pd.Series) -> pd.Series:
    """:func:`normalise` for a whole column (missing values stay missing)."""
    import pandas as pd

    out = normalise_array(_arrow_text(codes)).to_numpy(zero_copy_only=False)
    return pd.Series(out, index=codes.index, dtype="str", name=codes.name)


def check_array(arr: pa.Array) -> np.ndarray:
    """The first broken rule of every (already normalised) code, ``None`` where valid.

    Vectorised equivalent of ``check(code).rule``, used by ingestion on millions of rows.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = pc.fill_null(pc.utf8_length(arr), 0).to_numpy(zero_copy_only=False)
    ascii_ = pc.fill_null(pc.string_is_ascii(arr), False).to_numpy(zero_copy_only=False)
    result = np.full(len(arr), None, dtype=object)
    result[lengths != LENGTH] = "length"
    result[(lengths == LENGTH) & ~ascii_] = "charset"
    idx = np.flatnonzero((lengths == LENGTH) & ascii_)
    if idx.size:
        # 18 ASCII characters each: the taken strings sit back to back in Arrow's data buffer
        taken = pc.take(arr, pa.array(idx))
        offsets = np.frombuffer(taken.buffers()[1], dtype=np.int32)[taken.offset: taken.offset + len(taken) + 1]
        data = np.frombuffer(taken.buffers()[2], dtype=np.uint8)[offsets[0]: offsets[-1]]
        result[idx] = _first_broken_rule(data.reshape(-1, LENGTH))
    return result


def valid_mask(texts: list[str]) -> np.ndarray:
    """Which of many codes, as typed (normalised here), are valid: :func:`check`'s verdict for a
    million codes at once."""
    import pyarrow as pa

    rules = check_array(normalise_array(pa.array(texts, type=pa.string())))
    return np.equal(rules, None)


def check_series(codes: pd.Series) -> pd.Series:
    """:func:`check_array` for a pandas column: the first broken rule, missing where valid."""
    import pandas as pd

    return pd.Series(pd.array(check_array(_arrow_text(codes)), dtype="str"), index=codes.index)


def _first_broken_rule(chars: np.ndarray) -> np.ndarray:
    """Rule names (None where valid) for an (n, 18) array of ASCII code points."""
    n = len(chars)
    broken = np.zeros(n, dtype=np.int8)  # 0 = valid so far, else 1 + index into RULES

    def fail(mask: np.ndarray, name: str) -> None:
        broken[mask & (broken == 0)] = RULES.index(name) + 1

    values = _CHARSET_VALUE_SMALL[chars]
    fail((values < 0).any(axis=1), "charset")
    fail(~_AUTHORITY_OK[chars[:, 0]], "registration_authority")
    fail(~_ENTITY_TYPE_OK[chars[:, 0], chars[:, 1]], "entity_type")
    division = np.ascontiguousarray(chars[:, 2:8]).view("S6").ravel()
    bad_divisions = [d for d in np.unique(division) if _division_problem(d.decode("ascii")) is not None]
    if bad_divisions:
        fail(np.isin(division, bad_divisions), "division")
    # weighted sums in floating point use BLAS and stay exact (they never exceed 20,000)
    org_sum = (_ORG_VALUE_SMALL[chars[:, 8:16]].astype(np.float64) @ ORG_WEIGHTS.astype(np.float64)).astype(np.int64)
    fail(chars[:, 16] != _ORG_CHECK_CHARS[11 - org_sum % 11], "organisation_check")
    checked = np.maximum(values[:, :17], 0).astype(np.float64)
    expected = (31 - (checked @ CHECK_WEIGHTS.astype(np.float64)).astype(np.int64) % 31) % 31
    fail(values[:, 17] != expected, "check_character")
    return np.array((None, *RULES), dtype=object)[broken]


def make_codes(authority: str, entity_types: np.ndarray, divisions_: np.ndarray,
               bodies: np.ndarray) -> np.ndarray:
    """Build valid codes in bulk.

    Parameters
    ----------
    authority : registration-authority character, e.g. ``"9"``.
    entity_types : entity-type characters, one per code (e.g. ``"1"``, ``"2"``, ``"3"``).
    divisions_ : 6-digit division strings, one per code.
    bodies : array of shape (n, 8) with values 0-30, indexes into :data:`CHARSET` for the
        organisation-code body. Distinct bodies give distinct codes.

    Returns
    -------
    numpy array of 18-character strings.
    """
    n = len(bodies)
    charset = np.frombuffer(CHARSET.encode(), dtype=np.uint8)
    chars = np.empty((n, LENGTH), dtype=np.uint8)
    chars[:, 0] = ord(authority)
    chars[:, 1] = np.frombuffer("".join(entity_types).encode("ascii"), dtype=np.uint8)
    chars[:, 2:8] = np.frombuffer("".join(divisions_).encode("ascii"), dtype=np.uint8).reshape(n, 6)
    chars[:, 8:16] = charset[bodies]
    org_values = _ORG_VALUE[chars[:, 8:16]]
    chars[:, 16] = _ORG_CHECK_CHARS[11 - (org_values @ ORG_WEIGHTS) % 11]
    values = _CHARSET_VALUE[chars[:, :17]]
    chars[:, 17] = charset[(31 - (values @ CHECK_WEIGHTS) % 31) % 31]
    return np.frombuffer(chars.tobytes(), dtype=f"S{LENGTH}").astype(f"U{LENGTH}")


def random_codes(rng: np.random.Generator, n: int, authority: str = "9", entity_type: str = "1",
                 division: str = "420502") -> np.ndarray:
    """``n`` random valid codes (not necessarily distinct), for tests and examples."""
    bodies = rng.integers(0, 31, size=(n, 8))
    return make_codes(authority, np.array([entity_type] * n), np.array([division] * n), bodies)
