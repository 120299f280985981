"""The member sites: Amex 外部サービスとの連携 / カードの追加登録, MyJCB おまとめ / カードの切替."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from sandbox.cards import CardError, next_card_id, upgrade_card
from sandbox.grants import stop_grant
from sandbox.legacy import open_session, session_cookie, session_user, website_cards
from sandbox.state import JCB_API_PRODUCTS, LEGACY_SESSION_TTL, Issuer, SandboxState
from sandbox.web import mount_prefix, render
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

    def __init__(self, issuer: Issuer) -> None:
        self.issuer: Issuer = issuer
        self._csrf_key = secrets.token_bytes(32)

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

    def go(self, request: Request, path: str, notice: str | None = None) -> Response:
        url = f"{mount_prefix(request)}/member{path}"
        return RedirectResponse(f"{url}?done={notice}" if notice else url, status_code=303)

    def page(self, request: Request, template: str, **context: Any) -> Response:
        notice = NOTICES.get(request.query_params.get("done", ""))
        return render(
            request, self.issuer, template, notice=notice, csrf=self.csrf(request), **context
        )


def build_member_router(state: SandboxState, issuer: Issuer) -> APIRouter:
    """Routes of the member site pages.

    Args:
        state: The sandbox.
        issuer: The issuer whose member site this is.
    """
    router = APIRouter(prefix="/member", include_in_schema=False)
    data = state.issuers[issuer]
    site = _Site(issuer)
    go, page = site.go, site.page

    @router.get("/login")
    async def login_page(request: Request) -> Response:
        return render(request, issuer, "member_login.html")

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
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
            )
        response = go(request, "/")
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
            return go(request, "/login")
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
            return go(request, "/login")
        return page(request, "member_settings.html")

    @router.get("/settings/services")
    async def services(request: Request) -> Response:
        user_id = session_user(state, "amex", request)
        if user_id is None:
            return go(request, "/login")
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
            return go(request, "/login")
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
            return go(request, "/login")
        unregistered = [card for card in data.cards_of_user(user_id) if not card.registered]
        return page(request, "member_cards.html", cards=unregistered)

    @router.post("/settings/cards")
    async def register(request: Request) -> Response:
        user_id = session_user(state, "amex", request)
        if user_id is None:
            return go(request, "/login")
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
            return go(request, "/login")
        grouped = data.users[user_id].combined_of
        return page(request, "member_combined.html", grouped=grouped)

    @router.post("/combined")
    async def combine(request: Request) -> Response:
        user_id = session_user(state, "jcb", request)
        if user_id is None:
            return go(request, "/login")
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
            return go(request, "/login")
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
            return go(request, "/login")
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
            return go(request, "/login")
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
