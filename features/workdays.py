"""China's official working days: the calendar deadlines in working days are counted on.

The work plan (item 5) has every objection settled within 5 working days. Working days are those
of the State Council's yearly holiday notice: weekends and statutory holidays are off, and the
adjusted weekend days (调休) around the long holidays are worked. The notices are read from the
maintained ``chinesecalendar`` package; a day in a year it does not know yet (the notice for the
next year comes out in November or December) is an explicit :class:`UnknownCalendarYear`, never a
silent guess from weekends alone: :func:`deadline`, which must never refuse, counts such days on
weekdays alone and says that its day is provisional.

Until the package carries a new year's notice, the operator may transcribe it into
``XYD_HOME/calendar/<year>.toml`` (:func:`notice_file`): the notice's title and number, the
weekdays off (``holidays``) and the weekend days worked (``working_days``). The package's own
years always win over a file.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


class UnknownCalendarYear(ValueError):
    """A day in a year whose official holiday notice the calendar does not hold."""


class NoticeFileError(ValueError):
    """A transcribed holiday notice that cannot be used as written (file, key and rule named)."""


def known_years() -> tuple[int, int]:
    """The first and last year whose holiday notices the package holds."""
    from chinese_calendar import holidays

    return min(holidays).year, max(holidays).year


def notice_file(year: int, home: Path | None = None) -> Path:
    """Where the operator transcribes ``year``'s State Council notice (under ``XYD_HOME``)."""
    from features.home import xyd_home

    return Path(home or xyd_home()) / "calendar" / f"{year}.toml"


def is_working_day(day: dt.date, home: Path | None = None) -> bool:
    """Whether ``day`` is an official working day in China (adjusted weekend days included): from
    the package, or for a year it does not hold from the notice transcribed under ``home``."""
    import chinese_calendar

    first, last = known_years()
    if first <= day.year <= last:
        return chinese_calendar.is_workday(day)
    path = notice_file(day.year, home)
    if day.year > last and (path.exists() or path.is_symlink()):
        try:
            content = path.read_bytes()
        except OSError as error:
            raise NoticeFileError(f"{path}: cannot read the notice: {error}") from None
        holidays, worked = _transcribed(path, content, day.year)
        return day in worked or (day.weekday() < 5 and day not in holidays)
    raise UnknownCalendarYear(
        f"{day} is in {day.year}, whose official holiday notice the calendar (chinesecalendar "
        f"{chinese_calendar.__version__}) does not hold: it knows {first}–{last}; upgrade it once the State "
        f"Council has published the notice, or transcribe the notice into {path}")


@lru_cache(maxsize=16)
def _transcribed(path: Path, content: bytes, year: int) -> tuple[frozenset, frozenset]:
    """The weekdays off and the weekend days worked of a transcribed notice (parsed once per content)."""
    try:
        raw = tomllib.loads(content.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise NoticeFileError(f"{path}: cannot read the notice: {error}") from None
    if not str(raw.get("notice", "")).strip():
        raise NoticeFileError(f"{path}: notice: name the State Council notice transcribed (title and number)")
    out = []
    for key, weekend in (("holidays", False), ("working_days", True)):
        days = raw.get(key, [])
        if not isinstance(days, list):
            raise NoticeFileError(f"{path}: {key} must be a list of days (2027-02-08)")
        parsed = set()
        for value in days:
            try:
                if isinstance(value, dt.datetime):  # a TOML date-time never equals a day
                    raise ValueError
                day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
            except ValueError:
                raise NoticeFileError(f"{path}: {key}: {value!r} is not a day (2027-02-08)") from None
            if day.year != year:
                raise NoticeFileError(f"{path}: {key}: {day} is not in {year}")
            if (day.weekday() >= 5) != weekend:
                raise NoticeFileError(f"{path}: {key}: {day} is a {day.strftime('%A')}; "
                                      + ("working_days lists weekend days worked" if weekend else
                                         "holidays lists the weekdays off (weekends are off anyway)"))
            parsed.add(day)
        out.append(frozenset(parsed))
    return out[0], out[1]


@dataclass(frozen=True)
class Deadline:
    """A day ``count`` working days after a start, and whether it is provisional."""

    day: dt.date
    provisional: bool
    """Some day counted lies in a year whose notice the calendar does not hold yet (or whose
    transcription cannot be read): those days were counted on weekdays alone, so the day is a
    provisional one, to be recomputed once the notice is known. A statutory holiday in the window
    can only move the true day later; an adjusted weekend day worked (调休) can move it earlier."""
    unknown: str = ""
    """Why it is provisional: the calendar's own words for the first day it could not judge."""


def deadline(start: dt.date, count: int, home: Path | None = None) -> Deadline:
    """The ``count``-th working day after ``start``, as :func:`add_working_days`, but never refused:
    a day in a year the calendar does not know is counted on weekdays alone and the deadline is
    marked provisional. An obligation owed to someone (settling an objection) must never fail to
    start because a notice is late."""
    if count < 0:
        raise ValueError("count must be 0 or more")
    day, unknown = start, ""
    while count:
        day += dt.timedelta(days=1)
        try:
            working = is_working_day(day, home)
        except (UnknownCalendarYear, NoticeFileError) as error:
            working, unknown = day.weekday() < 5, unknown or str(error)
        count -= working
    return Deadline(day, bool(unknown), unknown)


def add_working_days(start: dt.date, count: int, home: Path | None = None) -> dt.date:
    """The ``count``-th working day after ``start`` (``start`` itself not counted, whatever it is):
    an objection filed on ``start`` is due by the end of ``add_working_days(start, 5)``."""
    if count < 0:
        raise ValueError("count must be 0 or more")
    day = start
    while count:
        day += dt.timedelta(days=1)
        if is_working_day(day, home):
            count -= 1
    return day


def working_days_between(start: dt.date, end: dt.date, home: Path | None = None) -> int:
    """How many working days after ``start`` up to and including ``end`` (0 when ``end`` is not later):
    the settlement time in working days of an objection filed on ``start`` and settled on ``end``."""
    count, day = 0, start
    while day < end:
        day += dt.timedelta(days=1)
        count += is_working_day(day, home)
    return count
