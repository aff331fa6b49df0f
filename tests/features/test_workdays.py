"""Working days on China's official calendar: holidays off, adjusted weekend days worked, an
unknown year an error."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, strategies as st

from features.workdays import (Deadline, UnknownCalendarYear, add_working_days, deadline, is_working_day, known_years,
                               working_days_between)


def test_the_national_day_week_and_its_adjusted_working_days_are_counted_right():
    # 2025: 1–8 October off; Sunday 28 September and Saturday 11 October worked (国务院办公厅 2024 notice)
    assert is_working_day(dt.date(2025, 9, 28)) and is_working_day(dt.date(2025, 10, 11))
    assert not any(is_working_day(dt.date(2025, 10, day)) for day in range(1, 9))
    # filed on Tuesday 30 September: 9, 10, 11 (Saturday, worked), 13, 14 October
    assert add_working_days(dt.date(2025, 9, 30), 5) == dt.date(2025, 10, 14)
    # filed on the holiday itself: the first working day after it is the 1st of the 5
    assert add_working_days(dt.date(2025, 10, 3), 5) == dt.date(2025, 10, 14)
    assert working_days_between(dt.date(2025, 9, 30), dt.date(2025, 10, 14)) == 5


def test_spring_festival_and_an_ordinary_week():
    # 2026 Spring Festival: 15–23 February off, Saturday 14 and 28 February worked
    assert add_working_days(dt.date(2026, 2, 13), 1) == dt.date(2026, 2, 14)
    assert add_working_days(dt.date(2026, 2, 14), 1) == dt.date(2026, 2, 24)
    assert add_working_days(dt.date(2026, 3, 2), 5) == dt.date(2026, 3, 9)  # Monday → next Monday


def test_a_year_the_calendar_does_not_know_is_an_error_not_a_guess():
    first, last = known_years()
    with pytest.raises(UnknownCalendarYear, match=str(last + 1)):
        is_working_day(dt.date(last + 1, 3, 2))
    with pytest.raises(UnknownCalendarYear):
        add_working_days(dt.date(last, 12, 28), 5)
    with pytest.raises(UnknownCalendarYear):
        is_working_day(dt.date(first - 1, 6, 1))


DAYS = st.dates(min_value=dt.date(2010, 1, 1), max_value=dt.date(2026, 11, 30))


@given(start=DAYS, count=st.integers(0, 15))
def test_the_due_day_is_a_working_day_exactly_count_working_days_on(start, count):
    due = add_working_days(start, count)
    assert working_days_between(start, due) == count
    if count:
        assert is_working_day(due) and due > start
        assert working_days_between(start, due - dt.timedelta(days=1)) == count - 1


@given(start=DAYS, count=st.integers(0, 15))
def test_a_deadline_in_known_years_is_the_calendars_own_day_and_not_provisional(start, count):
    assert deadline(start, count) == Deadline(add_working_days(start, count), False, "")


@given(offset=st.integers(0, 400), count=st.integers(1, 15))
def test_a_deadline_reaching_an_unknown_year_is_never_refused_and_counts_weekdays_there(offset, count):
    last = known_years()[1]
    start = dt.date(last, 12, 31) - dt.timedelta(days=offset)
    try:
        add_working_days(start, count)
        reaches_unknown = False
    except UnknownCalendarYear:
        reaches_unknown = True
    due = deadline(start, count)
    assert due.provisional == reaches_unknown
    if reaches_unknown:
        assert str(last + 1) in due.unknown and due.day.year > last and due.day.weekday() < 5
        known_part = working_days_between(start, dt.date(last, 12, 31))
        weekdays_after = sum((dt.date(last, 12, 31) + dt.timedelta(days=d)).weekday() < 5
                             for d in range(1, (due.day - dt.date(last, 12, 31)).days + 1))
        assert known_part + weekdays_after == count  # the known year on its calendar, the rest on weekdays


@given(start=DAYS, a=st.integers(0, 8), b=st.integers(0, 8))
def test_working_days_add_up(start, a, b):
    assert add_working_days(add_working_days(start, a), b) == add_working_days(start, a + b)


def test_a_year_the_package_lacks_is_read_from_the_notice_the_operator_transcribed(tmp_path):
    from features.workdays import NoticeFileError, notice_file

    year = known_years()[1] + 1
    path = notice_file(year, tmp_path)
    path.parent.mkdir(parents=True)
    new_year = dt.date(year, 1, 1)
    weekday_off = new_year if new_year.weekday() < 5 else new_year + dt.timedelta(days=7 - new_year.weekday())
    saturday = dt.date(year, 1, 1) + dt.timedelta(days=(5 - dt.date(year, 1, 1).weekday()) % 7)
    path.write_text(f'notice = "国务院办公厅关于{year}年部分节假日安排的通知"\n'
                    f'holidays = ["{weekday_off}"]\nworking_days = ["{saturday}"]\n', "utf-8")
    assert not is_working_day(weekday_off, tmp_path) and is_working_day(saturday, tmp_path)
    assert is_working_day(dt.date(year, 3, 3) - dt.timedelta(days=dt.date(year, 3, 3).weekday()), tmp_path)  # a Monday
    first_worked = min(d for d in (dt.date(year, 1, 1) + dt.timedelta(days=i) for i in range(14))
                       if d == saturday or (d.weekday() < 5 and d != weekday_off))
    assert add_working_days(dt.date(year - 1, 12, 31), 1, tmp_path) == first_worked
    with pytest.raises(UnknownCalendarYear, match=str(path.parent)):
        is_working_day(dt.date(year + 1, 3, 2), tmp_path)
    for text, rule in (('holidays = ["x"]', "notice"), (f'notice = "n"\nholidays = ["{saturday}"]', "weekends are off"),
                       (f'notice = "n"\nworking_days = ["{weekday_off}"]', "weekend days worked"),
                       (f'notice = "n"\nholidays = ["{year - 1}-03-02"]', f"not in {year}"),
                       ('notice = "n"\nholidays = "2027-01-01"', "must be a list"), ("notice = ", "cannot read"),
                       (f'notice = "n"\nholidays = [{weekday_off}T00:00:00]', "is not a day")):
        path.write_text(text, "utf-8")
        with pytest.raises(NoticeFileError, match=rule):
            is_working_day(dt.date(year, 6, 1), tmp_path)
    path.unlink()
    path.mkdir()  # not a file at all
    with pytest.raises(NoticeFileError, match="cannot read"):
        is_working_day(dt.date(year, 6, 1), tmp_path)
