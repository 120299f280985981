"""API links: register (R11), switch in place (R12, R2), re-authenticate, OAuth callback."""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from backend.domain import errors, rules
from backend.domain.model import (
    Account,
    AccountStatus,
    ApiLink,
    AuthorizationPurpose,
    Card,
    CardRole,
    Issuer,
    LinkStatus,
    PendingAuthorization,
    Role,
    SyncMethod,
)
from backend.service import access, card_discovery, consent_binding, events, jobs
from backend.service.accounts import (
    accounts_with_cards,
    add_account,
    office_cards,
    upsert_card,
)
from backend.service.consent_expiry import warn_if_due
from backend.service.context import Principal, ServiceContext
from backend.service.ports import GrantInfo, IssuerCard, IssuerError, TokenSet
from backend.service.tokens import consent_end_of, expiry_of, seal_tokens
from backend.service.uow import Repository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthorizationStart:
    """``authorization_url`` is renkei's start page, never the issuer's URL: the browser is
    sent on to ``issuer_url`` only once it proved it is the member's (``consent_binding``).
    ``sign_in_code`` is for the member's eyes only (their own conversation)."""

    account_id: str
    authorization_url: str
    state: str
    issuer_url: str
    sign_in_code: str
    sign_in_code_expires_at: dt.datetime


def start_url(ctx: ServiceContext, start_id: str) -> str:
    """renkei's start page, beside its OAuth callback."""
    return f"{ctx.oauth_redirect_uri.rsplit('/', 1)[0]}/start/{start_id}"


async def _start(
    ctx: ServiceContext,
    repo: Repository,
    account: Account,
    purpose: AuthorizationPurpose,
    principal: Principal,
    return_url: str | None,
) -> AuthorizationStart:
    request = ctx.gateway(account.issuer).authorization_request(redirect_uri=ctx.oauth_redirect_uri)
    code = consent_binding.new_sign_in_code()
    now = ctx.clock()
    pending = PendingAuthorization(
        state=request.state,
        account_id=account.id,
        office_id=account.office_id,
        issuer=Issuer(account.issuer),
        purpose=purpose,
        code_verifier=ctx.secrets.encrypt(request.code_verifier),
        redirect_uri=ctx.oauth_redirect_uri,
        requested_by=principal.email,
        expires_at=ctx.clock() + ctx.authorization_ttl,
        return_url=checked_return_url(return_url),
        created_at=now,
        requested_by_admin=principal.support_admin,
        issuer_url=request.url,
        expected_iss=request.issuer_identifier,
        sign_in_code_expires_at=min(
            now + consent_binding.SIGN_IN_CODE_TTL, now + ctx.authorization_ttl
        ),
    )
    pending.sign_in_code_hash = consent_binding.code_hash(pending.id, code)
    await repo.add(pending)
    assert pending.sign_in_code_expires_at is not None
    return AuthorizationStart(
        account_id=account.id,
        authorization_url=start_url(ctx, pending.id),
        state=request.state,
        issuer_url=request.url,
        sign_in_code=code,
        sign_in_code_expires_at=pending.sign_in_code_expires_at,
    )


def checked_return_url(return_url: str | None) -> str | None:
    """A path on this service only: an absolute or scheme-relative URL would be an open
    redirect from a page the issuer sends people to."""
    if return_url is None or return_url == "":
        return None
    parts = urlsplit(return_url)
    unsafe = any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in return_url)
    # Browsers drop tabs and newlines and read a backslash as a slash: "/\t/evil" is "//evil".
    if parts.scheme or parts.netloc or not return_url.startswith("/") or unsafe:
        raise errors.InvalidRequest("return_url must be a path on this service")
    if return_url.startswith("//"):
        raise errors.InvalidRequest("return_url must be a path on this service")
    return return_url


async def _check_card_free(
    repo: Repository, principal: Principal, card: Card, account_id: str
) -> None:
    """R5/R14, checked early so the person is told before going to the issuer."""
    try:
        rules.ensure_card_free(
            card, await repo.active_links_for_card(card.id), account_id=account_id
        )
    except errors.CardAlreadyLinked as exc:
        holder = str(exc.details.get("office_id"))
        if await access.may_see_office(repo, principal, holder):
            office = await repo.get_office(holder)
            exc.details["office_name"] = office.name if office else None
        else:
            # The caller may not know which other office holds it.
            exc.details.pop("office_id", None)
            exc.details.pop("account_id", None)
        raise


async def register_api_account(
    ctx: ServiceContext,
    principal: Principal,
    *,
    office_id: str,
    issuer: Issuer,
    name: str,
    card_id: str | None = None,
    return_url: str | None = None,
) -> AuthorizationStart:
    """R11: a new API account, created now and linked when the person consents.

    ``name`` is the account's name as the person gave it; the API fills in the catalog's
    default (R11: a name ending in "API") when she gave none.
    """
    if not name.strip():
        raise errors.InvalidRequest("an account needs a name", field="name")
    async with ctx.uow() as uow:
        await access.require_office(uow.repo, principal, office_id, Role.MEMBER)
        rules.ensure_released(await uow.repo.is_released(office_id, issuer), issuer)  # R3/R4
        card = None
        if card_id is not None:
            # Only a card of this office's own accounts: another office's card id names
            # nothing here (and would let this office see that card).
            card = next(
                (c for c in await office_cards(uow.repo, office_id) if c.id == card_id), None
            )
            if card is None or card.issuer != issuer:
                raise errors.NotFound("card not found", card_id=card_id)
            rules.ensure_card_eligible(card)  # R1
            await _check_card_free(uow.repo, principal, card, account_id="")
        account = Account(
            office_id=office_id,
            name=name.strip(),
            issuer=issuer,
            card_id=card.id if card else None,
            sync_method=SyncMethod.API,
            status=AccountStatus.NEEDS_REAUTH,
            created_at=ctx.clock(),
        )
        await add_account(ctx, uow.repo, account)  # R12
        start = await _start(
            ctx, uow.repo, account, AuthorizationPurpose.REGISTER, principal, return_url
        )
        await uow.commit()
        return start


async def switch_to_api(
    ctx: ServiceContext, principal: Principal, account_id: str, return_url: str | None = None
) -> AuthorizationStart:
    """R12: switch an existing account in place; its history stays."""
    async with ctx.uow() as uow:
        account = await access.account_for(uow.repo, principal, account_id, Role.MEMBER)
        rules.ensure_switchable(account)
        issuer = Issuer(account.issuer)
        rules.ensure_released(
            await uow.repo.is_released(account.office_id, issuer), issuer
        )  # R3/R4
        card = await uow.repo.get_card(account.card_id) if account.card_id else None
        if card is None:
            raise errors.InvalidState("account has no card yet", account_id=account_id)
        rules.ensure_card_eligible(card)  # R1
        await _check_card_free(uow.repo, principal, card, account.id)  # R5/R14
        start = await _start(
            ctx, uow.repo, account, AuthorizationPurpose.SWITCH, principal, return_url
        )
        await uow.commit()
        return start


async def reauthorize(
    ctx: ServiceContext, principal: Principal, account_id: str, return_url: str | None = None
) -> AuthorizationStart:
    """Renew an expired or revoked link in place (never a new account)."""
    async with ctx.uow() as uow:
        account = await access.account_for(uow.repo, principal, account_id, Role.MEMBER)
        if account.is_deleted or account.sync_method != SyncMethod.API:
            raise errors.InvalidState("only a live API account is re-authenticated")
        card = await uow.repo.get_card(account.card_id) if account.card_id else None
        if card is not None:
            await _check_card_free(uow.repo, principal, card, account.id)  # R5
        start = await _start(
            ctx, uow.repo, account, AuthorizationPurpose.REAUTH, principal, return_url
        )
        await uow.commit()
        return start


async def abandon_registration(ctx: ServiceContext, principal: Principal, account_id: str) -> None:
    """R11: a registration given up before the person consented leaves no account behind.

    Only an API account that never had a link is removed this way: it holds no grant at
    the issuer (R10 does not apply), no statements and no credentials, so any member of
    its office may remove it. Its authorizations still open are spent with it, so a
    consent page left open links nothing later.

    Raises:
        NotFound: Not an account of an office of the caller's.
        InvalidState: The account was linked once, or holds statements (``reason``).
    """
    async with ctx.uow() as uow:
        account = await access.account_for(
            uow.repo, principal, account_id, Role.MEMBER, for_update=True
        )
        never_linked = (
            not account.is_deleted
            and account.sync_method == SyncMethod.API
            and account.status == AccountStatus.NEEDS_REAUTH
            and await uow.repo.latest_link_of_account(account.id) is None
        )
        if not never_linked or await uow.repo.count_statements(account.id):
            raise errors.InvalidState(
                "only a registration never consented is abandoned",
                account_id=account_id,
                reason="not_a_draft",
            )
        await uow.repo.consume_pending_of_account(account.id, ctx.clock())
        account.status = AccountStatus.DELETED
        account.deleted_at = ctx.clock()
        await events.record(
            ctx,
            uow.repo,
            events.EventType.ACCOUNT_DELETED,
            office_id=account.office_id,
            account_id=account.id,
            reason="registration_abandoned",
        )
        await uow.commit()


@dataclass(frozen=True)
class AuthorizationOutcome:
    """What the callback page tells the person; ``error_code`` is None on success."""

    account_id: str | None
    office_id: str | None
    purpose: AuthorizationPurpose | None
    return_url: str | None = None
    error_code: str | None = None
    rule: str | None = None
    details: dict[str, object] | None = None


async def complete_authorization(
    ctx: ServiceContext,
    *,
    state: str,
    code: str | None,
    error: str | None,
    iss: str | None = None,
    browser_key: str | None = None,
) -> AuthorizationOutcome:
    """The OAuth callback: check state, browser and issuer, exchange the code, apply every
    rule, link in place.

    Nothing is exchanged unless the browser is the one the member proved at the start
    (``browser_key``, from its cookie) and the response names the issuer the authorization
    was started with (``iss``, RFC 9207): a forwarded link or a mixed-up issuer never turns
    someone's consent into tokens, so nothing lands in the office and the card stays free.

    Raises:
        InvalidRequest: Unknown, expired or replayed state, or a missing or wrong ``iss``
            (``reason``).
        Forbidden: The browser did not start this authorization (``reason=not_started_here``).
    """
    async with ctx.uow() as uow:
        pending = await uow.repo.pending_by_state(state) if state else None
        if pending is None:
            raise errors.InvalidRequest("unknown or missing state", reason="unknown_state")
        if pending.expires_at < ctx.clock():
            raise errors.InvalidRequest("authorization expired; start again", reason="expired")
        # Single use whatever comes next: a state seen in a browser that did not start it
        # has leaked, and must not be completed later either.
        if not await uow.repo.consume_pending(pending.id, ctx.clock()):
            raise errors.InvalidRequest("authorization already completed", reason="replayed")
        await uow.commit()
    if not consent_binding.browser_is_bound(pending, browser_key):
        await _record_failure(ctx, pending, "not_started_here", None)
        raise errors.Forbidden(
            "this authorization was not started in this browser", reason="not_started_here"
        )
    expected = pending.expected_iss
    # RFC 9207 §2.4 / RFC 9700 §4.4: one callback serves two issuers, so a response that
    # does not name the issuer this was started with may come from the other one.
    if not iss or not expected or not hmac.compare_digest(iss.encode(), expected.encode()):
        await _record_failure(ctx, pending, "issuer_mismatch", None)
        raise errors.InvalidRequest(
            "the answer does not come from the issuer this was started with",
            reason="issuer_mismatch",
        )
    if not await consent_binding.requester_still_member(ctx, pending):
        await _record_failure(ctx, pending, "not_started_here", None)
        raise errors.Forbidden(
            "the member who started this no longer belongs to the office",
            reason="not_started_here",
        )

    def outcome(
        error_code: str | None = None,
        rule: str | None = None,
        details: dict[str, object] | None = None,
    ) -> AuthorizationOutcome:
        return AuthorizationOutcome(
            account_id=pending.account_id,
            office_id=pending.office_id,
            purpose=AuthorizationPurpose(pending.purpose),
            return_url=pending.return_url,
            error_code=error_code,
            rule=rule,
            details=details,
        )

    if error or not code:
        await _record_failure(ctx, pending, error or "missing_code", None)
        return outcome(error or "missing_code")
    gateway = ctx.gateway(pending.issuer)
    current: list[TokenSet] = []

    async def keep(rotated: TokenSet) -> None:
        # Not stored yet (_link seals the newest pair), but never lost: a refresh
        # during this callback spends the previous refresh token.
        current[0] = rotated

    try:
        current.append(
            await gateway.exchange_code(
                code=code,
                redirect_uri=pending.redirect_uri,
                code_verifier=ctx.secrets.decrypt(pending.code_verifier),
            )
        )
        grant = await gateway.grant_info(current[0], keep)
    except IssuerError as exc:
        await _record_failure(ctx, pending, exc.code, None)
        return outcome(exc.code)
    try:
        await _link(ctx, pending, current[0], grant)
    except errors.RuleViolation as exc:
        details = await _visible_details(ctx, pending, dict(exc.details))
        # The grant is of no use to us: give it back. RFC 7009 ends a JCB grant, but an
        # Amex grant holds the card until it is stopped on the member site (R10, R16).
        try:
            await gateway.revoke(current[0])
        except IssuerError:
            log.warning("could not revoke a refused grant at %s", pending.issuer)
        if pending.issuer == Issuer.AMEX:
            details["stop_at_member_site"] = True
        await _record_failure(ctx, pending, exc.code, exc.rule, details)
        return outcome(exc.code, exc.rule, details)
    return outcome()


async def _link(
    ctx: ServiceContext, pending: PendingAuthorization, tokens: TokenSet, grant: GrantInfo
) -> None:
    issuer = Issuer(pending.issuer)
    async with ctx.uow() as uow:
        repo = uow.repo
        account = await repo.get_account(pending.account_id, for_update=True)
        if account is None or account.is_deleted:
            raise errors.InvalidState("account no longer exists")
        granted_refs = [c.card_ref for c in grant.cards if c.status == "active"]
        if account.card_id is None:
            # R11: a new account takes the card the person consented to.
            if issuer == Issuer.AMEX and len(granted_refs) != 1:
                raise errors.OneCardPerAuthorization(
                    "an Amex authorization must cover exactly one card", count=len(granted_refs)
                )  # R13
            primary = _primary_card(grant)
            card = await upsert_card(repo, issuer, primary)
            rules.ensure_card_eligible(card)  # R1
            rules.ensure_no_other_account(
                card, await accounts_with_cards(repo, account.office_id), account_id=account.id
            )  # R12
            account.card_id = card.id
        account_card = await repo.get_card(account.card_id)
        assert account_card is not None
        card = account_card
        if card.declared:
            # An upload account's card is only what its office declared. The issuer's own
            # card of that id, as this grant reports it, is what every rule below judges
            # and what the link holds (R1, R5, R15); the account moves onto it.
            reported = next((c for c in grant.cards if c.card_ref == card.card_ref), None)
            if reported is not None:
                card = await upsert_card(repo, issuer, reported)
                rules.ensure_no_other_account(
                    card, await accounts_with_cards(repo, account.office_id), account_id=account.id
                )  # R12
        # R15: the consent screen lists only cards registered to the online-service ID, so
        # a supplementary card missing from the grant was never registered there.
        rules.ensure_supplementary_registered(card, granted_refs)
        rules.ensure_grant_fits_account(
            issuer=issuer,
            subject_kind=grant.subject_kind,
            granted_card_refs=granted_refs,
            account_card=card,
        )  # R6, R13, R15
        rules.ensure_card_eligible(card)  # R1
        card_ids = {c.card_ref: (await upsert_card(repo, issuer, c)).id for c in grant.cards}
        await card_discovery.note_reported_cards(ctx, repo, account, issuer, grant.cards, card_ids)
        previous = await repo.active_link_of_account(account.id)
        rules.ensure_card_free(
            card, await repo.active_links_for_card(card.id), account_id=account.id
        )
        if issuer == Issuer.JCB:
            rules.ensure_myjcb_id_free(
                grant.subject,
                await repo.active_links_for_subject(issuer, grant.subject),
                account_id=account.id,
            )  # R6
        # A renewal of a live consent, or a re-authentication after a failure: the link
        # works again, and the warnings about its end no longer hold.
        repaired = previous is not None or pending.purpose == AuthorizationPurpose.REAUTH
        cleared = previous.consent_warned_days if previous is not None else None
        if previous is not None:
            # Re-authentication in place: the old grant is replaced, never doubled.
            previous.status = LinkStatus.EXPIRED
            previous.revoked_at = ctx.clock()
            await repo.flush()
        if card.id != account.card_id:
            # The declared card gives way to the issuer's: the office's uploaded lines move
            # with the account, so the API's lines match them instead of doubling them.
            await repo.move_statements_to_card(account.id, account_card.id, card.id)
            account.card_id = card.id
        link = ApiLink(
            account_id=account.id,
            office_id=account.office_id,
            issuer=issuer,
            card_id=card.id,
            subject=grant.subject,
            tokens=seal_tokens(ctx, tokens),
            expires_at=expiry_of(tokens),
            created_at=ctx.clock(),
            issuer_grant_id=grant.grant_id,
            consent_expires_at=consent_end_of(tokens),
        )
        await repo.add_link(link)  # R5/R6 backed by unique indexes
        switched = account.sync_method != SyncMethod.API
        account.sync_method = SyncMethod.API
        account.status = AccountStatus.ACTIVE
        account.last_error = None
        if switched:
            # The API has its own cursor; lines fetched before are matched, not doubled.
            account.sync_cursor = None
        # R2: after a switch the stored ID and password have no purpose.
        account.legacy_login_id = None
        account.legacy_password = None
        await events.record(
            ctx,
            repo,
            events.EventType.LINK_CREATED,
            office_id=account.office_id,
            account_id=account.id,
            issuer=issuer.value,
            purpose=str(pending.purpose),
            card=card.masked_number,
        )
        if repaired:
            # Plaid's LOGIN_REPAIRED: said once, so the warnings and notices can be cleared.
            await events.record(
                ctx,
                repo,
                events.EventType.LINK_REPAIRED,
                office_id=account.office_id,
                account_id=account.id,
                issuer=issuer.value,
                card=card.masked_number,
                renewed=previous is not None,
                cleared_warning_days=cleared,
                consent_expires_at=(
                    link.consent_expires_at.isoformat() if link.consent_expires_at else None
                ),
            )
        # A consent that is short from the start is warned of at once, not a minute later.
        await warn_if_due(ctx, repo, link, ctx.clock())
        await jobs.enqueue_sync(ctx, repo, account.id)
        await uow.commit()


async def _visible_details(
    ctx: ServiceContext, pending: PendingAuthorization, details: dict[str, object]
) -> dict[str, object]:
    """A refusal names another office (R5, R6) only to a member who belongs to it."""
    holder = details.get("office_id")
    if holder is None or holder == pending.office_id:
        return details
    principal = Principal(email=pending.requested_by, support_admin=pending.requested_by_admin)
    async with ctx.uow() as uow:
        if await access.may_see_office(uow.repo, principal, str(holder)):
            office = await uow.repo.get_office(str(holder))
            details["office_name"] = office.name if office else None
            return details
    details.pop("office_id", None)
    details.pop("account_id", None)
    return details


def _primary_card(grant: GrantInfo) -> IssuerCard:
    active = [c for c in grant.cards if c.status == "active"]
    basics = [c for c in active if c.role == CardRole.BASIC.value]
    return (basics or active or list(grant.cards))[0]


async def _record_failure(
    ctx: ServiceContext,
    pending: PendingAuthorization,
    code: str,
    rule: str | None,
    details: dict[str, object] | None = None,
) -> None:
    async with ctx.uow() as uow:
        await events.record(
            ctx,
            uow.repo,
            events.EventType.AUTHORIZATION_FAILED,
            office_id=pending.office_id,
            account_id=pending.account_id,
            error_code=code,
            rule=rule,
            purpose=str(pending.purpose),
            stop_at_member_site=bool((details or {}).get("stop_at_member_site")),
            # e.g. the office's existing account of the card (R12), when the caller may know
            other_account_id=(details or {}).get("account_id"),
        )
        await uow.commit()
