"""Statement identity across sync methods.

Legacy (scraped) lines and uploaded files carry no issuer transaction id, while
API lines do. A purchase is the same purchase whichever way it arrived when card,
use date, amount and merchant agree; when an account switches to API the lines
already fetched are matched by this natural key and never duplicated.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TypeVar

NaturalKey = tuple[str, dt.date, int, str]

T = TypeVar("T")


def normalize_merchant(merchant: str) -> str:
    """Fold width (NFKC), case and runs of spaces, as issuers render names differently."""
    folded = unicodedata.normalize("NFKC", merchant).casefold()
    return " ".join(folded.split())


def natural_key(card_id: str, use_date: dt.date, amount_jpy: int, merchant: str) -> NaturalKey:
    return (card_id, use_date, amount_jpy, normalize_merchant(merchant))


def surplus_of_batch(
    incoming: Iterable[tuple[NaturalKey, T]], existing_counts: Mapping[NaturalKey, int]
) -> list[T]:
    """The incoming lines that are not yet stored.

    Two identical purchases on one day are two lines: a batch that holds a key k
    times while the account holds it e times adds the last k - e of them.
    """
    seen: Counter[NaturalKey] = Counter()
    fresh: list[T] = []
    for key, item in incoming:
        seen[key] += 1
        if seen[key] > existing_counts.get(key, 0):
            fresh.append(item)
    return fresh


PurchaseKey = tuple[dt.date, int, str]
"""A natural key without its card: what a statement file row shows of a purchase."""


def purchase_key(use_date: dt.date, amount_jpy: int, merchant: str) -> PurchaseKey:
    return (use_date, amount_jpy, normalize_merchant(merchant))


def card_the_rows_belong_to(
    target_card_id: str,
    incoming: Iterable[PurchaseKey],
    stored: Iterable[tuple[str, PurchaseKey]],
) -> str | None:
    """The other card of the account whose statements these file rows are, if any.

    A file downloaded for one card and uploaded for another (the new card's file in
    the old card's step after a card change, R7) would store every purchase twice,
    once on each card. Its rows are recognised by content: when at least half of
    them are already stored for one other card, and more than for the target card,
    they are that card's. Fewer matches are what two cards buying the same thing on
    the same day look like, and stay two purchases.

    Args:
        target_card_id: The card the rows would be stored for.
        incoming: The rows' keys, one per row (repeats are real repeats).
        stored: ``(card id, key)`` of the statements the account holds on those days.

    Returns:
        That other card's id, or None when the rows may go to the target card.
    """
    wanted = Counter(incoming)
    total = sum(wanted.values())
    if not total:
        return None
    held: dict[str, Counter[PurchaseKey]] = {}
    for card_id, key in stored:
        held.setdefault(card_id, Counter())[key] += 1
    matched = {card_id: sum((wanted & keys).values()) for card_id, keys in held.items()}
    own = matched.get(target_card_id, 0)
    best = max(
        ((n, card_id) for card_id, n in matched.items() if card_id != target_card_id),
        default=(0, ""),
    )
    if best[0] > own and best[0] * 2 >= total:
        return best[1]
    return None
