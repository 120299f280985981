"""The issuer timeout holds whatever the transport, the in-process sandbox included."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Renkei, running_renkei
from tests.e2e.test_faults_and_uploads import SYNC_PATH, arm, clear, linked_biz, sync_now

TIMEOUT = 1.0


@pytest.fixture
async def impatient_renkei(database: str, tmp_path: Path) -> AsyncIterator[Renkei]:
    async with running_renkei(
        database,
        tmp_path / "data",
        issuer_timeout=TIMEOUT,
        issuer_max_retries=1,
        issuer_backoff=0.01,
    ) as renkei:
        yield renkei


async def test_a_slow_issuer_is_given_up_on_after_the_timeout(impatient_renkei: Renkei) -> None:
    renkei = impatient_renkei
    account = await linked_biz(renkei)
    # Each attempt would wait 15 s for the issuer; two attempts of one second are allowed.
    await arm(renkei, kind="slow", delay=15, times=2)
    started = time.monotonic()
    answer = await sync_now(renkei, account["id"])
    elapsed = time.monotonic() - started
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "issuer_unavailable"
    # Two attempts and a backoff, with a wide margin for a busy machine: far below 15 s.
    assert elapsed < 2 * TIMEOUT + 5, elapsed
    faults = (await renkei.control_get("amex", "/faults"))["faults"]
    assert not [f for f in faults if f["path"] == SYNC_PATH]  # both attempts reached it
    await clear(renkei)
    assert (await sync_now(renkei, account["id"])).json()["status"] == "succeeded"
