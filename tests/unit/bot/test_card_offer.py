"""A discovered card's button: which flow it starts and which answers it plays (R15, R9)."""

from __future__ import annotations

from bot.slack.notifications import card_offer_steps


def test_a_supplementary_card_starts_on_its_basic_account_then_the_card() -> None:
    data = {"offer": "supplementary_card", "card_id": "c2", "basic_account_id": "a1"}
    assert card_offer_steps(data) == ["supplementary_card", "pick:a1", "card:c2"]


def test_without_a_basic_account_the_supplementary_flow_asks_for_it() -> None:
    assert card_offer_steps({"offer": "supplementary_card", "card_id": "c2"}) == [
        "supplementary_card"
    ]


def test_an_amex_card_is_registered_with_that_card_chosen() -> None:
    data = {"offer": "register", "issuer": "amex", "card_id": "c3"}
    assert card_offer_steps(data) == ["register", "issuer:amex", "card:c3"]


def test_a_jcb_card_is_registered_by_its_myjcb_id() -> None:
    data = {"offer": "register", "issuer": "jcb", "card_id": "c4"}
    assert card_offer_steps(data) == ["register", "issuer:jcb"]
