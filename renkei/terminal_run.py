"""Wiring of ``renkei chat``: a remote renkei, or the embedded one served in this process.

The embedded service listens on loopback while the chat runs, so the issuer links it
prints open in a browser on this machine.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import uvicorn

from bot.terminal import TerminalChat
from renkei.demo import OWNER
from renkei.settings import Settings


async def run_terminal_chat(
    url: str | None,
    token: str | None,
    user: str | None,
    locale: str,
    office_id: str | None,
    port: int,
) -> None:
    if url is not None and token is not None and user is not None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
            await TerminalChat(api, user=user, locale=locale, office_id=office_id).run()
        return
    await _embedded(user or OWNER, locale, office_id, port)


async def _embedded(user: str, locale: str, office_id: str | None, port: int) -> None:
    from renkei.bootstrap import create_app, service_token

    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    if "public_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving  # raises why it could not start (e.g. the port is taken)
            return
        await asyncio.sleep(0.05)
    headers = {
        "Authorization": f"Bearer {service_token(settings)}",
        "X-Renkei-Act-As": user,
    }
    try:
        async with httpx.AsyncClient(
            base_url=settings.public_url, headers=headers, timeout=30
        ) as api:
            await TerminalChat(api, user=user, locale=locale, office_id=office_id).run()
    finally:
        server.should_exit = True
        await serving
