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
