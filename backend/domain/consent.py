"""When a consent (an issuer's grant behind an API link) ends, and when to warn of it.

An issuer's consent lasts a fixed time; after it the link stops and statements stop
arriving until the person consents again. renkei warns ahead, at 14, 7 and 1 days
before the end, each warning once: a link first seen 5 days before its end gets the
7-day warning only, never the 14-day one after it.
"""

from __future__ import annotations

import datetime as dt

WARNING_DAYS: tuple[int, ...] = (14, 7, 1)


def due_warning(expires_at: dt.datetime, now: dt.datetime, warned_days: int | None) -> int | None:
    """The warning to send now (its number of days), or None.

    Args:
        expires_at: When the consent ends.
        now: The present.
        warned_days: The warning already sent for this consent (its days), if any.

    Returns:
        The smallest of `WARNING_DAYS` whose moment has come, if it is nearer the end
        than the warning already sent; None once the consent has ended (that is a
        revocation, not a warning) or while no warning is due.
    """
    left = expires_at - now
    if left <= dt.timedelta(0):
        return None
    reached = [days for days in WARNING_DAYS if left <= dt.timedelta(days=days)]
    if not reached:
        return None
    days = min(reached)
    if warned_days is not None and warned_days <= days:
        return None
    return days


def days_left(expires_at: dt.datetime, now: dt.datetime) -> int:
    """Whole days until the end, counting a part of a day as a day (as a person says it)."""
    left = expires_at - now
    return max(0, left.days + (1 if left % dt.timedelta(days=1) else 0))


def from_epoch(value: object) -> dt.datetime | None:
    """An issuer's epoch-seconds time as an aware datetime; None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
