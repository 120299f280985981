"""Times, amounts and words formatted in one place, by the language rendered in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from i18n import formats, text_of, values

SYNCED = "2026-12-01T19:47:03.181801+00:00"  # 04:47 on 2 December in Tokyo


def test_a_moment_is_in_japan_time_by_locale() -> None:
    assert formats.date_time(SYNCED, "ja") == "2026/12/02 4:47"
    assert formats.date_time(SYNCED, "en") == "Dec 2, 2026, 4:47\u202fAM"
    # A naive time is the database's UTC.
    assert formats.date_time("2026-12-01T19:47:03", "ja") == "2026/12/02 4:47"


def test_relative_times_read_naturally() -> None:
    now = datetime(2026, 12, 1, 22, 50, tzinfo=UTC)
    assert formats.relative(SYNCED, "ja", now) == "3時間前"
    assert formats.relative(SYNCED, "en", now) == "3 hours ago"
    assert formats.relative(now + timedelta(days=2), "ja", now) == "2日後"


def test_a_marked_moment_renders_with_how_long_ago_and_never_has_a_word() -> None:
    ja = text_of(values.moment(SYNCED), "ja")
    assert ja.startswith("2026/12/02 4:47（") and ja.endswith("前）")
    en = text_of(values.moment(SYNCED), "en")
    assert en.startswith("Dec 2, 2026, 4:47\u202fAM Japan time (") and en.endswith(" ago)")
    assert text_of(values.moment(None), "ja") == "まだありません"
    assert text_of(values.moment(""), "en") == "never"


def test_amounts_are_yen_with_grouping() -> None:
    assert text_of(values.amount(1234), "ja") == "¥1,234"
    assert text_of(values.amount(1234), "en") == "¥1,234"
    assert formats.amount(-5000, "ja") == "-¥5,000"


def test_words_for_statuses_and_values_without_words() -> None:
    assert text_of(values.word("words.account_status", "needs_reauth"), "ja") == "要再認証"
    assert text_of(values.word("words.sync_method", "legacy"), "en") == "ID and password"
    assert text_of(values.word("words.account_status", "brand_new"), "en") == "brand_new"
    assert text_of(1234567, "en") == "1,234,567"
