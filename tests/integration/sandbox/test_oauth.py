"""The OAuth server is strict: PKCE S256, exact redirect URIs, single-use codes and tokens."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.sandbox.helpers import (
    AUTH,
    CLIENT_ID,
    CLIENT_SECRET,
    KEY,
    REDIRECT_URI,
    authorize_params,
    consent_code,
    exchange,
    link,
    parse,
    pkce,
    press,
    query_of,
    reach_card_page,
)


@pytest.mark.parametrize("issuer", ["amex", "jcb"])
async def test_metadata_urls_are_absolute_and_carry_the_mount_prefix(
    client: httpx.AsyncClient, issuer: str
) -> None:
    base = str(client.base_url).rstrip("/") + f"/sandbox/{issuer}"
    meta = (await client.get(f"/sandbox/{issuer}/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == base
    assert meta["authorization_endpoint"] == f"{base}/oauth/authorize"
    assert meta["token_endpoint"] == f"{base}/oauth/token"
    assert meta["revocation_endpoint"] == f"{base}/oauth/revoke"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    # RFC 8414 §3 placement (well-known part first) answers the same document.
    rfc = await client.get(f"/.well-known/oauth-authorization-server/sandbox/{issuer}")
    assert rfc.json() == meta


async def test_person_links_a_card_through_the_pages(client: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    code = await consent_code(
        client, "amex", challenge, check=["XXXX-XXXXXX-11001"], state="opaque-state"
    )
    tokens = await exchange(client, "amex", code, verifier)
    assert tokens.status_code == 200
    body = tokens.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert tokens.headers["cache-control"] == "no-store"
    me = await client.get(
        "/sandbox/amex/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["subject"] == "user_good"
    assert [card["card_id"] for card in me.json()["cards"]] == ["amex-biz-1001"]


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "nobody"},
        {"redirect_uri": "http://evil.example/callback"},
        # Exact match only: a longer URI with the registered one as prefix is refused.
        {"redirect_uri": REDIRECT_URI + "/../elsewhere"},
        {"redirect_uri": REDIRECT_URI + "?x=1"},
    ],
)
async def test_unknown_client_or_redirect_gets_an_error_page_not_a_redirect(
    client: httpx.AsyncClient, change: dict[str, str]
) -> None:
    _, challenge = pkce()
    answer = await client.get(
        "/sandbox/amex/oauth/authorize", params={**authorize_params(challenge), **change}
    )
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert "エラー" in answer.text


@pytest.mark.parametrize(
    ("change", "echoed_state"),
    [
        ({"code_challenge_method": "plain"}, "state-123"),
        ({"code_challenge_method": ""}, "state-123"),
        ({"code_challenge": ""}, "state-123"),
        ({"code_challenge": "too-short"}, "state-123"),
        ({"state": ""}, None),
    ],
)
async def test_missing_or_plain_pkce_and_missing_state_redirect_with_invalid_request(
    client: httpx.AsyncClient, change: dict[str, str], echoed_state: str | None
) -> None:
    _, challenge = pkce()
    answer = await client.get(
        "/sandbox/amex/oauth/authorize", params={**authorize_params(challenge), **change}
    )
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = query_of(location)
    assert query["error"] == "invalid_request"
    assert query.get("state") == echoed_state


async def test_wrong_password_shows_the_login_page_again(client: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    login = await client.get("/sandbox/amex/oauth/authorize", params=authorize_params(challenge))
    assert "user_good" in login.text and "pass_good" in login.text  # demo credentials shown
    again = await press(
        client, login.text, "ログイン", fill={"ユーザーID": "user_good", "パスワード": "nope"}
    )
    assert again.status_code == 401
    assert "正しくありません" in again.text
    assert "ログイン" in again.text


async def test_deny_redirects_with_access_denied_and_state(client: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    login = await client.get(
        "/sandbox/jcb/oauth/authorize", params=authorize_params(challenge, state="keep-me")
    )
    consent = await press(
        client, login.text, "ログイン", fill={"ユーザーID": "user_good", "パスワード": "pass_good"}
    )
    denied = await press(client, consent.text, "同意しない")
    assert denied.status_code == 303
    meta = (await client.get("/sandbox/jcb/.well-known/oauth-authorization-server")).json()
    assert query_of(denied.headers["location"]) == {
        "error": "access_denied",
        "error_description": "the user did not agree",
        "state": "keep-me",
        "iss": meta["issuer"],  # RFC 9207: error responses name the issuer too
    }


@pytest.mark.parametrize("issuer", ["amex", "jcb"])
async def test_authorization_response_names_its_issuer_rfc9207(
    client: httpx.AsyncClient, issuer: str
) -> None:
    meta = (await client.get(f"/sandbox/{issuer}/.well-known/oauth-authorization-server")).json()
    assert meta["authorization_response_iss_parameter_supported"] is True
    _, challenge = pkce()
    cards = await reach_card_page(client, issuer, challenge, state="s-9207")
    done = await press(client, cards.text, "許可する", check=["21001"])
    back = query_of(link(done.text, "renkei に戻る"))
    assert back["iss"] == meta["issuer"] == str(client.base_url.join(f"/sandbox/{issuer}"))


async def test_wrong_code_verifier_is_invalid_grant(client: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    code = await consent_code(client, "jcb", challenge)
    other_verifier, _ = pkce()
    wrong = await exchange(client, "jcb", code, other_verifier)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    # The genuine holder of the verifier still succeeds.
    assert (await exchange(client, "jcb", code, verifier)).status_code == 200


async def test_redirect_uri_must_match_at_the_token_endpoint(client: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    code = await consent_code(client, "jcb", challenge)
    answer = await exchange(
        client, "jcb", code, verifier, redirect_uri="http://localhost:8000/api/v1/oauth/callback"
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


async def test_code_reuse_is_refused_and_revokes_the_tokens_it_gave(
    client: httpx.AsyncClient,
) -> None:
    verifier, challenge = pkce()
    code = await consent_code(client, "jcb", challenge)
    first = await exchange(client, "jcb", code, verifier)
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert (await client.get("/sandbox/jcb/api/v1/link", headers=bearer)).status_code == 200
    second = await exchange(client, "jcb", code, verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    after = await client.get("/sandbox/jcb/api/v1/link", headers=bearer)
    assert after.status_code == 401
    assert after.json()["error"] == "invalid_token"
    refreshed = await client.post(
        "/sandbox/jcb/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]},
        auth=AUTH,
    )
    assert refreshed.json()["error"] == "invalid_grant"


async def test_code_expires_after_60_seconds(client: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    code = await consent_code(client, "amex", challenge, check=["11001"])
    await client.post("/sandbox/amex/control/clock", headers=KEY, json={"advance_seconds": 61})
    late = await exchange(client, "amex", code, verifier)
    assert late.status_code == 400
    assert late.json() == {
        "error": "invalid_grant",
        "error_description": "authorization code expired",
    }


async def test_refresh_tokens_rotate_and_a_used_one_is_refused(client: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    code = await consent_code(client, "jcb", challenge)
    first = (await exchange(client, "jcb", code, verifier)).json()

    async def use(token: str) -> httpx.Response:
        return await client.post(
            "/sandbox/jcb/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
            auth=AUTH,
        )

    second = await use(first["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    replay = await use(first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # Reuse is treated as theft: the newest refresh token of the chain dies too.
    assert (await use(second.json()["refresh_token"])).json()["error"] == "invalid_grant"


async def test_access_tokens_expire_on_the_sandbox_clock(client: httpx.AsyncClient) -> None:
    await client.post("/sandbox/amex/control/settings", headers=KEY, json={"access_token_ttl": 120})
    verifier, challenge = pkce()
    code = await consent_code(client, "amex", challenge, check=["21001"])
    tokens = (await exchange(client, "amex", code, verifier)).json()
    assert tokens["expires_in"] == 120
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get("/sandbox/amex/api/v1/me", headers=bearer)).status_code == 200
    await client.post("/sandbox/amex/control/clock", headers=KEY, json={"advance_seconds": 121})
    expired = await client.get("/sandbox/amex/api/v1/me", headers=bearer)
    assert expired.status_code == 401
    assert expired.json() == {"error": "invalid_token", "error_description": "token expired"}
    assert expired.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    renewed = await client.post(
        "/sandbox/amex/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=AUTH,
    )
    new_bearer = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
    assert (await client.get("/sandbox/amex/api/v1/me", headers=new_bearer)).status_code == 200


async def test_client_authentication_is_checked(client: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    code = await consent_code(client, "jcb", challenge)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    wrong = await client.post("/sandbox/jcb/oauth/token", data=form, auth=(CLIENT_ID, "bad"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")
    anonymous = await client.post("/sandbox/jcb/oauth/token", data=form)
    assert anonymous.status_code == 401
    both = await client.post(
        "/sandbox/jcb/oauth/token", data={**form, "client_secret": CLIENT_SECRET}, auth=AUTH
    )
    assert both.json()["error"] == "invalid_request"
    unsupported = await client.post(
        "/sandbox/jcb/oauth/token", data={"grant_type": "password"}, auth=AUTH
    )
    assert unsupported.json()["error"] == "unsupported_grant_type"
    posted = await client.post(
        "/sandbox/jcb/oauth/token",
        data={**form, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    assert posted.status_code == 200


async def test_revoking_an_access_token(client: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    code = await consent_code(client, "jcb", challenge)
    tokens = (await exchange(client, "jcb", code, verifier)).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    revoked = await client.post(
        "/sandbox/jcb/oauth/revoke",
        data={"token": tokens["access_token"], "token_type_hint": "access_token"},
        auth=AUTH,
    )
    assert revoked.status_code == 200
    gone = await client.get("/sandbox/jcb/api/v1/me", headers=bearer)
    assert gone.json()["error_description"] == "token revoked"
    unknown = await client.post("/sandbox/jcb/oauth/revoke", data={"token": "nope"}, auth=AUTH)
    assert unknown.status_code == 200
    unauthenticated = await client.post("/sandbox/jcb/oauth/revoke", data={"token": "nope"})
    assert unauthenticated.status_code == 401


async def test_pages_cannot_be_replayed_out_of_order(client: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    cards = await reach_card_page(client, "amex", challenge)
    txn = next(i["value"] for f in parse(cards.text).forms for i in f.inputs if i["name"] == "txn")
    # Pressing 同意して次へ again for a flow already at the card page is refused.
    replay = await client.post(
        "/sandbox/amex/oauth/authorize/consent", data={"txn": txn, "decision": "agree"}
    )
    assert replay.status_code == 400
    assert "すでに進んでいます" in replay.text
