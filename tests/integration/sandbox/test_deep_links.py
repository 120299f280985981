"""A link to a member-site page survives the login, sends nobody elsewhere, and shows the
way back to the client that linked there."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from tests.integration.sandbox.helpers import KEY, link, link_by_control, parse, press

LOGIN = {"ユーザーID": "user_good", "パスワード": "pass_good"}
FIELDS = {"user_id": "user_good", "password": "pass_good"}
# On the origin of the registered client's redirect URI (REDIRECT_URI).
CHAT = "http://127.0.0.1:8000/chat?conversation=c-1"


async def log_in(client: httpx.AsyncClient, login_url: str) -> httpx.Response:
    """Open the login page the site sent us to and log in; the answer is the redirect."""
    page = await client.get(login_url)
    assert page.status_code == 200
    answer = await press(client, page.text, "ログイン", fill=LOGIN)
    assert answer.status_code == 303
    return answer


@pytest.mark.parametrize(
    ("issuer", "path", "heading"),
    [
        ("amex", "/settings/services", "外部サービスとの連携"),
        ("amex", "/settings/cards", "カードの追加登録"),
        ("jcb", "/card-change", "カードの切替"),
        ("jcb", "/combined", "おまとめ"),
    ],
)
async def test_the_page_asked_for_is_the_page_after_the_login(
    client: httpx.AsyncClient, issuer: str, path: str, heading: str
) -> None:
    wanted = f"/sandbox/{issuer}/member{path}"
    asked = await client.get(wanted)
    assert asked.status_code == 303
    login_url = asked.headers["location"]
    assert urlsplit(login_url).path == f"/sandbox/{issuer}/member/login"
    assert parse_qs(urlsplit(login_url).query)["next"] == [wanted]
    landed = await log_in(client, login_url)
    assert landed.headers["location"] == wanted
    page = await client.get(wanted)
    assert page.status_code == 200 and heading in page.text
    # Logged in already: the login link with the page named goes straight there.
    again = await client.get(login_url)
    assert again.status_code == 303 and again.headers["location"] == wanted


async def test_a_form_posted_after_the_session_ended_comes_back_to_its_page(
    client: httpx.AsyncClient,
) -> None:
    posted = await client.post("/sandbox/amex/member/settings/cards", data={"card_id": "x"})
    assert posted.status_code == 303
    landed = await log_in(client, posted.headers["location"])
    assert landed.headers["location"] == "/sandbox/amex/member/settings/cards"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/settings/services",
        "//evil.example/sandbox/amex/member/settings/services",
        "/\\evil.example/sandbox/amex/member/",
        "/\t/evil.example/",
        "http://127.0.0.1:8000/sandbox/amex/member/settings/services",
        "/sandbox/jcb/member/card-change",  # another site's page
        "/sandbox/amex/member/../../jcb/member/",
        "/sandbox/amex/member/%2e%2e/control/grants",
        "/sandbox/amex/oauth/authorize",
        "settings/services",
    ],
)
async def test_a_next_that_leaves_the_member_site_is_dropped(
    client: httpx.AsyncClient, target: str
) -> None:
    good = "/sandbox/amex/member/settings/services"
    carried = await client.get(f"/sandbox/amex/member/login?next={quote(good, safe='')}")
    assert f'name="next" value="{good}"' in carried.text
    login_page = await client.get(f"/sandbox/amex/member/login?next={quote(target, safe='')}")
    assert login_page.status_code == 200
    assert 'name="next"' not in login_page.text  # not carried on to the form
    # A form forged with it anyway: the login lands on the member home, nowhere else.
    form = parse(login_page.text).forms[0]
    answer = await client.post(form.action, data={**FIELDS, "next": target})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sandbox/amex/member/"
    # Logged in, the same link does not redirect either.
    shown = await client.get(f"/sandbox/amex/member/login?next={quote(target, safe='')}")
    assert shown.status_code == 200


async def test_the_way_back_to_the_client_is_on_every_page_until_it_is_left(
    client: httpx.AsyncClient,
) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    services_url = f"/sandbox/amex/member/settings/services?return_to={quote(CHAT, safe='')}"
    asked = await client.get(services_url)
    login_page = await client.get(asked.headers["location"])
    assert link(login_page.text, "renkei に戻る") == CHAT  # also for who cannot log in
    landed = await log_in(client, asked.headers["location"])
    assert landed.headers["location"] == services_url
    services = await client.get(landed.headers["location"])
    assert link(services.text, "renkei に戻る") == CHAT
    # Stopping the link keeps the way back on the page it comes back to.
    stopped = await press(client, services.text, "停止する")
    after = await client.get(stopped.headers["location"])
    assert "連携を停止しました" in after.text
    assert link(after.text, "renkei に戻る") == CHAT
    grants = await client.get("/sandbox/amex/control/grants", headers=KEY)
    status = {g["grant_id"]: g["status"] for g in grants.json()["grants"]}
    assert status[linked.grant_id] == "stopped"
    # ...and on the pages reached from there.
    settings = await client.get(link(after.text, "登録情報の変更に戻る"))
    assert link(settings.text, "renkei に戻る") == CHAT


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/chat",
        "http://127.0.0.1:8001/chat",  # another port: another origin
        "https://127.0.0.1:8000/chat",  # another scheme
        "http://127.0.0.1:8000@evil.example/chat",
        "//127.0.0.1:8000/chat",
        "javascript:alert(1)",
        "http://127.0.0.1:8000/\\chat",
    ],
)
async def test_a_way_back_to_an_unregistered_origin_is_not_offered(
    client: httpx.AsyncClient, target: str
) -> None:
    offered = await client.get(f"/sandbox/amex/member/login?return_to={quote(CHAT, safe='')}")
    assert link(offered.text, "renkei に戻る") == CHAT
    page = await client.get(f"/sandbox/amex/member/login?return_to={quote(target, safe='')}")
    assert page.status_code == 200
    assert "に戻る" not in page.text
    asked = await client.get(
        f"/sandbox/amex/member/settings/services?return_to={quote(target, safe='')}"
    )
    landed = await log_in(client, asked.headers["location"])
    services = await client.get(landed.headers["location"])
    assert services.status_code == 200
    assert "renkei に戻る" not in parse(services.text).links
