"""Statement files shared in a DM, read from Slack with the bot token."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

# Statement files are small (a year of lines is well under 1 MB); a larger one is not one.
MAX_FILE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Download:
    """A shared file's name and bytes; ``data`` None and ``problem`` (a catalog key,
    taking ``file``) when it was not read."""

    name: str
    data: bytes | None = None
    problem: str | None = None


class _TooLarge(Exception):
    """A download passed MAX_FILE_BYTES: it is stopped, not kept in memory."""


def _slack_file_url(url: str, api_url: str) -> bool:
    """Whether the bot token may be sent to ``url``: Slack's file hosts, or the Web API's own.

    The token opens the whole workspace to whoever holds it; a file address from an event
    is data, so it is only followed to Slack (or to where SLACK_API_URL points).
    """
    target, api = httpx.URL(url), httpx.URL(api_url)
    if target.scheme == api.scheme and target.host == api.host and target.port == api.port:
        return True
    return target.scheme == "https" and (
        target.host == "slack.com" or target.host.endswith(".slack.com")
    )


async def download(client: AsyncWebClient, file_id: str) -> Download:
    """The file's name and bytes, read with the bot token, or why it was not read."""
    # The message event may carry only the file id: files.info has the download address.
    info = await client.files_info(file=file_id)
    file: dict[str, Any] = info.get("file") or {}
    name = str(file.get("name") or file.get("title") or "statements.csv")
    if int(file.get("size") or 0) > MAX_FILE_BYTES:
        return Download(name, problem="slack.file.too_large")
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    if not url or not _slack_file_url(url, client.base_url) or client.token is None:
        log.warning("file %s has no download address of Slack's", file_id)
        return Download(name, problem="slack.file.not_read")
    try:
        async with (
            httpx.AsyncClient(timeout=30, follow_redirects=True) as http,
            http.stream("GET", url, headers={"Authorization": f"Bearer {client.token}"}) as got,
        ):
            got.raise_for_status()
            data = bytearray()
            async for chunk in got.aiter_bytes():
                data += chunk
                if len(data) > MAX_FILE_BYTES:  # files.info's size may be missing or wrong
                    raise _TooLarge
    except _TooLarge:
        return Download(name, problem="slack.file.too_large")
    except httpx.HTTPError as exc:
        log.warning("file %s not downloaded: %s", file_id, exc)
        return Download(name, problem="slack.file.not_read")
    return Download(name, bytes(data))
