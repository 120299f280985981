"""The web chat page at ``/chat``: plain HTML and one small script on the conversation API.

The page holds no logic of its own: it signs in with a member's API token (kept in the
browser), then talks to ``/api/v1/conversations`` like any other front end. Every word
it shows comes from the ``web.*`` entries of the message catalogs, rendered into the
page for both languages so that switching language needs no round trip.
"""

# No ``from __future__ import annotations``: two routes are built in ``chat_router`` and
# FastAPI reads their annotations, which name that function's dependencies.
import datetime as dt
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel

from backend.domain import errors
from backend.domain.identity import Principal
from bot.offers import OFFER_STEPS
from bot.ports import ApiEdge
from i18n import DEFAULT_LOCALE, LOCALES, catalog
from statemachine.flow import NAVIGATION

_HERE = Path(__file__).parent
_STATIC = _HERE / "static"
# Only these files are served: a fixed list rather than a directory mount, so nothing
# placed next to them by accident becomes public.
_STATIC_FILES = {"chat.js", "chat.css", "support.css"}
_PREFIX = "web."

# The page runs only its own script and styles; the consent link is a navigation, which
# this policy does not restrict. The embedded strings are JSON data, never executed.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_templates = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)


class DemoSessionOut(BaseModel):
    token: str
    user: str


class SignedInOut(BaseModel):
    user: str


def web_strings() -> dict[str, dict[str, str]]:
    """The page's words in every language, keyed without the ``web.`` prefix."""
    return {
        locale: {
            key.removeprefix(_PREFIX): words
            for key, words in catalog(locale).items()
            if key.startswith(_PREFIX)
        }
        for locale in LOCALES
    }


def _demo_user(request: Request) -> str | None:
    """The demo member, while the server runs with demo data."""
    user: str | None = getattr(request.app.state, "demo_user", None)
    return user


def _demo_enabled(request: Request) -> bool:
    return _demo_user(request) is not None


async def chat_page(request: Request) -> HTMLResponse:
    strings = web_strings()
    context: dict[str, Any] = {
        "locale": DEFAULT_LOCALE,
        "text": strings[DEFAULT_LOCALE],
        "config": {
            "strings": strings,
            "locales": list(LOCALES),
            "default_locale": DEFAULT_LOCALE,
            "demo": _demo_enabled(request),
            "api": "/api/v1",
            # Help, back, cancel...: shown apart from the step's own choices.
            "navigation": list(NAVIGATION),
            # What a notice's button plays (the flow, then the answers that pick its card).
            "offers": OFFER_STEPS,
            # Member sites whose pages show a link back to the conversation (return_to).
            "way_back_sites": list(getattr(request.app.state, "member_sites_with_way_back", [])),
        },
    }
    html = _templates.get_template("chat.html").render(context)
    return HTMLResponse(html, headers=_PAGE_HEADERS)


async def chat_static(name: str) -> FileResponse:
    if name not in _STATIC_FILES:
        raise errors.NotFound("no such file")
    # no-cache: the browser revalidates, so a new release's script is picked up at once.
    return FileResponse(_STATIC / name, headers={"Cache-Control": "no-cache"})


def chat_router(edge: ApiEdge) -> APIRouter:
    """The page, its files, and the two calls it makes before it talks to the API."""
    router = APIRouter(include_in_schema=False)
    router.add_api_route("/chat", chat_page, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/chat/static/{name}", chat_static, methods=["GET"])

    async def signed_in_as(caller: Annotated[Principal, Depends(edge.caller)]) -> SignedInOut:
        """Who the bearer token belongs to: the page checks a pasted token with this."""
        return SignedInOut(user=caller.email)

    router.add_api_route("/chat/me", signed_in_as, methods=["GET"], response_model=SignedInOut)
    router.add_api_route(
        "/chat/demo-session",
        demo_session,
        methods=["POST"],
        response_model=DemoSessionOut,
        dependencies=[Depends(edge.demo_session_limit)],
    )
    return router


async def demo_session(request: Request) -> DemoSessionOut:
    """A fresh API token of the demo owner, only while the server runs with demo data."""
    user = _demo_user(request)
    client = request.client.host if request.client else ""
    # A demo token is an office admin's: handed out to this machine's own browser only.
    if user is None or client not in LOOPBACK:
        raise errors.NotFound("the demo user is not available")
    # A loopback peer is not enough: a page of another site whose name was rebound to
    # 127.0.0.1 (DNS rebinding) reaches this port too, but sends its own Host and Origin.
    own = own_origins(getattr(request.app.state, "public_url", None))
    host = (request.headers.get("host") or "").lower()
    origin = (request.headers.get("origin") or "").lower().rstrip("/")
    if not own or host not in {urlsplit(o).netloc for o in own} or origin not in own:
        raise errors.Forbidden(
            "demo sign-in answers only this server's own page, at its public address",
            host=host,
            origin=origin,
        )
    token = await request.app.state.token_store.create(
        user, "web chat demo", expires_in=DEMO_TOKEN_TTL
    )
    return DemoSessionOut(token=token, user=user)


LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# A demo sign-in lasts a working day; the page asks again after that.
DEMO_TOKEN_TTL = dt.timedelta(hours=12)
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_ANY_ADDRESS = ("0.0.0.0", "[::]")  # noqa: S104 (names compared, nothing bound)


def own_origins(public_url: str | None) -> set[str]:
    """The origins of the configured public address (``RENKEI_PUBLIC_URL``).

    On a loopback address the other loopback names of the same port count too: no other
    site can be reached under them, so a rebound name never matches. So it is for the
    any-address (``renkei serve --host 0.0.0.0`` without a public URL): the browser next
    to the server opens it by a loopback name.
    """
    if not public_url:
        return set()
    parts = urlsplit(public_url.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return set()
    default = 443 if parts.scheme == "https" else 80
    port = parts.port or default
    suffix = "" if port == default else f":{port}"
    host = parts.hostname
    names = [f"[{host}]" if ":" in host else host]
    if names[0] in (*_LOOPBACK_NAMES, *_ANY_ADDRESS):
        names = list(_LOOPBACK_NAMES)
    return {f"{parts.scheme}://{name}{suffix}" for name in names}
