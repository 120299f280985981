"""Dates, times, amounts and numbers in the reader's language: the one place, with Babel.

Times are shown in Japan time (Asia/Tokyo): the offices are Japanese businesses and the
issuers' statements are dated in Japan time, so a member reading English sees the same
clock as her colleague reading Japanese, with the zone said.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time, format_timedelta
from babel.numbers import format_currency, format_decimal

TOKYO = ZoneInfo("Asia/Tokyo")

# CLDR writes 「3 時間前」; Japanese text sets a number against its counter without a space.
_SPACED_NUMBER = re.compile(r"(?<=\d)[ \u00a0\u202f](?=[\u3040-\u30ff\u4e00-\u9fff])")


@cache
def _locale(locale: str) -> Locale:
    return Locale.parse(locale)


def parse_moment(value: datetime | str) -> datetime:
    """An aware datetime from a datetime or ISO 8601 text (naive means UTC, as stored)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def date_time(value: datetime | str, locale: str) -> str:
    """Date and time of day in Japan time, in the locale's medium pattern."""
    if isinstance(value, str):
        # Each turn's transcript line renders the step's words again: a moment stored as
        # text (a sync's, a consent's end) comes back often and always reads the same.
        return _date_time_of_text(value, locale)
    return _date_time(value, locale)


@lru_cache(maxsize=1024)
def _date_time_of_text(value: str, locale: str) -> str:
    return _date_time(value, locale)


def _date_time(value: datetime | str, locale: str) -> str:
    moment = parse_moment(value).astimezone(TOKYO)
    loc = _locale(locale)
    day = format_date(moment, "medium", locale=loc)
    clock = format_time(moment, "short", tzinfo=TOKYO, locale=loc)
    # The locale's own way of joining a date and a time ("{1} {0}", "{1}, {0}").
    joined: str = str(loc.datetime_formats["medium"]).replace("{1}", day).replace("{0}", clock)
    return joined


def date(value: datetime | str, locale: str) -> str:
    """The day it is in Japan at that moment, in the locale's medium pattern."""
    moment = parse_moment(value).astimezone(TOKYO)
    return str(format_date(moment, "medium", locale=_locale(locale)))


def relative(value: datetime | str, locale: str, now: datetime | None = None) -> str:
    """How long ago (or ahead) from now: 「3時間前」, "3 hours ago"."""
    delta = parse_moment(value) - (now or datetime.now(UTC))
    text = format_timedelta(delta, add_direction=True, locale=_locale(locale))
    return _SPACED_NUMBER.sub("", text) if locale == "ja" else text


def amount(value: int | float | str, locale: str, currency: str = "JPY") -> str:
    """A sum of money: ¥1,234 (the half-width sign in both languages, as statements print it)."""
    text = format_currency(value, currency, locale=_locale(locale))
    return text.replace("￥", "¥")


def number(value: int | float, locale: str) -> str:
    """A count with the locale's grouping: 1,234."""
    return format_decimal(value, locale=_locale(locale))


def plural_category(count: float, locale: str) -> str:
    """CLDR's plural category of ``count`` in ``locale`` (``one``, ``other``…)."""
    return str(_locale(locale).plural_form(abs(count)))
