"""Deterministic statements: what a card bought, and how its statements changed over time.

A card never stores its statements. Statement ``i`` of card ``c`` is derived from a
hash of ``(c, i)`` (merchant, amount, foreign amount) and from the card's date
segments (use date), so a card with a million statements costs a few objects.

What changed and when is a short list of range events per card: indices
``[start, stop)`` were added (pending), confirmed, or removed (a cancelled pending
statement). A sync window compares two snapshots ``(seq, time)`` of that list:
an event is in effect at a snapshot when it was made before it (``seq``) and has
become visible by then (``time``; JCB confirmations become visible late, R9).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

EventKind = Literal["add", "confirm", "remove"]
Observed = Literal["absent", "pending", "confirmed", "gone"]
Category = Literal["added", "modified", "removed"]


@dataclass(frozen=True)
class Merchant:
    """A place cards are used at, with a plausible amount range."""

    name: str
    low: int
    high: int
    # Foreign merchants bill in USD cents; the yen amount follows from a rate.
    currency: str | None = None


MERCHANTS: tuple[Merchant, ...] = (
    Merchant("Amazon.co.jp", 980, 38_000),
    Merchant("JR東日本", 170, 14_500),
    Merchant("スターバックス", 380, 2_400),
    Merchant("AWS", 500, 32_000, "USD"),
    Merchant("GitHub", 400, 2_100, "USD"),
    Merchant("ZOOM.US", 1_499, 2_999, "USD"),
    Merchant("ヨドバシカメラ", 1_200, 120_000),
    Merchant("セブン-イレブン", 120, 3_000),
    Merchant("ローソン", 110, 2_500),
    Merchant("ファミリーマート", 100, 2_200),
    Merchant("ANA", 9_800, 68_000),
    Merchant("日本航空", 9_800, 72_000),
    Merchant("日本交通タクシー", 730, 9_800),
    Merchant("アスクル", 1_500, 45_000),
    Merchant("モノタロウ", 800, 30_000),
    Merchant("ENEOS", 2_000, 9_000),
    Merchant("ソフトバンク", 3_300, 12_000),
    Merchant("楽天市場", 900, 25_000),
    Merchant("東横イン", 6_800, 14_000),
    Merchant("ドトールコーヒー", 250, 1_500),
    Merchant("丸善ジュンク堂書店", 600, 9_000),
    Merchant("Google Workspace", 680, 13_600),
    Merchant("ADOBE SYSTEMS", 1_078, 7_780),
    Merchant("Slack", 875, 5_000, "USD"),
)


@dataclass(frozen=True)
class Purchase:
    """One card use, identical in the API, the legacy JSON and the CSV downloads."""

    transaction_id: str
    card_id: str
    index: int
    use_date: date
    posted_date: date
    merchant: str
    amount_jpy: int
    foreign_amount: str | None
    foreign_currency: str | None
    rate: str | None


def _digest(card_id: str, index: int) -> bytes:
    return hashlib.sha256(f"{card_id}:{index}".encode()).digest()


def purchase(card_id: str, index: int, use_date: date) -> Purchase:
    """The purchase behind statement ``index`` of ``card_id``.

    Args:
        card_id: The card.
        index: The statement's position among the card's statements (0-based).
        use_date: Its use date, from the card's ledger.

    Returns:
        The same purchase every time for the same arguments.
    """
    digest = _digest(card_id, index)
    pick = int.from_bytes(digest[0:4], "big")
    amount_seed = int.from_bytes(digest[4:8], "big")
    rate_seed = int.from_bytes(digest[8:10], "big")
    merchant = MERCHANTS[pick % len(MERCHANTS)]
    posted = use_date + timedelta(days=1 + digest[10] % 3)
    if merchant.currency is None:
        # Whole tens of yen, as most shop prices are.
        amount = merchant.low + amount_seed % (merchant.high - merchant.low + 1)
        return Purchase(
            transaction_id=f"txn_{digest[12:24].hex()}",
            card_id=card_id,
            index=index,
            use_date=use_date,
            posted_date=posted,
            merchant=merchant.name,
            amount_jpy=max(10, amount - amount % 10),
            foreign_amount=None,
            foreign_currency=None,
            rate=None,
        )
    cents = merchant.low + amount_seed % (merchant.high - merchant.low + 1)
    rate_hundredths = 14_000 + rate_seed % 2_000
    return Purchase(
        transaction_id=f"txn_{digest[12:24].hex()}",
        card_id=card_id,
        index=index,
        use_date=use_date,
        posted_date=posted,
        merchant=merchant.name,
        amount_jpy=round(cents * rate_hundredths / 10_000),
        foreign_amount=f"{cents // 100}.{cents % 100:02d}",
        foreign_currency=merchant.currency,
        rate=f"{rate_hundredths // 100}.{rate_hundredths % 100:02d}",
    )


@dataclass(frozen=True)
class RangeEvent:
    """Indices ``[start, stop)`` of one card were added, confirmed or removed."""

    kind: EventKind
    start: int
    stop: int
    seq: int
    at: float
    visible_at: float


@dataclass(frozen=True)
class DateSegment:
    """Indices ``[start, stop)`` spread evenly over ``first_day``..``last_day``."""

    start: int
    stop: int
    first_day: date
    last_day: date


@dataclass(frozen=True)
class Snapshot:
    """A point of the change history: events up to ``seq`` visible by ``time``."""

    seq: int
    time: float


@dataclass(frozen=True)
class ChangeRun:
    """Consecutive indices of one card that fall in the same category of a window."""

    start: int
    stop: int
    category: Category
    after: Observed


class LedgerError(ValueError):
    """A change the ledger cannot make (e.g. removing a confirmed statement)."""


@dataclass
class StatementLedger:
    """The statements of one card: date segments plus range events."""

    segments: list[DateSegment] = field(default_factory=list)
    events: list[RangeEvent] = field(default_factory=list)
    total: int = 0
    confirmed_upto: int = 0
    removed: list[tuple[int, int]] = field(default_factory=list)

    def use_date(self, index: int) -> date:
        """The use date of statement ``index``."""
        starts = [segment.start for segment in self.segments]
        segment = self.segments[bisect.bisect_right(starts, index) - 1]
        span = (segment.last_day - segment.first_day).days
        steps = max(segment.stop - segment.start - 1, 1)
        return segment.first_day + timedelta(days=(index - segment.start) * span // steps)

    def is_removed(self, index: int) -> bool:
        """Whether statement ``index`` was cancelled."""
        return any(start <= index < stop for start, stop in self.removed)

    def live_indices_from(self, start: int) -> int:
        """How many statements at ``start`` or later are not removed."""
        count = self.total - start
        for lo, hi in self.removed:
            count -= max(0, min(hi, self.total) - max(lo, start))
        return count

    def live_count(self) -> int:
        """How many statements the card has (cancelled ones excluded)."""
        return self.live_indices_from(0)

    def pending_count(self) -> int:
        """How many statements are still pending."""
        return self.live_indices_from(self.confirmed_upto)

    def add(
        self, count: int, *, seq: int, at: float, first_day: date, last_day: date
    ) -> tuple[int, int]:
        """Append ``count`` pending statements used between two days; returns their range."""
        start, stop = self.total, self.total + count
        if count <= 0:
            return start, start
        self.segments.append(DateSegment(start, stop, first_day, last_day))
        self.events.append(RangeEvent("add", start, stop, seq, at, at))
        self.total = stop
        return start, stop

    def confirm(self, upto: int, *, seq: int, at: float, visible_at: float) -> tuple[int, int]:
        """Confirm every pending statement below ``upto``; returns the confirmed range."""
        start, stop = self.confirmed_upto, min(upto, self.total)
        if stop <= start:
            return start, start
        self.events.append(RangeEvent("confirm", start, stop, seq, at, visible_at))
        self.confirmed_upto = stop
        return start, stop

    def remove_last(self, count: int, *, seq: int, at: float) -> None:
        """Cancel the last ``count`` statements, which must all be pending.

        Raises:
            LedgerError: Fewer than ``count`` statements are pending.
        """
        if count <= 0:
            return
        if count > self.pending_count():
            raise LedgerError("only pending statements can be removed")
        # Walk down from the top over live indices; removed indices are never reused.
        stop = self.total
        remaining = count
        while remaining > 0:
            while self.is_removed(stop - 1):
                stop -= 1
            lo = stop
            while remaining > 0 and lo > 0 and not self.is_removed(lo - 1):
                lo -= 1
                remaining -= 1
            self.removed.append((lo, stop))
            self.events.append(RangeEvent("remove", lo, stop, seq, at, at))
            stop = lo

    def boundary_for_pending(self, pending: int) -> int:
        """The index below which everything is confirmed when the last ``pending`` are not."""
        boundary = self.total
        remaining = pending
        while remaining > 0 and boundary > 0:
            boundary -= 1
            if not self.is_removed(boundary):
                remaining -= 1
        return boundary

    def runs(self) -> list[tuple[int, int]]:
        """Elementary runs: maximal index ranges no event boundary cuts."""
        bounds = sorted({b for ev in self.events for b in (ev.start, ev.stop)})
        return [(lo, hi) for lo, hi in itertools.pairwise(bounds) if lo < hi]


def _in_effect(event: RangeEvent, snapshot: Snapshot | None, delayed: bool) -> bool:
    if snapshot is None:
        return False
    when = event.visible_at if delayed else event.at
    return event.seq <= snapshot.seq and when <= snapshot.time


def observe_run(
    ledger: StatementLedger,
    run: tuple[int, int],
    snapshot: Snapshot | None,
    *,
    delayed: bool,
    show_pending: bool,
) -> Observed:
    """What a reader sees of an elementary run of statements at a snapshot.

    Args:
        ledger: The card's ledger.
        run: An elementary run from `StatementLedger.runs`.
        snapshot: The snapshot; ``None`` is the beginning of time.
        delayed: Whether confirmations count only once visible (JCB API, R9).
        show_pending: Whether pending statements are shown at all.

    Returns:
        ``absent``, ``pending``, ``confirmed`` or ``gone`` (cancelled).
    """
    added = confirmed = removed = False
    lo, hi = run
    for event in ledger.events:
        if event.start <= lo and hi <= event.stop and _in_effect(event, snapshot, delayed):
            if event.kind == "add":
                added = True
            elif event.kind == "confirm":
                confirmed = True
            else:
                removed = True
    if removed:
        return "gone"
    if confirmed:
        return "confirmed"
    if added and show_pending:
        return "pending"
    return "absent"


def _classify(before: Observed, after: Observed) -> Category | None:
    visible = ("pending", "confirmed")
    if after in visible and before not in visible:
        return "added"
    if before == "pending" and after == "confirmed":
        return "modified"
    if before in visible and after not in visible:
        return "removed"
    return None


def window_changes(
    ledger: StatementLedger,
    since: Snapshot | None,
    until: Snapshot,
    *,
    delayed: bool,
    show_pending: bool,
) -> list[ChangeRun]:
    """What changed for a reader between two snapshots, as runs of indices.

    Args:
        ledger: The card's ledger.
        since: The snapshot of the previous sync, or ``None`` for a first sync.
        until: The snapshot of this sync.
        delayed: Whether JCB's confirmation delay applies (R9).
        show_pending: Whether the reader sees pending statements.

    Returns:
        Runs in index order; a statement appears in at most one run.
    """
    changes: list[ChangeRun] = []
    for run in ledger.runs():
        before = observe_run(ledger, run, since, delayed=delayed, show_pending=show_pending)
        after = observe_run(ledger, run, until, delayed=delayed, show_pending=show_pending)
        category = _classify(before, after)
        if category is not None:
            changes.append(ChangeRun(run[0], run[1], category, after))
    return changes


def confirmed_runs(ledger: StatementLedger, now: Snapshot) -> list[tuple[int, int]]:
    """Index runs the member website shows as confirmed (no API delay)."""
    return [
        run
        for run in ledger.runs()
        if observe_run(ledger, run, now, delayed=False, show_pending=False) == "confirmed"
    ]
