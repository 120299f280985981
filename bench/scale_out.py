"""Figure: notifications scaled out on PostgreSQL, 1, 2 and 4 worker processes, each
beside a bare pipeline of as many processes doing the same hops with nothing else.

For each N, a fresh PostgreSQL database, one ``renkei serve --no-jobs`` web process
(it serves the sandbox issuers and receives their webhooks) and N ``renkei worker``
processes, every one with Slack on and its Web API pointed at the fake Slack in a
child process. Set up as a client would (over HTTP, nothing driven inside a process):
the demo office's Slack channel is set and Amex cards are linked to it by the OAuth
consent, with the issuer's authorization step answered by the sandbox's control API.
Events go in rounds as in the notifications figure: each card gets one new statement
at the issuer, whose signed webhook reaches the web process, a worker syncs, the
completion event is delivered, one message is posted; a round ends when every card's
message is in.

The baseline, in the same run beside each N: N processes of ``bench.bare_pipeline``,
which take a webhook over HTTP, fetch one page from the same sandbox issuer, write one
row to PostgreSQL and post one message to the same fake Slack, with nothing else (no
queue, no lease, no outbox, no retry), driven in the same rounds. Each of its events
is a new statement at the issuer too (on cards linked to no one, so the issuer does
its side of the event without a webhook to renkei), then the bench's webhook to a
bare process, in turn. Goal: ≥ 0.25× the bare pipeline at each N, and exactly one
message per event.

The machine the report is made on has 2 cores, shared by the web process, the
workers, PostgreSQL, the fake Slack and the load generator: N beyond the cores
measures contention, not scale.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import bare_pipeline
from bench.databases import fresh_postgres, postgres_available, psycopg_url
from bench.fake_slack import TEAM_ID, posts, settled_posts, wait_posts
from bench.result import FigureResult, Row, unavailable
from bench.server import NO_RATE_LIMITS, Served, child_processes, child_server

NAME = "scale-out"
ROW = "notifications scaled out"
GOAL_RATIO = 0.25
CHANNEL = "C0BENCHSCALE"
ROUND_TIMEOUT = 120.0
ISSUER_USER = "bench_scale_user"
ISSUER_PASSWORD = "pass_good"
SLACK_ENV = {
    "SLACK_SIGNING_SECRET": "bench-slack-signing-secret",
    "SLACK_BOT_TOKEN": "xoxb-bench",
}


class SetupError(Exception):
    """renkei or the sandbox refused a step of the set-up."""


@dataclass
class Measured:
    workers: int
    rate: float
    posted: int
    cpu: dict[str, float]  # CPU seconds per message, by process group
    bare_rate: float
    bare_posted: int
    bare_cpu: dict[str, float]


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backends(database: str) -> list[int]:
    """The PostgreSQL server processes serving ``database`` (same machine only)."""
    name = database.rsplit("/", 1)[1]
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", encoding="utf-8", errors="replace") as cmd:
                    line = cmd.read()
            except OSError:
                continue
            if line.startswith("postgres:") and f" {name} " in line:
                found.append(int(entry))
    return found


class CpuMeter:
    """CPU time of groups of processes over the timed part of a run: where a message's
    work is done, less shaken than messages/s by other work on the machine."""

    def __init__(self, groups: dict[str, list[int]], database: str) -> None:
        self.groups = groups
        self.database = database
        self._start: dict[str, dict[int, float]] = {}

    def _now(self) -> dict[str, dict[int, float]]:
        groups = {**self.groups, "PostgreSQL": _backends(self.database)}
        return {group: {pid: _cpu_seconds(pid) for pid in pids} for group, pids in groups.items()}

    def start(self) -> None:
        self._start = self._now()

    def per_message(self, messages: int) -> dict[str, float]:
        spent = {
            group: sum(now - self._start.get(group, {}).get(pid, 0.0) for pid, now in pids.items())
            for group, pids in self._now().items()
        }
        return {group: seconds / max(messages, 1) for group, seconds in spent.items()}


def _check(response: httpx.Response, what: str) -> Any:
    if not response.is_success:
        raise SetupError(f"{what}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Issuer:
    """The Amex sandbox served by the web process, through its control API."""

    def __init__(self, web_url: str, control_key: str) -> None:
        self.base = f"{web_url}/sandbox/amex"
        self.http = httpx.AsyncClient(
            base_url=self.base, headers={"X-Sandbox-Key": control_key}, timeout=60
        )

    async def control(self, path: str, body: dict[str, Any]) -> Any:
        return _check(await self.http.post(f"/control{path}", json=body), f"control {path}")

    async def new_card(self, card_ref: str, statements: int) -> None:
        await self.control(
            "/cards",
            {
                "user_id": ISSUER_USER,
                "card_id": card_ref,
                "product": "amex_business",
                "holder_name": "BENCH TARO",
            },
        )
        await self.control(f"/cards/{card_ref}/statements", {"count": statements, "pending": 0})


class Renkei:
    """The owner's client of the web process: the demo office, its cards."""

    def __init__(self, web_url: str, owner_token: str) -> None:
        self.bearer = {"Authorization": f"Bearer {owner_token}"}
        self.api = httpx.AsyncClient(base_url=f"{web_url}/api/v1", headers=self.bearer, timeout=60)

    async def office_id(self) -> str:
        from renkei.demo import SHOP

        offices = _check(await self.api.get("/offices"), "offices")
        return next(str(o["id"]) for o in offices if o["name"] == SHOP)

    async def link_card(self, issuer: Issuer, office_id: str, card_ref: str) -> None:
        """Register an API account and consent as the owner's browser does."""
        await issuer.new_card(card_ref, 0)  # nothing to say on the first sync
        start = _check(
            await self.api.post(
                f"/offices/{office_id}/accounts",
                json={"sync_method": "api", "issuer": "amex", "name": f"bench {card_ref}"},
            ),
            "register",
        )
        async with httpx.AsyncClient(timeout=60) as browser:
            bound = _check(
                await browser.post(f"{start['authorization_url']}/signed-in", headers=self.bearer),
                "start",
            )
            asked = httpx.URL(bound["issuer_url"]).params
            answer = await issuer.control(
                "/authorize",
                {
                    "client_id": asked["client_id"],
                    "redirect_uri": asked["redirect_uri"],
                    "user_id": ISSUER_USER,
                    "state": asked["state"],
                    "code_challenge": asked["code_challenge"],
                    "card_ids": [card_ref],
                },
            )
            outcome = _check(
                await browser.get(
                    asked["redirect_uri"],
                    params={"code": answer["code"], "state": answer["state"], "iss": answer["iss"]},
                    headers={"Accept": "application/json"},
                ),
                "callback",
            )
        if outcome.get("error_code"):
            raise SetupError(f"linking {card_ref} refused: {outcome['error_code']}")


async def _bare_token(issuer: Issuer, redirect_uri: str) -> str:
    """An access token of the renkei client for a card of its own, as renkei's link gets."""
    await issuer.new_card("amex-bench-bare", 1)
    verifier, challenge = _pkce()
    answer = await issuer.control(
        "/authorize",
        {
            "client_id": "renkei-demo",
            "redirect_uri": redirect_uri,
            "user_id": ISSUER_USER,
            "state": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "card_ids": ["amex-bench-bare"],
        },
    )
    token = _check(
        await issuer.http.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": answer["code"],
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
                "client_id": "renkei-demo",
                "client_secret": "renkei-demo-secret",
            },
        ),
        "token",
    )
    return str(token["access_token"])


async def _wait_jobs_idle(database: str, seconds: float = 120.0) -> None:
    """Until no job is queued or running: the first syncs are done before the clock starts."""
    deadline = time.monotonic() + seconds
    async with await psycopg.AsyncConnection.connect(psycopg_url(database)) as conn:
        while time.monotonic() < deadline:
            row = await (
                await conn.execute(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
                )
            ).fetchone()
            await conn.commit()
            if row is not None and row[0] == 0:
                return
            await asyncio.sleep(0.2)


async def _run_rounds(
    fake: httpx.AsyncClient,
    fire: Callable[[str, int], Awaitable[object]],
    refs: list[str],
    rounds: int,
    quiet: float,
    meter: CpuMeter,
) -> tuple[float, int, dict[str, float]]:
    """(messages per second, messages posted, CPU seconds per message by group) for
    ``len(refs) × rounds`` events; ``quiet``: how long the channel must stay still
    before the clock starts, and after it stops."""
    before = await settled_posts(fake, CHANNEL, quiet, most=60.0)
    meter.start()
    started = time.perf_counter()
    for round_number in range(1, rounds + 1):
        await asyncio.gather(*(fire(ref, round_number) for ref in refs))
        expected = before + round_number * len(refs)
        if await wait_posts(fake, CHANNEL, expected, ROUND_TIMEOUT, poll=0.05) < expected:
            break
    elapsed = time.perf_counter() - started
    posted = await posts(fake, CHANNEL) - before
    cpu = meter.per_message(posted)
    await asyncio.sleep(quiet)  # anything posted twice would show now
    return posted / elapsed, await posts(fake, CHANNEL) - before, cpu


async def _set_up(web: Served, data_dir: Path, database: str, cards: int) -> Issuer:
    """The office channel set, ``cards`` Amex cards linked, their first syncs done."""
    from backend.db.engine import make_engine, make_sessions
    from backend.db.slack_store import SqlSlackStore
    from renkei.bootstrap import SANDBOX_CONTROL_KEY_FILE

    issuer = Issuer(web.base_url, (data_dir / SANDBOX_CONTROL_KEY_FILE).read_text().strip())
    renkei = Renkei(web.base_url, (data_dir / "demo-token").read_text().strip())
    await issuer.control("/users", {"user_id": ISSUER_USER, "password": ISSUER_PASSWORD})
    office_id = await renkei.office_id()
    # Written as the Slack "channel" command writes it; every process reads it per notice.
    engine = make_engine(database)
    try:
        store = SqlSlackStore(make_sessions(engine))
        await store.set_office_channel(office_id, TEAM_ID, CHANNEL, set_by="U0BENCH")
    finally:
        await engine.dispose()
    gate = asyncio.Semaphore(4)

    async def link(ref: str) -> None:
        async with gate:
            await renkei.link_card(issuer, office_id, ref)

    await asyncio.gather(*(link(ref) for ref in _refs(cards)))
    await renkei.api.aclose()
    await _wait_jobs_idle(database)
    return issuer


def _refs(cards: int) -> list[str]:
    return [f"amex-bench-scale-{n}" for n in range(cards)]


async def _measure_renkei(
    web: Served,
    data_dir: Path,
    database: str,
    fake_url: str,
    sizes: tuple[int, int, float],
    meter: CpuMeter,
) -> tuple[float, int, dict[str, float]]:
    cards, rounds, quiet = sizes
    issuer = await _set_up(web, data_dir, database, cards)
    try:
        async with httpx.AsyncClient(base_url=fake_url, timeout=10) as fake:

            async def fire(ref: str, round_number: int) -> None:
                await issuer.control(f"/cards/{ref}/statements", {"count": round_number})

            return await _run_rounds(fake, fire, _refs(cards), rounds, quiet, meter)
    finally:
        await issuer.http.aclose()


def _bare_refs(cards: int) -> list[str]:
    return [f"amex-bench-bare-{n}" for n in range(cards)]


async def _bare_env(
    web: Served, data_dir: Path, database: str, fake_url: str, cards: int
) -> dict[str, str]:
    from renkei.bootstrap import SANDBOX_CONTROL_KEY_FILE

    issuer = Issuer(web.base_url, (data_dir / SANDBOX_CONTROL_KEY_FILE).read_text().strip())
    try:
        token = await _bare_token(issuer, f"{web.base_url}/api/v1/oauth/callback")
        # The cards whose new statements stand for the events: linked to no one, so the
        # issuer does its side of an event (the new statement, its state saved) without
        # sending renkei a webhook; the bench sends the bare pipeline its own instead.
        for ref in _bare_refs(cards):
            await issuer.new_card(ref, 0)
    finally:
        await issuer.http.aclose()
    async with await psycopg.AsyncConnection.connect(psycopg_url(database)) as conn:
        await conn.execute(bare_pipeline.CREATE_TABLE)
        await conn.commit()
    return {
        "BARE_DATABASE_URL": psycopg_url(database),
        "BARE_ISSUER_URL": issuer.base,
        "BARE_ISSUER_TOKEN": token,
        "BARE_SLACK_API_URL": f"{fake_url}/api",
        "BARE_CHANNEL": CHANNEL,
    }


async def _measure_bare(
    web: Served,
    data_dir: Path,
    bare: list[Served],
    fake_url: str,
    sizes: tuple[int, int, float],
    meter: CpuMeter,
) -> tuple[float, int, dict[str, float]]:
    from renkei.bootstrap import SANDBOX_CONTROL_KEY_FILE

    issuer = Issuer(web.base_url, (data_dir / SANDBOX_CONTROL_KEY_FILE).read_text().strip())
    cards, rounds, quiet = sizes
    turn = itertools.cycle(bare)
    async with (
        issuer.http,
        httpx.AsyncClient(timeout=60) as http,
        httpx.AsyncClient(base_url=fake_url, timeout=10) as fake,
    ):

        async def fire(ref: str, round_number: int) -> None:
            await issuer.control(f"/cards/{ref}/statements", {"count": round_number})
            answer = await http.post(
                f"{next(turn).base_url}/webhook",
                json={"event": f"{ref}/{round_number}", "card_id": ref},
            )
            answer.raise_for_status()

        return await _run_rounds(fake, fire, _bare_refs(cards), rounds, quiet, meter)


def measure(
    workers: int, fake: Served, folder: Path, cards: int, rounds: int, quiet: float = 2.0
) -> Measured:
    """renkei with ``workers`` worker processes, then the bare pipeline with as many."""
    logs = folder / f"workers-{workers}"
    data_dir = logs / "data"
    with fresh_postgres() as database, ExitStack() as stack:
        env = {
            "DATABASE_URL": database,
            "RENKEI_DATA_DIR": str(data_dir),
            "SLACK_API_URL": f"{fake.base_url}/api/",
            **SLACK_ENV,
            **NO_RATE_LIMITS,
        }
        # The web process first and alone: it migrates the database and seeds the demo.
        web = stack.enter_context(
            child_server(["renkei.cli", "serve", "--no-jobs", "--port"], "/healthz", logs, env)
        )
        env["RENKEI_PUBLIC_URL"] = web.base_url  # where workers reach the issuer and events go
        commands = [["renkei.cli", "worker", "--name", f"bench-{n}"] for n in range(workers)]
        sizes = (cards, rounds, quiet)
        with child_processes(commands, logs, env) as pids:
            meter = CpuMeter({"web": [web.pid], "workers": pids}, database)
            rate, posted, cpu = asyncio.run(
                _measure_renkei(web, data_dir, database, fake.base_url, sizes, meter)
            )
        # The workers are gone: the bare processes have the machine as the workers had it.
        bare_env = asyncio.run(_bare_env(web, data_dir, database, fake.base_url, cards))
        bare = [
            stack.enter_context(child_server(["bench.bare_pipeline"], "/healthz", logs, bare_env))
            for _ in range(workers)
        ]
        meter = CpuMeter({"web": [web.pid], "bare": [b.pid for b in bare]}, database)
        bare_rate, bare_posted, bare_cpu = asyncio.run(
            _measure_bare(web, data_dir, bare, fake.base_url, sizes, meter)
        )
    return Measured(workers, rate, posted, cpu, bare_rate, bare_posted, bare_cpu)


def _plural(workers: int) -> str:
    return f"{workers} worker{'s' if workers > 1 else ''}"


def _rows(counts: tuple[int, ...], events: int) -> list[Row]:
    rows = []
    for workers in counts:
        rows.append(
            Row(
                f"{ROW}, {_plural(workers)}, messages per second",
                "messages/s",
                goal=f"≥ {GOAL_RATIO}× baseline",
                goal_bound=GOAL_RATIO,
                chart="throughput",
            )
        )
        rows.append(
            Row(
                f"{ROW}, {_plural(workers)}, messages posted for {events:,} events",
                "messages",
                goal=f"exactly {events:,}",
                goal_bound=float(events),
                better="equal",
                goal_on_value=True,
            )
        )
    return rows


def run(quick: bool) -> FigureResult:
    # Quick: a few events and a short quiet, enough to show the figure runs end to end.
    counts, cards, rounds, quiet = ((1, 2), 3, 2, 0.5) if quick else ((1, 2, 4), 30, 10, 2.0)
    events = cards * rounds
    rows = _rows(counts, events)
    reason = postgres_available()
    if reason is not None:
        return unavailable(NAME, [(r.figure, r.unit, r.goal) for r in rows], reason)
    result = FigureResult(NAME, rows)
    measured: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="renkei-bench-") as name:
        folder = Path(name)
        with child_server(["bench.fake_slack"], "/stats", folder) as fake:
            for index, workers in enumerate(counts):
                one = measure(workers, fake, folder, cards, rounds, quiet)
                speed, count = rows[2 * index], rows[2 * index + 1]
                speed.value, speed.baseline = one.rate, one.bare_rate
                count.value = float(one.posted)
                measured.append(one)
    result.notes.append(
        f"{events:,} events at each worker count: {cards} cards × {rounds} rounds, one new "
        "statement per card and round; one web process (`serve --no-jobs`) and N `renkei "
        "worker` processes on a fresh PostgreSQL database; the baseline is N bare pipeline "
        "processes (webhook in, one issuer page, one row, one Slack message), which posted "
        f"{', '.join(f'{one.bare_posted:,}' for one in measured)} messages. CPU per message "
        f"(ms), renkei → baseline: {'; '.join(_cpu_note(one) for one in measured)}."
    )
    return result


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.0f}" if ms >= 10 else f"{ms:.1f}"


def _cpu_note(one: Measured) -> str:
    def groups(cpu: dict[str, float]) -> str:
        return ", ".join(f"{group} {_ms(seconds)}" for group, seconds in cpu.items())

    return f"{_plural(one.workers)}: {groups(one.cpu)} → {groups(one.bare_cpu)}"
