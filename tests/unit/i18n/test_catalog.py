"""The one catalog: the same keys and placeholders in both languages, words for every
refusal of the back end, plural forms by CLDR's rules, and no words left in the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from backend.domain import errors, model
from backend.service import ports
from backend.service.sync import InternalSyncError
from bot.conversations import reply_text
from i18n import LOCALES, MissingMessage, catalog, placeholders, render
from statemachine.replies import Reply

ROOT = Path(__file__).resolve().parents[3]
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")


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
        # Parsing every entry also proves each plural has its "other" branch.
        assert placeholders(ja[key]) == placeholders(en[key]), key


def test_placeholders_inside_plural_branches_count() -> None:
    assert placeholders("{a} {n, plural, one {# {b}} other {# {b}s}}") == {"a", "n", "b"}


@pytest.mark.parametrize(
    "code",
    sorted(
        _codes(errors.DomainError)
        | _codes(ports.IssuerError)
        | {InternalSyncError.code, "validation_error", "secret_unreadable"}
    ),
)
def test_every_back_end_code_has_words(code: str) -> None:
    for locale in LOCALES:
        assert render(f"refusal.{code}", locale, {"code": code, "line": 1, "issuer": "amex"})


@pytest.mark.parametrize(
    ("group", "enum"),
    [
        ("account_status", model.AccountStatus),
        ("sync_method", model.SyncMethod),
        ("issuer", model.Issuer),
        ("role", model.Role),
        ("api_account_name", model.Issuer),
    ],
)
def test_every_status_method_issuer_and_role_has_a_word(group: str, enum: type[object]) -> None:
    for value in enum:  # type: ignore[attr-defined]
        for locale in LOCALES:
            assert render(f"words.{group}.{value}", locale) != ""


def test_an_unknown_refusal_is_said_plainly_and_a_missing_key_is_a_bug() -> None:
    text = reply_text(Reply("refusal.brand_new_code", {}), "en")
    assert "brand_new_code" in text
    with pytest.raises(MissingMessage):
        reply_text(Reply("switch_to_api.no_such_key", {}), "en")


def test_plural_forms_follow_each_language() -> None:
    assert render("start_page.attempts_left", "en", {"n": 1}) == "1 try left"
    assert render("start_page.attempts_left", "en", {"n": 4}) == "4 tries left"
    # Japanese has one form; the count is written with the locale's grouping.
    assert render("start_page.attempts_left", "ja", {"n": 1234}) == "残りの入力回数: 1,234回"


# The modules whose words moved into the catalog: no sentence of their own is left there.
CLEANED = [
    "backend/api/routers/oauth.py",
    "backend/service/linking.py",
    "bot/slack/blocks.py",
]
TEMPLATES = ["backend/api/templates/callback.html", "backend/api/templates/start.html"]


def _literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize("module", CLEANED)
def test_no_user_facing_literal_is_left_in_the_cleaned_modules(module: str) -> None:
    for literal in _literals(ROOT / module):
        assert not CJK.search(literal), (module, literal)
        assert literal not in {"American Express API", "JCB API"}, (module, literal)


@pytest.mark.parametrize("template", TEMPLATES)
def test_templates_take_every_word_from_the_catalog(template: str) -> None:
    html = (ROOT / template).read_text()
    # What is left once Jinja's expressions and statements, the tags and the style go.
    text = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    text = re.sub(r"{{.*?}}|{%.*?%}|<[^>]*>", "", text, flags=re.S)
    assert re.findall(r"[^\s/]+", text) == []
