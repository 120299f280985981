"""Servers in child processes on loopback ports: ``renkei serve``, the baselines, fakes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    base_url: str
    pid: int


ROOT = Path(__file__).resolve().parent.parent


def _clean_environment(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "RENKEI_", "DATABASE_URL"))
    }
    # The children import bench and renkei from this checkout, wherever the run started.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer {url} in 60 s")


@contextmanager
def child_server(
    module_args: list[str], health_path: str, logs: Path, env: dict[str, str] | None = None
) -> Iterator[Served]:
    """``python -m <module_args…> PORT`` until the block ends, once ``health_path`` is 200."""
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{module_args[0]}-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 (this interpreter, our modules)
            [sys.executable, "-m", *module_args, str(port)],
            env=_clean_environment(env or {}),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait(base_url + health_path, process, log)
        yield Served(base_url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def child_processes(
    commands: list[list[str]], logs: Path, env: dict[str, str] | None = None
) -> Iterator[list[int]]:
    """``python -m <command…>`` for each command until the block ends (no port, no health
    check: workers that take their work from the database); yields their process ids."""
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for number, command in enumerate(commands, 1):
            with (logs / f"{command[0]}-{number}.log").open("wb") as output:
                processes.append(
                    subprocess.Popen(  # noqa: S603 (this interpreter, our modules)
                        [sys.executable, "-m", *command],
                        env=_clean_environment(env or {}),
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


NO_RATE_LIMITS = {
    f"RENKEI_RATE_LIMIT_{name}": "off"
    for name in ("CONVERSATIONS", "CONSENTS", "UPLOADS", "DEMO_SESSIONS", "SANDBOX_PAGES")
}


@contextmanager
def renkei_serve(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Served]:
    """``renkei serve`` with its defaults (SQLite in ``data_dir``, demo data, jobs)."""
    with child_server(
        ["renkei.cli", "serve", "--port"],
        "/healthz",
        data_dir.parent,
        # A benchmark is a flood of conversations on purpose: the rate limits would cut it.
        {"RENKEI_DATA_DIR": str(data_dir), **NO_RATE_LIMITS, **(env or {})},
    ) as served:
        yield served
