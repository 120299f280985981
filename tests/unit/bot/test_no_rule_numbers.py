"""What a person reads never names a rule by its number: the rules are ours, not theirs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from backend.api.messages import OUTCOMES, PAGE

ROOT = Path(__file__).resolve().parents[3]
RULE_NUMBER = re.compile(r"\bR\d{1,2}\b")


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []


def test_no_catalog_sentence_names_a_rule_number() -> None:
    for locale in ("ja", "en"):
        catalog = tomllib.loads((ROOT / "bot" / "catalog" / f"{locale}.toml").read_text())
        offending = [text for text in _strings(catalog) if RULE_NUMBER.search(text)]
        assert offending == [], locale


def test_the_consent_result_page_names_no_rule_number() -> None:
    offending = [text for text in _strings([PAGE, OUTCOMES]) if RULE_NUMBER.search(text)]
    assert offending == []
    template = (ROOT / "backend" / "api" / "templates" / "callback.html").read_text()
    assert "{{ rule }}" not in template
