"""The issuer website as the legacy ID/password sync sees it: login, statements, CSV."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sandbox.csv_export import amex_csv, jcb_csv, jcb_user_labels
from sandbox.resource_api import txn_json
from sandbox.state import LEGACY_SESSION_TTL, Card, Issuer, LegacySession, SandboxState
from sandbox.statements import Purchase, Snapshot, confirmed_runs, purchase
from sandbox.web import json_error

SESSION_HEADER = "X-Legacy-Session"


def session_cookie(issuer: Issuer) -> str:
    """The member-site cookie name; the same sessions serve the legacy endpoints."""
    return f"{issuer}_member_session"


def open_session(state: SandboxState, issuer: Issuer, user_id: str, password: str) -> str | None:
    """Log in to the issuer website; returns a session id, or ``None`` if refused."""
    data = state.issuers[issuer]
    user = data.users.get(user_id)
    if user is None or not secrets.compare_digest(user.password, password):
        return None
    session = secrets.token_urlsafe(24)
    data.sessions[session] = LegacySession(user_id, state.now() + LEGACY_SESSION_TTL)
    return session


def session_user(state: SandboxState, issuer: Issuer, request: Request) -> str | None:
    """The ID logged in by header or member-site cookie, if the session is still valid."""
    session = request.headers.get(SESSION_HEADER) or request.cookies.get(session_cookie(issuer))
    record = state.issuers[issuer].sessions.get(session or "")
    if record is None or state.now() > record.expires_at:
        return None
    return record.user_id


def website_cards(state: SandboxState, issuer: Issuer, user_id: str) -> list[Card]:
    """The cards the website shows to a login (R15 registered only; R1 MyJCB-excluded not)."""
    cards = state.issuers[issuer].login_cards(user_id)
    return [card for card in cards if card.product != "jcb_excluded"]


def confirmed_purchases(state: SandboxState, card: Card) -> list[Purchase]:
    """Every confirmed purchase of a card as the website shows it (no API delay, R9)."""
    now = Snapshot(state.current_seq(), state.now())
    ledger = card.ledger
    return [
        purchase(card.card_id, index, ledger.use_date(index))
        for lo, hi in confirmed_runs(ledger, now)
        for index in range(lo, hi)
    ]


def next_payment_date(today: date) -> date:
    """MyJCB pays on the 10th of the following month."""
    if today.month == 12:
        return date(today.year + 1, 1, 10)
    return date(today.year, today.month + 1, 10)


def build_legacy_router(state: SandboxState, issuer: Issuer) -> APIRouter:
    """Routes of the legacy website endpoints.

    Args:
        state: The sandbox.
        issuer: The issuer this website belongs to.
    """
    router = APIRouter(prefix="/legacy", tags=["legacy"])

    @router.post("/login")
    async def login(request: Request) -> JSONResponse:
        form = await request.form()
        session = open_session(
            state, issuer, str(form.get("user_id", "")), str(form.get("password", ""))
        )
        if session is None:
            return json_error(401, "login_failed")
        return JSONResponse({"session": session})

    @router.get("/statements")
    async def statements(request: Request) -> JSONResponse:
        user_id = session_user(state, issuer, request)
        if user_id is None:
            return json_error(401, "login_required")
        cards = website_cards(state, issuer, user_id)
        lines: list[dict[str, Any]] = []
        now = Snapshot(state.current_seq(), state.now())
        for card in cards:
            for lo, hi in confirmed_runs(card.ledger, now):
                lines.extend(
                    txn_json(card, index, "confirmed", with_id=False) for index in range(lo, hi)
                )
        return JSONResponse({"cards": [card.as_json() for card in cards], "statements": lines})

    @router.get("/statements.csv")
    async def statements_csv(request: Request) -> Response:
        user_id = session_user(state, issuer, request)
        if user_id is None:
            return json_error(401, "login_required")
        cards = website_cards(state, issuer, user_id)
        by_id = {card.card_id: card for card in cards}
        card = by_id.get(request.query_params.get("card_id", ""))
        if card is None:
            return json_error(404, "card_not_found")
        if issuer == "amex":
            # The basic card's download holds every card of the online-service ID.
            included = cards if card.role == "basic" else [card]
            rows = sorted(
                ((c, bought) for c in included for bought in confirmed_purchases(state, c)),
                key=lambda row: (row[1].use_date, row[0].card_id, row[1].index),
            )
            body = amex_csv(rows)
            filename = f"activity_{card.card_id}.csv"
        else:
            # The basic card's statement holds its family cards' uses too (家族1, 家族2…);
            # a family card's download holds its own, under the same label.
            basic = by_id.get(card.basic_card_id or "", card)
            family = [c for c in cards if c.basic_card_id == basic.card_id]
            labels = jcb_user_labels(basic, family)
            included = [basic, *family] if card is basic else [card]
            users = [
                (labels.get(c.card_id, "本人"), confirmed_purchases(state, c)) for c in included
            ]
            body = jcb_csv(users, next_payment_date(state.clock.today()))
            filename = f"meisai_{card.card_id}.csv"
        return Response(
            body,
            media_type="text/csv; charset=Windows-31J",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    return router
