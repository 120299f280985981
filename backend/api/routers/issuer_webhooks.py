"""Webhooks from the card issuers: new statements, a link revoked, a link expiring.

No bearer token: each issuer signs its body (``Issuer-Signature: t=..,v1=..``,
HMAC-SHA256 over ``"<t>.<body>"``) with the secret it shares with us.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import ValidationError

from backend.api.deps import IssuerWebhookSecrets, Services
from backend.api.openapi import error_responses
from backend.api.schemas import IssuerWebhookAck, IssuerWebhookIn
from backend.domain import errors
from backend.domain.model import Issuer
from backend.service import issuer_events, outbox

router = APIRouter(prefix="/issuer-webhooks", tags=["issuer webhooks"], responses=error_responses())

# Embedded in the document: its references point at the document's own components.
_WEBHOOK_SCHEMA = IssuerWebhookIn.model_json_schema(ref_template="#/components/schemas/{model}")
_WEBHOOK_SCHEMA.pop("$defs", None)

# A signature older than this is a replay, whatever its event id.
SIGNATURE_TOLERANCE_SECONDS = 300


@router.post(
    "/{issuer}",
    response_model=IssuerWebhookAck,
    summary="Receive an issuer webhook",
    description=(
        "Verifies `Issuer-Signature` (timestamps older than five minutes are refused), then "
        "applies the event once: `statements.available` queues a sync, `link.revoked` marks "
        "the accounts for re-authentication (`data.reason: expired` when the consent ended), "
        "`link.expiring` keeps the consent's end (`data.expires_at`, epoch seconds) on the "
        "link and sends the warning now due (14, 7 or 1 days ahead). A repeated `event_id` "
        "answers `duplicate`."
    ),
    # The body is read raw (for the signature), so its schema is declared by hand.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _WEBHOOK_SCHEMA}},
        }
    },
)
async def receive_issuer_webhook(
    issuer: Issuer,
    request: Request,
    services: Services,
    secrets: IssuerWebhookSecrets,
    issuer_signature: Annotated[str, Header(alias="Issuer-Signature")] = "",
) -> IssuerWebhookAck:
    # The signature covers the exact bytes, so the body is read raw and parsed after.
    body = await request.body()
    secret = secrets.get(issuer.value)
    now = int(services.clock().timestamp())
    if not secret or not outbox.verify(
        secret, issuer_signature, body, now, tolerance=SIGNATURE_TOLERANCE_SECONDS
    ):
        raise errors.Unauthenticated("issuer signature missing, invalid or stale")
    try:
        event = IssuerWebhookIn.model_validate_json(body)
    except ValidationError as exc:
        raise errors.InvalidRequest("webhook body is not an issuer event") from exc
    if event.issuer is not None and event.issuer != issuer:
        raise errors.InvalidRequest("the event names another issuer than its path")
    processed = await issuer_events.handle_issuer_event(
        services, issuer, event.event_id, event.type, event.data
    )
    return IssuerWebhookAck(status="processed" if processed else "duplicate")
