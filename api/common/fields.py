"""Fields every capability's bodies share: text a database can store and hash, ids, an item's error."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

CONTROL = {chr(c) for c in (*range(0x20), 0x7F)}


def _printable(value: str) -> str:
    if any(ch in CONTROL for ch in value):
        raise ValueError("control characters (such as NUL) are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (a lone surrogate such as \\ud800 is not)") from None
    return value


Text = Annotated[str, AfterValidator(_printable)]
"""Text without control characters or lone surrogates (PostgreSQL refuses NUL, and neither can be
stored or hashed as UTF-8; no field needs any of them)."""


ID = Annotated[int, Field(ge=1, le=2**31 - 1)]


class ItemError(BaseModel):
    code: str
    message: str
    message_zh: str
