"""A token answer's consent end: read when the issuer gives it, refused when malformed."""

from __future__ import annotations

import pytest

from connectors.issuers.payloads import PayloadError, authlib_token, token_set


def test_the_consent_end_is_read_and_kept_for_authlib() -> None:
    answer = {
        "access_token": "at",
        "refresh_token": "rt",
        "expires_in": 900,
        "consent_expires_at": 1_800_000_000,
    }
    tokens = token_set(answer, now=1_700_000_000)
    assert tokens.consent_expires_at == 1_800_000_000
    assert tokens.expires_at == 1_700_000_900
    # authlib hands the dict back on refresh: the end survives a rotation without one.
    assert token_set(authlib_token(tokens)).consent_expires_at == 1_800_000_000


def test_an_issuer_naming_no_end_gives_none() -> None:
    assert token_set({"access_token": "at"}).consent_expires_at is None


@pytest.mark.parametrize("bad", ["1800000000", 1.5, True, [1]])
def test_a_malformed_end_is_a_payload_error(bad: object) -> None:
    with pytest.raises(PayloadError, match="consent_expires_at"):
        token_set({"access_token": "at", "consent_expires_at": bad})
