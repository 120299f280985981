"""Wiring of ``renkei chat``: a remote renkei, the one already running here, or one served
in this process.

The embedded service listens on loopback while the chat runs, so the issuer links it
prints open in a browser on this machine. When a renkei of the same data directory is
already serving on that address (``renkei serve`` in another terminal), the chat talks to
it with the data directory's service key instead of failing to take its port.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import socket

import httpx
import uvicorn

from bot.terminal import Show, TerminalChat, write_line
from i18n import render
from renkei.demo import OWNER
from renkei.settings import Settings

PROBE_SECONDS = 3.0


class Found(enum.Enum):
    """What answers on the address the embedded renkei would take."""

    NOTHING = "nothing"  # free: serve renkei here
    OURS = "ours"  # a renkei that takes this data directory's service key
    OTHER_RENKEI = "other_renkei"  # a renkei of another data directory
    OTHER_PROGRAM = "other_program"  # something else holds the port


async def run_terminal_chat(
    url: str | None,
    token: str | None,
    user: str | None,
    locale: str,
    office_id: str | None,
    port: int,
    show: Show = write_line,
) -> int:
    """Hold one terminal conversation; the process's exit status."""
    if url is not None and token is not None and user is not None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
            return await TerminalChat(
                api, user=user, locale=locale, office_id=office_id, show=show
            ).run()
    return await _local(user or OWNER, locale, office_id, port, show)


def _local_settings(port: int) -> Settings:
    settings = Settings()
    if "public_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    return settings


def _service_headers(settings: Settings, user: str) -> dict[str, str]:
    from renkei.bootstrap import service_token

    return {"Authorization": f"Bearer {service_token(settings)}", "X-Renkei-Act-As": user}


async def _find(base_url: str, headers: dict[str, str]) -> Found:
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=PROBE_SECONDS) as probe:
            health = await probe.get("/healthz")
            if health.status_code not in (200, 503) or "status" not in _json(health):
                return Found.OTHER_PROGRAM
            offices = await probe.get("/api/v1/offices", headers=headers)
    except httpx.ConnectError:
        return Found.NOTHING
    except httpx.HTTPError:
        return Found.OTHER_PROGRAM  # it took the connection but does not speak renkei
    return Found.OURS if offices.status_code == 200 else Found.OTHER_RENKEI


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


async def _local(user: str, locale: str, office_id: str | None, port: int, show: Show) -> int:
    settings = _local_settings(port)
    headers = _service_headers(settings, user)
    found = await _find(settings.public_url, headers)
    if found is Found.OURS:
        show(render("terminal.attached", locale, {"url": settings.public_url}))
        async with httpx.AsyncClient(
            base_url=settings.public_url, headers=headers, timeout=30
        ) as api:
            return await TerminalChat(
                api, user=user, locale=locale, office_id=office_id, show=show
            ).run()
    if found is Found.OTHER_RENKEI:
        show(render("terminal.other_renkei", locale, {"url": settings.public_url}))
        return 1
    if found is Found.OTHER_PROGRAM or not _port_free(port):
        show(render("terminal.port_taken", locale, {"port": str(port)}))
        return 1
    return await _embedded(settings, headers, user, locale, office_id, port, show)


async def _embedded(
    settings: Settings,
    headers: dict[str, str],
    user: str,
    locale: str,
    office_id: str | None,
    port: int,
    show: Show,
) -> int:
    from renkei.bootstrap import create_app

    logging.basicConfig(level=logging.WARNING)
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            # It could not start (the port taken since the check, say).
            show(render("terminal.port_taken", locale, {"port": str(port)}))
            return 1
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(
            base_url=settings.public_url, headers=headers, timeout=30
        ) as api:
            return await TerminalChat(
                api, user=user, locale=locale, office_id=office_id, show=show
            ).run()
    finally:
        server.should_exit = True
        await serving
