"""Three hostile bodies at once against a real server: /healthz stays fast, memory flat.

renkei runs as ``renkei serve`` in its own process, so its resident memory can be
read from ``/proc/<pid>/status``. While a 200 MB unsigned issuer webhook, a 6 MB
JSON body of many keys and a 10 MB statement upload are sent together (each
streamed from a generator: the test never holds them whole either), /healthz is
asked every 100 ms and must answer each time within a second, and the server's
memory must stay within 100 MB of what it was before.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from connectors.statements import AMEX_HEADER
from tests.support.servers import free_port

MB = 1024 * 1024
HEADER_LINE = ",".join(AMEX_HEADER) + "\r\n"
AMEX_ROW = (
    '2026/11/01,2026/11/03,アスクル オフィス用品 {i},山田 太郎,XXXX-XXXXXX-31001,"12,345",,\r\n'
)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@contextmanager
def renkei_process(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = free_port()
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "RENKEI_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'renkei.sqlite3'}",
        "RENKEI_RUN_JOBS": "false",
    }
    for name in ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        env.pop(name, None)
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "renkei.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError((tmp_path / "server.log").read_text()[-3000:])
            time.sleep(0.2)
        yield url, process, data_dir
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def chunks(total: int, piece: bytes) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield piece
        sent += len(piece)
        await asyncio.sleep(0)


async def many_keys_body(size: int) -> AsyncIterator[bytes]:
    yield b"{"
    sent, i = 1, 0
    while sent < size:
        piece = ",".join(f'"k{n}": 1' for n in range(i, i + 2000)).encode()
        if i:
            piece = b"," + piece
        i += 2000
        sent += len(piece)
        yield piece
        await asyncio.sleep(0)
    yield b"}"


async def upload_body(boundary: str, size: int) -> AsyncIterator[bytes]:
    """A multipart form with an Amex CSV of ``size`` bytes: valid rows, far too many."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="statement.csv"\r\nContent-Type: text/csv\r\n\r\n'
    ).encode()
    head = HEADER_LINE.encode("cp932")
    yield head
    sent, i = len(head), 0
    while sent < size - 200:
        block = "".join(AMEX_ROW.format(i=n) for n in range(i, i + 500)).encode("cp932")
        block = block[: size - 200 - sent] if sent + len(block) > size - 200 else block
        i += 500
        sent += len(block)
        yield block
        await asyncio.sleep(0)
    yield f"\r\n--{boundary}--\r\n".encode()


async def test_healthz_stays_fast_and_memory_flat_under_hostile_bodies(tmp_path: Path) -> None:
    with renkei_process(tmp_path) as (url, process, data_dir):
        token = (data_dir / "demo-token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            offices = (await client.get("/api/v1/offices", headers=auth)).json()
            accounts = (
                await client.get(f"/api/v1/offices/{offices[0]['id']}/accounts", headers=auth)
            ).json()
            amex = next(a for a in accounts if a["issuer"] == "amex")
            for _ in range(5):  # warm up the paths the test uses
                await client.get("/healthz")
        start_rss = rss_kib(process.pid)
        peak_rss = start_rss
        latencies: list[float] = []
        done = asyncio.Event()

        async def watch() -> None:
            nonlocal peak_rss
            async with httpx.AsyncClient(base_url=url, timeout=10) as health:
                while not done.is_set():
                    started = time.monotonic()
                    response = await health.get("/healthz")
                    latencies.append(time.monotonic() - started)
                    assert response.status_code == 200
                    peak_rss = max(peak_rss, rss_kib(process.pid))
                    await asyncio.sleep(0.1)

        async def send(name: str, path: str, body: AsyncIterator[bytes], **headers: str) -> int:
            async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                try:
                    response = await client.post(path, content=body, headers=headers)
                except httpx.TransportError:
                    return -1  # refused and closed while the client was still sending
                return response.status_code

        boundary = "renkeiboundary"
        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.3)
        statuses = await asyncio.gather(
            send("webhook", "/api/v1/issuer-webhooks/amex", chunks(200 * MB, b"x" * 65536)),
            send(
                "keys",
                "/api/v1/offices",
                many_keys_body(6 * MB),
                **{**auth, "Content-Type": "application/json"},
            ),
            send(
                "upload",
                f"/api/v1/accounts/{amex['id']}/statements/upload",
                upload_body(boundary, 10 * MB - 4096),
                **{**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            ),
        )
        await asyncio.sleep(0.5)
        done.set()
        await watcher
        webhook, keys, upload = statuses
        assert webhook in (413, -1) and keys in (413, -1), statuses
        assert upload == 422, statuses  # read to its row limit, refused as a file too long
        assert len(latencies) >= 5
        assert max(latencies) < 1.0, sorted(latencies)[-5:]
        assert (peak_rss - start_rss) < 100 * 1024, (start_rss, peak_rss)
