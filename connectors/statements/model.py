"""What an imported statement file becomes: cards, their rows, the file's summary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from backend.service.ports import IssuerName, IssuerStatement

Encoding = Literal["utf-8", "utf-8-sig", "cp932"]

RowKind = Literal["purchase", "adjustment", "payment"]
"""What a row of a statement file is.

``purchase``: a use of the card. ``adjustment``: a refund, cancellation or
correction of the card (Amex: a minus amount with a card number; MyJCB: 訂正サイン
or a minus amount), kept on the card with its sign. ``payment``: the payment of an
earlier bill (Amex 口座振替 / お支払い, with no card number): no use of any card.
"""

UserRelation = Literal["principal", "family"]


@dataclass(frozen=True)
class StatementEntry:
    """One data row of the file and where it came from.

    Attributes:
        line: 1-based row number in the file, so later checks (duplicates, a
            refused card) can point the person at the row.
        statement: The row as the issuer port's value type.
        correction: MyJCB 訂正サイン was set: the row corrects an earlier one. The
            amount is kept exactly as the file shows it; deciding what a
            correction cancels is the back end's job.
        payment_amount_jpy: MyJCB お支払い金額 (this month's part of an
            instalment or revolving payment); None for Amex or when empty.
        kind: Purchase, adjustment or payment of an earlier bill.
    """

    line: int
    statement: IssuerStatement
    correction: bool = False
    payment_amount_jpy: int | None = None
    kind: RowKind = "purchase"


@dataclass(frozen=True)
class CardGroup:
    """The rows of one card (Amex) or one card user (MyJCB).

    Attributes:
        card_ref: Amex: the masked number (``会員番号 #``), which tells basic and
            supplementary cards apart (R15). MyJCB: the user label
            (``本人 山田 太郎``), whitespace normalised.
        holder_name: The cardholder's name as the file shows it, if any.
        entries: The card's rows in file order.
        relation: MyJCB: the cardholder (本人) or a family member (家族); None for Amex.
        family_number: MyJCB: N of ``家族N``, the issuer's number of that family
            member's card; None when the file shows no number.

    The card-less rows of an Amex file (the payment of an earlier bill) form a
    group of their own with an empty ``card_ref``: they belong to no card.
    """

    card_ref: str
    holder_name: str | None
    entries: tuple[StatementEntry, ...]
    relation: UserRelation | None = None
    family_number: int | None = None

    @property
    def rows(self) -> tuple[IssuerStatement, ...]:
        """The card's statements in file order."""
        return tuple(entry.statement for entry in self.entries)


@dataclass(frozen=True)
class JcbSummary:
    """The summary lines above a MyJCB table (each None when its line is absent)."""

    payment_date: dt.date | None
    total_jpy: int | None


@dataclass(frozen=True)
class ParsedStatementFile:
    """A whole statement file, read completely or not at all.

    Attributes:
        issuer: Whose format the file is in.
        encoding: The encoding the bytes were decoded with.
        groups: One group per card (Amex) or card user (MyJCB), in order of first
            appearance. Never mixes two cards (R15).
        summary: The MyJCB summary lines; None for Amex files and MyJCB files
            without them.
    """

    issuer: IssuerName
    encoding: Encoding
    groups: tuple[CardGroup, ...]
    summary: JcbSummary | None = None

    @property
    def rows(self) -> tuple[IssuerStatement, ...]:
        """Every statement of the file, group after group."""
        return tuple(row for group in self.groups for row in group.rows)

    def group(self, card_ref: str) -> CardGroup | None:
        """The group of one card.

        Args:
            card_ref: The masked number (Amex) or user label (MyJCB).

        Returns:
            The group, or None when the file has no row for that card.
        """
        return next((g for g in self.groups if g.card_ref == card_ref), None)
