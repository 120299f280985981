"""Email addresses and display names as real people have them."""

from __future__ import annotations

import pytest

from backend.domain.identity import InvalidIdentity, normalize_email, normalize_name


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("Owner@Example.com", "owner@example.com"),
        ("山田@example.jp", "山田@example.jp"),
        ("taro@例え.テスト", "taro@例え.テスト"),
        ("a+tag@xn--r8jz45g.jp", "a+tag@xn--r8jz45g.jp"),
        ("  spaced@example.com ", "spaced@example.com"),
    ],
)
def test_real_addresses_are_kept_in_their_compared_form(given: str, kept: str) -> None:
    assert normalize_email(given) == kept


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "nobody",
        "@example.com",
        "owner@",
        "a\x00b@example.com",
        "a b@example.com",
        "a" * 65 + "@example.com",
        "a@" + "b" * 250 + ".jp",
        "a@-x.jp",
        "a@x..jp",
        "a@x_y.jp",
        ".a@x.jp",
        "a..b@x.jp",
        "a@b@x.jp",
        '"q"@x.jp',
        "\u200bowner@example.com",
    ],
)
def test_anything_else_is_refused(bad: str) -> None:
    with pytest.raises(InvalidIdentity):
        normalize_email(bad)


def test_names_are_nfc_and_hide_nothing() -> None:
    assert normalize_name(" \u30ab\u3099ス ") == "ガス"
    assert normalize_name("山田 商店（本店）") == "山田 商店（本店）"
    for bad in ("a\x00", "a\x1b[31m", "a\u202eb", "a\u2066b", "a\u200bb", "a\ufeff", "a\u2029b"):
        with pytest.raises(InvalidIdentity):
            normalize_name(bad)
