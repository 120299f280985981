"""A consent completes only for the member who started it, in a browser that proves it.

renkei never hands out the issuer's authorization URL. It hands out its own start URL
(``/api/v1/oauth/start/<id>``), and that page sends the browser on to the issuer only
once the browser has shown it is the member's:

- a browser signed in to renkei (the web chat) asks with the member's own API token;
- any other browser (a link opened from Slack or the terminal) types the one-time code
  shown only in the member's own conversation: short-lived, single use, a few tries.

Either way the browser gets an HttpOnly, SameSite=Lax cookie whose hash the authorization
keeps, and the callback completes only with that cookie. A forwarded start link without
the code, or a forwarded issuer URL, ends on a page that says to start again; nothing of
the other person's card is exchanged, so nothing lands anywhere and their own office is
not locked out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from backend.domain import errors
from backend.domain.model import Issuer, PendingAuthorization, Role
from backend.service import access
from backend.service.context import Principal, ServiceContext
from backend.service.uow import Repository

SIGN_IN_CODE_TTL = dt.timedelta(minutes=10)
SIGN_IN_ATTEMPTS = 5
# No 0/O, 1/I/L: read off a screen and typed by a person. 8 characters: 40 bits.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_LENGTH = 8
COOKIE_PREFIX = "renkei_consent_"


def new_sign_in_code() -> str:
    """A fresh one-time code, shown as ``ABCD-EFGH``."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def _normalized(typed: str) -> str:
    return "".join(ch for ch in typed.upper() if ch.isalnum())


def code_hash(pending_id: str, code: str) -> str:
    """What is stored of a code: a hash salted by its authorization, never the code."""
    return hashlib.sha256(f"{pending_id}:{_normalized(code)}".encode()).hexdigest()


def binding_hash(browser_key: str) -> str:
    return hashlib.sha256(browser_key.encode()).hexdigest()


def cookie_name(state: str) -> str:
    """One cookie per authorization, so two consents under way in one browser both work."""
    return COOKIE_PREFIX + hashlib.sha256(state.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StartPage:
    """What renkei's start page shows before the code is typed."""

    issuer: Issuer
    requested_by: str  # masked: the page may be open in a stranger's browser
    attempts_left: int


@dataclass(frozen=True)
class Binding:
    """A browser proved it is the member's: where to send it, and its cookie."""

    issuer_url: str
    state: str
    browser_key: str
    expires_at: dt.datetime


def _masked_email(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}•••@{domain}" if domain else "•••"


async def _open_pending(ctx: ServiceContext, start_id: str) -> PendingAuthorization:
    async with ctx.uow() as uow:
        pending = await uow.repo.pending_by_id(start_id) if start_id else None
    if pending is None or pending.issuer_url is None:
        raise errors.InvalidRequest("unknown start link", reason="start_unknown")
    if pending.used_at is not None:
        raise errors.InvalidRequest("this link was already used", reason="start_used")
    if pending.expires_at < ctx.clock():
        raise errors.InvalidRequest("this link has expired", reason="expired")
    return pending


async def start_page(ctx: ServiceContext, start_id: str) -> StartPage:
    """The start page of a link opened in a browser not signed in to renkei.

    Raises:
        InvalidRequest: The link is unknown, expired, or already used (``reason``).
    """
    pending = await _open_pending(ctx, start_id)
    _check_code_usable(ctx, pending)
    return StartPage(
        issuer=Issuer(pending.issuer),
        requested_by=_masked_email(pending.requested_by),
        attempts_left=SIGN_IN_ATTEMPTS - pending.sign_in_attempts,
    )


def _check_code_usable(ctx: ServiceContext, pending: PendingAuthorization) -> None:
    if pending.sign_in_used_at is not None:
        raise errors.InvalidRequest("the code of this link was already used", reason="start_used")
    if pending.sign_in_attempts >= SIGN_IN_ATTEMPTS:
        raise errors.InvalidRequest("too many wrong codes", reason="code_exhausted")
    expires = pending.sign_in_code_expires_at
    if pending.sign_in_code_hash is None or expires is None or expires < ctx.clock():
        raise errors.InvalidRequest("the code has expired", reason="expired")


async def bind_with_code(ctx: ServiceContext, start_id: str, typed: str) -> Binding:
    """The browser typed the one-time code of the member's conversation.

    Raises:
        InvalidRequest: The link cannot be used (``reason``), or the code is wrong
            (``reason=code_wrong``, ``attempts_left``).
    """
    pending = await _open_pending(ctx, start_id)
    _check_code_usable(ctx, pending)
    assert pending.sign_in_code_hash is not None
    async with ctx.uow() as uow:
        if not await uow.repo.count_sign_in_attempt(pending.id, SIGN_IN_ATTEMPTS):
            await uow.commit()
            raise errors.InvalidRequest("too many wrong codes", reason="code_exhausted")
        right = hmac.compare_digest(code_hash(pending.id, typed), pending.sign_in_code_hash)
        if not right:
            await uow.commit()
            left = SIGN_IN_ATTEMPTS - pending.sign_in_attempts - 1
            if left <= 0:
                raise errors.InvalidRequest("too many wrong codes", reason="code_exhausted")
            raise errors.InvalidRequest("wrong code", reason="code_wrong", attempts_left=left)
        if not await uow.repo.use_sign_in_code(pending.id, ctx.clock()):
            raise errors.InvalidRequest("the code was already used", reason="start_used")
        binding = await _bind(ctx, uow.repo, pending)
        await uow.commit()
        return binding


async def bind_signed_in(ctx: ServiceContext, principal: Principal, start_id: str) -> Binding:
    """A browser signed in to renkei as the member who started asks to go on.

    Asking again (the person came back from the issuer's page and clicked the link once
    more) gives a new cookie; the one given before stops counting.

    Raises:
        NotFound: The link is not this caller's (someone else's link does not exist for them).
        InvalidRequest: The link cannot be used any more (``reason``).
    """
    async with ctx.uow() as uow:
        found = await uow.repo.pending_by_id(start_id) if start_id else None
    # Whose it is first: someone else learns nothing of the link, not even that it was used.
    if found is None or not (
        principal.email == found.requested_by
        and principal.support_admin == found.requested_by_admin
    ):
        raise errors.NotFound("start link not found")
    pending = await _open_pending(ctx, start_id)
    async with ctx.uow() as uow:
        binding = await _bind(ctx, uow.repo, pending)
        await uow.commit()
        return binding


async def _bind(ctx: ServiceContext, repo: Repository, pending: PendingAuthorization) -> Binding:
    browser_key = secrets.token_urlsafe(32)
    if not await repo.bind_browser(pending.id, binding_hash(browser_key)):
        raise errors.InvalidRequest("this link was already used", reason="start_used")
    assert pending.issuer_url is not None
    return Binding(
        issuer_url=pending.issuer_url,
        state=pending.state,
        browser_key=browser_key,
        expires_at=pending.expires_at,
    )


def browser_is_bound(pending: PendingAuthorization, browser_key: str | None) -> bool:
    """Whether the callback's browser is the one that proved it is the member's."""
    if not browser_key or pending.browser_binding is None:
        return False
    return hmac.compare_digest(binding_hash(browser_key), pending.browser_binding)


async def requester_still_member(ctx: ServiceContext, pending: PendingAuthorization) -> bool:
    """The link lands only in an office the member who started still belongs to."""
    principal = Principal(email=pending.requested_by, support_admin=pending.requested_by_admin)
    async with ctx.uow() as uow:
        try:
            await access.require_office(uow.repo, principal, pending.office_id, Role.MEMBER)
        except (errors.NotFound, errors.Forbidden):
            return False
    return True
