"""Figure: how fast Slack gets its ack for a signed ``/renkei`` slash command.

``renkei serve`` runs in a child process with Slack on (signing secret, bot token, the
Web API pointed at a fake Slack in another child process); signed ``/renkei`` commands
from a direct message (the menu) are posted over loopback HTTP to ``/slack/events``
by 10 and 50 concurrent senders. Baseline: a bare slack-bolt ``AsyncApp`` behind the
same FastAPI adapter whose listener only acks, served by uvicorn the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlencode

import httpx

from bench.fake_slack import TEAM_ID
from bench.result import FigureResult, Row
from bench.server import Served, child_server, renkei_serve
from bench.timing import percentile

NAME = "Slack ack"
SECRET = "bench-slack-signing-secret"
TOKEN = "xoxb-bench"
CONCURRENCY = (10, 50)
P99_GOAL = 1.2
THROUGHPUT_GOAL = 0.8


class SlackUnavailable(Exception):
    """renkei does not answer Slack (yet): the figure says why instead of a number."""


def _signed(text: str, user: str) -> tuple[str, dict[str, str]]:
    body = urlencode(
        {
            "token": "unused",
            "team_id": TEAM_ID,
            "team_domain": "bench",
            "channel_id": f"D{user}",
            "channel_name": "directmessage",
            "user_id": user,
            "user_name": "owner",
            "command": "/renkei",
            "text": text,
            "api_app_id": "A0BENCH",
            "response_url": "http://127.0.0.1:9/response",
            "trigger_id": f"trigger-{uuid.uuid4().hex}",
        }
    )
    timestamp = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": "v0=" + mac.hexdigest(),
    }
    return body, headers


async def _load(base_url: str, requests: int, concurrency: int) -> tuple[list[float], float]:
    """Latencies in ms and requests/s of ``requests`` commands, ``concurrency`` at a time."""
    latencies: list[float] = []
    failures: list[str] = []
    numbers: Iterator[int] = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:

        async def sender() -> None:
            for _ in numbers:
                body, headers = _signed("", "U0OWNER")
                started = time.perf_counter()
                response = await client.post("/slack/events", content=body, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:120]}")

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise SlackUnavailable(f"/slack/events answered {failures[0]}")
    return latencies, requests / elapsed


async def _drain(fake: Served) -> None:
    """Wait until the work renkei does after its acks has stopped reaching Slack."""
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=10) as client:
        previous = -1
        for _ in range(300):
            counts = (await client.get("/stats")).json()["counts"]
            total = sum(counts.values())
            if total == previous:
                return
            previous = total
            await asyncio.sleep(0.5)


async def _measure(
    renkei: Served, bare: Served, fake: Served, requests: int
) -> dict[int, dict[str, tuple[list[float], float]]]:
    results: dict[int, dict[str, tuple[list[float], float]]] = {}
    for served in (renkei, bare):
        await _load(served.base_url, 30, 5)  # first requests: token check, caches
    await _drain(fake)
    for concurrency in CONCURRENCY:
        results[concurrency] = {}
        for name, served in (("baseline", bare), ("renkei", renkei)):
            results[concurrency][name] = await _load(served.base_url, requests, concurrency)
            await _drain(fake)
    return results


def _rows(results: dict[int, dict[str, tuple[list[float], float]]]) -> list[Row]:
    rows = []
    for concurrency, measured in results.items():
        ours, theirs = measured["renkei"], measured["baseline"]
        rows += [
            Row(
                f"{NAME} p50, concurrency {concurrency}",
                "ms",
                percentile(ours[0], 0.5),
                percentile(theirs[0], 0.5),
                better="lower",
                chart="latency",
            ),
            Row(
                f"{NAME} p99, concurrency {concurrency}",
                "ms",
                percentile(ours[0], 0.99),
                percentile(theirs[0], 0.99),
                goal=f"≤ {P99_GOAL}× baseline",
                goal_bound=P99_GOAL,
                better="lower",
                chart="latency",
            ),
            Row(
                f"{NAME} throughput, concurrency {concurrency}",
                "requests/s",
                ours[1],
                theirs[1],
                goal=f"≥ {THROUGHPUT_GOAL}× baseline",
                goal_bound=THROUGHPUT_GOAL,
                chart="throughput",
            ),
        ]
    return rows


def _unavailable_rows(reason: str) -> list[Row]:
    rows = _rows({c: {"renkei": ([0.0], 0.0), "baseline": ([0.0], 0.0)} for c in CONCURRENCY})
    for row in rows:
        row.value = row.baseline = None
        row.unavailable = reason
    return rows


def run(quick: bool) -> FigureResult:
    requests = 200 if quick else 3_000
    result = FigureResult(NAME)
    with tempfile.TemporaryDirectory(prefix="renkei-bench-") as folder, ExitStack() as stack:
        logs = Path(folder)
        try:
            fake = stack.enter_context(child_server(["bench.fake_slack"], "/stats", logs))
            env = {
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_BOT_TOKEN": TOKEN,
                "SLACK_API_URL": f"{fake.base_url}/api/",
            }
            bare = stack.enter_context(child_server(["bench.bare_bolt"], "/healthz", logs, env))
            try:
                renkei = stack.enter_context(renkei_serve(logs / "data", env))
            except RuntimeError as exc:
                raise SlackUnavailable(f"renkei serve did not start with Slack on ({exc})") from exc
            results = asyncio.run(_measure(renkei, bare, fake, requests))
        except SlackUnavailable as exc:
            result.rows = _unavailable_rows(str(exc).splitlines()[0][:200])
            return result
    result.rows = _rows(results)
    result.notes.append(
        f"{requests:,} signed `/renkei` commands from a direct message per concurrency "
        "level, the baseline first; renkei's work after each ack (the menu posted to the "
        "fake Slack) is drained before the next level."
    )
    return result
