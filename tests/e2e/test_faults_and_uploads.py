"""Issuer faults end in the right account state with nothing lost or doubled; statement files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_backend_rules import (
    BIZ,
    JCB_GOLD,
    PLATINUM,
    SHOP,
    error_of,
    natural_keys,
    switch,
)

SYNC_PATH = "/api/v1/transactions/sync"


@pytest.fixture
async def patient_renkei(database: str, tmp_path: Path) -> AsyncIterator[Renkei]:
    """Short issuer timeouts and one retry, so each fault plays out in a second or two."""
    async with running_renkei(
        database,
        tmp_path / "data",
        issuer_timeout=1.0,
        issuer_max_retries=1,
        issuer_backoff=0.01,
    ) as renkei:
        yield renkei


async def linked_biz(renkei: Renkei) -> dict[str, Any]:
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    synced = await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    # A new link may queue more than its first sync (the issuer's own webhook): a sync
    # asked for while one runs answers "already running", so the tests start from calm.
    await renkei.jobs_settled(account["id"])
    return synced


async def arm(renkei: Renkei, **fault: Any) -> None:
    await renkei.control("amex", "/faults", {"path": SYNC_PATH, **fault})


async def clear(renkei: Renkei) -> None:
    async with httpx.AsyncClient(timeout=30, base_url=renkei.base_url) as client:
        assert (
            await client.delete("/sandbox/amex/control/faults", headers=renkei.sandbox_key)
        ).is_success


async def sync_now(renkei: Renkei, account_id: str) -> httpx.Response:
    return await renkei.api.post(f"/accounts/{account_id}/sync")


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("500", 503, "issuer_unavailable"),
        ("timeout", 503, "issuer_unavailable"),
        ("429", 503, "rate_limited"),
        ("malformed_json", 200, "bad_payload"),
    ],
)
async def test_each_fault_ends_in_a_clear_state_and_loses_nothing(
    patient_renkei: Renkei, kind: str, status: int, code: str
) -> None:
    renkei = patient_renkei
    account = await linked_biz(renkei)
    before = await renkei.statements(account["id"])
    await arm(renkei, kind=kind, times=5, delay=3, retry_after=2)
    answer = await sync_now(renkei, account["id"])
    assert answer.status_code == status, answer.text
    if status == 503:
        assert error_of(answer)["code"] == code
        if kind == "429":
            assert answer.headers["retry-after"]
    else:
        assert answer.json()["status"] == "failed" and answer.json()["error_code"] == code
    failed = await renkei.get_account(account["id"])
    assert failed["status"] == "active"  # still linked: the issuer will come back
    assert failed["last_error"] == code
    events = [e for e in await renkei.events(account["id"]) if e["type"] == "sync.failed"]
    assert events and events[0]["payload"]["error_code"] == code
    await clear(renkei)
    recovered = await sync_now(renkei, account["id"])
    assert recovered.status_code == 200 and recovered.json()["status"] == "succeeded"
    after = await renkei.statements(account["id"])
    assert {r["id"] for r in before} <= {r["id"] for r in after}
    assert max(natural_keys(after).values()) == 1
    assert (await renkei.get_account(account["id"]))["last_error"] is None


async def test_a_sync_cut_off_mid_way_resumes_without_loss_or_duplicates(
    patient_renkei: Renkei,
) -> None:
    renkei = patient_renkei
    account = await linked_biz(renkei)
    # the first page (500 lines) goes through, then the issuer fails for good
    await arm(renkei, kind="500", times=10, after=1)
    # 1,200 new lines at the issuer: its webhook makes renkei's job runner sync them
    await renkei.control("amex", "/cards/amex-biz-1001/statements", {"count": 1240, "pending": 0})
    for _ in range(200):
        cut = await renkei.get_account(account["id"])
        if cut["last_error"] == "issuer_unavailable":
            break
        await asyncio.sleep(0.1)
    assert cut["last_error"] == "issuer_unavailable"
    partial = await renkei.statements(account["id"])
    assert 40 < len(partial) < 1240  # the first page and its cursor were committed together
    await clear(renkei)
    resumed = await sync_now(renkei, account["id"])
    assert resumed.json()["status"] == "succeeded", resumed.text
    rows = await renkei.statements(account["id"])
    assert len(rows) == 1240
    assert len({r["issuer_txn_id"] for r in rows}) == 1240


async def test_two_syncs_of_one_account_never_run_at_once(renkei: Renkei) -> None:
    """Refresh tokens work once: while one sync of a grant runs, another does not start."""
    account = await linked_biz(renkei)
    await arm(renkei, kind="slow", delay=2, times=1)  # the running sync waits on the issuer
    running = asyncio.create_task(sync_now(renkei, account["id"]))
    for _ in range(300):  # the first sync holds the account (on a slow machine, later)
        if (await renkei.get_account(account["id"]))["status"] == "syncing":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the first sync never started")
    overlapping = await sync_now(renkei, account["id"])
    assert overlapping.status_code == 200
    assert overlapping.json()["status"] == "already_running"
    finished = await running
    assert finished.json()["status"] == "succeeded", finished.text
    after = await sync_now(renkei, account["id"])  # the lease was given back
    assert after.json()["status"] == "succeeded"


async def test_tokens_rotated_at_every_call_are_never_lost(renkei: Renkei) -> None:
    """Access tokens shorter than the refresh leeway: every call rotates the pair, the
    callback's included, and each rotated pair is kept (refresh tokens work once)."""
    await renkei.control("amex", "/settings", {"access_token_ttl": 30})
    account = await linked_biz(renkei)
    assert account["status"] == "active" and account["last_error"] is None
    for _ in range(3):
        again = await sync_now(renkei, account["id"])
        assert again.json()["status"] == "succeeded", again.text


async def test_a_stopped_link_makes_the_account_ask_for_reauth(renkei: Renkei) -> None:
    account = await linked_biz(renkei)
    grants = await renkei.control_get("amex", "/grants")
    grant = next(g for g in grants["grants"] if "amex-biz-1001" in g["card_ids"])
    await renkei.control("amex", f"/grants/{grant['grant_id']}/stop")
    answer = await sync_now(renkei, account["id"])
    assert answer.status_code in (200, 409), answer.text
    current = await renkei.get_account(account["id"])
    assert current["status"] == "needs_reauth"
    assert current["link"]["status"] == "revoked"
    renewed = await renkei.api.post(f"/accounts/{account['id']}/reauth")
    assert renewed.status_code == 200, renewed.text
    await renkei.consent(renewed.json()["authorization_url"], cards=["amex-biz-1001"])
    back = await renkei.wait_synced(account["id"], since=current["last_synced_at"])
    assert back["status"] == "active" and back["id"] == account["id"]  # renewed in place


async def test_amex_file_upload_keeps_supplementary_rows_out_r15(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, PLATINUM)
    await renkei.control("amex", "/cards/amex-plat-3002/register")
    async with httpx.AsyncClient(timeout=30, base_url=renkei.base_url) as site:
        login = await site.post(
            "/sandbox/amex/legacy/login", data={"user_id": "user_good", "password": "pass_good"}
        )
        csv = await site.get(
            "/sandbox/amex/legacy/statements.csv",
            params={"card_id": "amex-plat-3001"},
            headers={"X-Legacy-Session": login.json()["session"]},
        )
    assert csv.status_code == 200
    assert "XXXX-XXXXXX-31002".encode("cp932") in csv.content  # the file holds both cards
    uploaded = await renkei.api.post(
        f"/accounts/{account['id']}/statements/upload",
        files={"file": ("amex.csv", csv.content, "text/csv")},
    )
    assert uploaded.status_code == 200, uploaded.text
    body = uploaded.json()
    # the download holds every card of the online-service ID; only this card's rows land
    assert "XXXX-XXXXXX-31002" in [g["card"] for g in body["skipped_groups"]]
    assert account["card"]["masked_number"] not in [g["card"] for g in body["skipped_groups"]]
    assert body["added"] == 0  # every basic-card line was already synced: matched, not doubled
    # The download carries the previous bill's payment: kept out, and said so.
    assert body["payments"] == 1
    assert all("口座振替" not in r["merchant"] for r in await renkei.statements(account["id"]))
    rows = await renkei.statements(account["id"])
    assert {r["card_id"] for r in rows} == {account["card"]["id"]}


async def test_malformed_file_is_refused_whole_with_its_line(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    before = len(await renkei.statements(account["id"]))
    header = (
        "ご利用者,カテゴリ,ご利用日,ご利用先など,ご利用金額(￥),支払区分,今回回数,"
        "訂正サイン,お支払い金額(￥),国内／海外,摘要,備考"
    )
    lines = [
        "今回のお支払日,2026/12/10",
        '今回のお支払金額合計(￥),"3,000"',
        "",
        header,
        "本人 山田 太郎,ショッピング,2026/11/01,新しいお店,1000,1回払い,,,1000,国内,,",
        "本人 山田 太郎,ショッピング,2026/13/45,壊れた日付,2000,1回払い,,,2000,国内,,",
    ]
    data = "\r\n".join(lines).encode("cp932")
    refused = await renkei.api.post(
        f"/accounts/{account['id']}/statements/upload",
        files={"file": ("bad.csv", data, "text/csv")},
    )
    assert refused.status_code == 422, refused.text
    error = error_of(refused)
    assert error["code"] == "statement_file_invalid"
    assert error["details"]["line"] == 6
    assert len(await renkei.statements(account["id"])) == before  # nothing half-imported
    fixed = data.replace("2026/13/45".encode("cp932"), "2026/11/02".encode("cp932"))
    accepted = await renkei.api.post(
        f"/accounts/{account['id']}/statements/upload",
        files={"file": ("good.csv", fixed, "text/csv")},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["added"] == 2
    again = await renkei.api.post(
        f"/accounts/{account['id']}/statements/upload",
        files={"file": ("good.csv", fixed, "text/csv")},
    )
    assert again.json()["added"] == 0 and again.json()["duplicates"] == 2
