"""Values a message formats by the reader's language: moments, amounts, counts, words.

A reply is stored as a catalog key with parameters and rendered again in whatever
language the conversation is read in (a language toggle redraws the whole log), so a
time or an amount cannot be turned into words when the reply is made. Instead the
parameter holds a small JSON-safe marker made here, and ``i18n.render`` formats it
(``i18n.formats``) for the language it renders in. Standard library only: flows and
the back end make markers without importing Babel.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

MARK = "$i18n"

MOMENT = "moment"
AMOUNT = "amount"
WORD = "word"


def moment(value: datetime | str | None) -> dict[str, Any]:
    """A point in time (aware datetime or ISO 8601 text); none at all reads "never"."""
    if value is None or value == "":
        return word("words.moment", "never")
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return {MARK: MOMENT, "value": text}


def amount(yen: int | float | str, currency: str = "JPY") -> dict[str, Any]:
    """A sum of money, by default in yen."""
    return {MARK: AMOUNT, "value": yen, "currency": currency}


def word(group: str, value: str | None) -> dict[str, Any]:
    """A value the catalog has words for at ``<group>.<value>`` (``words.account_status``,
    ``refusal``…); a value it has none for is shown as it is."""
    return {MARK: WORD, "group": group, "value": "" if value is None else str(value)}


def is_marker(value: object) -> bool:
    return isinstance(value, dict) and MARK in value
