"""Smoke test of an installed renkei: start it, hold one conversation, get one reply.

Run with the Python of a virtual environment that has renkei installed from its wheel,
from a folder outside the source tree, so that nothing is imported from the checkout.
Standard library only, so it needs nothing beyond what the wheel installs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def call(url: str, token: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - a loopback URL built above
        url,
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        answer: dict[str, object] = json.loads(response.read())
        return answer


def main() -> int:
    renkei = Path(sys.executable).with_name("renkei")
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "RENKEI_DATA_DIR": data_dir, "RENKEI_PUBLIC_URL": base}
        server = subprocess.Popen(  # noqa: S603 - the installed renkei command
            [str(renkei), "serve", "--port", str(port)], env=env
        )
        try:
            token_file = Path(data_dir) / "demo-token"
            deadline = time.monotonic() + 90
            while True:
                if server.poll() is not None:
                    print("renkei serve exited early", file=sys.stderr)
                    return 1
                try:
                    with urllib.request.urlopen(f"{base}/healthz", timeout=2):  # noqa: S310
                        if token_file.exists():
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    print("renkei serve did not start within 90 s", file=sys.stderr)
                    return 1
                time.sleep(0.5)
            token = token_file.read_text().strip()
            started = call(
                f"{base}/api/v1/conversations", token, {"user": "owner@example.com", "locale": "ja"}
            )
            replies = started.get("replies")
            assert isinstance(replies, list) and replies and replies[0]["text"], started
            answered = call(
                f"{base}/api/v1/conversations/{started['id']}/messages", token, {"choice": "status"}
            )
            replies = answered.get("replies")
            assert isinstance(replies, list) and replies and replies[-1]["text"], answered
            print("installed wheel: renkei started and answered a conversation")
            return 0
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
