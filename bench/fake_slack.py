"""A tiny fake Slack Web API, run as its own process: ``python -m bench.fake_slack PORT``.

It answers the methods renkei calls with ``ok: true``, counts them, and keeps every
``chat.postMessage`` (channel and text) so a figure can count messages exactly;
``GET /stats`` reads the counts, ``POST /reset`` clears them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TEAM_ID = "T0BENCH"
MEMBER_EMAIL = "owner@example.com"


class Recorder:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.posts: list[tuple[str, str]] = []
        self.ts = itertools.count(1)


def _body(recorder: Recorder, method: str, args: dict[str, Any]) -> dict[str, Any]:
    if method == "auth.test":
        return {"team_id": TEAM_ID, "user_id": "U0BOT", "bot_id": "B0BOT", "team": "bench"}
    if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
        if method == "chat.postMessage":
            recorder.posts.append((str(args.get("channel")), str(args.get("text") or "")))
        ts = args.get("ts") or f"{int(time.time())}.{next(recorder.ts):06d}"
        return {"channel": args.get("channel"), "ts": ts}
    if method in ("views.open", "views.update", "views.publish"):
        number = next(recorder.ts)
        return {"view": {"id": f"V{number:08d}", "hash": f"h{number}"}}
    if method == "users.info":
        user = args.get("user")
        return {"user": {"id": user, "profile": {"email": MEMBER_EMAIL}, "locale": "ja-JP"}}
    if method == "conversations.open":
        return {"channel": {"id": f"D{args.get('users')}"}}
    return {}


def create_app() -> Starlette:
    recorder = Recorder()

    async def api(request: Request) -> JSONResponse:
        method = request.path_params["method"]
        args: dict[str, Any] = dict(request.query_params)
        raw = await request.body()
        if raw:
            if "json" in request.headers.get("content-type", ""):
                args.update(json.loads(raw))
            else:
                args.update(dict(parse_qsl(raw.decode())))
        recorder.counts[method] += 1
        return JSONResponse({"ok": True, **_body(recorder, method, args)})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "counts": dict(recorder.counts),
                "posts": len(recorder.posts),
                "distinct_posts": len(set(recorder.posts)),
                "channels": dict(Counter(channel for channel, _ in recorder.posts)),
            }
        )

    async def reset(request: Request) -> JSONResponse:
        recorder.counts.clear()
        recorder.posts.clear()
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/api/{method}", api, methods=["GET", "POST"]),
            Route("/stats", stats, methods=["GET"]),
            Route("/reset", reset, methods=["POST"]),
        ]
    )


if __name__ == "__main__":
    uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")


# ------------------------------------------------------------------ reading the counts
async def posts(fake: httpx.AsyncClient, channel: str) -> int:
    """How many messages the fake took for ``channel`` (its ``/stats``)."""
    channels: dict[str, int] = (await fake.get("/stats")).json()["channels"]
    return channels.get(channel, 0)


async def wait_posts(
    fake: httpx.AsyncClient, channel: str, expected: int, seconds: float, poll: float = 0.1
) -> int:
    """The channel's count once it reached ``expected``, or after ``seconds``.

    Not polled too often: the loop may share its event loop with the renkei it measures.
    """
    deadline = time.monotonic() + seconds
    posted = await posts(fake, channel)
    while posted < expected and time.monotonic() < deadline:
        await asyncio.sleep(poll)
        posted = await posts(fake, channel)
    return posted


async def settled_posts(
    fake: httpx.AsyncClient, channel: str, quiet: float = 2.0, most: float = 30.0
) -> int:
    """The channel's count once nothing new was posted for ``quiet`` seconds."""
    deadline = time.monotonic() + most
    posted = await posts(fake, channel)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        now = await posts(fake, channel)
        if now == posted:
            break
        posted = now
    return posted
