"""The control API: tests and demos arrange users, cards, statements, grants, time and faults."""

from __future__ import annotations

import hmac
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from sandbox.cards import CardError, confirm_all, create_card, set_statements, upgrade_card
from sandbox.expiry import tick
from sandbox.grants import (
    S256_CHALLENGE,
    ConsentError,
    issue_code,
    revoke_grant_tokens,
    select_cards,
    stop_grant,
)
from sandbox.state import Card, ClientRegistration, Fault, Issuer, IssuerData, SandboxState, User
from sandbox.web import issuer_base_url
from sandbox.webhooks import (
    build_event,
    deliver,
    notify_link_revoked,
    notify_statements,
    release_due,
)


@dataclass
class ClientBody:
    """`POST /control/clients`."""

    client_id: str
    client_secret: str
    redirect_uris: list[str]
    name: str = "renkei"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_secrets: dict[str, str] = field(default_factory=dict)


@dataclass
class UserBody:
    """`POST /control/users`."""

    user_id: str
    password: str
    combined_of: list[str] = field(default_factory=list)


@dataclass
class CardBody:
    """`POST /control/cards`."""

    user_id: str
    card_id: str
    product: str
    holder_name: str
    masked_number: str | None = None
    role: Literal["basic", "supplementary"] = "basic"
    basic_card_id: str | None = None
    registered: bool = True


@dataclass
class StatementsBody:
    """`POST /control/cards/{card_id}/statements`."""

    count: int
    pending: int = 0


@dataclass
class UpgradeBody:
    """`POST /control/cards/{card_id}/upgrade`."""

    new_card_id: str
    product: str
    count: int = 0


@dataclass
class AuthorizeBody:
    """`POST /control/authorize`."""

    client_id: str
    redirect_uri: str
    user_id: str
    state: str
    code_challenge: str
    card_ids: list[str] = field(default_factory=list)
    # This consent's own lifetime, in place of the issuer's setting (a demo link that
    # ends within days); 0 never ends.
    consent_lifetime_days: int | None = None


@dataclass
class WebhookBody:
    """`POST /control/webhooks`."""

    type: Literal["statements.available", "link.revoked", "link.expiring"]
    user_id: str | None = None
    card_ids: list[str] | None = None
    client_id: str | None = None
    expires_at: int | None = None


@dataclass
class ClockBody:
    """`POST /control/clock`."""

    advance_seconds: float


@dataclass
class SettingsBody:
    """`POST /control/settings`; the last four change only the issuer of the path."""

    jcb_confirmation_delay: int | None = None
    access_token_ttl: int | None = None
    webhook_retry_delay: float | None = None
    consent_lifetime_days: int | None = None
    expiring_notice_days: int | None = None
    refresh_policy: Literal["strict", "grace"] | None = None
    refresh_grace_seconds: int | None = None


@dataclass
class FaultBody:
    """`POST /control/faults`."""

    path: str
    kind: Literal["500", "429", "slow", "timeout", "malformed_json"]
    times: int = 1
    retry_after: int = 1
    delay: float | None = None
    after: int = 0


def _bad(description: str, status_code: int = 400, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"error": "invalid_request", "error_description": description, **extra},
        status_code=status_code,
    )


def build_control_router(state: SandboxState, issuer: Issuer) -> APIRouter:
    """Routes of the control API of one issuer (clock, settings and clients are shared).

    Args:
        state: The sandbox.
        issuer: The issuer whose users, cards, grants and faults these routes change.
    """

    async def require_key(x_sandbox_key: Annotated[str | None, Header()] = None) -> None:
        expected = state.control_key
        if expected is not None and not hmac.compare_digest(
            expected.encode(), (x_sandbox_key or "").encode()
        ):
            raise HTTPException(status_code=401, detail="X-Sandbox-Key required")

    router = APIRouter(prefix="/control", tags=["control"], dependencies=[Depends(require_key)])

    def data_of() -> IssuerData:
        return state.issuers[issuer]

    @router.post("/reset")
    async def reset() -> dict[str, Any]:
        state.reset()
        return {"status": "reset", "generation": state.generation}

    @router.post("/clients", status_code=201)
    async def add_client(body: ClientBody) -> dict[str, Any]:
        state.clients[body.client_id] = ClientRegistration(**asdict(body))
        return {"client_id": body.client_id}

    @router.post("/users", status_code=201, response_model=None)
    async def add_user(body: UserBody) -> dict[str, Any] | JSONResponse:
        data = data_of()
        unknown = [uid for uid in body.combined_of if uid not in data.users]
        if unknown:
            return _bad(f"unknown user_id in combined_of: {unknown}")
        data.users[body.user_id] = User(body.user_id, body.password, list(body.combined_of))
        return {"user_id": body.user_id, "combined_of": body.combined_of}

    @router.post("/cards", status_code=201, response_model=None)
    async def add_card(body: CardBody) -> dict[str, Any] | JSONResponse:
        try:
            card = create_card(state, issuer, **asdict(body))
        except CardError as exc:
            return _bad(str(exc))
        return card.as_json()

    def find_card(card_id: str) -> Card:
        card = data_of().cards.get(card_id)
        if card is None:
            raise HTTPException(status_code=404, detail=f"unknown card {card_id}")
        return card

    @router.post("/cards/{card_id}/register")
    async def register_card(card_id: str) -> dict[str, Any]:
        card = find_card(card_id)
        # R15: once registered to the ID, the consent screen lists the card.
        card.registered = True
        result: dict[str, Any] = card.as_json()
        return result

    @router.post("/cards/{card_id}/statements", response_model=None)
    async def statements(card_id: str, body: StatementsBody) -> dict[str, Any] | JSONResponse:
        card = find_card(card_id)
        try:
            set_statements(state, issuer, card, count=body.count, pending=body.pending)
        except CardError as exc:
            return _bad(str(exc))
        notify_statements(state, issuer, [card_id])
        return {
            "card_id": card_id,
            "count": card.ledger.live_count(),
            "pending": card.ledger.pending_count(),
        }

    @router.post("/cards/{card_id}/confirm")
    async def confirm(card_id: str) -> dict[str, Any]:
        card = find_card(card_id)
        confirmed = confirm_all(state, issuer, card)
        if confirmed:
            notify_statements(state, issuer, [card_id])
        return {"card_id": card_id, "confirmed": confirmed}

    @router.post("/cards/{card_id}/upgrade", response_model=None)
    async def upgrade(card_id: str, body: UpgradeBody) -> dict[str, Any] | JSONResponse:
        card = find_card(card_id)
        try:
            new_card = upgrade_card(
                state, issuer, card, new_card_id=body.new_card_id, product=body.product
            )
            if body.count:
                set_statements(state, issuer, new_card, count=body.count)
        except CardError as exc:
            return _bad(str(exc))
        notify_statements(state, issuer, [new_card.card_id])
        return {"old": card.as_json(), "new": new_card.as_json()}

    @router.post("/authorize", response_model=None)
    async def authorize(body: AuthorizeBody, request: Request) -> dict[str, Any] | JSONResponse:
        data = data_of()
        client = state.clients.get(body.client_id)
        if client is None:
            return _bad("unknown client_id")
        if body.redirect_uri not in client.redirect_uris:
            return _bad("redirect_uri is not registered exactly")
        if not body.state:
            return _bad("state is required")
        if not S256_CHALLENGE.match(body.code_challenge):
            return _bad("code_challenge must be an S256 challenge")
        if body.user_id not in data.users:
            return _bad("unknown user_id")
        try:
            card_ids = select_cards(state, issuer, body.client_id, body.user_id, body.card_ids)
        except ConsentError as exc:
            return _bad(exc.message, rule=exc.rule)
        code = issue_code(
            state,
            issuer,
            client_id=body.client_id,
            redirect_uri=body.redirect_uri,
            code_challenge=body.code_challenge,
            user_id=body.user_id,
            card_ids=card_ids,
            lifetime_days=body.consent_lifetime_days,
        )
        return {"code": code, "state": body.state, "iss": issuer_base_url(request)}

    @router.get("/grants")
    async def grants() -> dict[str, Any]:
        return {"grants": [grant.as_json() for grant in data_of().grants.values()]}

    @router.post("/grants/{grant_id}/stop")
    async def stop(grant_id: str) -> dict[str, Any]:
        grant = data_of().grants.get(grant_id)
        if grant is None:
            raise HTTPException(status_code=404, detail=f"unknown grant {grant_id}")
        if stop_grant(state, issuer, grant, by="control"):
            notify_link_revoked(state, issuer, grant)
        return grant.as_json()

    @router.post("/grants/{grant_id}/expire-tokens")
    async def expire_tokens(grant_id: str) -> dict[str, Any]:
        # Tokens lost or expired while the grant itself stays registered (and, at Amex,
        # keeps holding the card: R10).
        grant = data_of().grants.get(grant_id)
        if grant is None:
            raise HTTPException(status_code=404, detail=f"unknown grant {grant_id}")
        revoke_grant_tokens(data_of(), grant_id)
        return grant.as_json()

    @router.post("/webhooks")
    async def fire_webhook(body: WebhookBody) -> dict[str, Any]:
        data = data_of()
        targets: list[tuple[ClientRegistration, str, list[str], str | None]] = []
        for grant in data.grants.values():
            if grant.status != "active":
                continue
            if body.client_id is not None and grant.client_id != body.client_id:
                continue
            covered = [card.card_id for card in data.grant_cards(grant)]
            if body.user_id is not None and body.user_id != grant.subject:
                continue
            if body.card_ids is not None:
                covered = [cid for cid in covered if cid in body.card_ids]
                if not covered:
                    continue
            client = state.clients.get(grant.client_id)
            if client is not None:
                targets.append((client, grant.subject, covered, grant.grant_id))
        if not targets and body.client_id in state.clients:
            client = state.clients[body.client_id]
            targets.append((client, body.user_id or "", list(body.card_ids or []), None))
        expires_at = body.expires_at
        if body.type == "link.expiring" and expires_at is None:
            expires_at = int(state.now()) + 7 * 86_400
        results = []
        for client, subject, card_ids, grant_id in targets:
            event = build_event(
                state,
                issuer,
                body.type,
                grant_subject=subject,
                card_ids=card_ids,
                grant_id=grant_id,
                expires_at=expires_at,
            )
            delivery = await deliver(state, client, event)
            results.append({"event": event, "delivery": delivery.as_json()})
        return {"events": results}

    @router.get("/webhooks")
    async def webhook_log() -> dict[str, Any]:
        return {"deliveries": [delivery.as_json() for delivery in state.deliveries]}

    @router.post("/clock")
    async def clock(body: ClockBody) -> dict[str, Any]:
        state.clock.advance(body.advance_seconds)
        released = release_due(state)
        consents = tick(state)
        return {
            "now": state.now(),
            "offset": state.clock.offset,
            "released": released,
            **consents,
        }

    @router.get("/clock")
    async def read_clock() -> dict[str, Any]:
        return {"now": state.now(), "offset": state.clock.offset}

    @router.post("/settings")
    async def settings(body: SettingsBody) -> dict[str, Any]:
        if body.jcb_confirmation_delay is not None:
            state.settings.jcb_confirmation_delay = max(0, body.jcb_confirmation_delay)
        if body.access_token_ttl is not None:
            state.settings.access_token_ttl = max(1, body.access_token_ttl)
        if body.webhook_retry_delay is not None:
            state.settings.webhook_retry_delay = max(0.0, body.webhook_retry_delay)
        own = state.settings.of(issuer)
        if body.consent_lifetime_days is not None:
            # Applies to consents given from now on, as an issuer's new terms would.
            own.consent_lifetime_days = max(0, body.consent_lifetime_days)
        if body.expiring_notice_days is not None:
            own.expiring_notice_days = max(0, body.expiring_notice_days)
        if body.refresh_policy is not None:
            own.refresh_policy = body.refresh_policy
        if body.refresh_grace_seconds is not None:
            own.refresh_grace_seconds = max(0, body.refresh_grace_seconds)
        return asdict(state.settings)

    @router.get("/settings")
    async def read_settings() -> dict[str, Any]:
        return asdict(state.settings)

    @router.post("/faults", status_code=201, response_model=None)
    async def add_fault(body: FaultBody) -> dict[str, Any] | JSONResponse:
        if not body.path.startswith("/") or body.path.startswith("/control"):
            return _bad("path must be an issuer path outside /control")
        if body.times < 1:
            return _bad("times must be at least 1")
        default_delay = 30.0 if body.kind == "timeout" else 3.0
        fault = Fault(
            path=body.path,
            kind=body.kind,
            times=body.times,
            retry_after=body.retry_after,
            delay=body.delay if body.delay is not None else default_delay,
            after=max(0, body.after),
        )
        data_of().faults[body.path] = fault
        return asdict(fault)

    @router.get("/faults")
    async def list_faults() -> dict[str, Any]:
        return {"faults": [asdict(fault) for fault in data_of().faults.values()]}

    @router.delete("/faults")
    async def clear_faults() -> dict[str, Any]:
        data_of().faults.clear()
        return {"faults": []}

    return router
