"""When a consent's warnings are due: 14, 7 and 1 days ahead, each once, never after the end."""

from __future__ import annotations

import datetime as dt

import pytest

from backend.domain.consent import days_left, due_warning, from_epoch

END = dt.datetime(2027, 1, 31, 15, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("before_end", "warned", "due"),
    [
        (20 * DAY, None, None),  # too early
        (14 * DAY + dt.timedelta(seconds=1), None, None),
        (14 * DAY, None, 14),
        (10 * DAY, 14, None),  # the 14-day warning was sent
        (7 * DAY, 14, 7),
        (5 * DAY, None, 7),  # first seen late: the nearer warning only, never the 14-day one
        (3 * DAY, 7, None),
        (DAY, 7, 1),
        (DAY / 2, 1, None),
        (DAY / 2, None, 1),
        (dt.timedelta(0), None, None),  # ended: a revocation, not a warning
        (-DAY, 7, None),
    ],
)
def test_due_warning(before_end: dt.timedelta, warned: int | None, due: int | None) -> None:
    assert due_warning(END, END - before_end, warned) == due


def test_days_left_counts_a_part_of_a_day_as_a_day() -> None:
    assert days_left(END, END - 14 * DAY) == 14
    assert days_left(END, END - DAY / 2) == 1
    assert days_left(END, END - (6 * DAY + DAY / 3)) == 7
    assert days_left(END, END + DAY) == 0


def test_from_epoch_takes_numbers_only() -> None:
    assert from_epoch(int(END.timestamp())) == END
    assert from_epoch("1800000000") is None
    assert from_epoch(True) is None
    assert from_epoch(10**20) is None
