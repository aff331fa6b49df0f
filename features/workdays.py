"""China's official working days: the calendar deadlines in working days are counted on.

The work plan (item 5) has every objection settled within 5 working days. Working days are those
of the State Council's yearly holiday notice: weekends and statutory holidays are off, and the
adjusted weekend days (调休) around the long holidays are worked. The notices are read from the
maintained ``chinesecalendar`` package; a day in a year it does not know yet (the notice for the
next year comes out in November or December) is an explicit :class:`UnknownCalendarYear`, never a
guess from weekends alone.
"""

from __future__ import annotations

import datetime as dt


class UnknownCalendarYear(ValueError):
    """A day in a year whose official holiday notice the calendar does not hold."""


def known_years() -> tuple[int, int]:
    """The first and last year whose holiday notices the calendar holds."""
    from chinese_calendar import holidays

    return min(holidays).year, max(holidays).year


def is_working_day(day: dt.date) -> bool:
    """Whether ``day`` is an official working day in China (adjusted weekend days included)."""
    import chinese_calendar

    first, last = known_years()
    if not first <= day.year <= last:
        raise UnknownCalendarYear(
            f"{day} is in {day.year}, whose official holiday notice the calendar (chinesecalendar "
            f"{chinese_calendar.__version__}) does not hold: it knows {first}–{last}; upgrade it once the State "
            "Council has published the notice")
    return chinese_calendar.is_workday(day)


def add_working_days(start: dt.date, count: int) -> dt.date:
    """The ``count``-th working day after ``start`` (``start`` itself not counted, whatever it is):
    an objection filed on ``start`` is due by the end of ``add_working_days(start, 5)``."""
    if count < 0:
        raise ValueError("count must be 0 or more")
    day = start
    while count:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            count -= 1
    return day


def working_days_between(start: dt.date, end: dt.date) -> int:
    """How many working days after ``start`` up to and including ``end`` (0 when ``end`` is not later):
    the settlement time in working days of an objection filed on ``start`` and settled on ``end``."""
    count, day = 0, start
    while day < end:
        day += dt.timedelta(days=1)
        count += is_working_day(day)
    return count
