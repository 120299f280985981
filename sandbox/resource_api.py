"""The resource API: `/api/v1/me`, `/api/v1/link` and `/api/v1/transactions/sync`."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from sandbox.state import Card, Grant, Issuer, SandboxState
from sandbox.statements import Snapshot, purchase, window_changes
from sandbox.tokens import InvalidToken, authenticate_bearer
from sandbox.web import json_error

MAX_COUNT = 500
DEFAULT_COUNT = 100


class CursorError(ValueError):
    """A cursor this sandbox did not make (or made before a reset)."""


@dataclass(frozen=True)
class Cursor:
    """Where a sync stands: the window ``(since, until]`` and the position inside it.

    ``until`` is ``None`` between sync runs: the next call opens a new window
    that ends at that moment.
    """

    generation: int
    since: Snapshot | None
    until: Snapshot | None
    position: int

    def encode(self) -> str:
        """The opaque string handed to clients."""
        body = {
            "g": self.generation,
            "s": None if self.since is None else [self.since.seq, self.since.time],
            "u": None if self.until is None else [self.until.seq, self.until.time],
            "p": self.position,
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a cursor string.

        Raises:
            CursorError: Not a cursor of this sandbox.
        """
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            body = json.loads(raw)
            generation = body["g"]
            position = body["p"]
            since = _snapshot(body["s"])
            until = _snapshot(body["u"])
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise CursorError("malformed cursor") from exc
        if not isinstance(generation, int) or not isinstance(position, int) or position < 0:
            raise CursorError("malformed cursor")
        return cls(generation, since, until, position)


def _snapshot(value: Any) -> Snapshot | None:
    if value is None:
        return None
    seq, when = value
    if not isinstance(seq, int) or not isinstance(when, int | float):
        raise TypeError("snapshot")
    return Snapshot(seq, float(when))


def txn_json(card: Card, index: int, status: str, *, with_id: bool = True) -> dict[str, Any]:
    """The contract's `Txn` of statement ``index`` of ``card``."""
    bought = purchase(card.card_id, index, card.ledger.use_date(index))
    body: dict[str, Any] = {
        "transaction_id": bought.transaction_id,
        "card_id": card.card_id,
        "use_date": bought.use_date.isoformat(),
        "posted_date": bought.posted_date.isoformat() if status == "confirmed" else None,
        "merchant": bought.merchant,
        "amount_jpy": bought.amount_jpy,
        "foreign_amount": bought.foreign_amount,
        "foreign_currency": bought.foreign_currency,
        "status": status,
        "holder_name": card.holder_name,
    }
    if not with_id:
        del body["transaction_id"]
    return body


def sync_page(
    state: SandboxState, issuer: Issuer, grant: Grant, cursor: Cursor | None, count: int
) -> dict[str, Any]:
    """One page of `/api/v1/transactions/sync`, generated from the ledgers on the fly.

    Args:
        state: The sandbox.
        issuer: The grant's issuer.
        grant: The grant whose cards are synced.
        cursor: Where the previous page ended; ``None`` starts from the beginning.
        count: How many changes at most.

    Raises:
        CursorError: The cursor belongs to an earlier sandbox generation.
    """
    if cursor is not None and cursor.generation != state.generation:
        raise CursorError("cursor from before a reset")
    since = cursor.since if cursor else None
    until = cursor.until if cursor and cursor.until else Snapshot(state.current_seq(), state.now())
    position = cursor.position if cursor else 0
    # R7: a replaced card is no longer synced; only the new card's statements come.
    cards = [card for card in state.issuers[issuer].grant_cards(grant) if card.status == "active"]
    page: dict[str, list[dict[str, Any]]] = {"added": [], "modified": [], "removed": []}
    seen = taken = 0
    for card in cards:
        runs = window_changes(
            card.ledger,
            since,
            until,
            # R9: JCB shows a statement only once confirmed, and only after the delay.
            delayed=issuer == "jcb",
            show_pending=issuer == "amex",
        )
        for run in runs:
            length = run.stop - run.start
            skip = max(0, position - seen)
            take = min(length - skip, count - taken) if skip < length else 0
            for index in range(run.start + skip, run.start + skip + max(take, 0)):
                if run.category == "removed":
                    bought = purchase(card.card_id, index, card.ledger.use_date(index))
                    page["removed"].append({"transaction_id": bought.transaction_id})
                else:
                    page[run.category].append(txn_json(card, index, run.after))
            taken += max(take, 0)
            seen += length
    has_more = position + taken < seen
    if has_more:
        following = Cursor(state.generation, since, until, position + taken)
    else:
        following = Cursor(state.generation, until, None, 0)
    return {**page, "next_cursor": following.encode(), "has_more": has_more}


def build_resource_router(state: SandboxState, issuer: Issuer) -> APIRouter:
    """Routes of the resource API (Bearer access tokens).

    Args:
        state: The sandbox.
        issuer: The issuer this API belongs to.
    """
    router = APIRouter(prefix="/api/v1", tags=["resource"])

    def unauthorized(exc: InvalidToken) -> JSONResponse:
        challenge = f'Bearer error="invalid_token", error_description="{exc.description}"'
        return json_error(
            401, "invalid_token", exc.description, headers={"WWW-Authenticate": challenge}
        )

    @router.get("/me")
    async def me(authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        try:
            grant = authenticate_bearer(state, issuer, authorization)
        except InvalidToken as exc:
            return unauthorized(exc)
        cards = state.issuers[issuer].grant_cards(grant)
        return JSONResponse(
            {
                "subject": grant.subject,
                "subject_kind": grant.subject_kind,
                "grant_id": grant.grant_id,
                "cards": [card.as_json() for card in cards],
            }
        )

    @router.get("/link")
    async def link(authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        try:
            grant = authenticate_bearer(state, issuer, authorization)
        except InvalidToken as exc:
            return unauthorized(exc)
        return JSONResponse({"status": "active", "grant_id": grant.grant_id})

    @router.get("/transactions/sync")
    async def transactions_sync(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        try:
            grant = authenticate_bearer(state, issuer, authorization)
        except InvalidToken as exc:
            return unauthorized(exc)
        raw_count = request.query_params.get("count", str(DEFAULT_COUNT))
        if not raw_count.isdigit() or not 1 <= int(raw_count) <= MAX_COUNT:
            return json_error(400, "invalid_request", f"count must be 1-{MAX_COUNT}")
        raw_cursor = request.query_params.get("cursor")
        try:
            cursor = Cursor.decode(raw_cursor) if raw_cursor else None
            body = sync_page(state, issuer, grant, cursor, int(raw_count))
        except CursorError as exc:
            return json_error(400, "invalid_cursor", str(exc))
        return JSONResponse(body)

    return router
