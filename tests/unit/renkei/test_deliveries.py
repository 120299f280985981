"""Outbox deliveries over HTTP (a worker's, to the assistant and every subscriber): the
TLS settings are built once per process, not once per delivery."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from renkei import bootstrap
from renkei.settings import Settings
from tests.support.servers import serve_asgi


async def test_deliveries_load_the_ca_bundle_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[bytes] = []

    async def hook(request: Request) -> Response:
        received.append(await request.body())
        return Response(status_code=204)

    loads: list[Any] = []
    real_load = ssl.SSLContext.load_verify_locations

    def counted_load(context: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        real_load(context, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted_load)
    settings = Settings(data_dir=tmp_path, public_url="http://renkei.example")
    send = bootstrap._sender(settings, None)  # a worker's: no in-process transport
    with serve_asgi(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        for number in range(3):
            status = await send(f"{url}/hook", b'{"n": %d}' % number, {"X-Test": "1"})
            assert status == 204
    assert received == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    assert len(loads) <= 1, loads
