"""The consent pages a person clicks through: login, 同意して次へ, cards and 許可する."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from sandbox.grants import S256_CHALLENGE, ConsentError, card_choices, issue_code, select_cards
from sandbox.state import (
    AUTHORIZATION_REQUEST_TTL,
    AuthorizationRequest,
    Issuer,
    SandboxState,
    new_id,
)
from sandbox.web import issuer_base_url, render


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` added to its query, keeping the query it already has."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def build_pages_router(state: SandboxState, issuer: Issuer) -> APIRouter:
    """Routes of the authorization endpoint and its pages.

    Args:
        state: The sandbox.
        issuer: The issuer these pages belong to.
    """
    router = APIRouter()
    data = state.issuers[issuer]

    def error_page(request: Request, message: str, status_code: int = 400) -> Response:
        return render(request, issuer, "error.html", status_code=status_code, message=message)

    def client_name(client_id: str) -> str:
        client = state.clients.get(client_id)
        return client.name if client else client_id

    def error_redirect(
        request: Request,
        redirect_uri: str,
        error: str,
        description: str,
        state_value: str | None,
    ) -> Response:
        params = {"error": error, "error_description": description}
        if state_value:
            params["state"] = state_value
        # RFC 9207 §2: error responses name the issuer too.
        params["iss"] = issuer_base_url(request)
        return RedirectResponse(with_query(redirect_uri, params), status_code=303)

    def current(request: Request, txn: str, stage: str) -> AuthorizationRequest | Response:
        pending = data.requests.get(txn)
        if pending is None or state.now() > pending.expires_at:
            return error_page(request, "手続きの有効期限が切れました。最初からやり直してください。")
        if pending.stage != stage:
            return error_page(
                request, "この手続きはすでに進んでいます。最初からやり直してください。"
            )
        return pending

    @router.get("/oauth/authorize", include_in_schema=False)
    async def authorize(request: Request) -> Response:
        params = request.query_params
        client = state.clients.get(params.get("client_id", ""))
        if client is None:
            return error_page(request, "不明なクライアントです (client_id)。")
        redirect_uri = params.get("redirect_uri", "")
        # Exact match only: a prefix or pattern match would let codes leak elsewhere.
        if redirect_uri not in client.redirect_uris:
            return error_page(request, "登録されていないリダイレクト先です (redirect_uri)。")
        state_value = params.get("state")
        repeated = [key for key in set(params.keys()) if len(params.getlist(key)) > 1]
        if repeated:
            return error_redirect(
                request,
                redirect_uri,
                "invalid_request",
                f"repeated parameter {sorted(repeated)[0]}",
                state_value,
            )
        if params.get("response_type") != "code":
            return error_redirect(
                request,
                redirect_uri,
                "unsupported_response_type",
                "response_type must be code",
                state_value,
            )
        if not state_value:
            return error_redirect(
                request, redirect_uri, "invalid_request", "state is required", None
            )
        if params.get("code_challenge_method") != "S256":
            return error_redirect(
                request,
                redirect_uri,
                "invalid_request",
                "code_challenge_method must be S256 (plain is not supported)",
                state_value,
            )
        challenge = params.get("code_challenge", "")
        if not S256_CHALLENGE.match(challenge):
            return error_redirect(
                request,
                redirect_uri,
                "invalid_request",
                "code_challenge is missing or malformed",
                state_value,
            )
        pending = AuthorizationRequest(
            txn=new_id("txn"),
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            state=state_value,
            code_challenge=challenge,
            scope=params.get("scope", ""),
            expires_at=state.now() + AUTHORIZATION_REQUEST_TTL,
        )
        data.requests[pending.txn] = pending
        return render(
            request, issuer, "login.html", txn=pending.txn, client_name=client.name, user_id=None
        )

    @router.post("/oauth/authorize/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        pending = current(request, str(form.get("txn", "")), "login")
        if isinstance(pending, Response):
            return pending
        user_id = str(form.get("user_id", ""))
        user = data.users.get(user_id)
        if user is None or user.password != str(form.get("password", "")):
            return render(
                request,
                issuer,
                "login.html",
                status_code=401,
                txn=pending.txn,
                client_name=client_name(pending.client_id),
                user_id=user_id,
                error="ユーザーIDまたはパスワードが正しくありません。",
            )
        pending.user_id = user_id
        pending.stage = "consent"
        return render(
            request,
            issuer,
            "consent.html",
            txn=pending.txn,
            client_name=client_name(pending.client_id),
        )

    @router.post("/oauth/authorize/consent", include_in_schema=False)
    async def consent(request: Request) -> Response:
        form = await request.form()
        pending = current(request, str(form.get("txn", "")), "consent")
        if isinstance(pending, Response):
            return pending
        decision = form.get("decision")
        if decision == "deny":
            pending.stage = "done"
            return error_redirect(
                request,
                pending.redirect_uri,
                "access_denied",
                "the user did not agree",
                pending.state,
            )
        if decision != "agree":
            return error_page(request, "同意するかどうかを選んでください。")
        pending.stage = "cards"
        return cards_page(request, pending)

    def cards_page(
        request: Request, pending: AuthorizationRequest, error: str | None = None
    ) -> Response:
        assert pending.user_id is not None
        user = data.users[pending.user_id]
        return render(
            request,
            issuer,
            "cards.html",
            status_code=400 if error else 200,
            txn=pending.txn,
            client_name=client_name(pending.client_id),
            choices=card_choices(state, issuer, pending.client_id, pending.user_id),
            subject_kind="combined" if user.combined_of else "single",
            error=error,
        )

    @router.post("/oauth/authorize/cards", include_in_schema=False)
    async def cards(request: Request) -> Response:
        form = await request.form()
        pending = current(request, str(form.get("txn", "")), "cards")
        if isinstance(pending, Response):
            return pending
        assert pending.user_id is not None
        posted = [str(value) for value in form.getlist("card_id")]
        try:
            card_ids = select_cards(state, issuer, pending.client_id, pending.user_id, posted)
        except ConsentError as exc:
            return cards_page(request, pending, exc.message)
        code = issue_code(
            state,
            issuer,
            client_id=pending.client_id,
            redirect_uri=pending.redirect_uri,
            code_challenge=pending.code_challenge,
            user_id=pending.user_id,
            card_ids=card_ids,
        )
        pending.stage = "done"
        # RFC 9207 §2: ``iss`` is the issuer identifier of this server's metadata.
        return_url = with_query(
            pending.redirect_uri,
            {"code": code, "state": pending.state, "iss": issuer_base_url(request)},
        )
        return render(
            request,
            issuer,
            "done.html",
            client_name=client_name(pending.client_id),
            return_url=return_url,
        )

    return router
