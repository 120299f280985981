"""Signed webhook events from the issuers to their clients, with retries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable
from typing import Any

import httpx

from sandbox.state import (
    ClientRegistration,
    DueNotification,
    Grant,
    Issuer,
    SandboxState,
    WebhookDelivery,
    new_id,
)

SIGNATURE_HEADER = "Issuer-Signature"
ATTEMPTS = 3


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Issuer-Signature`` value: ``t=<epoch>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def build_event(
    state: SandboxState,
    issuer: Issuer,
    event_type: str,
    *,
    grant_subject: str,
    card_ids: list[str],
    grant_id: str | None = None,
    expires_at: int | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A webhook event; its ``event_id`` never changes across retries."""
    data: dict[str, Any] = {"grant_subject": grant_subject, "card_ids": card_ids}
    if grant_id is not None:
        data["grant_id"] = grant_id
    if expires_at is not None:
        data["expires_at"] = expires_at
    if reason is not None:
        data["reason"] = reason
    return {
        "event_id": new_id("evt"),
        "type": event_type,
        "created": int(state.now()),
        "issuer": issuer,
        "data": data,
    }


async def deliver(
    state: SandboxState, client: ClientRegistration, event: dict[str, Any]
) -> WebhookDelivery:
    """POST one event to a client, trying up to three times on non-2xx or network errors.

    The signature's ``t`` is wall-clock time of each attempt, so receivers can
    bound replays with their own clock; ``created`` is the sandbox clock.
    """
    record = WebhookDelivery(event["event_id"], client.client_id, event["type"])
    state.deliveries.append(record)
    if client.webhook_url is None:
        return record
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    async with httpx.AsyncClient(transport=state.webhook_transport, timeout=5.0) as http:
        for attempt in range(ATTEMPTS):
            record.attempts = attempt + 1
            headers = {"Content-Type": "application/json"}
            secret = client.webhook_secret_for(str(event["issuer"]))
            if secret:
                headers[SIGNATURE_HEADER] = sign(secret, int(time.time()), body)
            try:
                # One client registration serves both issuers: "{issuer}" in its URL
                # lets the receiver tell them apart by path.
                url = client.webhook_url.replace("{issuer}", str(event["issuer"]))
                response = await http.post(url, content=body, headers=headers)
                record.last_status = response.status_code
                if response.is_success:
                    record.delivered = True
                    return record
            except httpx.HTTPError:
                record.last_status = None
            if attempt + 1 < ATTEMPTS:
                await asyncio.sleep(state.settings.webhook_retry_delay * 2**attempt)
    return record


def _spawn(state: SandboxState, work: Awaitable[Any]) -> None:
    async def run() -> None:
        try:
            await work
        finally:
            # The delivery's outcome is part of the state (the control API's log).
            state.persist()

    try:
        task = asyncio.get_running_loop().create_task(run())
    except RuntimeError:
        # No event loop (a synchronous caller): nothing can be sent from here.
        if asyncio.iscoroutine(work):
            work.close()
        return
    state.background.add(task)
    task.add_done_callback(state.background.discard)


def send_event(state: SandboxState, client: ClientRegistration, event: dict[str, Any]) -> None:
    """Send one event to a client in the background (logged even without a webhook URL)."""
    _spawn(state, deliver(state, client, event))


def notify_grant(
    state: SandboxState,
    issuer: Issuer,
    grant: Grant,
    event_type: str,
    card_ids: list[str],
    *,
    reason: str | None = None,
) -> None:
    """Send an event about a grant to its client in the background."""
    client = state.clients.get(grant.client_id)
    if client is None or client.webhook_url is None:
        return
    event = build_event(
        state,
        issuer,
        event_type,
        grant_subject=grant.subject,
        card_ids=card_ids,
        grant_id=grant.grant_id,
        reason=reason,
    )
    send_event(state, client, event)


def notify_link_revoked(state: SandboxState, issuer: Issuer, grant: Grant) -> None:
    """Tell the client its link was stopped (member site or control API)."""
    card_ids = [card.card_id for card in state.issuers[issuer].grant_cards(grant)]
    notify_grant(state, issuer, grant, "link.revoked", card_ids)


def notify_statements(state: SandboxState, issuer: Issuer, card_ids: list[str]) -> None:
    """Tell every client with an active grant on these cards that statements arrived.

    For JCB the event waits until the confirmation delay has passed on the
    sandbox clock (R9); it is sent when `POST /control/clock` passes that time.
    """
    data = state.issuers[issuer]
    for grant in list(data.grants.values()):
        if grant.status != "active":
            continue
        covered = {card.card_id for card in data.grant_cards(grant)}
        touched = [card_id for card_id in card_ids if card_id in covered]
        if not touched:
            continue
        delay = state.settings.jcb_confirmation_delay if issuer == "jcb" else 0
        if delay > 0:
            state.due_notifications.append(
                DueNotification(state.now() + delay, grant.grant_id, touched)
            )
        else:
            notify_grant(state, issuer, grant, "statements.available", touched)


def release_due(state: SandboxState) -> int:
    """Send the JCB notifications whose delay has passed; returns how many."""
    now = state.now()
    due = [item for item in state.due_notifications if item.due_at <= now]
    state.due_notifications[:] = [item for item in state.due_notifications if item.due_at > now]
    for item in due:
        grant = state.issuers["jcb"].grants.get(item.grant_id)
        if grant is not None and grant.status == "active":
            notify_grant(state, "jcb", grant, "statements.available", item.card_ids)
    return len(due)
