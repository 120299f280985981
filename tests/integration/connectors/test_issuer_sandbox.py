"""The issuer connectors against the simulated issuers over real HTTP."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import httpx
import pytest

from backend.service.ports import LinkStatus, TokenSet
from connectors.issuers import AmexGateway, JcbGateway, OAuthIssuerGateway
from connectors.issuers.errors import (
    BadPayload,
    ConsentRefused,
    ConsentRevoked,
    IssuerError,
    IssuerUnavailable,
    LegacyLoginFailed,
    RateLimited,
    ReauthRequired,
)
from tests.support.browser import Browser

from .conftest import CLIENT_ID, REDIRECT_URI, Control, Saver, config

SYNC = "/api/v1/transactions/sync"


async def consent_by_pages(
    gateway: OAuthIssuerGateway, *, user_id: str, password: str, cards: list[str] | None
) -> tuple[str, str, str]:
    """Go through login, consent and card pages; returns code, state and verifier."""
    request = gateway.authorization_request(redirect_uri=REDIRECT_URI)
    async with httpx.AsyncClient(timeout=5) as client:
        browser = Browser(client)
        page = await browser.open(request.url)
        assert page.status_code == 200, page.text
        page = await browser.press("ログイン", fill={"user_id": user_id, "password": password})
        assert page.status_code == 200, page.text
        page = await browser.press("同意して次へ")
        assert page.status_code == 200, page.text
        page = await browser.press("許可する", tick=cards)
        assert page.status_code == 200, page.text
        back = httpx.URL(browser.link("renkei に戻る"))
    assert str(back.copy_with(query=None)) == REDIRECT_URI
    return back.params["code"], back.params["state"], request.code_verifier


async def link_by_control(
    gateway: OAuthIssuerGateway, control: Control, *, user_id: str, cards: list[str]
) -> TokenSet:
    """Authorize through the control API (where the pages are not the point) and exchange."""
    request = gateway.authorization_request(redirect_uri=REDIRECT_URI)
    answer = await control(
        "/authorize",
        {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "user_id": user_id,
            "card_ids": cards,
            "state": request.state,
            "code_challenge": httpx.URL(request.url).params["code_challenge"],
        },
    )
    return await gateway.exchange_code(
        code=answer["code"], redirect_uri=REDIRECT_URI, code_verifier=request.code_verifier
    )


async def active_grant(control: Control, card_id: str | None = None) -> dict[str, Any]:
    grants = [
        g
        for g in await control.grants()
        if g["client_id"] == CLIENT_ID
        and g["status"] == "active"
        and (card_id is None or card_id in g["card_ids"])
    ]
    assert len(grants) == 1, grants
    return grants[0]


async def sync_all(
    gateway: OAuthIssuerGateway, tokens: TokenSet, saver: Saver, cursor: str | None, count: int
) -> tuple[list[Any], list[Any], str, int]:
    """Every page from ``cursor`` on: added, modified, the last cursor, the page count."""
    added: list[Any] = []
    modified: list[Any] = []
    pages = 0
    while True:
        page = await gateway.sync_statements(tokens, saver, cursor, count=count)
        pages += 1
        added += page.added
        modified += page.modified
        cursor = page.next_cursor
        if not page.has_more:
            return added, modified, cursor, pages


# ------------------------------------------------------------- the happy path
async def test_amex_consent_exchange_grant_info_and_sync(
    amex: AmexGateway, amex_control: Control
) -> None:
    code, state, verifier = await consent_by_pages(
        amex, user_id="user_good", password="pass_good", cards=["amex-biz-1001"]
    )
    assert state  # the callback compares it with the state it kept
    tokens = await amex.exchange_code(code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier)
    assert tokens.refresh_token and tokens.expires_at and tokens.expires_at > time.time()
    assert tokens.access_token not in repr(tokens)

    saver = Saver()
    info = await amex.grant_info(tokens, saver)
    assert info.subject == "user_good" and info.subject_kind == "single"
    assert [c.card_ref for c in info.cards] == ["amex-biz-1001"]  # R13: one card per grant
    assert info.cards[0].product == "amex_business"

    added, modified, cursor, pages = await sync_all(amex, tokens, saver, None, count=15)
    assert len(added) == 40 and pages >= 3  # demo: 40 statements, paged by 15
    assert modified == []
    assert len({s.transaction_id for s in added}) == 40
    pending = [s for s in added if s.status == "pending"]
    assert len(pending) == 3
    assert all(isinstance(s.amount_jpy, int) for s in added)
    assert all(s.card_ref == "amex-biz-1001" for s in added)
    assert saver.saved == []  # no refresh was needed

    await amex_control("/cards/amex-biz-1001/confirm")
    added_later, modified, _, _ = await sync_all(amex, tokens, saver, cursor, count=15)
    assert added_later == []
    assert {s.transaction_id for s in modified} == {s.transaction_id for s in pending}
    assert all(s.status == "confirmed" for s in modified)


async def test_jcb_grant_covers_every_card_of_the_id(jcb: JcbGateway) -> None:
    code, _, verifier = await consent_by_pages(
        jcb, user_id="user_good", password="pass_good", cards=None
    )
    tokens = await jcb.exchange_code(code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier)
    info = await jcb.grant_info(tokens, Saver())
    # R9: one grant covers the cards of every user under the MyJCB ID
    assert {c.card_ref for c in info.cards} == {"jcb-gold-4001", "jcb-gold-4002"}


async def test_wrong_code_verifier_is_reauth_required(amex: AmexGateway) -> None:
    code, _, _ = await consent_by_pages(
        amex, user_id="user_good", password="pass_good", cards=["amex-biz-1001"]
    )
    with pytest.raises(ReauthRequired):
        await amex.exchange_code(code=code, redirect_uri=REDIRECT_URI, code_verifier="x" * 64)


# ------------------------------------------------------------------- refresh
async def test_expired_access_token_is_refreshed_and_old_refresh_token_refused(
    amex: AmexGateway, amex_control: Control, refresh_policy: str
) -> None:
    tokens = await link_by_control(
        amex, amex_control, user_id="user_good", cards=["amex-gold-2001"]
    )
    await amex_control("/clock", {"advance_seconds": 1000})  # past the 900 s access token

    saver = Saver()
    info = await amex.grant_info(tokens, saver)
    assert [c.card_ref for c in info.cards] == ["amex-gold-2001"]
    (rotated,) = saver.saved
    assert rotated.refresh_token and rotated.refresh_token != tokens.refresh_token
    assert rotated.access_token != tokens.access_token

    # the new pair works
    await amex.link_status(rotated, saver)
    assert rotated.consent_expires_at == tokens.consent_expires_at is not None
    if refresh_policy == "strict":
        # the used refresh token does not, and its reuse ends the whole chain
        with pytest.raises(ReauthRequired):
            await amex.grant_info(tokens, Saver())
        with pytest.raises(ReauthRequired):
            await amex.grant_info(dataclasses.replace(rotated, expires_at=0), Saver())
    else:
        # a retry of the used token within the grace period is answered, and the pair its
        # first use produced is retired: one chain stays alive
        retried = Saver()
        await amex.grant_info(dataclasses.replace(tokens, expires_at=0), retried)
        with pytest.raises(ReauthRequired):
            await amex.grant_info(dataclasses.replace(rotated, expires_at=0), Saver())
        await amex.link_status(retried.latest, Saver())


async def test_authlib_refreshes_a_token_it_knows_is_expired(
    jcb: JcbGateway, jcb_control: Control
) -> None:
    tokens = await link_by_control(jcb, jcb_control, user_id="user_good", cards=[])
    stale = dataclasses.replace(tokens, expires_at=int(time.time()) - 5)
    saver = Saver()
    assert await jcb.link_status(stale, saver) == LinkStatus("active")
    assert len(saver.saved) == 1
    assert saver.latest.refresh_token != tokens.refresh_token


# --------------------------------------------------------------- link status
async def test_link_status_active_then_stopped(amex: AmexGateway, amex_control: Control) -> None:
    tokens = await link_by_control(amex, amex_control, user_id="user_good", cards=["amex-biz-1001"])
    saver = Saver()
    assert await amex.link_status(tokens, saver) == LinkStatus("active")

    grant = await active_grant(amex_control, "amex-biz-1001")
    await amex_control(f"/grants/{grant['grant_id']}/stop")  # as 停止する on the member site (R16)

    assert await amex.link_status(tokens, saver) == LinkStatus("stopped")
    with pytest.raises(ConsentRevoked):
        await amex.sync_statements(tokens, saver, None)


async def test_stopped_link_with_expired_token(amex: AmexGateway, amex_control: Control) -> None:
    tokens = await link_by_control(amex, amex_control, user_id="user_good", cards=["amex-biz-1001"])
    grant = await active_grant(amex_control, "amex-biz-1001")
    await amex_control(f"/grants/{grant['grant_id']}/stop")
    stale = dataclasses.replace(tokens, expires_at=int(time.time()) - 5)
    # authlib refreshes first; the issuer refuses the refresh saying the link is stopped
    assert await amex.link_status(stale, Saver()) == LinkStatus("stopped")
    with pytest.raises(ConsentRevoked):
        await amex.grant_info(stale, Saver())


# -------------------------------------------------------------------- revoke
async def test_amex_revoke_leaves_the_grant_active(
    amex: AmexGateway, amex_control: Control
) -> None:
    tokens = await link_by_control(amex, amex_control, user_id="user_good", cards=["amex-biz-1001"])
    await amex.revoke(tokens)
    # R10: only the member site stops an Amex link
    assert (await active_grant(amex_control, "amex-biz-1001"))["status"] == "active"
    with pytest.raises(ReauthRequired):
        await amex.grant_info(tokens, Saver())


async def test_jcb_revoke_stops_the_grant(jcb: JcbGateway, jcb_control: Control) -> None:
    tokens = await link_by_control(jcb, jcb_control, user_id="user_good", cards=[])
    await jcb.revoke(tokens)
    grants = [g for g in await jcb_control.grants() if g["client_id"] == CLIENT_ID]
    assert [g["status"] for g in grants] == ["stopped"]
    with pytest.raises(ConsentRevoked):
        await jcb.grant_info(tokens, Saver())
    assert await jcb.link_status(tokens, Saver()) == LinkStatus("stopped")


async def test_amex_revoked_tokens_leave_link_status_unknown(
    amex: AmexGateway, amex_control: Control
) -> None:
    tokens = await link_by_control(amex, amex_control, user_id="user_good", cards=["amex-biz-1001"])
    await amex.revoke(tokens)
    # R10: the grant is still active at Amex, so "stopped" would be wrong here
    with pytest.raises(ReauthRequired):
        await amex.link_status(tokens, Saver())


# ------------------------------------------------------------ consent rules
async def test_amex_card_linked_by_a_faster_authorization_is_refused(
    amex: AmexGateway, amex_control: Control
) -> None:
    first = amex.authorization_request(redirect_uri=REDIRECT_URI)
    second = amex.authorization_request(redirect_uri=REDIRECT_URI)
    codes = []
    for request in (first, second):
        answer = await amex_control(
            "/authorize",
            {
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "user_id": "user_good",
                "card_ids": ["amex-plat-3001"],
                "state": request.state,
                "code_challenge": httpx.URL(request.url).params["code_challenge"],
            },
        )
        codes.append(answer["code"])
    await amex.exchange_code(
        code=codes[0], redirect_uri=REDIRECT_URI, code_verifier=first.code_verifier
    )
    with pytest.raises(ConsentRefused):  # R5: one link per Amex card
        await amex.exchange_code(
            code=codes[1], redirect_uri=REDIRECT_URI, code_verifier=second.code_verifier
        )


async def test_jcb_combined_login_is_reported(jcb: JcbGateway, jcb_control: Control) -> None:
    tokens = await link_by_control(jcb, jcb_control, user_id="user_combined", cards=[])
    info = await jcb.grant_info(tokens, Saver())
    # R6: the back end refuses such a grant; the connector reports it faithfully
    assert info.subject_kind == "combined"
    assert {"jcb-gold-4001", "jcb-gold-4002"} <= {c.card_ref for c in info.cards}


async def test_code_is_single_use(amex: AmexGateway) -> None:
    code, _, verifier = await consent_by_pages(
        amex, user_id="user_good", password="pass_good", cards=["amex-gold-2001"]
    )
    tokens = await amex.exchange_code(code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier)
    with pytest.raises(ReauthRequired):
        await amex.exchange_code(code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier)
    # a replayed code revokes what it produced (RFC 6749 §4.1.2)
    with pytest.raises(ReauthRequired):
        await amex.grant_info(tokens, Saver())


# -------------------------------------------------------------------- legacy
@pytest.mark.parametrize("issuer", ["amex", "jcb"])
async def test_legacy_fetch(sandbox_url: str, http: httpx.AsyncClient, issuer: str) -> None:
    gateway = (AmexGateway if issuer == "amex" else JcbGateway)(config(sandbox_url, issuer))
    result = await gateway.legacy_fetch("user_good", "pass_good")
    assert result.cards and result.statements
    assert all(s.transaction_id is None for s in result.statements)
    card_refs = {c.card_ref for c in result.cards}
    assert {s.card_ref for s in result.statements} <= card_refs

    with pytest.raises(LegacyLoginFailed) as caught:
        await gateway.legacy_fetch("user_good", "pass_bad")
    assert "pass_bad" not in str(caught.value)
    await gateway.aclose()


# -------------------------------------------------------------------- faults
FAULTS: list[tuple[dict[str, Any], type[IssuerError]]] = [
    ({"kind": "500"}, IssuerUnavailable),
    ({"kind": "429", "retry_after": 1}, RateLimited),
    ({"kind": "timeout"}, IssuerUnavailable),
    ({"kind": "malformed_json"}, BadPayload),
]


@pytest.mark.parametrize(("fault", "error"), FAULTS, ids=[f["kind"] for f, _ in FAULTS])
async def test_fault_outlasting_the_retries_is_typed(
    sandbox_url: str, amex_control: Control, fault: dict[str, Any], error: type[IssuerError]
) -> None:
    gateway = AmexGateway(config(sandbox_url, "amex", timeout=0.5, max_retries=2))
    tokens = await link_by_control(
        gateway, amex_control, user_id="user_good", cards=["amex-biz-1001"]
    )
    await amex_control("/faults", {"path": SYNC, "times": 3} | fault)  # 1 try + 2 retries
    with pytest.raises(error):
        await gateway.sync_statements(tokens, Saver(), None)
    # the fault is used up: the next call goes through
    page = await gateway.sync_statements(tokens, Saver(), None, count=5)
    assert len(page.added) == 5
    await gateway.aclose()


@pytest.mark.parametrize(("fault", "error"), FAULTS, ids=[f["kind"] for f, _ in FAULTS])
async def test_fault_clearing_within_the_retries_succeeds(
    sandbox_url: str, amex_control: Control, fault: dict[str, Any], error: type[IssuerError]
) -> None:
    # The one try left after the fault must succeed on a loaded machine too; a timeout
    # fault still outlasts it (the sandbox holds it for 30 s).
    gateway = AmexGateway(config(sandbox_url, "amex", timeout=2.0, max_retries=2))
    tokens = await link_by_control(
        gateway, amex_control, user_id="user_good", cards=["amex-biz-1001"]
    )
    await amex_control("/faults", {"path": SYNC, "times": 2} | fault)
    started = time.monotonic()
    page = await gateway.sync_statements(tokens, Saver(), None, count=5)
    assert len(page.added) == 5
    if fault["kind"] == "429":
        assert time.monotonic() - started >= 2  # Retry-After: 1, honoured twice
    await gateway.aclose()


async def test_retry_after_above_the_cap_is_not_waited_for(
    sandbox_url: str, amex_control: Control
) -> None:
    gateway = AmexGateway(config(sandbox_url, "amex", retry_after_cap=5))
    tokens = await link_by_control(
        gateway, amex_control, user_id="user_good", cards=["amex-biz-1001"]
    )
    await amex_control("/faults", {"path": SYNC, "kind": "429", "retry_after": 60, "times": 1})
    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        await gateway.sync_statements(tokens, Saver(), None)
    assert caught.value.retry_after == 60
    assert time.monotonic() - started < 2
    await gateway.aclose()
