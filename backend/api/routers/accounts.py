"""Accounts: create by method (legacy, API R11, upload), read, delete (R10/R16),
switch to API (R12), re-authenticate, sync now, and the cards they sync (R14)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from backend.api.deps import Caller, Services
from backend.api.openapi import error_responses
from backend.api.rate_limits import CONSENTS, enforce, limited
from backend.api.schemas import (
    AccountCreate,
    AccountDeletedOut,
    AccountOut,
    ApiAccountCreate,
    AuthorizationOptions,
    AuthorizationStartOut,
    CardOut,
    CardUseOut,
    CardUsesOut,
    LegacyAccountCreate,
    LinkCheckOut,
    RegisteredCardsOut,
    SyncResultOut,
)
from backend.domain.model import Account
from backend.service import accounts, linking, manual_sync
from backend.service.accounts import AccountDetail
from backend.service.linking import AuthorizationStart
from backend.service.ports import IssuerCard
from i18n import DEFAULT_LOCALE, render

router = APIRouter(tags=["accounts"], responses=error_responses())


def _out(detail: AccountDetail) -> AccountOut:
    return AccountOut.from_domain(detail.account, detail.card, detail.link)


def _start_out(start: AuthorizationStart) -> AuthorizationStartOut:
    # renkei's start page, not the issuer's URL: the consent is bound to the caller's browser.
    return AuthorizationStartOut(
        account_id=start.account_id,
        authorization_url=start.authorization_url,
        sign_in_code=start.sign_in_code,
        sign_in_code_expires_at=start.sign_in_code_expires_at,
    )


@router.get(
    "/offices/{office_id}/accounts",
    response_model=list[AccountOut],
    summary="List an office's accounts",
    description="Every live account of the office with its card, link and sync state.",
)
async def list_accounts(office_id: str, services: Services, caller: Caller) -> list[AccountOut]:
    return [_out(d) for d in await accounts.list_accounts(services, caller, office_id)]


@router.post(
    "/offices/{office_id}/accounts",
    response_model=AccountOut | AuthorizationStartOut,
    status_code=status.HTTP_201_CREATED,
    summary="Register an account",
    responses=error_responses(429),
    description=(
        "The body's `sync_method` picks the method:\n\n"
        "- `legacy`: issuer-website ID and password, checked at the issuer first; when the "
        "login shows several cards, `card_ref` names the one (R15: one account per card). "
        "Answers the account.\n"
        "- `api` (R11): answers `{account_id, authorization_url, sign_in_code, "
        "sign_in_code_expires_at}`: `authorization_url` is renkei's start page, which goes "
        "on to the issuer's consent only in the caller's own browser (signed in, or typing "
        "the one-time `sign_in_code`, shown to the caller only). Refused until API linking "
        "is released to the office (R3/R4) or when the card is already linked (R5/R14).\n"
        "- `upload`: an account fed by statement files only. Answers the account."
    ),
)
async def create_account(
    office_id: str, body: AccountCreate, request: Request, services: Services, caller: Caller
) -> AccountOut | AuthorizationStartOut:
    account: Account
    if isinstance(body, ApiAccountCreate):
        await enforce(request, CONSENTS)
        start = await linking.register_api_account(
            services,
            caller,
            office_id=office_id,
            issuer=body.issuer,
            # No name given: the catalog's, ending in "API" as R11's card names do.
            name=body.name.strip()
            or render(f"words.api_account_name.{body.issuer}", DEFAULT_LOCALE),
            card_id=body.card_id,
            return_url=body.return_url,
        )
        return _start_out(start)
    if isinstance(body, LegacyAccountCreate):
        account = await accounts.create_legacy_account(
            services,
            caller,
            office_id=office_id,
            issuer=body.issuer,
            name=body.name,
            login_id=body.login_id,
            password=body.password,
            card_ref=body.card_ref,
        )
    else:
        card = body.card
        account = await accounts.create_upload_account(
            services,
            caller,
            office_id=office_id,
            issuer=body.issuer,
            name=body.name,
            card=IssuerCard(
                card_ref=card.card_ref,
                product=card.product,
                masked_number=card.masked_number,
                holder_name=card.holder_name,
                role=card.role.value,
            ),
        )
    return _out(await accounts.get_account(services, caller, account.id))


@router.get(
    "/accounts/{account_id}",
    response_model=AccountOut,
    summary="Get an account",
    description="One account with its card, latest link and sync state.",
)
async def get_account(account_id: str, services: Services, caller: Caller) -> AccountOut:
    return _out(await accounts.get_account(services, caller, account_id))


@router.delete(
    "/accounts/{account_id}",
    response_model=AccountDeletedOut,
    summary="Delete an account",
    description=(
        "Office admins only. The statements stay; stored credentials and tokens go. An Amex "
        "API account is refused with `revoke_at_issuer_first` (R10/R16) until its link is "
        "stopped on the Amex member site: 登録情報の変更 → 外部サービスとの連携 → the "
        "service → 停止する."
    ),
)
async def delete_account(account_id: str, services: Services, caller: Caller) -> AccountDeletedOut:
    return AccountDeletedOut.from_domain(
        await accounts.delete_account(services, caller, account_id)
    )


@router.delete(
    "/accounts/{account_id}/registration",
    status_code=204,
    summary="Abandon a registration never consented (R11)",
    description=(
        "Removes a new API account whose registration was given up before the person "
        "consented at the issuer: it never had a link, so it holds no grant, no statements "
        "and no credentials. Any member of its office may. Its authorizations not completed "
        "yet are spent. Any other account is refused with `invalid_state`."
    ),
)
async def abandon_registration(account_id: str, services: Services, caller: Caller) -> Response:
    await linking.abandon_registration(services, caller, account_id)
    return Response(status_code=204)


@router.post(
    "/accounts/{account_id}/switch-to-api",
    response_model=AuthorizationStartOut,
    summary="Switch an account to API (R12)",
    dependencies=[Depends(limited(CONSENTS))],
    responses=error_responses(429),
    description=(
        "Starts the switch in place: answers the issuer's authorization URL. When the person "
        "consents, the account keeps its history and its stored ID and password are erased "
        "(R2). Refused before the office's release (R3/R4), for ineligible cards (R1) and for "
        "a card already API-linked elsewhere (R5/R14)."
    ),
)
async def switch_to_api(
    account_id: str,
    services: Services,
    caller: Caller,
    body: AuthorizationOptions | None = None,
) -> AuthorizationStartOut:
    return_url = body.return_url if body else None
    return _start_out(await linking.switch_to_api(services, caller, account_id, return_url))


@router.post(
    "/accounts/{account_id}/reauth",
    response_model=AuthorizationStartOut,
    summary="Re-authenticate an API account",
    dependencies=[Depends(limited(CONSENTS))],
    responses=error_responses(429),
    description="Renews an expired or revoked link in place; answers the authorization URL.",
)
async def reauthorize(
    account_id: str,
    services: Services,
    caller: Caller,
    body: AuthorizationOptions | None = None,
) -> AuthorizationStartOut:
    return_url = body.return_url if body else None
    return _start_out(await linking.reauthorize(services, caller, account_id, return_url))


@router.post(
    "/accounts/{account_id}/link/check",
    response_model=LinkCheckOut,
    summary="Ask the issuer whether the link is stopped (R16)",
    description=(
        "Asks the issuer now whether the account's API link is still registered. A link "
        "stopped on the member site (登録情報の変更 → 外部サービスとの連携 → renkei → 停止する) "
        "is recorded as revoked, as the issuer's webhook would."
    ),
)
async def check_link(account_id: str, services: Services, caller: Caller) -> LinkCheckOut:
    return LinkCheckOut(status=await accounts.check_link(services, caller, account_id))


@router.post(
    "/accounts/{account_id}/archive",
    response_model=AccountOut,
    summary="Archive an account",
    description=(
        "Stops syncing an account without deleting it, e.g. the other offices' accounts of a "
        "card whose API link one office keeps (R14). An account holding an active API link is "
        "refused: stop the link first (R10/R16)."
    ),
)
async def archive(account_id: str, services: Services, caller: Caller) -> AccountOut:
    return _out(await accounts.set_archived(services, caller, account_id, archived=True))


@router.post(
    "/accounts/{account_id}/unarchive",
    response_model=AccountOut,
    summary="Bring an archived account back",
)
async def unarchive(account_id: str, services: Services, caller: Caller) -> AccountOut:
    return _out(await accounts.set_archived(services, caller, account_id, archived=False))


@router.post(
    "/accounts/{account_id}/registered-cards",
    response_model=RegisteredCardsOut,
    summary="Cards registered to the account's issuer ID (R15)",
    description=(
        "Asks the issuer, with the account's stored ID and password, which cards are "
        "registered to that ID: an Amex supplementary card must be registered there before "
        "the consent screen lists it (R15). Needs a legacy account (409 `invalid_state` once "
        "the credentials were erased by a switch, R2)."
    ),
)
async def registered_cards(
    account_id: str, services: Services, caller: Caller
) -> RegisteredCardsOut:
    cards = await accounts.registered_cards(services, caller, account_id)
    return RegisteredCardsOut(subject_cards=[CardOut.from_domain(c) for c in cards])


@router.post(
    "/accounts/{account_id}/sync",
    response_model=SyncResultOut,
    summary="Sync an account now",
    description=(
        "Members only. Runs the sync and answers its result; `skipped` for upload accounts "
        "and API accounts waiting for consent. 503 with Retry-After when the issuer is busy."
    ),
)
async def sync_now(account_id: str, services: Services, caller: Caller) -> SyncResultOut:
    result = await manual_sync.sync_account_as(services, caller, account_id)
    return SyncResultOut.model_validate(result, from_attributes=True)


@router.get(
    "/offices/{office_id}/cards",
    response_model=list[CardOut],
    summary="Cards of an office",
    description=(
        "The cards the office's accounts sync, with the supplementary cards issued on them "
        "(R15: each needs an account of its own) and the cards they replaced (R7)."
    ),
)
async def office_cards(office_id: str, services: Services, caller: Caller) -> list[CardOut]:
    return [
        CardOut.from_domain(c) for c in await accounts.cards_of_office(services, caller, office_id)
    ]


@router.get(
    "/offices/{office_id}/cards/{card_id}/uses",
    response_model=CardUsesOut,
    summary="Offices using a card (R14)",
    description=(
        "Every account that syncs this card and which one holds its API link. Only one office "
        "may API-link a card used in several offices (R14); offices the caller does not belong "
        "to appear without id or name."
    ),
)
async def card_uses(
    office_id: str, card_id: str, services: Services, caller: Caller
) -> CardUsesOut:
    card, uses = await accounts.offices_using_card(services, caller, office_id, card_id)
    return CardUsesOut(
        card=CardOut.from_domain(card),
        uses=[
            CardUseOut(
                account_id=u.account_id,
                office_id=u.office_id,
                office_name=u.office_name,
                sync_method=u.sync_method,
                api_linked=u.api_linked,
            )
            for u in uses
        ],
    )
