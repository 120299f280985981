"""The back end's signed webhooks, received by the assistant.

Each event advances the conversations waiting on its account (consent given, link
revoked, sync finished). Later, the same events become Slack status messages.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from backend.domain import errors
from backend.domain.signatures import verify
from bot.conversations import Conversations

EVENTS_PATH = "/bot/backend-events"

router = APIRouter(tags=["assistant"], include_in_schema=False)


@router.post(EVENTS_PATH)
async def receive_backend_event(
    request: Request,
    renkei_signature: str = Header(default=""),
) -> JSONResponse:
    secret: str = request.app.state.webhook_secret
    body = await request.body()
    if not verify(secret, renkei_signature, body, int(time.time())):
        raise errors.Unauthenticated("signature missing, invalid or stale")
    # Parsed only once signed, and still refused in the error shape when malformed.
    event = _event(body)
    conversations: Conversations = request.app.state.conversations
    advanced: list[str] = []
    for scope in ("account", "office"):
        if event.get(f"{scope}_id"):
            advanced += await conversations.engine.notify(
                f"{scope}:{event[f'{scope}_id']}",
                str(event.get("type")),
                dict(event.get("data") or {}),
            )
    slack = getattr(request.app.state, "slack_notifier", None)
    if slack is not None:  # Slack is on: the event also becomes status messages there
        await slack.on_backend_event(event, advanced)
    return JSONResponse({"advanced": len(advanced)})


def _event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise errors.InvalidRequest("the event is not JSON") from exc
    if not isinstance(event, dict) or not isinstance(event.get("data") or {}, dict):
        raise errors.InvalidRequest("the event is not an object with an object `data`")
    for scope in ("account_id", "office_id"):
        if not isinstance(event.get(scope) or "", str):
            raise errors.InvalidRequest(f"`{scope}` must be text")
    return event
