"""The scale-out figure's baseline: the same hops as a notification, with nothing else.

``python -m bench.bare_pipeline PORT``, one process of several side by side. Each
``POST /webhook`` fetches one page of statements from the sandbox issuer (the same
resource API renkei's sync reads, with a bearer token), writes one row to PostgreSQL,
posts one message to the fake Slack, then answers. No queue, no lease, no outbox, no
retry: the floor a notification pipeline in Python on this stack can reach.

Configured by the environment: ``BARE_DATABASE_URL`` (libpq), ``BARE_ISSUER_URL`` (the
issuer's base URL), ``BARE_ISSUER_TOKEN``, ``BARE_SLACK_API_URL``, ``BARE_CHANNEL``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TABLE = "bare_messages"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "id bigserial PRIMARY KEY, event text NOT NULL, card_id text NOT NULL, "
    "statement jsonb NOT NULL, written_at timestamptz NOT NULL DEFAULT now())"
)


def create_app() -> Starlette:
    issuer_url = os.environ["BARE_ISSUER_URL"].rstrip("/")
    token = os.environ["BARE_ISSUER_TOKEN"]
    slack_url = os.environ["BARE_SLACK_API_URL"].rstrip("/")
    channel = os.environ["BARE_CHANNEL"]
    # As many connections as renkei's own pool starts with: a request never waits for one
    # at the concurrency the figure drives.
    pool = AsyncConnectionPool(os.environ["BARE_DATABASE_URL"], min_size=5, open=False)
    http = httpx.AsyncClient(timeout=30)

    async def webhook(request: Request) -> Response:
        body = await request.json()
        page = await http.get(
            f"{issuer_url}/api/v1/transactions/sync",
            headers={"Authorization": f"Bearer {token}"},
        )
        page.raise_for_status()
        added = page.json()["added"] or [{}]
        async with pool.connection() as conn:
            await conn.execute(
                f"INSERT INTO {TABLE} (event, card_id, statement) VALUES (%s, %s, %s)",  # noqa: S608 (a constant)
                (str(body["event"]), str(body["card_id"]), json.dumps(added[-1])),
            )
        posted = await http.post(
            f"{slack_url}/chat.postMessage",
            headers={"Authorization": "Bearer xoxb-bench"},
            json={"channel": channel, "text": f"New statement on {body['card_id']}"},
        )
        posted.raise_for_status()
        return JSONResponse({"ok": True})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.open(wait=True)
        try:
            yield
        finally:
            await pool.close()
            await http.aclose()

    return Starlette(
        routes=[
            Route("/webhook", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


if __name__ == "__main__":
    uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
