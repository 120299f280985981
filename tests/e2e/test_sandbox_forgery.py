"""The sandbox cannot forge: not served in production, its control API locked, each
issuer's webhooks checked with that issuer's own key.

The attack: one unauthenticated POST to the sandbox's control API made the sandbox sign
a ``link.revoked`` with the secret renkei trusts, and renkei revoked a live link; an
event signed for Amex, without an issuer field, was accepted at JCB's path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.service.outbox import sign
from renkei.bootstrap import create_app
from renkei.settings import Settings, SettingsError
from tests.e2e.conftest import ADMIN_TOKEN, Renkei
from tests.e2e.test_backend_rules import BIZ, SHOP, switch
from tests.e2e.test_webhooks import issuer_secret
from tests.support.servers import free_port, serve_asgi

AMEX_SECRET = "amex-production-webhook-secret"
JCB_SECRET = "jcb-production-webhook-secret"


def production_like(database: str, data_dir: Path, port: int, **overrides: Any) -> Settings:
    """Real-looking issuer URLs, real-looking webhook secrets; no demo data by default."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database,
        "admin_token": ADMIN_TOKEN,
        "public_url": f"http://127.0.0.1:{port}",
        "amex_base_url": "https://api.americanexpress.example/renkei",
        "jcb_base_url": "https://api.jcb.example/renkei",
        "amex_webhook_secret": AMEX_SECRET,
        "jcb_webhook_secret": JCB_SECRET,
        **overrides,
    }
    return Settings(**values)


def signed(secret: str, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    headers = {
        "Issuer-Signature": sign(secret, int(time.time()), body),
        "Content-Type": "application/json",
    }
    return body, headers


def revocation(grant_id: str, *, issuer: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"evt_forged_{time.time_ns()}",
        "type": "link.revoked",
        "created": int(time.time()),
        "data": {"grant_subject": "user_good", "grant_id": grant_id, "card_ids": []},
    }
    if issuer is not None:
        event["issuer"] = issuer
    return event


async def test_production_like_settings_serve_no_sandbox_at_all(
    database: str, tmp_path: Path
) -> None:
    port = free_port()
    app = create_app(production_like(database, tmp_path / "data", port))
    assert not [r for r in app.routes if "sandbox" in getattr(r, "path", "")]
    with serve_asgi(app, port) as url:
        async with httpx.AsyncClient(timeout=30, base_url=url) as client:
            for path in (
                "/sandbox/amex/control/webhooks",
                "/sandbox/jcb/control/reset",
                "/sandbox/amex/oauth/authorize",
                "/sandbox/amex/member/login",
                "/.well-known/oauth-authorization-server/sandbox/amex",
            ):
                for method in ("GET", "POST"):
                    answer = await client.request(method, path, json={"type": "link.revoked"})
                    assert answer.status_code in (404, 405), (method, path, answer.status_code)
            # The production secrets are checked per issuer: Amex's does not open JCB's path.
            forged = revocation("grant_x", issuer=None)
            body, headers = signed(AMEX_SECRET, forged)
            at_jcb = await client.post("/api/v1/issuer-webhooks/jcb", content=body, headers=headers)
            assert at_jcb.status_code == 401
            assert at_jcb.json()["error"]["code"] == "unauthenticated"
            body, headers = signed(JCB_SECRET, forged)
            at_amex = await client.post(
                "/api/v1/issuer-webhooks/amex", content=body, headers=headers
            )
            assert at_amex.status_code == 401
    assert not (tmp_path / "data" / "sandbox-control-key").exists()
    assert not (tmp_path / "data" / "demo-token").exists()


def test_a_real_issuer_url_with_the_sandbox_on_is_refused_at_start(
    database: str, tmp_path: Path
) -> None:
    settings = production_like(database, tmp_path / "data", 8000, sandbox=True)
    with pytest.raises(SettingsError, match="RENKEI_SANDBOX=false"):
        create_app(settings)
    # The command says the same, and does not start.
    env = {
        **os.environ,
        "RENKEI_DATA_DIR": str(tmp_path / "cli"),
        "DATABASE_URL": database,
        "RENKEI_SANDBOX": "true",
        "RENKEI_AMEX_BASE_URL": "https://api.americanexpress.example/renkei",
    }
    result = subprocess.run(
        [sys.executable, "-m", "renkei.cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "RENKEI_AMEX_BASE_URL" in result.stderr and "RENKEI_SANDBOX" in result.stderr


def test_the_sandbox_never_holds_a_real_secret(database: str, tmp_path: Path) -> None:
    for setting in ("amex_webhook_secret", "jcb_webhook_secret", "amex_client_secret"):
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database,
            setting: "a-real-secret",
        }
        settings = Settings(**values)
        with pytest.raises(SettingsError, match=f"RENKEI_{setting.upper()}"):
            create_app(settings)
    with pytest.raises(SettingsError, match="RENKEI_SEED_DEMO=false"):
        create_app(production_like(database, tmp_path / "data", 8000, seed_demo=True))
    same = production_like(database, tmp_path / "data", 8000, jcb_webhook_secret=AMEX_SECRET)
    with pytest.raises(SettingsError, match="RENKEI_JCB_WEBHOOK_SECRET"):
        create_app(same)


async def active_grant(renkei: Renkei, card_id: str) -> str:
    grants = (await renkei.control_get("amex", "/grants"))["grants"]
    (grant,) = [g for g in grants if g["status"] == "active" and card_id in g["card_ids"]]
    return str(grant["grant_id"])


async def test_forging_a_revocation_through_the_sandbox_fails(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    grant = await active_grant(renkei, "amex-biz-1001")
    forged = {"type": "link.revoked", "user_id": "user_good"}
    async with httpx.AsyncClient(timeout=30, base_url=renkei.base_url) as client:
        for headers in ({}, {"X-Sandbox-Key": "guessed"}):
            for path in ("/webhooks", "/reset", "/clients"):
                answer = await client.post(
                    f"/sandbox/amex/control{path}", json=forged, headers=headers
                )
                assert answer.status_code == 401, (path, answer.text)
        # An event signed with Amex's key, naming no issuer, is refused at JCB's path.
        body, headers = signed(issuer_secret(renkei, "amex"), revocation(grant, issuer=None))
        at_jcb = await client.post("/api/v1/issuer-webhooks/jcb", content=body, headers=headers)
        assert at_jcb.status_code == 401
    linked = await renkei.get_account(account["id"])
    assert linked["link"]["status"] == "active"
    assert linked["status"] != "needs_reauth"
    assert issuer_secret(renkei, "amex") != issuer_secret(renkei, "jcb")
    # The key is the only thing missing: with it, the sandbox acts as its member site would.
    await renkei.control("amex", "/webhooks", forged)


def test_the_demo_start_lines_show_the_control_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {**os.environ, "RENKEI_DATA_DIR": str(data_dir), "RENKEI_RUN_JOBS": "false"}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "renkei.cli", "serve", "--port", str(free_port())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
    finally:
        process.terminate()
        process.wait(timeout=30)
    key = (data_dir / "sandbox-control-key").read_text().strip()
    assert any("X-Sandbox-Key" in line and key in line for line in lines), lines
