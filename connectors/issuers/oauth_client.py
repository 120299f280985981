"""The issuer connector shared by Amex and JCB: OAuth by authlib, resources by httpx.

``OAuthIssuerGateway`` implements ``backend.service.ports.IssuerGateway`` over
the HTTP contract of ``docs/issuer-api.md``. Each call opens its own
``AsyncOAuth2Client`` holding the caller's tokens; authlib refreshes them when
they expire and hands the rotated pair to the caller's ``TokenSaver``. All
clients of one gateway share one connection pool (or the in-process transport).

Calls for the same grant must not run concurrently: refresh tokens rotate, so
two calls refreshing with the same refresh token leave one of them with
``ReauthRequired``. The back end serialises them with its per-account lock.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client

from backend.service.ports import (
    AuthorizationRequest,
    GrantInfo,
    IssuerName,
    LegacyStatements,
    LinkStatus,
    StatementPage,
    TokenSaver,
    TokenSet,
)
from connectors.issuers import payloads, translate
from connectors.issuers.calls import fail, guarded, parse, read_json, send, token_endpoint_guard
from connectors.issuers.config import IssuerConfig
from connectors.issuers.endpoints import METADATA_PATH, Endpoints
from connectors.issuers.errors import (
    ConsentRevoked,
    LegacyLoginFailed,
)
from connectors.issuers.retry import RetryPolicy, Sleep, run_with_retries
from connectors.issuers.transport import SharedTransport

T = TypeVar("T")

log = logging.getLogger(__name__)

MAX_SYNC_COUNT = 500  # the contract's upper bound of ``count``


class OAuthIssuerGateway:
    """One card issuer reached by OAuth 2.0 (authorization code + PKCE S256).

    Subclasses name the issuer (``issuer``) and hold what differs between
    issuers; everything the contract shares lives here.

    Args:
        config: Where the issuer is and how patiently to talk to it.
        transport: An httpx transport to send through, e.g. ``httpx.ASGITransport``
            to reach a sandbox mounted in the same process. The gateway never
            closes a transport it was given. None: a pooled HTTP transport.
        sleep: How to wait between retries (tests may pass a recorder).
    """

    issuer: IssuerName

    def __init__(
        self,
        config: IssuerConfig,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.config = config
        self._base_url = config.base_url.rstrip("/")
        self._owned_transport: httpx.AsyncHTTPTransport | None = None
        if transport is None:
            transport = self._owned_transport = httpx.AsyncHTTPTransport()
        self._transport = SharedTransport(transport, deadline=config.timeout)
        self._timeout = httpx.Timeout(config.timeout)
        self._policy = RetryPolicy(
            max_retries=config.max_retries,
            backoff_base=config.backoff_base,
            max_backoff=config.max_backoff,
            retry_after_cap=config.retry_after_cap,
        )
        self._sleep = sleep
        self._endpoints: Endpoints | None = None
        self._discovery_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    async def aclose(self) -> None:
        """Close the connection pool the gateway opened (not a transport it was given)."""
        if self._owned_transport is not None:
            await self._owned_transport.aclose()

    # ------------------------------------------------------------------ endpoints
    async def endpoints(self) -> Endpoints:
        """The issuer's OAuth endpoints, from its RFC 8414 metadata (fetched once).

        An issuer without a metadata document (404) gets the contract's paths.

        Raises:
            IssuerError: The metadata could not be read (after retries); nothing
                is cached then, so the next call asks again.
        """
        if self._endpoints is None:
            async with self._discovery_lock:
                if self._endpoints is None:
                    self._endpoints = await self._discover()
        return self._endpoints

    async def _discover(self) -> Endpoints:
        what = f"GET {METADATA_PATH}"

        async def attempt() -> Endpoints:
            async with self._plain_client() as client:
                response = await send(
                    client,
                    "GET",
                    self._url(METADATA_PATH),
                    issuer=self.issuer,
                    what=what,
                    repeatable=True,
                )
            if response.status_code == 404:
                log.info("%s: no metadata document, using the contract's paths", self.issuer)
                return Endpoints.derived(self._base_url)
            if not response.is_success:
                fail(
                    translate.status_failure(
                        response, issuer=self.issuer, what=what, repeatable=True
                    )
                )
            data = read_json(response, issuer=self.issuer, what=what, repeatable=True)
            try:
                return Endpoints.from_metadata(
                    data if isinstance(data, dict) else {}, self._base_url
                )
            except ValueError as exc:
                raise translate.unreadable(what, issuer=self.issuer, reason=str(exc)) from exc

        return await run_with_retries(attempt, self._policy, what=what, sleep=self._sleep)

    # ---------------------------------------------------------------------- OAuth
    def authorization_request(self, *, redirect_uri: str) -> AuthorizationRequest:
        """Build an authorization URL with a fresh ``state`` and PKCE (S256) verifier.

        Uses the discovered authorization endpoint when ``endpoints()`` already
        ran, else the contract's path (this method is synchronous by the port).

        Args:
            redirect_uri: renkei's callback, registered exactly at the issuer.

        Returns:
            The URL to send the person to, and the state and verifier to keep
            until the callback (the verifier never leaves renkei).
        """
        endpoints = self._endpoints or Endpoints.derived(self._base_url)
        code_verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 asks 43-128
        client = self._oauth_client(redirect_uri=redirect_uri)
        url, state = client.create_authorization_url(
            endpoints.authorization_endpoint,
            state=secrets.token_urlsafe(32),
            code_verifier=code_verifier,
        )
        return AuthorizationRequest(
            url=url,
            state=state,
            code_verifier=code_verifier,
            issuer_identifier=endpoints.issuer,
        )

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        """Trade an authorization code for tokens (sent once: codes work once).

        Raises:
            ReauthRequired: The code is used, expired, or the verifier or
                redirect URI does not match (``invalid_grant``).
            IssuerError: Any other failure of the tree.
        """
        endpoints = await self.endpoints()
        what = "POST /oauth/token (authorization_code)"
        async with self._oauth_client(redirect_uri=redirect_uri) as client:

            async def attempt() -> TokenSet:
                token = await guarded(
                    client.fetch_token(
                        endpoints.token_endpoint,
                        grant_type="authorization_code",
                        code=code,
                        redirect_uri=redirect_uri,
                        code_verifier=code_verifier,
                    ),
                    issuer=self.issuer,
                    what=what,
                    repeatable=False,  # a code works once (contract); never send it twice
                )
                return parse(payloads.token_set, token, issuer=self.issuer, what=what)

            return await run_with_retries(attempt, self._policy, what=what, sleep=self._sleep)

    async def revoke(self, tokens: TokenSet) -> None:
        """Revoke the refresh token, then the access token (RFC 7009).

        What revocation means for the grant differs per issuer (R10): see the
        issuer's subclass.
        """
        endpoints = await self.endpoints()
        what = "POST /oauth/revoke"
        pairs = [(tokens.refresh_token, "refresh_token"), (tokens.access_token, "access_token")]
        async with self._oauth_client() as client:
            for token, hint in pairs:
                if not token:
                    continue

                async def attempt(token: str = token, hint: str = hint) -> None:
                    response: httpx.Response = await guarded(
                        client.revoke_token(
                            endpoints.revocation_endpoint, token=token, token_type_hint=hint
                        ),
                        issuer=self.issuer,
                        what=what,
                        repeatable=True,  # revoking twice is harmless (RFC 7009 §2.2)
                    )
                    if not response.is_success:
                        fail(
                            translate.status_failure(
                                response, issuer=self.issuer, what=what, repeatable=True
                            )
                        )

                await run_with_retries(attempt, self._policy, what=what, sleep=self._sleep)

    # ------------------------------------------------------------------ resources
    async def grant_info(self, tokens: TokenSet, save: TokenSaver) -> GrantInfo:
        """The consenting subject and the cards the grant covers (``GET /api/v1/me``).

        Raises:
            ConsentRevoked: The grant was stopped at the issuer.
            ReauthRequired: The tokens are refused and cannot be refreshed.
            IssuerError: Any other failure of the tree.
        """
        data = await self._resource(tokens, save, "/api/v1/me")
        return parse(payloads.grant_info, data, issuer=self.issuer, what="GET /api/v1/me")

    async def sync_statements(
        self, tokens: TokenSet, save: TokenSaver, cursor: str | None, *, count: int = 500
    ) -> StatementPage:
        """One page of statement changes after ``cursor`` (None = from the start).

        Args:
            tokens: The grant's tokens.
            save: Persists a rotated token pair.
            cursor: ``next_cursor`` of the previous page, or None.
            count: Page size, 1 to 500.

        Raises:
            InvalidCursor: The issuer no longer knows ``cursor``.
            IssuerError: The subclasses as for ``grant_info``.
        """
        if not 1 <= count <= MAX_SYNC_COUNT:
            raise ValueError(f"count must be 1..{MAX_SYNC_COUNT}")
        params: dict[str, str | int] = {"count": count}
        if cursor is not None:
            params["cursor"] = cursor
        path = "/api/v1/transactions/sync"
        data = await self._resource(tokens, save, path, params=params)
        return parse(payloads.statement_page, data, issuer=self.issuer, what=f"GET {path}")

    async def link_status(self, tokens: TokenSet, save: TokenSaver) -> LinkStatus:
        """Whether the grant is still registered at the issuer (R10, R16).

        ``stopped`` only when the issuer says so (401 "link stopped", or a
        refresh refused for a stopped grant). Tokens refused for another reason
        raise ``ReauthRequired``: the link may still be active, and taking it
        for stopped would let an Amex account be deleted with its grant still
        in place, which blocks the card from API linking (R10).

        Raises:
            ReauthRequired: The tokens are refused; the link state is unknown.
            IssuerError: Any other failure of the tree.
        """
        try:
            data = await self._resource(tokens, save, "/api/v1/link")
        except ConsentRevoked:
            return LinkStatus("stopped")
        status = parse(payloads.link_status, data, issuer=self.issuer, what="GET /api/v1/link")
        return LinkStatus(status)

    async def _resource(
        self,
        tokens: TokenSet,
        save: TokenSaver,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
    ) -> Any:
        """GET a resource with the caller's tokens; retries transient failures.

        The client lives for the whole call so that a token refreshed in one
        attempt is the one the next attempt uses (refresh tokens rotate).
        """
        what = f"GET {path}"
        await self.endpoints()  # authlib needs the token endpoint to refresh
        async with self._oauth_client(tokens=tokens, save=save) as client:
            refreshed_after_401 = False

            async def attempt() -> Any:
                nonlocal refreshed_after_401
                while True:
                    response = await send(
                        client,
                        "GET",
                        self._url(path),
                        issuer=self.issuer,
                        what=what,
                        repeatable=True,
                        params=params,
                    )
                    if (
                        response.status_code == 401
                        and not refreshed_after_401
                        and self._may_refresh(client, response)
                    ):
                        # The issuer's clock decides expiry, not ours: an access
                        # token it calls expired is refreshed (by authlib) once.
                        refreshed_after_401 = True
                        client.token = {**client.token, "expires_at": 0}
                        continue
                    if not response.is_success:
                        fail(
                            translate.status_failure(
                                response, issuer=self.issuer, what=what, repeatable=True
                            )
                        )
                    return read_json(response, issuer=self.issuer, what=what, repeatable=True)

            return await run_with_retries(attempt, self._policy, what=what, sleep=self._sleep)

    @staticmethod
    def _may_refresh(client: AsyncOAuth2Client, response: httpx.Response) -> bool:
        error, description = translate.oauth_error_fields(response)
        has_refresh_token = bool(client.token and client.token.get("refresh_token"))
        return (
            has_refresh_token
            and error in (None, "invalid_token")
            and not translate.says_stopped(description)
        )

    # --------------------------------------------------------------------- legacy
    async def legacy_fetch(self, login_id: str, password: str) -> LegacyStatements:
        """The old method: log in to the issuer website and read every statement.

        Kept for accounts not yet switched to API (R2, R12); the ID and password
        are sent to the issuer only and never logged.

        Raises:
            LegacyLoginFailed: The ID/password (or the session) was refused.
            IssuerError: Any other failure of the tree.
        """
        async with self._plain_client() as client:

            async def login() -> str:
                what = "POST /legacy/login"
                response = await send(
                    client,
                    "POST",
                    self._url("/legacy/login"),
                    issuer=self.issuer,
                    what=what,
                    repeatable=True,
                    data={"user_id": login_id, "password": password},
                )
                self._raise_for_legacy(response, what)
                data = read_json(response, issuer=self.issuer, what=what, repeatable=True)
                return parse(payloads.legacy_session, data, issuer=self.issuer, what=what)

            session = await run_with_retries(
                login, self._policy, what="POST /legacy/login", sleep=self._sleep
            )

            async def statements() -> Any:
                what = "GET /legacy/statements"
                response = await send(
                    client,
                    "GET",
                    self._url("/legacy/statements"),
                    issuer=self.issuer,
                    what=what,
                    repeatable=True,
                    headers={"X-Legacy-Session": session},
                )
                self._raise_for_legacy(response, what)
                return read_json(response, issuer=self.issuer, what=what, repeatable=True)

            data = await run_with_retries(
                statements, self._policy, what="GET /legacy/statements", sleep=self._sleep
            )
        return parse(
            payloads.legacy_statements, data, issuer=self.issuer, what="GET /legacy/statements"
        )

    def _raise_for_legacy(self, response: httpx.Response, what: str) -> None:
        if response.status_code == 401:
            raise LegacyLoginFailed(f"{self.issuer}: {what} refused the login", issuer=self.issuer)
        if not response.is_success:
            fail(translate.status_failure(response, issuer=self.issuer, what=what, repeatable=True))

    # -------------------------------------------------------------------- clients
    def _url(self, path: str) -> str:
        return f"{self._base_url}{path}"

    def _plain_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport, timeout=self._timeout, follow_redirects=False
        )

    def _oauth_client(
        self,
        *,
        tokens: TokenSet | None = None,
        save: TokenSaver | None = None,
        redirect_uri: str | None = None,
    ) -> AsyncOAuth2Client:
        """An authlib client for one call; refreshes through authlib, saves through ``save``."""
        endpoints = self._endpoints or Endpoints.derived(self._base_url)
        update_token = _token_updater(save, self.issuer) if save is not None else None
        client = AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret or None,
            scope=self.config.scope or None,
            redirect_uri=redirect_uri,
            token=payloads.authlib_token(tokens) if tokens is not None else None,
            update_token=update_token,
            leeway=self.config.token_leeway,
            code_challenge_method="S256",
            # authlib reads the refresh endpoint from its metadata kwargs.
            token_endpoint=endpoints.token_endpoint,
            transport=self._transport,
            timeout=self._timeout,
            follow_redirects=False,
        )
        guard = token_endpoint_guard(self.issuer)
        client.register_compliance_hook("access_token_response", guard)
        client.register_compliance_hook("refresh_token_response", guard)
        return client


def _token_updater(save: TokenSaver, issuer: str) -> Callable[..., Any]:
    """authlib's ``update_token`` callback: hand the rotated pair to the caller."""

    async def update_token(
        token: dict[str, Any], refresh_token: str | None = None, access_token: str | None = None
    ) -> None:
        del refresh_token, access_token  # the old values; the caller replaces them whole
        tokens = parse(payloads.token_set, token, issuer=issuer, what="token refresh")
        await save(tokens)

    return update_token
