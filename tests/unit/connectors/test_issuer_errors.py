"""Error translation and retries of the issuer connectors, against a scripted issuer."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time

import httpx
import pytest

from backend.service.ports import IssuerGateway, LinkStatus, TokenSet
from connectors.issuers import AmexGateway, IssuerConfig, JcbGateway, build_gateways
from connectors.issuers.errors import (
    BadPayload,
    ConsentRevoked,
    InvalidCursor,
    IssuerError,
    IssuerUnavailable,
    LegacyLoginFailed,
    RateLimited,
    ReauthRequired,
)
from connectors.issuers.translate import parse_retry_after, scrub

from .fake_issuer import TXN, FakeIssuer, SavedTokens, SleepRecorder, gateway, json_error, metadata

SYNC = "/api/v1/transactions/sync"
# Fresh for a day: the module is imported when the suite is collected, which on a loaded
# machine can be more than a quarter of an hour before these tests run.
FRESH = TokenSet(
    "at-old-0000000000000000000", "rt-old-0000000000000000000", int(time.time()) + 86_400
)


@pytest.fixture
def fake() -> FakeIssuer:
    return FakeIssuer()


@pytest.fixture
def sleep() -> SleepRecorder:
    return SleepRecorder()


# ------------------------------------------------------------------ retries
async def test_5xx_is_retried_until_success(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    fake.queue(SYNC, httpx.Response(500), httpx.Response(502))
    page = await gateway(fake, sleep).sync_statements(FRESH, SavedTokens(), None)
    assert [s.transaction_id for s in page.added] == ["t1"]
    assert len(fake.calls(SYNC)) == 3
    assert len(sleep.delays) == 2
    assert sleep.delays[1] > 0


async def test_5xx_after_max_retries_is_issuer_unavailable(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    fake.queue(SYNC, *[httpx.Response(500)] * 10)
    with pytest.raises(IssuerUnavailable) as caught:
        await gateway(fake, sleep, max_retries=2).sync_statements(FRESH, SavedTokens(), None)
    assert len(fake.calls(SYNC)) == 3
    assert caught.value.issuer == "amex"


async def test_429_honours_retry_after(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    fake.queue(SYNC, json_error(429, "rate_limited", **{"Retry-After": "2"}))
    await gateway(fake, sleep).sync_statements(FRESH, SavedTokens(), None)
    assert sleep.delays == [2.0]


async def test_429_exhausted_is_rate_limited_with_retry_after(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    fake.queue(SYNC, *[json_error(429, "rate_limited", **{"Retry-After": "1"})] * 5)
    with pytest.raises(RateLimited) as caught:
        await gateway(fake, sleep, max_retries=1).sync_statements(FRESH, SavedTokens(), None)
    assert caught.value.retry_after == 1.0
    assert sleep.delays == [1.0]


async def test_retry_after_above_cap_fails_at_once(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    fake.queue(SYNC, json_error(429, "rate_limited", **{"Retry-After": "120"}))
    with pytest.raises(RateLimited) as caught:
        await gateway(fake, sleep).sync_statements(FRESH, SavedTokens(), None)
    assert caught.value.retry_after == 120.0
    assert sleep.delays == []


async def test_timeouts_and_connect_errors_are_retried(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    fake.queue(SYNC, httpx.ReadTimeout("slow"), httpx.ConnectError("refused"))
    page = await gateway(fake, sleep).sync_statements(FRESH, SavedTokens(), None)
    assert page.next_cursor == "c1"
    assert len(sleep.delays) == 2


async def test_timeouts_exhausted_are_issuer_unavailable(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    fake.queue(SYNC, *[httpx.ReadTimeout("slow")] * 5)
    with pytest.raises(IssuerUnavailable) as caught:
        await gateway(fake, sleep, max_retries=3).sync_statements(FRESH, SavedTokens(), None)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(fake.calls(SYNC)) == 4


async def test_malformed_json_is_retried_then_bad_payload(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    fake.queue(SYNC, *[httpx.Response(200, content=b'{"added": [')] * 5)
    with pytest.raises(BadPayload):
        await gateway(fake, sleep, max_retries=2).sync_statements(FRESH, SavedTokens(), None)
    assert len(fake.calls(SYNC)) == 3


async def test_wrong_shape_fails_at_once(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    fake.queue(
        SYNC,
        httpx.Response(
            200, json={"added": [{"transaction_id": "t1"}], "modified": [], "removed": []}
        ),
    )
    with pytest.raises(BadPayload):
        await gateway(fake, sleep).sync_statements(FRESH, SavedTokens(), None)
    assert len(fake.calls(SYNC)) == 1


async def test_float_amount_is_bad_payload(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    body = {
        "added": [TXN | {"amount_jpy": 12.5}],
        "modified": [],
        "removed": [],
        "next_cursor": "c",
        "has_more": False,
    }
    fake.queue(SYNC, httpx.Response(200, json=body))
    with pytest.raises(BadPayload):
        await gateway(fake, sleep).sync_statements(FRESH, SavedTokens(), None)


async def test_invalid_cursor_has_its_own_error(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    fake.queue(SYNC, json_error(400, "invalid_cursor"))
    with pytest.raises(InvalidCursor) as caught:
        await gateway(fake, sleep).sync_statements(FRESH, SavedTokens(), "garbage")
    assert caught.value.code == "invalid_cursor"
    assert sleep.delays == []  # not retried: the same cursor would fail again


# ----------------------------------------------------------------- mapping
async def test_statement_mapping(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    page = await gateway(fake, sleep).sync_statements(FRESH, SavedTokens(), "c0", count=10)
    (line,) = page.added
    assert line.use_date == dt.date(2026, 1, 2)
    assert line.posted_date is None
    assert line.amount_jpy == 1200
    assert line.foreign_amount == "8.01"
    assert line.status == "pending"
    assert fake.calls(SYNC)[0].url.params["cursor"] == "c0"
    assert fake.calls(SYNC)[0].url.params["count"] == "10"


async def test_count_out_of_range_is_a_caller_error(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    with pytest.raises(ValueError):
        await gateway(fake, sleep).sync_statements(FRESH, SavedTokens(), None, count=501)


# ------------------------------------------------------------------- tokens
async def test_link_stopped_is_consent_revoked_and_link_status_stopped(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    stopped = json_error(401, "invalid_token", "link stopped")
    fake.queue("/api/v1/me", stopped)
    fake.queue("/api/v1/link", stopped)
    saver = SavedTokens()
    gw = gateway(fake, sleep)
    with pytest.raises(ConsentRevoked):
        await gw.grant_info(FRESH, saver)
    assert await gw.link_status(FRESH, saver) == LinkStatus("stopped")
    assert fake.calls("/oauth/token") == []  # a stopped link is not worth a refresh


async def test_401_expired_refreshes_once_through_authlib(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    fake.queue("/api/v1/me", json_error(401, "invalid_token", "expired"))
    saver = SavedTokens()
    info = await gateway(fake, sleep).grant_info(FRESH, saver)
    assert info.subject == "user_good"
    (refresh,) = fake.calls("/oauth/token")
    assert fake.form(refresh) == {
        "grant_type": "refresh_token",
        "refresh_token": FRESH.refresh_token,
    }
    assert [t.refresh_token for t in saver.saved] == ["rt-new-0000000000000000000"]
    assert (
        fake.calls("/api/v1/me")[-1].headers["authorization"] == "Bearer at-new-0000000000000000000"
    )


async def test_expired_token_is_refreshed_before_the_call(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    expired = TokenSet(
        "at-old-0000000000000000000", "rt-old-0000000000000000000", int(time.time()) - 10
    )
    saver = SavedTokens()
    await gateway(fake, sleep).link_status(expired, saver)
    assert len(fake.calls("/oauth/token")) == 1
    assert len(fake.calls("/api/v1/link")) == 1
    assert saver.saved[0].expires_at is not None and saver.saved[0].expires_at > time.time()


async def test_refresh_invalid_grant_is_reauth_required(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    fake.queue("/oauth/token", json_error(400, "invalid_grant", "refresh token already used"))
    expired = TokenSet("at-old-0000000000000000000", "rt-old-0000000000000000000", 1)
    gw = gateway(fake, sleep)
    with pytest.raises(ReauthRequired):
        await gw.sync_statements(expired, SavedTokens(), None)
    fake.queue("/oauth/token", json_error(400, "invalid_grant"))
    with pytest.raises(ReauthRequired):  # the link may still be active (R10): not "stopped"
        await gw.link_status(expired, SavedTokens())


async def test_refresh_refused_for_stopped_grant_is_stopped(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    fake.queue("/oauth/token", json_error(400, "invalid_grant", "link stopped"))
    expired = TokenSet("at-old-0000000000000000000", "rt-old-0000000000000000000", 1)
    assert await gateway(fake, sleep).link_status(expired, SavedTokens()) == LinkStatus("stopped")


async def test_refresh_500_is_not_repeated(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    fake.queue("/oauth/token", httpx.Response(500))
    expired = TokenSet("at-old-0000000000000000000", "rt-old-0000000000000000000", 1)
    with pytest.raises(IssuerUnavailable):
        await gateway(fake, sleep).grant_info(expired, SavedTokens())
    assert len(fake.calls("/oauth/token")) == 1  # a rotated refresh token must not be sent twice


async def test_expired_without_refresh_token_is_reauth_required(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    expired = TokenSet("at-old-0000000000000000000", None, 1)
    with pytest.raises(ReauthRequired):
        await gateway(fake, sleep).grant_info(expired, SavedTokens())


async def test_exchange_code_sends_pkce_and_client_auth(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    tokens = await gateway(fake, sleep).exchange_code(
        code="c-1", redirect_uri="http://cb.test/cb", code_verifier="v" * 50
    )
    assert tokens.refresh_token == "rt-new-0000000000000000000"
    (call,) = fake.calls("/oauth/token")
    assert fake.form(call) == {
        "grant_type": "authorization_code",
        "code": "c-1",
        "redirect_uri": "http://cb.test/cb",
        "code_verifier": "v" * 50,
    }
    assert call.headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("answer", "error", "calls"),
    [
        (httpx.Response(500), IssuerUnavailable, 1),  # the code may be spent: never resent
        (httpx.ReadTimeout("slow"), IssuerUnavailable, 1),
        (json_error(400, "invalid_grant", "code already used"), ReauthRequired, 1),
        (json_error(401, "invalid_client"), IssuerError, 1),
        (httpx.Response(200, content=b"<html>"), BadPayload, 1),
        (httpx.Response(200, json={"token_type": "Bearer"}), BadPayload, 1),
    ],
)
async def test_exchange_code_failures(
    fake: FakeIssuer,
    sleep: SleepRecorder,
    answer: httpx.Response | Exception,
    error: type[Exception],
    calls: int,
) -> None:
    fake.queue("/oauth/token", answer)
    with pytest.raises(error):
        await gateway(fake, sleep).exchange_code(
            code="c-1", redirect_uri="http://cb.test/cb", code_verifier="v" * 50
        )
    assert len(fake.calls("/oauth/token")) == calls


async def test_exchange_code_503_and_429_are_retried(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    fake.queue(
        "/oauth/token", httpx.Response(503), json_error(429, "slow_down", **{"Retry-After": "0"})
    )
    tokens = await gateway(fake, sleep).exchange_code(
        code="c-1", redirect_uri="http://cb.test/cb", code_verifier="v" * 50
    )
    assert tokens.access_token
    assert len(fake.calls("/oauth/token")) == 3


async def test_revoke_revokes_refresh_then_access_token(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    await gateway(fake, sleep).revoke(FRESH)
    hints = [fake.form(r)["token_type_hint"] for r in fake.calls("/oauth/revoke")]
    assert hints == ["refresh_token", "access_token"]


# ------------------------------------------------------------------- legacy
async def test_legacy_fetch(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    result = await gateway(fake, sleep).legacy_fetch("user_good", "pass_good")
    assert result.statements[0].transaction_id is None
    assert fake.calls("/legacy/statements")[0].headers["x-legacy-session"] == "sess-1"


async def test_legacy_login_refused(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    fake.queue("/legacy/login", json_error(401, "login_failed"))
    with pytest.raises(LegacyLoginFailed) as caught:
        await gateway(fake, sleep).legacy_fetch("user_good", "pass_bad-secret")
    assert "pass_bad" not in str(caught.value)
    assert fake.calls("/legacy/statements") == []


# ---------------------------------------------------------------- discovery
async def test_metadata_is_fetched_once(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    gw = gateway(fake, sleep)
    await gw.grant_info(FRESH, SavedTokens())
    await gw.link_status(FRESH, SavedTokens())
    assert len(fake.calls("/.well-known/oauth-authorization-server")) == 1


async def test_metadata_without_s256_is_refused(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    fake.queue(
        "/.well-known/oauth-authorization-server",
        httpx.Response(200, json=metadata() | {"code_challenge_methods_supported": ["plain"]}),
    )
    with pytest.raises(BadPayload):
        await gateway(fake, sleep).grant_info(FRESH, SavedTokens())


async def test_missing_metadata_uses_contract_paths(fake: FakeIssuer, sleep: SleepRecorder) -> None:
    fake.queue("/.well-known/oauth-authorization-server", httpx.Response(404))
    gw = gateway(fake, sleep)
    await gw.revoke(FRESH)
    assert len(fake.calls("/oauth/revoke")) == 2


def test_authorization_request_uses_pkce_s256_and_fresh_state(
    fake: FakeIssuer, sleep: SleepRecorder
) -> None:
    gw = gateway(fake, sleep)
    first = gw.authorization_request(redirect_uri="http://cb.test/cb")
    second = gw.authorization_request(redirect_uri="http://cb.test/cb")
    params = httpx.URL(first.url).params
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(first.code_verifier.encode()).digest())
        .rstrip(b"=")
        .decode()
    )
    assert params["code_challenge"] == challenge
    assert params["code_challenge_method"] == "S256"
    assert params["state"] == first.state
    assert params["response_type"] == "code"
    assert params["redirect_uri"] == "http://cb.test/cb"
    assert 43 <= len(first.code_verifier) <= 128
    assert first.state != second.state and first.code_verifier != second.code_verifier


# ------------------------------------------------------------ small pieces
def test_build_gateways() -> None:
    gateways = build_gateways(
        {"amex": IssuerConfig("http://a", "id"), "jcb": IssuerConfig("http://j", "id")}
    )
    assert isinstance(gateways["amex"], AmexGateway) and isinstance(gateways["jcb"], JcbGateway)
    assert gateways["jcb"].issuer == "jcb"
    port: IssuerGateway = gateways["amex"]
    assert port.issuer == "amex"
    with pytest.raises(ValueError):
        build_gateways({"visa": IssuerConfig("http://v", "id")})


def test_secrets_stay_out_of_reprs_and_messages() -> None:
    config = IssuerConfig("http://a", "id", client_secret="s3cret-client")
    assert "s3cret" not in repr(config)
    assert "s3cret" not in repr(AmexGateway(config))
    assert "abcdefghijklmnopqrstuvwxyz012345" not in scrub(
        "token abcdefghijklmnopqrstuvwxyz012345 used"
    )


def test_parse_retry_after() -> None:
    now = dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:05 GMT", now=now) == 5.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
