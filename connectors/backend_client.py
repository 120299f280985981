"""Typed client of renkei's REST API, implementing the flows' port of the back end.

Every call is made for one member: with a member's own token, or with the
assistant's service token and ``X-Renkei-Act-As`` naming the member, so the back end
checks that member's offices and role on every step. In the embedded default the
transport is ``httpx.ASGITransport`` over the same app: no socket, same contract.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from backend.api.schemas import (
    AccountOut,
    AuthorizationStartOut,
    CardOut,
    CardUsesOut,
    EventOut,
    ExportLinkOut,
    InvitationOut,
    Issuer,
    IssuerHealthOut,
    IssuerInfoOut,
    LinkCheck,
    LinkCheckOut,
    OfficeDetailOut,
    OfficeOut,
    RefusalCode,
    RegisteredCardsOut,
    SyncResultOut,
    SyncStatus,
    UploadResultOut,
)
from statemachine.port import (
    AccountInfo,
    AuthorizationStart,
    BackendRefusal,
    BackendUnavailable,
    CardInfo,
    CardUseInfo,
    EventInfo,
    InvitationInfo,
    IssuerHealthInfo,
    IssuerSites,
    OfficeInfo,
    SyncInfo,
    UploadInfo,
)

JAPAN = ZoneInfo("Asia/Tokyo")

M = TypeVar("M", bound=BaseModel)

ACT_AS_HEADER = "X-Renkei-Act-As"
API = "/api/v1"


def _seg(value: str) -> str:
    """An id as one path segment: whatever it holds, it stays inside its segment."""
    return quote(value, safe="")


def card_info(card: CardOut) -> CardInfo:
    return CardInfo(
        id=card.id,
        issuer=card.issuer,
        masked_number=card.masked_number,
        product=card.product,
        holder_name=card.holder_name,
        role=card.role,
        basic_card_id=card.basic_card_id,
        successor_id=card.successor_id,
        api_eligible=card.api_eligible,
        card_ref=card.card_ref,
    )


def account_info(account: AccountOut) -> AccountInfo:
    return AccountInfo(
        id=account.id,
        office_id=account.office_id,
        name=account.name,
        issuer=account.issuer,
        sync_method=account.sync_method,
        status=account.status,
        card=card_info(account.card) if account.card else None,
        last_synced_at=account.last_synced_at.isoformat() if account.last_synced_at else None,
        last_error=account.last_error,
        link_status=account.link.status if account.link else None,
        has_legacy_credentials=account.has_legacy_credentials,
        consent_ends_on=_day_in_japan(account.link.consent_expires_at) if account.link else None,
        consent_expiring=bool(account.link and account.link.consent_expiring),
    )


def _day_in_japan(moment: dt.datetime | None) -> str | None:
    # The issuers and the offices are in Japan: a day is a day there.
    return moment.astimezone(JAPAN).date().isoformat() if moment is not None else None


def upload_info(result: UploadResultOut) -> UploadInfo:
    return UploadInfo(
        added=result.added,
        duplicates=result.duplicates,
        skipped_cards=tuple(group.card for group in result.skipped_groups),
        payments=result.payments,
        adjustments=result.adjustments,
    )


def connect(
    base_url: str,
    token: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
) -> httpx.AsyncClient:
    """One pooled HTTP client for every ``BackendClient`` of a process."""
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/") + API,
        headers={"Authorization": f"Bearer {token}"},
        transport=transport,
        timeout=timeout,
    )


class BackendClient:
    """The back end as one member sees it.

    Args:
        http: From ``connect``: a member's own token, or the service token.
        act_as: With the service token, the member every call is made for.
    """

    def __init__(self, http: httpx.AsyncClient, *, act_as: str | None = None) -> None:
        self._client = http
        # Headers are ASCII: the address travels percent-encoded as UTF-8 (RFC 3986).
        self._headers = {ACT_AS_HEADER: quote(act_as, safe="@")} if act_as else {}

    # ------------------------------------------------------------------ plumbing
    async def _call(
        self, method: str, path: str, *, answers: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        """Send one request; ``answers`` are 5xx statuses that carry the back end's own
        answer (a sync's 503: the issuer is down, not the back end) when in its error shape."""
        try:
            response = await self._client.request(method, path, headers=self._headers, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"{method} {path}: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            refusal = self._refusal(response) if response.status_code in answers else None
            if refusal is None or refusal.code == "unexpected_answer":
                raise BackendUnavailable(f"{method} {path} answered {response.status_code}")
            raise refusal
        if response.status_code >= 400:
            raise self._refusal(response)
        return response

    @staticmethod
    def _refusal(response: httpx.Response) -> BackendRefusal:
        try:
            error = response.json()["error"]
            return BackendRefusal(
                str(error["code"]),
                str(error.get("message") or ""),
                rule=error.get("rule"),
                details=dict(error.get("details") or {}),
                status=response.status_code,
            )
        except (ValueError, KeyError, TypeError):
            return BackendRefusal(RefusalCode.UNEXPECTED_ANSWER, status=response.status_code)

    async def _get(self, path: str, model: type[M], **kwargs: Any) -> M:
        return self._parse(await self._call("GET", path, **kwargs), model)

    async def _post(self, path: str, model: type[M], **kwargs: Any) -> M:
        return self._parse(await self._call("POST", path, **kwargs), model)

    @staticmethod
    def _parse(response: httpx.Response, model: type[M]) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise BackendUnavailable(f"unreadable answer: {exc.error_count()} errors") from exc

    async def _get_list(self, path: str, model: type[M]) -> list[M]:
        response = await self._call("GET", path)
        try:
            return TypeAdapter(list[model]).validate_json(response.content)  # type: ignore[valid-type]
        except ValidationError as exc:
            raise BackendUnavailable(f"unreadable answer: {exc.error_count()} errors") from exc

    # ------------------------------------------------------------------ the port
    async def offices(self) -> list[OfficeInfo]:
        offices = await self._get_list("/offices", OfficeOut)
        return [
            OfficeInfo(id=o.id, name=o.name, role=o.role, admins=tuple(o.admins)) for o in offices
        ]

    async def office(self, office_id: str) -> OfficeInfo:
        office = await self._get(f"/offices/{_seg(office_id)}", OfficeDetailOut)
        return OfficeInfo(
            id=office.id,
            name=office.name,
            role=office.role,
            released_issuers=tuple(office.released_issuers),
            admins=tuple(office.admins),
        )

    async def invitations(self) -> list[InvitationInfo]:
        return [
            InvitationInfo(
                id=i.id,
                office_id=i.office_id,
                office_name=i.office_name,
                role=i.role,
                invited_by=i.invited_by,
            )
            for i in await self._get_list("/invitations", InvitationOut)
        ]

    async def answer_invitation(self, invitation_id: str, accept: bool) -> None:
        await self._call(
            "POST", f"/invitations/{_seg(invitation_id)}/{'accept' if accept else 'decline'}"
        )

    async def accounts(self, office_id: str) -> list[AccountInfo]:
        return [
            account_info(a)
            for a in await self._get_list(f"/offices/{_seg(office_id)}/accounts", AccountOut)
        ]

    async def account(self, account_id: str) -> AccountInfo:
        return account_info(await self._get(f"/accounts/{_seg(account_id)}", AccountOut))

    async def office_cards(self, office_id: str) -> list[CardInfo]:
        return [
            card_info(c) for c in await self._get_list(f"/offices/{_seg(office_id)}/cards", CardOut)
        ]

    async def card_uses(self, office_id: str, card_id: str) -> list[CardUseInfo]:
        uses = await self._get(
            f"/offices/{_seg(office_id)}/cards/{_seg(card_id)}/uses", CardUsesOut
        )
        return [
            CardUseInfo(
                account_id=u.account_id,
                office_id=u.office_id,
                office_name=u.office_name,
                sync_method=u.sync_method,
                api_linked=u.api_linked,
            )
            for u in uses.uses
        ]

    async def register_api_account(
        self,
        office_id: str,
        issuer: Issuer,
        name: str,
        *,
        card_id: str | None = None,
        return_url: str | None = None,
    ) -> AuthorizationStart:
        body = {
            "sync_method": "api",
            "issuer": issuer,
            "name": name,
            "card_id": card_id,
            "return_url": return_url,
        }
        start = await self._post(
            f"/offices/{_seg(office_id)}/accounts", AuthorizationStartOut, json=body
        )
        return AuthorizationStart(start.account_id, start.authorization_url, start.sign_in_code)

    async def switch_to_api(
        self, account_id: str, *, return_url: str | None = None
    ) -> AuthorizationStart:
        start = await self._post(
            f"/accounts/{_seg(account_id)}/switch-to-api",
            AuthorizationStartOut,
            json={"return_url": return_url},
        )
        return AuthorizationStart(start.account_id, start.authorization_url, start.sign_in_code)

    async def reauthorize(
        self, account_id: str, *, return_url: str | None = None
    ) -> AuthorizationStart:
        start = await self._post(
            f"/accounts/{_seg(account_id)}/reauth",
            AuthorizationStartOut,
            json={"return_url": return_url},
        )
        return AuthorizationStart(start.account_id, start.authorization_url, start.sign_in_code)

    async def sync_now(self, account_id: str) -> SyncInfo:
        try:
            result = await self._post(
                f"/accounts/{_seg(account_id)}/sync", SyncResultOut, answers=(503,)
            )
        except BackendRefusal as refusal:
            if refusal.status == 503:
                return SyncInfo(status=SyncStatus.FAILED, error_code=refusal.code)
            raise
        return SyncInfo(
            status=result.status,
            added=result.added,
            modified=result.modified,
            removed=result.removed,
            error_code=result.error_code,
        )

    async def abandon_registration(self, account_id: str) -> None:
        await self._call("DELETE", f"/accounts/{_seg(account_id)}/registration")

    async def delete_account(self, account_id: str) -> None:
        await self._call("DELETE", f"/accounts/{_seg(account_id)}")

    async def check_link(self, account_id: str) -> LinkCheck:
        answer = await self._post(f"/accounts/{_seg(account_id)}/link/check", LinkCheckOut)
        return answer.status

    async def archive_account(self, account_id: str) -> AccountInfo:
        return account_info(await self._post(f"/accounts/{_seg(account_id)}/archive", AccountOut))

    async def registered_cards(self, account_id: str) -> list[CardInfo]:
        cards = await self._post(
            f"/accounts/{_seg(account_id)}/registered-cards", RegisteredCardsOut
        )
        return [card_info(c) for c in cards.subject_cards]

    async def events(self, account_id: str, *, limit: int = 50) -> list[EventInfo]:
        response = await self._call(
            "GET", "/events", params={"account_id": account_id, "limit": limit}
        )
        try:
            events = TypeAdapter(list[EventOut]).validate_json(response.content)
        except ValidationError as exc:
            raise BackendUnavailable("unreadable events") from exc
        return [
            EventInfo(
                id=e.id,
                type=e.type,
                account_id=e.account_id,
                payload=dict(e.payload),
                created_at=e.created_at.isoformat(),
            )
            for e in events
        ]

    async def upload_statements(
        self, account_id: str, filename: str, data: bytes, *, card_id: str | None = None
    ) -> UploadInfo:
        form = {"card_id": card_id} if card_id else {}
        result = await self._post(
            f"/accounts/{_seg(account_id)}/statements/upload",
            UploadResultOut,
            files={"file": (filename, data, "text/csv")},
            data=form,
        )
        return upload_info(result)

    async def resync_old_card(self, account_id: str, login_id: str, password: str) -> UploadInfo:
        result = await self._post(
            f"/accounts/{_seg(account_id)}/card-change/resync-old-card",
            UploadResultOut,
            json={"login_id": login_id, "password": password},
        )
        return upload_info(result)

    async def new_account_for_old_card(
        self, account_id: str, login_id: str, password: str, name: str
    ) -> AccountInfo:
        account = await self._post(
            f"/accounts/{_seg(account_id)}/card-change/new-account",
            AccountOut,
            json={"login_id": login_id, "password": password, "name": name},
        )
        return account_info(account)

    async def issuer_sites(self) -> dict[Issuer, IssuerSites]:
        sites = await self._get_list("/issuers", IssuerInfoOut)
        return {
            s.issuer: IssuerSites(
                issuer=s.issuer,
                member_site_url=s.member_site_url,
                card_registration_url=s.card_registration_url,
                external_services_url=s.external_services_url,
            )
            for s in sites
        }

    async def issuer_health(self) -> dict[str, IssuerHealthInfo]:
        answers = await self._get_list("/issuers/health", IssuerHealthOut)
        return {
            str(h.issuer): IssuerHealthInfo(
                issuer=str(h.issuer),
                state=h.state,
                failing_since=h.failing_since.isoformat() if h.failing_since else None,
            )
            for h in answers
        }

    async def export_link(self, account_id: str) -> str:
        link = await self._post(
            f"/accounts/{_seg(account_id)}/statements/export-link", ExportLinkOut
        )
        return link.url
