"""The platform's clock as every table keeps it: UTC text with microseconds and a 'Z'. Its own
module so that the chains, the objections' queries and the repository all read one clock without
importing each other."""

from __future__ import annotations

import datetime as dt


def now_iso() -> str:
    """The current UTC time as the text every table keeps (microseconds, 'Z')."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
