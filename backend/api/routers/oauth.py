"""The start page and the OAuth callback of a consent at the issuer.

The start page (``/oauth/start/<id>``) is the only link renkei hands out: it sends the
browser on to the issuer once the browser proved it is the member's (their API token,
or the one-time code of their own conversation) and gives it an HttpOnly cookie. The
callback completes only in that browser, and only for the issuer the authorization
was started with (RFC 9207 ``iss``). See ``backend.service.consent_binding``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from backend.api.deps import Caller, Services
from backend.api.errors import domain_status, error_response
from backend.api.openapi import error_responses
from backend.api.schemas import AuthorizationOutcomeOut, ConsentStartOut
from backend.domain import errors
from backend.service import consent_binding, linking
from backend.service.linking import AuthorizationOutcome
from i18n import has, render

router = APIRouter(prefix="/oauth", tags=["oauth"], responses=error_responses())

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
# The pages are in Japanese, then English: ``t(key, locale, **params)`` is the catalog's.
_templates.globals["t"] = lambda key, locale, **params: render(key, locale, params)

# The URL carries the code and the state: keep it out of Referer headers and caches.
_PRIVATE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
# The start and callback pages: no script at all, never inside a frame (a framed start
# page could be used to make someone type a code they were sent).
_PAGE_HEADERS = {
    **_PRIVATE_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
CALLBACK_PATH = "/api/v1/oauth/callback"
START_PATH = "/api/v1/oauth/start"
# The start form's own cookie (double submit): a page elsewhere cannot post the form, so
# nobody can make a victim's browser enter a code it was not shown.
_FORM_COOKIE = "renkei_start_form"

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


def outcome_key(code: str) -> str:
    """The catalog key saying an outcome code: the page's own words, else the refusal's."""
    for key in (f"callback.outcome.{code}", f"refusal.{code}"):
        if has(key):
            return key
    return "callback.outcome.unknown"


def _page(
    *,
    linked: bool,
    text_code: str,
    status_code: int,
    back_url: str | None = None,
    stop_leftover: bool = False,
) -> HTMLResponse:
    context: dict[str, Any] = {
        "linked": linked,
        "text_key": outcome_key(text_code),
        "back_url": back_url or CHAT_PATH,
        "stop_leftover": stop_leftover,
    }
    html = _templates.get_template("callback.html").render(context)
    return HTMLResponse(html, status_code=status_code, headers=_PAGE_HEADERS)


def _secure(services_redirect_uri: str) -> bool:
    return urlsplit(services_redirect_uri).scheme == "https"


def _set_binding_cookie(
    response: Response, binding: consent_binding.Binding, *, secure: bool, now: Any
) -> None:
    max_age = max(int((binding.expires_at - now).total_seconds()), 1)
    response.set_cookie(
        consent_binding.cookie_name(binding.state),
        binding.browser_key,
        max_age=max_age,
        path=CALLBACK_PATH,
        httponly=True,
        # Lax: the issuer sends the browser back by a top-level navigation from its site.
        samesite="lax",
        secure=secure,
    )


def _start_page(
    *,
    start_id: str,
    page: consent_binding.StartPage | None,
    text_code: str | None,
    status_code: int,
    form_token: str | None = None,
    attempts_left: int | None = None,
    secure: bool = False,
) -> HTMLResponse:
    context: dict[str, Any] = {
        "text_key": outcome_key(text_code) if text_code else None,
        "issuer_key": f"start_page.issuer.{page.issuer}" if page else None,
        "requested_by": page.requested_by if page else None,
        "attempts_left": attempts_left,
        "form_token": form_token,
        "action": f"{START_PATH}/{start_id}",
    }
    html = _templates.get_template("start.html").render(context)
    response = HTMLResponse(html, status_code=status_code, headers=_PAGE_HEADERS)
    if form_token is not None:
        response.set_cookie(
            _FORM_COOKIE,
            form_token,
            max_age=int(consent_binding.SIGN_IN_CODE_TTL.total_seconds()),
            path=START_PATH,
            httponly=True,
            samesite="strict",
            secure=secure,
        )
    return response


@router.get(
    "/start/{start_id}",
    response_class=HTMLResponse,
    include_in_schema=False,
)
async def start_page(start_id: str, services: Services) -> Response:
    """The link of the member's conversation: asks for the one-time code shown there."""
    secure = _secure(services.oauth_redirect_uri)
    try:
        page = await consent_binding.start_page(services, start_id)
    except errors.DomainError as exc:
        reason = str(exc.details.get("reason") or exc.code)
        return _start_page(
            start_id=start_id, page=None, text_code=reason, status_code=domain_status(exc)
        )
    return _start_page(
        start_id=start_id,
        page=page,
        text_code=None,
        status_code=200,
        form_token=secrets.token_urlsafe(24),
        attempts_left=page.attempts_left,
        secure=secure,
    )


@router.post("/start/{start_id}", response_class=HTMLResponse, include_in_schema=False)
async def start_with_code(
    start_id: str,
    request: Request,
    services: Services,
    code: Annotated[str, Form()] = "",
    form_token: Annotated[str, Form()] = "",
) -> Response:
    """The one-time code typed: on to the issuer, with this browser's cookie."""
    secure = _secure(services.oauth_redirect_uri)
    expected = request.cookies.get(_FORM_COOKIE, "")
    if not expected or not secrets.compare_digest(expected.encode(), form_token.encode()):
        # Not this page's own form (posted from elsewhere, or its cookie expired).
        return _start_page(start_id=start_id, page=None, text_code="start_form", status_code=403)
    try:
        binding = await consent_binding.bind_with_code(services, start_id, code)
    except errors.DomainError as exc:
        reason = str(exc.details.get("reason") or exc.code)
        if reason == "code_wrong":
            try:
                page = await consent_binding.start_page(services, start_id)
            except errors.DomainError:
                page = None
            return _start_page(
                start_id=start_id,
                page=page,
                text_code=reason,
                status_code=400,
                form_token=secrets.token_urlsafe(24) if page else None,
                attempts_left=page.attempts_left if page else None,
                secure=secure,
            )
        return _start_page(
            start_id=start_id, page=None, text_code=reason, status_code=domain_status(exc)
        )
    response = RedirectResponse(binding.issuer_url, status_code=303, headers=_PRIVATE_HEADERS)
    _set_binding_cookie(response, binding, secure=secure, now=services.clock())
    response.delete_cookie(_FORM_COOKIE, path=START_PATH)
    return response


@router.post(
    "/start/{start_id}/signed-in",
    response_model=ConsentStartOut,
    summary="Go on to the issuer from a browser signed in as the member",
    description=(
        "For a front end running in the member's browser with their API token (the web "
        "chat): sets this browser's HttpOnly consent cookie and answers the issuer's URL to "
        "navigate to. Only the member who started the authorization may call it; for anyone "
        "else the link does not exist (404)."
    ),
)
async def start_signed_in(start_id: str, services: Services, caller: Caller) -> Response:
    binding = await consent_binding.bind_signed_in(services, caller, start_id)
    out = ConsentStartOut(issuer_url=binding.issuer_url)
    response = JSONResponse(out.model_dump(mode="json"), headers=_PRIVATE_HEADERS)
    _set_binding_cookie(
        response, binding, secure=_secure(services.oauth_redirect_uri), now=services.clock()
    )
    return response


@router.get(
    "/callback",
    response_model=AuthorizationOutcomeOut,
    response_class=HTMLResponse,
    summary="OAuth callback from the issuer",
    description=(
        "Completes an authorization started by registering (R11), switching (R12) or "
        "re-authenticating an account: checks the state (single use), the browser's consent "
        "cookie set by the start page (403 `forbidden`, reason `not_started_here`, without "
        "it) and RFC 9207's `iss` against the issuer the authorization was started with "
        "(400, reason `issuer_mismatch`), exchanges the code and applies every "
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
    iss: Annotated[str | None, Query()] = None,
) -> Response:
    response = await _callback(request, services, state=state, code=code, error=error, iss=iss)
    if state:
        # Used or refused, the cookie of this authorization has done its work.
        response.delete_cookie(consent_binding.cookie_name(state), path=CALLBACK_PATH)
    return response


async def _callback(
    request: Request,
    services: Services,
    *,
    state: str,
    code: str | None,
    error: str | None,
    iss: str | None,
) -> Response:
    as_json = _wants_json(request)
    browser_key = request.cookies.get(consent_binding.cookie_name(state)) if state else None
    try:
        outcome = await linking.complete_authorization(
            services, state=state, code=code, error=error, iss=iss, browser_key=browser_key
        )
    except errors.DomainError as exc:
        status_code = domain_status(exc)
        if as_json:
            return error_response(
                status_code,
                exc.code,
                str(exc),
                rule=exc.rule,
                details=exc.details,
                headers=_PRIVATE_HEADERS,
            )
        reason = str(exc.details.get("reason") or exc.code)
        return _page(linked=False, text_code=reason, status_code=status_code)
    out = _outcome_out(outcome)
    if as_json:
        return JSONResponse(out.model_dump(mode="json"), headers=_PRIVATE_HEADERS)
    if out.linked:
        purpose = out.purpose.value if out.purpose else "register"
        return _page(
            linked=True,
            text_code=f"linked_{purpose}",
            status_code=200,
            back_url=outcome.return_url,
        )
    return _page(
        linked=False,
        text_code=out.error_code or "unknown",
        status_code=200,
        back_url=outcome.return_url,
        stop_leftover=bool(out.details.get("stop_at_member_site")),
    )
