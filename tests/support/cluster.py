"""renkei scaled out for tests: web processes (`serve --no-jobs`) and `renkei worker`
processes, each a real operating-system process on one PostgreSQL database.

The first web process is the public address: it serves the simulated issuers (their
state lives in that one process) and receives their webhooks and the assistant's
events; the others serve the same API from the same database. Processes write their
logs to files in the data directory's parent, for a failing test to show.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.servers import free_port


@dataclass
class Cluster:
    env: dict[str, str]
    logs: Path
    web: list[str] = field(default_factory=list)  # base URLs, the first one public
    web_processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _started: int = 0

    def _spawn(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self._started += 1
        log = (self.logs / f"{self._started:02d}-{name}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "renkei.cli", *args],
            env={**os.environ, **self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_web(self, port: int, *, jobs: bool = False) -> str:
        """A web process; ``jobs`` runs background work in it too (SQLite's only way)."""
        args = (
            ("serve", "--port", str(port)) if jobs else ("serve", "--no-jobs", "--port", str(port))
        )
        process = self._spawn(f"web-{port}", *args)
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process, self.logs)
        self.web.append(url)
        self.web_processes.append(process)
        return url

    def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        """A ``renkei worker``; ``env`` adds to or overrides the cluster's settings."""
        process = self._spawn("worker", "worker", "--name", f"worker-{self._started + 1}", env=env)
        self.workers.append(process)
        return process

    def kill_worker(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no goodbye, no graceful shutdown, jobs left where they were."""
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        self.workers.remove(process)

    def kill_web(self, index: int) -> int:
        """SIGKILL a web process (its port is free again once it is gone); its port."""
        process = self.web_processes.pop(index)
        url = self.web.pop(index)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        return int(url.rsplit(":", 1)[1])

    def log_tail(self, lines: int = 40) -> str:
        text = []
        for path in sorted(self.logs.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            text.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(text)

    def stop(self) -> None:
        for process in [*self.workers, *self.web_processes]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers, *self.web_processes]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], logs: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited; logs in {logs}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not start; logs in {logs}")


@contextmanager
def scaled_out(
    database: str,
    data_dir: Path,
    *,
    web: int,
    workers: int,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """``web`` web processes and ``workers`` workers, sharing ``database``."""
    ports = [free_port() for _ in range(web)]
    public = f"http://127.0.0.1:{ports[0]}"
    env = {
        "DATABASE_URL": database,
        "RENKEI_DATA_DIR": str(data_dir),
        "RENKEI_PUBLIC_URL": public,
        **(extra_env or {}),
    }
    logs = data_dir.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(env, logs)
    try:
        # The first one alone: it migrates the database and seeds the demo.
        cluster.start_web(ports[0])
        for port in ports[1:]:
            cluster.start_web(port)
        for _ in range(workers):
            cluster.start_worker()
        yield cluster
    finally:
        cluster.stop()
