"""The member sites: Amex 外部サービスとの連携 / カードの追加登録, MyJCB おまとめ / カードの切替."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from sandbox.cards import CardError, next_card_id, upgrade_card
from sandbox.grants import stop_grant
from sandbox.legacy import open_session, session_cookie, session_user, website_cards
from sandbox.state import JCB_API_PRODUCTS, LEGACY_SESSION_TTL, Issuer, SandboxState
from sandbox.way_back import NEXT_PARAM, RETURN_PARAM, WayBack, safe_next, way_back
from sandbox.web import mount_prefix, render, route_path
from sandbox.webhooks import notify_link_revoked, notify_statements

NOTICES = {
    "stopped": "連携を停止しました。",
    "registered": "カードを登録しました。",
    "combined": "ID をおまとめしました。",
    "uncombined": "おまとめを解除しました。",
    "changed": "カードを切り替えました。",
}


CSRF_FIELD = "csrf"


class _Site:
    """Redirects, page rendering and form checks of one member site.

    Every form of a signed-in page carries a token bound to the session (HMAC of the
    session id): a page on another site, or on another port of this host (the same
    site, so SameSite cookies are sent), cannot know it and cannot stop a grant.
    """

    def __init__(self, state: SandboxState, issuer: Issuer) -> None:
        self.issuer: Issuer = issuer
        self._state = state

    @property
    def _csrf_key(self) -> bytes:
        # Read each time: a reset or a restart reads the state's key anew.
        return self._state.site_key + self.issuer.encode()

    def csrf(self, request: Request) -> str:
        session = request.cookies.get(session_cookie(self.issuer), "")
        return hmac.new(self._csrf_key, session.encode(), hashlib.sha256).hexdigest()

    async def form(self, request: Request) -> FormData | None:
        """The posted form, or ``None`` when its token is not this session's."""
        form = await request.form()
        sent = str(form.get(CSRF_FIELD, ""))
        if not request.cookies.get(session_cookie(self.issuer)):
            return None
        return form if hmac.compare_digest(sent, self.csrf(request)) else None

    def refused(self, request: Request) -> Response:
        message = "このページの有効期限が切れました。もう一度やり直してください。"
        return render(request, self.issuer, "error.html", status_code=403, message=message)

    @staticmethod
    def site_path(request: Request) -> str:
        return f"{mount_prefix(request)}/member"

    def next_page(self, request: Request, raw: str | None) -> str | None:
        """The page asked for before the login, when it is one of this site's."""
        return safe_next(raw, self.site_path(request))

    def back(self, request: Request, next_page: str | None = None) -> WayBack | None:
        """The way back to the client that linked here: its ``return_to``, or the one
        inside the page asked for before the login."""
        raw = request.query_params.get(RETURN_PARAM)
        if raw is None and next_page is not None:
            raw = parse_qs(urlsplit(next_page).query).get(RETURN_PARAM, [None])[0]
        return way_back(raw, self._state.clients.values())

    def keep(self, request: Request) -> str:
        """The query that carries the way back on to the next page of the site."""
        back = self.back(request)
        return f"?{urlencode({RETURN_PARAM: back.url})}" if back else ""

    def go(self, request: Request, path: str, notice: str | None = None) -> Response:
        params = {"done": notice} if notice else {}
        back = self.back(request)
        if back is not None:
            params[RETURN_PARAM] = back.url
        url = f"{self.site_path(request)}{path}"
        return RedirectResponse(f"{url}?{urlencode(params)}" if params else url, status_code=303)

    def login_first(self, request: Request, page: str | None = None) -> Response:
        """To the login, which then brings the person to the page they asked for.

        Args:
            request: A request without a session.
            page: The page a posted form belongs to; ``None`` for the page asked for.
        """
        if page is None:
            query = request.url.query
            target = f"{mount_prefix(request)}{route_path(request.scope)}"
            target += f"?{query}" if query else ""
        else:
            target = f"{self.site_path(request)}{page}{self.keep(request)}"
        wanted = self.next_page(request, target)
        url = f"{self.site_path(request)}/login"
        if wanted is not None:
            url += f"?{urlencode({NEXT_PARAM: wanted})}"
        return RedirectResponse(url, status_code=303)

    def page(self, request: Request, template: str, **context: Any) -> Response:
        notice = NOTICES.get(request.query_params.get("done", ""))
        return render(
            request,
            self.issuer,
            template,
            notice=notice,
            csrf=self.csrf(request),
            back=self.back(request),
            keep=self.keep(request),
            **context,
        )


def build_member_router(state: SandboxState, issuer: Issuer) -> APIRouter:
    """Routes of the member site pages.

    Args:
        state: The sandbox.
        issuer: The issuer whose member site this is.
    """
    router = APIRouter(prefix="/member", include_in_schema=False)
    data = state.issuers[issuer]
    site = _Site(state, issuer)
    go, page = site.go, site.page

    @router.get("/login")
    async def login_page(request: Request) -> Response:
        wanted = site.next_page(request, request.query_params.get(NEXT_PARAM))
        if wanted is not None and session_user(state, issuer, request) is not None:
            return RedirectResponse(wanted, status_code=303)  # logged in already
        return render(
            request,
            issuer,
            "member_login.html",
            next_page=wanted,
            back=site.back(request, wanted),
            keep=site.keep(request),
        )

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        # Only a page of this site: a `next` naming another site is dropped (no open redirect).
        wanted = site.next_page(request, str(form.get(NEXT_PARAM, "")))
        session = open_session(
            state, issuer, str(form.get("user_id", "")), str(form.get("password", ""))
        )
        if session is None:
            return render(
                request,
                issuer,
                "member_login.html",
                status_code=401,
                error="ユーザーIDまたはパスワードが正しくありません。",
                next_page=wanted,
                back=site.back(request, wanted),
                keep=site.keep(request),
            )
        response = RedirectResponse(wanted, status_code=303) if wanted else go(request, "/")
        response.set_cookie(
            session_cookie(issuer),
            session,
            max_age=LEGACY_SESSION_TTL,
            path=mount_prefix(request) or "/",
            httponly=True,
            samesite="lax",
        )
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        if await site.form(request) is None:
            return site.refused(request)
        data.sessions.pop(request.cookies.get(session_cookie(issuer), ""), None)
        response = go(request, "/login")
        response.delete_cookie(session_cookie(issuer), path=mount_prefix(request) or "/")
        return response

    @router.get("/")
    async def home(request: Request) -> Response:
        user_id = session_user(state, issuer, request)
        if user_id is None:
            return site.login_first(request)
        return page(
            request,
            "member_home.html",
            user_id=user_id,
            cards=website_cards(state, issuer, user_id),
        )

    if issuer == "amex":
        _add_amex_pages(router, state, site)
    else:
        _add_jcb_pages(router, state, site)
    return router


def _add_amex_pages(router: APIRouter, state: SandboxState, site: _Site) -> None:
    data = state.issuers["amex"]
    go, page = site.go, site.page

    @router.get("/settings")
    async def settings(request: Request) -> Response:
        if session_user(state, "amex", request) is None:
            return site.login_first(request)
        return page(request, "member_settings.html")

    @router.get("/settings/services")
    async def services(request: Request) -> Response:
        user_id = session_user(state, "amex", request)
        if user_id is None:
            return site.login_first(request)
        rows = []
        for grant in data.grants.values():
            if grant.status != "active" or grant.subject != user_id:
                continue
            client = state.clients.get(grant.client_id)
            cards = " ".join(
                f"{card.masked_number} {card.holder_name}" for card in data.grant_cards(grant)
            )
            rows.append(
                {
                    "grant_id": grant.grant_id,
                    "client_name": client.name if client else grant.client_id,
                    "cards": cards,
                }
            )
        return page(request, "member_services.html", rows=rows)

    @router.post("/settings/services/{grant_id}/stop")
    async def stop(request: Request, grant_id: str) -> Response:
        user_id = session_user(state, "amex", request)
        if user_id is None:
            return site.login_first(request, "/settings/services")
        if await site.form(request) is None:
            return site.refused(request)
        grant = data.grants.get(grant_id)
        if grant is None or grant.subject != user_id:
            return render(
                request, "amex", "error.html", status_code=404, message="連携が見つかりません。"
            )
        # R16: stopping here is what frees the card for another link (R5, R10).
        if stop_grant(state, "amex", grant, by="member_site"):
            notify_link_revoked(state, "amex", grant)
        return go(request, "/settings/services", "stopped")

    @router.get("/settings/cards")
    async def cards_page(request: Request) -> Response:
        user_id = session_user(state, "amex", request)
        if user_id is None:
            return site.login_first(request)
        unregistered = [card for card in data.cards_of_user(user_id) if not card.registered]
        return page(request, "member_cards.html", cards=unregistered)

    @router.post("/settings/cards")
    async def register(request: Request) -> Response:
        user_id = session_user(state, "amex", request)
        if user_id is None:
            return site.login_first(request, "/settings/cards")
        form = await site.form(request)
        if form is None:
            return site.refused(request)
        card = data.cards.get(str(form.get("card_id", "")))
        if card is None or card.user_id != user_id:
            return render(
                request, "amex", "error.html", status_code=404, message="カードが見つかりません。"
            )
        # R15: registered to the ID, the card now appears on the consent screen.
        card.registered = True
        return go(request, "/settings/cards", "registered")


def _add_jcb_pages(router: APIRouter, state: SandboxState, site: _Site) -> None:
    data = state.issuers["jcb"]
    go, page = site.go, site.page

    @router.get("/combined")
    async def combined_page(request: Request) -> Response:
        user_id = session_user(state, "jcb", request)
        if user_id is None:
            return site.login_first(request)
        grouped = data.users[user_id].combined_of
        return page(request, "member_combined.html", grouped=grouped)

    @router.post("/combined")
    async def combine(request: Request) -> Response:
        user_id = session_user(state, "jcb", request)
        if user_id is None:
            return site.login_first(request, "/combined")
        form = await site.form(request)
        if form is None:
            return site.refused(request)
        other_id = str(form.get("user_id", ""))
        other = data.users.get(other_id)
        user = data.users[user_id]
        if other is None or other.password != str(form.get("password", "")) or other_id == user_id:
            return page(
                request,
                "member_combined.html",
                grouped=user.combined_of,
                error="おまとめする ID またはパスワードが正しくありません。",
            )
        # R6: the login now sees the other ID's cards too; a link made with it is "combined".
        if other_id not in user.combined_of:
            user.combined_of.append(other_id)
        return go(request, "/combined", "combined")

    @router.post("/combined/remove")
    async def uncombine(request: Request) -> Response:
        user_id = session_user(state, "jcb", request)
        if user_id is None:
            return site.login_first(request, "/combined")
        form = await site.form(request)
        if form is None:
            return site.refused(request)
        user = data.users[user_id]
        user.combined_of = [uid for uid in user.combined_of if uid != form.get("user_id")]
        return go(request, "/combined", "uncombined")

    @router.get("/card-change")
    async def card_change_page(request: Request) -> Response:
        user_id = session_user(state, "jcb", request)
        if user_id is None:
            return site.login_first(request)
        cards = [
            card
            for card in data.cards_of_user(user_id)
            if card.status == "active" and card.product in JCB_API_PRODUCTS
        ]
        return page(
            request, "member_card_change.html", cards=cards, products=sorted(JCB_API_PRODUCTS)
        )

    @router.post("/card-change")
    async def card_change(request: Request) -> Response:
        user_id = session_user(state, "jcb", request)
        if user_id is None:
            return site.login_first(request, "/card-change")
        form = await site.form(request)
        if form is None:
            return site.refused(request)
        card = data.cards.get(str(form.get("card_id", "")))
        product = str(form.get("product", ""))
        if card is None or card.user_id != user_id or product not in JCB_API_PRODUCTS:
            return render(
                request, "jcb", "error.html", status_code=400, message="切り替えできません。"
            )
        try:
            # R7: the old card is replaced; the link follows the new card from now on.
            new_card = upgrade_card(
                state, "jcb", card, new_card_id=next_card_id(state, "jcb", product), product=product
            )
        except CardError as exc:
            return render(request, "jcb", "error.html", status_code=400, message=str(exc))
        notify_statements(state, "jcb", [new_card.card_id])
        return go(request, "/card-change", "changed")
