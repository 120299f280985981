"""Whose statements a file's rows are: the content of the account decides (R7, R15)."""

from __future__ import annotations

import datetime as dt

from backend.domain.statements import card_the_rows_belong_to, purchase_key

DAY = dt.date(2026, 11, 1)
ROWS = [purchase_key(DAY + dt.timedelta(days=n), 1_000 + n, f"店{n}") for n in range(4)]


def test_rows_already_held_for_another_card_are_that_cards() -> None:
    held = [("new", key) for key in ROWS]

    assert card_the_rows_belong_to("old", ROWS, held) == "new"


def test_rows_held_for_their_own_card_stay_there() -> None:
    held = [("old", key) for key in ROWS] + [("new", key) for key in ROWS]

    assert card_the_rows_belong_to("old", ROWS, held) is None


def test_a_few_same_purchases_on_another_card_are_two_purchases() -> None:
    # Two cards of one MyJCB ID buying the same coffee on the same day.
    held = [("family", ROWS[0])]

    assert card_the_rows_belong_to("basic", ROWS, held) is None


def test_width_and_case_of_the_merchant_do_not_matter() -> None:
    incoming = [purchase_key(DAY, 500, "ＡＭＡＺＯＮ．ＣＯ．ＪＰ")]
    held = [("new", purchase_key(DAY, 500, "amazon.co.jp"))]

    assert card_the_rows_belong_to("old", incoming, held) == "new"


def test_nothing_incoming_belongs_to_no_one() -> None:
    assert card_the_rows_belong_to("old", [], [("new", ROWS[0])]) is None
