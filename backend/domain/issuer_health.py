"""How well an issuer answers, judged from renkei's own recent sync runs.

Every sync run leaves one outcome for its issuer:

- ``success``: the issuer answered and the sync went through;
- ``issuer_failure``: the issuer failed the way that says nothing about the account
  (5xx, a timeout, a refused connection, an answer renkei cannot read);
- ``account_failure``: the account's own trouble (a revoked grant, ``invalid_grant``,
  an ID/password refused). It is kept for the record but never counts against the
  issuer: a person who stopped a link on the member site does not make Amex unhealthy.

A rate-limited sync (429) leaves no outcome: the issuer answered, asking us to wait.

The window is the newest ``WINDOW_SIZE`` counted outcomes (successes and issuer
failures) no older than ``WINDOW_AGE``. Of it:

- ``down``: the newest ``DOWN_STREAK`` outcomes are all issuer failures;
- ``healthy``: fewer than ``DOWN_STREAK`` outcomes (too few to judge), a success rate
  of at least ``HEALTHY_RATE``, or the newest ``DOWN_STREAK`` outcomes all successes
  (the issuer recovered: the failures of the outage no longer hold it back);
- ``degraded``: anything else (some syncs fail, the issuer still answers).

While an issuer is down, scheduled syncs stop asking it for every account: one
probe sync goes through after ``probe_delay`` (doubling with the failure streak, up
to ``PROBE_MAX``), and its outcome decides whether the others follow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class OutcomeKind(StrEnum):
    SUCCESS = "success"
    ISSUER_FAILURE = "issuer_failure"
    ACCOUNT_FAILURE = "account_failure"


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"


WINDOW_SIZE = 20
WINDOW_AGE = dt.timedelta(hours=2)
DOWN_STREAK = 3
HEALTHY_RATE = 0.8
PROBE_FIRST = dt.timedelta(minutes=1)
PROBE_MAX = dt.timedelta(minutes=15)

# Error codes of the issuer port that say the issuer failed, not the account.
ISSUER_FAILURE_CODES = frozenset({"issuer_unavailable", "bad_payload", "invalid_cursor"})
# Neither the issuer's failure nor the account's: the issuer asked us to wait, or the
# fault was renkei's own.
UNCOUNTED_CODES = frozenset({"rate_limited", "internal_error"})


def outcome_of(error_code: str | None) -> OutcomeKind | None:
    """The outcome a sync run leaves for its issuer; None when it counts for nobody.

    Args:
        error_code: The run's error code (``None`` for a run that succeeded).
    """
    if error_code is None:
        return OutcomeKind.SUCCESS
    if error_code in ISSUER_FAILURE_CODES:
        return OutcomeKind.ISSUER_FAILURE
    if error_code in UNCOUNTED_CODES:
        return None
    return OutcomeKind.ACCOUNT_FAILURE


@dataclass(frozen=True)
class SyncOutcome:
    """One sync run's outcome for its issuer."""

    kind: OutcomeKind
    at: dt.datetime
    error_code: str | None = None


@dataclass(frozen=True)
class IssuerHealth:
    """An issuer's health as of ``as_of``.

    Attributes:
        issuer: ``amex`` or ``jcb``.
        state: healthy, degraded or down.
        success_rate: Successes over counted outcomes of the window; None when empty.
        samples: Counted outcomes in the window.
        failure_streak: Issuer failures in a row, newest first.
        failing_since: When the current failure streak began.
        last_outcome_at: The newest counted outcome's time.
        next_probe_at: While down, when the next probe sync may ask the issuer.
        as_of: When this was judged.
    """

    issuer: str
    state: HealthState
    success_rate: float | None
    samples: int
    failure_streak: int
    failing_since: dt.datetime | None
    last_outcome_at: dt.datetime | None
    next_probe_at: dt.datetime | None
    as_of: dt.datetime


def probe_delay(failure_streak: int) -> dt.timedelta:
    """How long a down issuer is left alone after its latest failure."""
    doublings = min(max(0, failure_streak - DOWN_STREAK), 16)  # past the ceiling anyway
    delay: dt.timedelta = PROBE_FIRST * (1 << doublings)
    return min(delay, PROBE_MAX)


def assess(
    issuer: str,
    outcomes: Sequence[SyncOutcome],
    now: dt.datetime,
    *,
    probe_claimed_until: dt.datetime | None = None,
) -> IssuerHealth:
    """Judge an issuer from its outcomes (any order; account failures are ignored).

    Args:
        issuer: The issuer judged.
        outcomes: Its recent outcomes.
        now: The time of judgement.
        probe_claimed_until: Until when a probe already under way holds the next one.
    """
    counted = sorted(
        (o for o in outcomes if o.kind != OutcomeKind.ACCOUNT_FAILURE and now - o.at <= WINDOW_AGE),
        key=lambda o: o.at,
        reverse=True,
    )[:WINDOW_SIZE]
    samples = len(counted)
    successes = sum(1 for o in counted if o.kind == OutcomeKind.SUCCESS)
    streak = 0
    for outcome in counted:
        if outcome.kind != OutcomeKind.ISSUER_FAILURE:
            break
        streak += 1
    newest = counted[:DOWN_STREAK]
    rate = successes / samples if samples else None
    if len(newest) == DOWN_STREAK and all(o.kind == OutcomeKind.ISSUER_FAILURE for o in newest):
        state = HealthState.DOWN
    elif (
        samples < DOWN_STREAK
        or (rate is not None and rate >= HEALTHY_RATE)
        or all(o.kind == OutcomeKind.SUCCESS for o in newest)
    ):
        state = HealthState.HEALTHY
    else:
        state = HealthState.DEGRADED
    last = counted[0].at if counted else None
    next_probe: dt.datetime | None = None
    if state == HealthState.DOWN and last is not None:
        next_probe = last + probe_delay(streak)
        if probe_claimed_until is not None and probe_claimed_until > next_probe:
            next_probe = probe_claimed_until
    return IssuerHealth(
        issuer=issuer,
        state=state,
        success_rate=rate,
        samples=samples,
        failure_streak=streak,
        failing_since=counted[streak - 1].at if streak else None,
        last_outcome_at=last,
        next_probe_at=next_probe,
        as_of=now,
    )


def should_sync_now(health: IssuerHealth, now: dt.datetime) -> bool:
    """Whether a scheduled sync may ask this issuer now.

    A healthy or degraded issuer is asked as usual. A down one is left alone until its
    next probe is due: retrying every account against an issuer that fails for
    everyone only adds to its load and fills the log with the same failure.
    """
    if health.state != HealthState.DOWN:
        return True
    return health.next_probe_at is None or now >= health.next_probe_at
