"""Issuer health: the window, the thresholds, and when a down issuer is asked again."""

from __future__ import annotations

import datetime as dt

from backend.domain.issuer_health import (
    PROBE_FIRST,
    PROBE_MAX,
    HealthState,
    OutcomeKind,
    SyncOutcome,
    assess,
    outcome_of,
    probe_delay,
    should_sync_now,
)

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
OK, FAIL, ACCOUNT = (
    OutcomeKind.SUCCESS,
    OutcomeKind.ISSUER_FAILURE,
    OutcomeKind.ACCOUNT_FAILURE,
)


def history(*kinds: OutcomeKind, step: dt.timedelta = dt.timedelta(minutes=1)) -> list[SyncOutcome]:
    """Outcomes oldest first, the last one a minute before NOW."""
    return [SyncOutcome(k, NOW - step * (len(kinds) - i)) for i, k in enumerate(kinds)]


def test_error_codes_are_told_apart_issuer_from_account() -> None:
    assert outcome_of(None) == OK
    assert outcome_of("issuer_unavailable") == FAIL
    assert outcome_of("bad_payload") == FAIL
    for own in ("reauth_required", "consent_revoked", "legacy_login_failed", "consent_refused"):
        assert outcome_of(own) == ACCOUNT
    assert outcome_of("rate_limited") is None  # the issuer answered: wait, not failing
    assert outcome_of("internal_error") is None  # renkei's own fault


def test_three_issuer_failures_in_a_row_are_down() -> None:
    health = assess("amex", history(OK, OK, OK, OK, FAIL, FAIL, FAIL), NOW)
    assert health.state == HealthState.DOWN
    assert health.failure_streak == 3
    assert health.failing_since == NOW - dt.timedelta(minutes=3)
    assert health.success_rate == 4 / 7


def test_account_failures_never_count_against_the_issuer() -> None:
    """Revoked grants and invalid_grant are the account's: many of them stay healthy."""
    health = assess("amex", history(OK, ACCOUNT, ACCOUNT, ACCOUNT, ACCOUNT), NOW)
    assert health.state == HealthState.HEALTHY
    assert health.samples == 1
    between = assess("amex", history(FAIL, FAIL, ACCOUNT, ACCOUNT, FAIL), NOW)
    assert between.state == HealthState.DOWN and between.failure_streak == 3


def test_some_failures_are_degraded_and_few_samples_are_healthy() -> None:
    assert assess("jcb", history(OK, FAIL, OK, FAIL, OK, FAIL), NOW).state == HealthState.DEGRADED
    assert assess("jcb", history(*[OK] * 9, FAIL), NOW).state == HealthState.HEALTHY  # 90 %
    assert assess("jcb", history(FAIL, FAIL), NOW).state == HealthState.HEALTHY  # too few
    empty = assess("jcb", [], NOW)
    assert empty.state == HealthState.HEALTHY and empty.success_rate is None


def test_recovery_is_healthy_once_the_newest_syncs_succeed() -> None:
    outage = [FAIL] * 10
    assert assess("amex", history(*outage, OK), NOW).state == HealthState.DEGRADED
    assert assess("amex", history(*outage, OK, OK, OK), NOW).state == HealthState.HEALTHY


def test_the_window_forgets_old_outcomes() -> None:
    old = history(FAIL, FAIL, FAIL, step=dt.timedelta(hours=1))  # 1, 2 and 3 hours ago
    assert assess("amex", old, NOW).samples == 2  # the one three hours ago is past the window
    many = history(*[FAIL] * 5, *[OK] * 20)
    health = assess("amex", many, NOW)
    assert health.samples == 20 and health.success_rate == 1.0


def test_a_down_issuer_is_asked_again_only_when_its_probe_is_due() -> None:
    health = assess("amex", history(FAIL, FAIL, FAIL), NOW)
    last = NOW - dt.timedelta(minutes=1)
    assert health.next_probe_at == last + PROBE_FIRST == NOW
    assert should_sync_now(health, NOW)
    assert not should_sync_now(health, NOW - dt.timedelta(seconds=1))
    longer = assess("amex", history(*[FAIL] * 5), NOW)
    assert longer.next_probe_at == last + 4 * PROBE_FIRST
    assert not should_sync_now(longer, NOW)
    claimed = assess("amex", history(FAIL, FAIL, FAIL), NOW, probe_claimed_until=NOW + PROBE_MAX)
    assert not should_sync_now(claimed, NOW + PROBE_FIRST)  # a probe is under way
    healthy = assess("amex", history(OK, FAIL, FAIL), NOW)
    assert should_sync_now(healthy, NOW) and healthy.next_probe_at is None


def test_the_probe_delay_doubles_up_to_its_ceiling() -> None:
    assert probe_delay(3) == PROBE_FIRST
    assert probe_delay(4) == 2 * PROBE_FIRST
    assert probe_delay(50) == probe_delay(10_000) == PROBE_MAX
