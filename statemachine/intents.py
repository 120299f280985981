"""Free text understood by keywords, in Japanese and English (no network model).

Matching is on NFKC-folded, case-folded text, so full-width and half-width forms,
and upper and lower case, are the same. More specific intents are tried first.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Protocol


class _AskedFor(Protocol):
    """A flow as the menu's words find it (its keywords live in its own module)."""

    @property
    def id(self) -> str: ...

    @property
    def keywords(self) -> tuple[str, ...]: ...

    @property
    def keyword_rank(self) -> int: ...


IntentTable = tuple[tuple[str, tuple[str, ...]], ...]

# Said anywhere: the engine handles them whatever the step.
GLOBAL_INTENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "handoff",
        (
            "human",
            "person",
            "operator",
            "agent",
            "talk to",
            "担当者",
            "オペレーター",
            "人と話",
            "問い合わせ",
            "サポートに",
        ),
    ),
    ("restart", ("start over", "restart", "最初から", "やり直")),
    ("cancel", ("cancel", "quit", "stop this", "キャンセル", "やめる", "やめます", "中止")),
    ("back", ("go back", "back", "戻る", "もどる", "前へ", "前に戻")),
    ("help", ("help", "ヘルプ", "使い方", "わからない", "分からない")),
    ("menu", ("menu", "メニュー", "main menu")),
    ("lang:en", ("english", "英語")),
    ("lang:ja", ("japanese", "日本語", "nihongo")),
)

YES_NO: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "yes",
        (
            "yes",
            "yeah",
            "sure",
            "ok",
            "okay",
            "はい",
            "ええ",
            "うん",
            "お願いします",
            "お願い",
            "そうです",
            "done",
            "できました",
            "完了",
            "済み",
        ),
    ),
    ("no", ("no", "nope", "not yet", "いいえ", "いや", "まだ", "しない", "違う")),
)


def fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _match(text: str, table: IntentTable) -> str | None:
    folded = fold(text)
    if not folded:
        return None
    for intent, keywords in table:
        for keyword in keywords:
            key = fold(keyword)
            # English keywords are whole words ("ok" is not in "book", "person" not in
            # "personal"); Japanese has no spaces, so a keyword may stand anywhere.
            if key.isascii():
                # an inflected form counts too: "downgraded", "switching"
                pattern = rf"(?<![a-z0-9]){re.escape(key)}(?:s|es|d|ed|ing)?(?![a-z0-9])"
                if re.search(pattern, folded):
                    return intent
            elif key in folded:
                return intent
    return None


def global_intent(text: str) -> str | None:
    if fold(text) in ("?", "？"):
        return "help"
    return _match(text, GLOBAL_INTENTS)


def exact_global_intent(text: str) -> str | None:
    """A command only when the whole text is one of its words."""
    folded = fold(text).strip("。.!！")
    for intent, keywords in GLOBAL_INTENTS:
        if any(folded == fold(keyword) for keyword in keywords):
            return intent
    return None


def flow_table(flows: Iterable[_AskedFor]) -> IntentTable:
    """Which procedure a person asks for, from the flows' own keywords: more specific
    first (a lower ``keyword_rank``)."""
    ranked = sorted(flows, key=lambda f: f.keyword_rank)
    return tuple((f.id, f.keywords) for f in ranked if f.keywords)


def flow_intent(text: str, table: IntentTable) -> str | None:
    return _match(text, table)


def yes_no(text: str) -> str | None:
    return _match(text, YES_NO)
