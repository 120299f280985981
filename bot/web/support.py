"""The support page at ``/support``: open handoffs, answered and resolved by a person.

For teams without Slack: the conversations handed over to a person, each with its
transcript and the account's state, a form whose answer reaches the person's
conversation (wherever it lives) and a button that gives it back to the assistant.
Served as plain HTML forms, no script. Support administrators only (they see the
handoffs of every office): signed in with the support administrators' token, kept as a
signed session cookie; a member's token is refused (403), no sign-in at all is 401.
"""

# No ``from __future__ import annotations``: the routes are built in ``support_router``
# and FastAPI reads their annotations.
import contextlib
import datetime as dt
import hashlib
import hmac
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials

from backend.domain import errors
from backend.domain.identity import Principal
from bot.conversations import Conversations
from bot.ports import ApiEdge
from bot.web.page import _PAGE_HEADERS, _templates, own_origins
from i18n import DEFAULT_LOCALE, LOCALES, catalog, formats, render
from statemachine.handoff import HandoffStatus, MessageKind
from statemachine.port import BackendError

COOKIE = "renkei_support"
SESSION = dt.timedelta(hours=12)  # a working day; signed in again after that
MAX_ANSWER = 2000  # as a message of the conversation API
_PREFIX = "support_page."


def _sign(secret: str, expires: int) -> str:
    mac = hmac.new(secret.encode(), f"support-session:{expires}".encode(), hashlib.sha256)
    return mac.hexdigest()


def _session_valid(request: Request) -> bool:
    secret: str | None = getattr(request.app.state, "admin_token", None)
    value = request.cookies.get(COOKIE) or ""
    expires, _, signature = value.partition(".")
    if not secret or not expires.isdigit() or not signature:
        return False
    if int(expires) < dt.datetime.now(dt.UTC).timestamp():
        return False
    return hmac.compare_digest(_sign(secret, int(expires)), signature)


def _same_origin(request: Request) -> None:
    """A form posted from another site's page is refused (the cookie is SameSite too)."""
    origin = (request.headers.get("origin") or "").lower().rstrip("/")
    # "null": the page's no-referrer policy hides its own origin; the cookie is SameSite
    # strict, so another site's form never carries it.
    if (
        origin
        and origin != "null"
        and origin not in own_origins(getattr(request.app.state, "public_url", None))
    ):
        raise errors.Forbidden("the support page takes forms from its own pages only")


def _locale(request: Request) -> str:
    wanted = request.query_params.get("lang") or request.cookies.get("renkei_support_lang")
    return wanted if wanted in LOCALES else DEFAULT_LOCALE


def _words(locale: str) -> dict[str, str]:
    return {
        key.removeprefix(_PREFIX): words
        for key, words in catalog(locale).items()
        if key.startswith(_PREFIX)
    }


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def _line(entry: dict[str, Any]) -> tuple[str, str, str]:
    """(when, who, what) of a transcript line, shown as recorded (data for support staff)."""
    who = str(entry.get("from") or "")
    if who == "assistant":
        what = ", ".join(str(key) for key in entry.get("replies") or [])
    else:
        what = str(entry.get("text") or entry.get("file") or entry.get("choice") or "")
    return str(entry.get("at") or "")[:19].replace("T", " "), who, what


def support_router(edge: ApiEdge) -> APIRouter:
    router = APIRouter(include_in_schema=False, responses=edge.error_responses())

    async def support_person(request: Request) -> Principal:
        """The signed-in support administrator (session cookie or bearer token)."""
        if _session_valid(request):
            return Principal(email="support@renkei.local", support_admin=True)
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.Unauthenticated("sign in at /support/sign-in first")
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token.strip())
        caller = await edge.caller(request, credentials)
        if not caller.support_admin:
            # Handoffs of every office: a member sees none, not even their own office's.
            raise errors.Forbidden("the support page is for support administrators")
        return caller

    Support = Annotated[Principal, Depends(support_person)]

    def conversations(request: Request) -> Conversations:
        found: Conversations = request.app.state.conversations
        return found

    Service = Annotated[Conversations, Depends(conversations)]

    @router.get("/support/sign-in", response_class=HTMLResponse)
    async def sign_in_page(request: Request) -> HTMLResponse:
        locale = _locale(request)
        html = _templates.get_template("support_sign_in.html").render(
            locale=locale, text=_words(locale)
        )
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    @router.post("/support/sign-in")
    async def sign_in(request: Request) -> Response:
        _same_origin(request)
        token = (await _form(request)).get("token", "").strip()
        if not token:
            raise errors.Unauthenticated("a token is required")
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
        caller = await edge.caller(request, credentials)  # 401 for a token nobody holds
        secret: str | None = getattr(request.app.state, "admin_token", None)
        if not caller.support_admin or not secret:
            raise errors.Forbidden("the support page is for support administrators")
        expires = int((dt.datetime.now(dt.UTC) + SESSION).timestamp())
        response = RedirectResponse("/support", status_code=303)
        public = str(getattr(request.app.state, "public_url", "") or "")
        response.set_cookie(
            COOKIE,
            f"{expires}.{_sign(secret, expires)}",
            max_age=int(SESSION.total_seconds()),
            path="/support",
            httponly=True,
            samesite="strict",
            secure=public.startswith("https://"),
        )
        return response

    @router.post("/support/sign-out")
    async def sign_out(request: Request) -> Response:
        _same_origin(request)
        response = RedirectResponse("/support/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path="/support")
        return response

    @router.get("/support", response_class=HTMLResponse)
    async def support_page(request: Request, caller: Support, service: Service) -> HTMLResponse:
        locale = _locale(request)
        engine = service.engine
        store = engine.handoffs
        shown = []
        for handoff in await store.open_handoffs() if store is not None else []:
            office = handoff.office_id or "-"
            if handoff.office_id:
                with contextlib.suppress(BackendError):  # the id is shown instead
                    member = engine.backend_for(handoff.user)
                    office = (await member.office(handoff.office_id)).name
            assert store is not None
            messages = await store.handoff_messages(handoff.id)
            shown.append(
                {
                    "id": handoff.id,
                    "user": handoff.user,
                    "office": office,
                    "opened": formats.date_time(handoff.created_at, locale),
                    "status": handoff.status,
                    "account": sorted((handoff.account_state or {}).items()),
                    "transcript": [_line(e) for e in handoff.transcript[-60:]],
                    "messages": [
                        {
                            "who": m.kind,
                            "author": m.author,
                            "text": m.text,
                            "at": formats.date_time(m.at, locale),
                        }
                        for m in messages
                        if m.kind in (MessageKind.PERSON, MessageKind.SUPPORT)
                    ],
                }
            )
        html = _templates.get_template("support.html").render(
            locale=locale,
            text=_words(locale),
            handoffs=shown,
            answered=HandoffStatus.ANSWERED.value,
            max_answer=MAX_ANSWER,
            heading=lambda h: render(
                "support_page.handoff_heading", locale, {"user": h["user"], "office": h["office"]}
            ),
        )
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    @router.post("/support/handoffs/{handoff_id}/answer")
    async def answer(
        handoff_id: str, request: Request, caller: Support, service: Service
    ) -> Response:
        _same_origin(request)
        text = (await _form(request)).get("text", "").strip()
        if not text or len(text) > MAX_ANSWER:
            raise errors.InvalidRequest(f"an answer has 1 to {MAX_ANSWER} characters")
        if not await service.engine.support_answer(handoff_id, text, caller.email, "page"):
            raise errors.NotFound("no open handoff with this id")
        return RedirectResponse(f"/support#handoff-{handoff_id}", status_code=303)

    @router.post("/support/handoffs/{handoff_id}/resolve")
    async def resolve(
        handoff_id: str, request: Request, caller: Support, service: Service
    ) -> Response:
        _same_origin(request)
        if not await service.engine.resolve_handoff(handoff_id, caller.email, "page"):
            raise errors.NotFound("no open handoff with this id")
        return RedirectResponse("/support", status_code=303)

    return router
