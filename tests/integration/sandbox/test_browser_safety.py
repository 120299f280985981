"""The sandbox's pages in a browser's eyes: no framing, a CSP, and member-site forms
that a page elsewhere (another port of the same host included) cannot submit."""

from __future__ import annotations

import httpx

from tests.integration.sandbox.helpers import (
    KEY,
    authorize_params,
    link,
    link_by_control,
    pkce,
    press,
)


async def amex_services_page(client: httpx.AsyncClient) -> httpx.Response:
    page = await client.get("/sandbox/amex/member/login")
    home = await press(
        client, page.text, "ログイン", fill={"ユーザーID": "user_good", "パスワード": "pass_good"}
    )
    assert home.status_code == 303
    home = await client.get(home.headers["location"])
    settings = await client.get(link(home.text, "登録情報の変更"))
    return await client.get(link(settings.text, "外部サービスとの連携"))


async def grant_status(client: httpx.AsyncClient, grant_id: str) -> str:
    grants = (await client.get("/sandbox/amex/control/grants", headers=KEY)).json()["grants"]
    (grant,) = [g for g in grants if g["grant_id"] == grant_id]
    return str(grant["status"])


async def test_a_forged_stop_from_another_page_is_refused(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    services = await amex_services_page(client)
    assert services.status_code == 200
    # What a page on another port posts with the member's cookie: no token, or a guess.
    stop = f"/sandbox/amex/member/settings/services/{linked.grant_id}/stop"
    for form in ({}, {"csrf": "0" * 64}):
        forged = await client.post(stop, data=form)
        assert forged.status_code == 403
        assert await grant_status(client, linked.grant_id) == "active"
    logout = await client.post("/sandbox/amex/member/logout")
    assert logout.status_code == 403
    # The member's own press carries the page's token and works.
    stopped = await press(client, services.text, "停止する")
    assert stopped.status_code == 303
    assert await grant_status(client, linked.grant_id) == "stopped"


async def test_a_token_of_one_session_does_not_serve_another(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    services = await amex_services_page(client)
    token = services.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    async with httpx.AsyncClient(timeout=30, base_url=str(client.base_url)) as other:
        await amex_services_page(other)
        forged = await other.post(
            f"/sandbox/amex/member/settings/services/{linked.grant_id}/stop",
            data={"csrf": token},
        )
        assert forged.status_code == 403
    assert await grant_status(client, linked.grant_id) == "active"


async def test_every_page_refuses_framing_and_has_a_policy(client: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    pages = [
        await client.get("/sandbox/amex/"),
        await client.get("/sandbox/jcb/member/login"),
        await client.get("/sandbox/amex/oauth/authorize", params=authorize_params(challenge)),
        await amex_services_page(client),
    ]
    for page in pages:
        assert page.status_code == 200, page.url
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["x-frame-options"] == "DENY"
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
    answer = await client.get("/sandbox/amex/.well-known/oauth-authorization-server")
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["x-content-type-options"] == "nosniff"
