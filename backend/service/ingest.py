"""Writing statements into an account without losing or doubling any (R2 matching, R15)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from backend.domain.model import (
    Account,
    NewStatement,
    Statement,
    StatementSource,
    StatementStatus,
)
from backend.domain.statements import NaturalKey, natural_key, surplus_of_batch
from backend.service.ports import IssuerStatement
from backend.service.uow import Repository


@dataclass
class IngestCounts:
    added: int = 0
    modified: int = 0
    removed: int = 0


def _new_row(
    account: Account, card_id: str, line: IssuerStatement, source: StatementSource, now: dt.datetime
) -> NewStatement:
    return NewStatement(
        account_id=account.id,
        card_id=card_id,
        issuer_txn_id=line.transaction_id,
        use_date=line.use_date,
        posted_date=line.posted_date,
        merchant=line.merchant,
        amount_jpy=line.amount_jpy,
        foreign_amount=line.foreign_amount,
        foreign_currency=line.foreign_currency,
        status=StatementStatus(line.status),
        source=source,
        holder_name=line.holder_name,
        created_at=now,
        updated_at=now,
    )


def _apply(row: NewStatement, line: IssuerStatement, now: dt.datetime) -> bool:
    """Bring a stored row up to date with the issuer's line; True when anything changed."""
    changes = {
        "issuer_txn_id": line.transaction_id or row.issuer_txn_id,
        "posted_date": line.posted_date or row.posted_date,
        "status": StatementStatus(line.status),
        "merchant": line.merchant,
        "amount_jpy": line.amount_jpy,
        "foreign_amount": line.foreign_amount,
        "foreign_currency": line.foreign_currency,
    }
    changed = False
    for name, value in changes.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    if changed:
        row.updated_at = now
    return changed


async def ingest_api_lines(
    repo: Repository,
    account: Account,
    lines: Sequence[tuple[str, IssuerStatement]],
    removed_ids: Sequence[str],
    now: dt.datetime,
) -> IngestCounts:
    """Apply one page of API changes; ``lines`` pairs each line with its card id.

    A line already stored under its transaction id is updated (pending → confirmed
    replaces itself); a line that legacy sync or an upload stored without an id is
    adopted by natural key; only the rest is inserted.
    """
    counts = IngestCounts()
    fresh: list[NewStatement] = []
    txn_ids = [line.transaction_id for _, line in lines if line.transaction_id]
    # Stored rows, and the page's new ones (a line may come twice in one page).
    by_txn: dict[str, NewStatement] = dict(await repo.statements_by_txn_ids(account.id, txn_ids))
    unmatched = [(cid, line) for cid, line in lines if line.transaction_id not in by_txn]
    orphans: dict[NaturalKey, list[Statement]] = defaultdict(list)
    if unmatched:
        candidates = await repo.statements_matching(
            account.id,
            sorted({cid for cid, _ in unmatched}),
            [line.use_date for _, line in unmatched],
        )
        for row in sorted(candidates, key=lambda r: (r.created_at, r.id)):
            if row.issuer_txn_id is None:
                orphans[
                    natural_key(row.card_id, row.use_date, row.amount_jpy, row.merchant)
                ].append(row)
    for card_id, line in lines:
        stored = by_txn.get(line.transaction_id or "")
        if stored is not None:
            if _apply(stored, line, now):
                counts.modified += 1
            continue
        key = natural_key(card_id, line.use_date, line.amount_jpy, line.merchant)
        if orphans.get(key):
            adopted = orphans[key].pop(0)
            _apply(adopted, line, now)
            if line.transaction_id:
                by_txn[line.transaction_id] = adopted
            continue
        new = _new_row(account, card_id, line, StatementSource.API, now)
        fresh.append(new)
        if line.transaction_id:
            by_txn[line.transaction_id] = new
        counts.added += 1
    await repo.flush()  # the updates of stored rows
    # New lines in one multi-row insert: a first sync brings thousands per page.
    await repo.insert_statements(fresh)
    counts.removed = await repo.delete_statements_by_txn(account.id, list(removed_ids))
    return counts


async def ingest_batch(
    repo: Repository,
    account: Account,
    lines: Sequence[tuple[str, IssuerStatement]],
    source: StatementSource,
    now: dt.datetime,
) -> IngestCounts:
    """A whole legacy fetch or an uploaded file: only lines not stored yet are added.

    Such lines carry no issuer id, so a line is the same line when its natural key
    matches; a file uploaded twice, or a legacy fetch run again, adds nothing.
    """
    if not lines:
        return IngestCounts()
    existing = await repo.statements_matching(
        account.id, sorted({cid for cid, _ in lines}), [line.use_date for _, line in lines]
    )
    counts_by_key: Mapping[NaturalKey, int] = _count_keys(existing)
    keyed = [
        (natural_key(cid, line.use_date, line.amount_jpy, line.merchant), (cid, line))
        for cid, line in lines
    ]
    fresh = surplus_of_batch(keyed, counts_by_key)
    await repo.insert_statements([_new_row(account, cid, line, source, now) for cid, line in fresh])
    return IngestCounts(added=len(fresh))


def _count_keys(rows: Sequence[Statement]) -> dict[NaturalKey, int]:
    counts: dict[NaturalKey, int] = defaultdict(int)
    for row in rows:
        counts[natural_key(row.card_id, row.use_date, row.amount_jpy, row.merchant)] += 1
    return counts
