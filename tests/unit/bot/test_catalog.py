"""The catalogs: the same keys in both languages, words for every refusal of the back end."""

from __future__ import annotations

import re

import pytest

from backend.domain import errors
from backend.service import ports
from backend.service.sync import InternalSyncError
from bot.catalog import MissingMessage, catalog, render
from bot.conversations import reply_text
from statemachine.replies import Reply


def _codes(base: type[errors.DomainError] | type[ports.IssuerError]) -> set[str]:
    found = {str(base.code)}
    subclass: type[errors.DomainError] | type[ports.IssuerError]
    for subclass in base.__subclasses__():
        found |= _codes(subclass)
    return found


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    ja, en = catalog("ja"), catalog("en")
    assert set(ja) == set(en)
    for key in ja:
        assert set(re.findall(r"{(\w+)}", ja[key])) == set(re.findall(r"{(\w+)}", en[key])), key


@pytest.mark.parametrize(
    "code",
    sorted(
        _codes(errors.DomainError)
        | _codes(ports.IssuerError)
        | {InternalSyncError.code, "validation_error", "secret_unreadable"}
    ),
)
def test_every_back_end_code_has_words(code: str) -> None:
    for locale in ("ja", "en"):
        assert render(f"refusal.{code}", locale, {"code": code, "line": 1, "issuer": "amex"})


def test_an_unknown_refusal_is_said_plainly_and_a_missing_key_is_a_bug() -> None:
    text = reply_text(Reply("refusal.brand_new_code", {}), "en")
    assert "brand_new_code" in text
    with pytest.raises(MissingMessage):
        reply_text(Reply("switch_to_api.no_such_key", {}), "en")
