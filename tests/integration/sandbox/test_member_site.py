"""MyJCB member pages: おまとめログイン (R6) and カードの切替 (R7), driven by their forms."""

from __future__ import annotations

import httpx

from tests.integration.sandbox.helpers import (
    consent_code,
    exchange,
    link,
    link_by_control,
    pkce,
    press,
)


async def myjcb_home(client: httpx.AsyncClient) -> httpx.Response:
    page = await client.get("/sandbox/jcb/member/login")
    home = await press(
        client, page.text, "ログイン", fill={"ユーザーID": "user_good", "パスワード": "pass_good"}
    )
    assert home.status_code == 303
    return await client.get(home.headers["location"])


async def test_member_pages_need_a_login(client: httpx.AsyncClient) -> None:
    answer = await client.get("/sandbox/amex/member/settings/services")
    assert answer.status_code == 303
    login = "/sandbox/amex/member/login?next=%2Fsandbox%2Famex%2Fmember%2Fsettings%2Fservices"
    assert answer.headers["location"] == login


async def test_grouping_ids_makes_the_next_link_combined(client: httpx.AsyncClient) -> None:
    home = await myjcb_home(client)
    combined = await client.get(link(home.text, "おまとめログイン"))
    grouped = await press(
        client,
        combined.text,
        "おまとめする",
        fill={"まとめる MyJCB ID": "user_upgrade", "その ID のパスワード": "pass_good"},
    )
    page = await client.get(grouped.headers["location"])
    assert "ID をおまとめしました" in page.text and "user_upgrade" in page.text
    verifier, challenge = pkce()
    code = await consent_code(client, "jcb", challenge)
    tokens = (await exchange(client, "jcb", code, verifier)).json()
    me = await client.get(
        "/sandbox/jcb/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json()["subject_kind"] == "combined"
    ungrouped = await press(client, page.text, "解除する")
    assert "おまとめを解除しました" in (await client.get(ungrouped.headers["location"])).text


async def test_card_change_replaces_the_card_under_an_existing_link(
    client: httpx.AsyncClient,
) -> None:
    linked = await link_by_control(client, "jcb")
    home = await myjcb_home(client)
    change = await client.get(link(home.text, "カードの切替"))
    changed = await press(client, change.text, "切り替える", check=["XXXX-XXXX-XXXX-4001"])
    assert "カードを切り替えました" in (await client.get(changed.headers["location"])).text
    me = (await client.get("/sandbox/jcb/api/v1/me", headers=linked.bearer)).json()
    old = next(card for card in me["cards"] if card["card_id"] == "jcb-gold-4001")
    assert old["status"] == "replaced"
    new = next(card for card in me["cards"] if card["card_id"] == old["replaced_by"])
    assert new["status"] == "active" and new["holder_name"] == "山田 太郎"


async def test_member_home_offers_the_csv_download(client: httpx.AsyncClient) -> None:
    home = await myjcb_home(client)
    download = await client.get(link(home.text, "CSV ダウンロード（XXXX-XXXX-XXXX-4002）"))
    assert download.status_code == 200
    # MyJCB names a family card's user by position (家族1), never by the holder's name.
    lines = download.content.decode("cp932").splitlines()
    header = lines.index(next(line for line in lines if line.startswith("ご利用者,")))
    users = {line.split(",")[0] for line in lines[header + 1 :] if line.count(",") >= 11}
    assert users == {"家族1"}
