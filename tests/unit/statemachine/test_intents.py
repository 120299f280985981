"""Free text understood in Japanese and English by keywords."""

from __future__ import annotations

import pytest

from statemachine import intents
from statemachine.flows import ALL_FLOWS

# The menu's words for each flow live in the flow's own module.
TABLE = intents.flow_table(ALL_FLOWS)


@pytest.mark.parametrize(
    ("text", "flow"),
    [
        ("API方式に切り替えたい", "switch_to_api"),
        ("I want to switch to the API", "switch_to_api"),
        ("JCBカードをアップグレードしました", "jcb_card_change"),
        ("my JCB card was downgraded", "jcb_card_change"),
        ("明細が届かない", "status"),
        ("statements are missing", "status"),
        ("追加カードを同期したい", "supplementary_card"),
        ("アメックスの口座を削除したい", "amex_revoke"),
        ("複数の事業所で同じカードを使っています", "multi_office"),
        ("新しく口座を登録したい", "register"),
    ],
)
def test_flow_intents(text: str, flow: str) -> None:
    assert intents.flow_intent(text, TABLE) == flow


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("ヘルプ", "help"),
        ("ＨＥＬＰ", "help"),  # full-width folds
        ("最初からやり直したい", "restart"),
        ("キャンセルします", "cancel"),
        ("担当者と話したい", "handoff"),
        ("English please", "lang:en"),
        ("日本語でお願いします", "lang:ja"),
    ],
)
def test_global_intents(text: str, intent: str) -> None:
    assert intents.global_intent(text) == intent


def test_english_keywords_are_whole_words_only() -> None:
    assert intents.yes_no("ok") == "yes"
    assert intents.yes_no("book") is None
    assert intents.global_intent("I have a personal card") is None  # not "person"
    assert intents.flow_intent("こんにちは", TABLE) is None


def test_questions_name_their_procedure() -> None:
    assert intents.flow_intent("明細が届かないのはなぜ？", TABLE) == "status"
    assert intents.flow_intent("How do I switch to API?", TABLE) == "switch_to_api"
    assert intents.global_intent("?") == "help"


def test_only_a_bare_command_word_interrupts_a_typed_answer() -> None:
    assert intents.exact_global_intent("戻る") == "back"
    assert intents.exact_global_intent("back") == "back"
    assert intents.exact_global_intent("backup-id-42") is None
