"""The OAuth callback: the issuer sends the person's browser back here after consent.

No bearer token: the ``state`` parameter, single-use and short-lived, is the credential.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from backend.api.deps import Services
from backend.api.errors import domain_status, error_response
from backend.api.messages import PAGE, outcome_text
from backend.api.openapi import error_responses
from backend.api.schemas import AuthorizationOutcomeOut
from backend.domain import errors
from backend.service import linking
from backend.service.linking import AuthorizationOutcome

router = APIRouter(prefix="/oauth", tags=["oauth"], responses=error_responses())

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
)

# The URL carries the code and the state: keep it out of Referer headers and caches.
_PRIVATE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}

CHAT_PATH = "/chat"


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _outcome_out(outcome: AuthorizationOutcome) -> AuthorizationOutcomeOut:
    return AuthorizationOutcomeOut(
        linked=outcome.error_code is None,
        account_id=outcome.account_id,
        office_id=outcome.office_id,
        purpose=outcome.purpose,
        error_code=outcome.error_code,
        rule=outcome.rule,
        details=dict(outcome.details or {}),
    )


def _page(
    *,
    linked: bool,
    text_code: str,
    rule: str | None,
    status_code: int,
    back_url: str | None = None,
    stop_leftover: bool = False,
) -> HTMLResponse:
    context: dict[str, Any] = {
        "page": PAGE,
        "linked": linked,
        "text": outcome_text(text_code),
        "rule": rule,
        "back_url": back_url or CHAT_PATH,
        "stop_leftover": stop_leftover,
    }
    html = _templates.get_template("callback.html").render(context)
    return HTMLResponse(html, status_code=status_code, headers=_PRIVATE_HEADERS)


@router.get(
    "/callback",
    response_model=AuthorizationOutcomeOut,
    response_class=HTMLResponse,
    summary="OAuth callback from the issuer",
    description=(
        "Completes an authorization started by registering (R11), switching (R12) or "
        "re-authenticating an account: checks the state, exchanges the code and applies every "
        "rule (R5, R6, R13, R15...). Answers an HTML page (Japanese, then English) saying "
        "what happened and what to do next; with `Accept: application/json` answers the "
        "outcome as JSON. A refusal by rule is an outcome (200, `error_code` set); an unknown, "
        "expired or replayed state is 400 `invalid_request`."
    ),
    responses={
        200: {
            "content": {
                "text/html": {},
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/AuthorizationOutcomeOut"}
                },
            }
        }
    },
)
async def oauth_callback(
    request: Request,
    services: Services,
    state: Annotated[str, Query()] = "",
    code: Annotated[str | None, Query()] = None,
    error: Annotated[str | None, Query()] = None,
) -> Response:
    as_json = _wants_json(request)
    try:
        outcome = await linking.complete_authorization(
            services, state=state, code=code, error=error
        )
    except errors.DomainError as exc:
        status_code = domain_status(exc)
        if as_json:
            return error_response(
                status_code, exc.code, str(exc), rule=exc.rule, details=exc.details
            )
        reason = str(exc.details.get("reason") or exc.code)
        return _page(linked=False, text_code=reason, rule=exc.rule, status_code=status_code)
    out = _outcome_out(outcome)
    if as_json:
        return JSONResponse(out.model_dump(mode="json"), headers=_PRIVATE_HEADERS)
    if out.linked:
        purpose = out.purpose.value if out.purpose else "register"
        return _page(
            linked=True,
            text_code=f"linked_{purpose}",
            rule=None,
            status_code=200,
            back_url=outcome.return_url,
        )
    return _page(
        linked=False,
        text_code=out.error_code or "unknown",
        rule=out.rule,
        status_code=200,
        back_url=outcome.return_url,
        stop_leftover=bool(out.details.get("stop_at_member_site")),
    )
