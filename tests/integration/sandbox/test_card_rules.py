"""The card page follows the issuers' rules: R1, R5, R6, R9, R10, R13, R15, R16."""

from __future__ import annotations

import httpx

from tests.integration.sandbox.helpers import (
    AUTH,
    KEY,
    OTHER_CLIENT_ID,
    OTHER_SECRET,
    REDIRECT_URI,
    consent_code,
    disabled_labels,
    exchange,
    label_texts,
    link,
    link_by_control,
    pkce,
    press,
    reach_card_page,
)


async def member_login(browser: httpx.AsyncClient, issuer: str) -> httpx.Response:
    page = await browser.get(f"/sandbox/{issuer}/member/login")
    home = await press(
        browser, page.text, "ログイン", fill={"ユーザーID": "user_good", "パスワード": "pass_good"}
    )
    return await browser.get(home.headers["location"])


async def test_r15_supplementary_card_appears_only_once_registered(
    client: httpx.AsyncClient,
) -> None:
    _, challenge = pkce()
    before = await reach_card_page(client, "amex", challenge)
    assert not any("31002" in text for text in label_texts(before.text))
    assert any("31001" in text for text in label_texts(before.text))
    # Register it on the member site: 登録情報の変更 → カードの追加登録 → 登録する.
    home = await member_login(client, "amex")
    settings = await client.get(link(home.text, "登録情報の変更"))
    cards = await client.get(link(settings.text, "カードの追加登録"))
    done = await press(client, cards.text, "登録する", check=["31002"])
    assert done.status_code == 303
    assert "カードを登録しました" in (await client.get(done.headers["location"])).text
    verifier, challenge = pkce()
    code = await consent_code(client, "amex", challenge, check=["31002"])
    tokens = (await exchange(client, "amex", code, verifier)).json()
    me = await client.get(
        "/sandbox/amex/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    card = me.json()["cards"][0]
    assert (card["card_id"], card["role"], card["basic_card_id"]) == (
        "amex-plat-3002",
        "supplementary",
        "amex-plat-3001",
    )


async def test_r13_exactly_one_amex_card_per_authorization(client: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    cards = await reach_card_page(client, "amex", challenge)
    none = await press(client, cards.text, "許可する", check=[])
    assert none.status_code == 400
    assert "1 枚だけ" in none.text
    two = await press(client, none.text, "許可する", check=["11001", "21001"])
    assert two.status_code == 400
    assert "1 枚だけ" in two.text
    one = await press(client, two.text, "許可する", check=["11001"])
    assert one.status_code == 200
    assert "renkei に戻る" in one.text


async def test_r1_personal_card_is_shown_but_cannot_be_linked(client: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    cards = await reach_card_page(client, "amex", challenge)
    assert any("91001" in text for text in disabled_labels(cards.text))
    forced = await press(client, cards.text, "許可する", check=["91001"])
    assert forced.status_code == 400
    assert "対象外" in forced.text


async def test_r5_card_linked_by_an_active_grant_is_disabled_and_refused(
    client: httpx.AsyncClient,
) -> None:
    await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    _, challenge = pkce()
    cards = await reach_card_page(client, "amex", challenge)
    assert any("11001" in text for text in disabled_labels(cards.text))
    assert "停止してから" in cards.text
    forced = await press(client, cards.text, "許可する", check=["11001"])
    assert forced.status_code == 400
    assert "すでに renkei と連携しています" in forced.text
    # Another accounting service may still link the same card.
    other = await link_by_control(
        client,
        "amex",
        card_ids=["amex-biz-1001"],
        client_id=OTHER_CLIENT_ID,
        auth=(OTHER_CLIENT_ID, OTHER_SECRET),
    )
    assert other.access_token


async def test_r5_second_code_for_the_same_card_fails_at_exchange(
    client: httpx.AsyncClient,
) -> None:
    first_verifier, first_challenge = pkce()
    first = await consent_code(client, "amex", first_challenge, check=["21001"])
    second_verifier, second_challenge = pkce()
    second = await consent_code(client, "amex", second_challenge, check=["21001"])
    assert (await exchange(client, "amex", first, first_verifier)).status_code == 200
    late = await exchange(client, "amex", second, second_verifier)
    assert late.json() == {
        "error": "invalid_grant",
        "error_description": "card amex-gold-2001 is already linked",
    }


async def test_r10_revocation_does_not_free_an_amex_card_but_the_member_site_does(
    client: httpx.AsyncClient,
) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-plat-3001"])
    revoked = await client.post(
        "/sandbox/amex/oauth/revoke", data={"token": linked.refresh_token}, auth=AUTH
    )
    assert revoked.status_code == 200
    dead = await client.get("/sandbox/amex/api/v1/link", headers=linked.bearer)
    assert dead.status_code == 401
    # R10: the grant is still active, so the card cannot be linked again.
    _, challenge = pkce()
    cards = await reach_card_page(client, "amex", challenge)
    assert any("31001" in text for text in disabled_labels(cards.text))
    # R16: 登録情報の変更 → 外部サービスとの連携 → renkei → 停止する.
    home = await member_login(client, "amex")
    settings = await client.get(link(home.text, "登録情報の変更"))
    services = await client.get(link(settings.text, "外部サービスとの連携"))
    assert "renkei" in services.text and "XXXX-XXXXXX-31001" in services.text
    stopped = await press(client, services.text, "停止する")
    after = await client.get(stopped.headers["location"])
    assert "連携を停止しました" in after.text
    assert "連携中の外部サービスはありません" in after.text
    grants = (await client.get("/sandbox/amex/control/grants", headers=KEY)).json()["grants"]
    assert [(g["status"], g["stopped_by"]) for g in grants] == [("stopped", "member_site")]
    verifier, challenge = pkce()
    code = await consent_code(client, "amex", challenge, check=["31001"])
    assert (await exchange(client, "amex", code, verifier)).status_code == 200


async def test_stopped_grant_answers_link_stopped(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    await client.post(f"/sandbox/amex/control/grants/{linked.grant_id}/stop", headers=KEY)
    answer = await client.get("/sandbox/amex/api/v1/link", headers=linked.bearer)
    assert answer.status_code == 401
    assert answer.json() == {"error": "invalid_token", "error_description": "link stopped"}
    refreshed = await client.post(
        "/sandbox/amex/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": linked.refresh_token},
        auth=AUTH,
    )
    assert refreshed.json() == {"error": "invalid_grant", "error_description": "link stopped"}


async def test_r9_jcb_grant_covers_every_card_of_the_myjcb_id(client: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    cards = await reach_card_page(client, "jcb", challenge)
    assert "checkbox" not in cards.text
    assert "XXXX-XXXX-XXXX-4001" in cards.text and "XXXX-XXXX-XXXX-4002" in cards.text
    linked = await link_by_control(client, "jcb")
    me = (await client.get("/sandbox/jcb/api/v1/me", headers=linked.bearer)).json()
    assert me["subject_kind"] == "single"
    assert {card["card_id"] for card in me["cards"]} == {"jcb-gold-4001", "jcb-gold-4002"}


async def test_r6_combined_login_is_reported_as_combined(client: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    code = await consent_code(client, "jcb", challenge, user_id="user_combined")
    tokens = (await exchange(client, "jcb", code, verifier)).json()
    me = (
        await client.get(
            "/sandbox/jcb/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    ).json()
    assert me["subject"] == "user_combined"
    assert me["subject_kind"] == "combined"
    assert {card["card_id"] for card in me["cards"]} == {
        "jcb-gold-4001",
        "jcb-gold-4002",
        "jcb-general-5001",
        "jcb-plat-5002",
    }


async def test_jcb_refresh_token_revocation_stops_the_grant(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "jcb")
    await client.post(
        "/sandbox/jcb/oauth/revoke",
        data={"token": linked.refresh_token, "token_type_hint": "refresh_token"},
        auth=AUTH,
    )
    grants = (await client.get("/sandbox/jcb/control/grants", headers=KEY)).json()["grants"]
    assert [(g["status"], g["stopped_by"]) for g in grants] == [("stopped", "revocation")]
    answer = await client.get("/sandbox/jcb/api/v1/link", headers=linked.bearer)
    assert answer.json()["error_description"] == "link stopped"


async def test_control_authorize_follows_the_same_rules(client: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    body = {
        "client_id": "renkei-test",
        "redirect_uri": REDIRECT_URI,
        "user_id": "user_good",
        "state": "s",
        "code_challenge": challenge,
    }
    two = await client.post(
        "/sandbox/amex/control/authorize",
        headers=KEY,
        json={**body, "card_ids": ["amex-biz-1001", "amex-gold-2001"]},
    )
    assert two.status_code == 400 and two.json()["rule"] == "R13"
    hidden = await client.post(
        "/sandbox/amex/control/authorize",
        headers=KEY,
        json={**body, "card_ids": ["amex-plat-3002"]},
    )
    assert hidden.status_code == 400 and hidden.json()["rule"] == "R15"
    bad_redirect = await client.post(
        "/sandbox/amex/control/authorize",
        headers=KEY,
        json={**body, "redirect_uri": "http://x/cb", "card_ids": ["amex-biz-1001"]},
    )
    assert bad_redirect.status_code == 400
