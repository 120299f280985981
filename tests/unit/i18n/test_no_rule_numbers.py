"""What a person reads never names a rule by its number: the rules are ours, not theirs.

Rule numbers belong to the API's error bodies (``rule``) and to the code's comments.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from i18n import LOCALES, catalog

ROOT = Path(__file__).resolve().parents[3]
RULE_NUMBER = re.compile(r"\bR\d{1,2}\b")
TEMPLATES = sorted(
    path for folder in ("backend", "bot", "sandbox") for path in (ROOT / folder).rglob("*.html")
)


@pytest.mark.parametrize("locale", LOCALES)
def test_no_catalog_message_names_a_rule_number(locale: str) -> None:
    offending = {key: text for key, text in catalog(locale).items() if RULE_NUMBER.search(text)}
    assert offending == {}


def test_the_templates_are_found() -> None:
    names = {path.name for path in TEMPLATES}
    assert {"callback.html", "start.html", "chat.html", "consent.html"} <= names


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_template_names_a_rule_number(template: Path) -> None:
    html = template.read_text()
    assert RULE_NUMBER.findall(html) == []
    # The consent result page once printed the refusal's rule beside its words.
    assert not re.search(r"{{[^}]*\brule\b[^}]*}}", html)
