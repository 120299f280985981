"""Where a member-site page may send the person: the page asked for, and the way back.

Two addresses arrive in a member-site URL and end up in a ``Location`` header or a link,
so both are checked before use, or a link to the sandbox could send a person anywhere
(an open redirect):

- ``next``: the page asked for before the login. Only a path of this member site is
  taken: no scheme, no host, no ``//``, no backslash or control character (browsers
  read ``/\\host`` and ``/<tab>/host`` as ``//host``), no dot segment.
- ``return_to``: the page of a registered client to go back to. Only an address on the
  origin (scheme, host, port) of one of a registered client's redirect URIs is taken,
  the origin the client proved it owns when it registered; the link back is named with
  that client's name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sandbox.state import ClientRegistration

NEXT_PARAM = "next"
RETURN_PARAM = "return_to"
# Longer than any page of the sandbox with a way back; a longer value is not one of ours.
MAX_ADDRESS = 2048
_DOT_SEGMENTS = {".", ".."}


@dataclass(frozen=True)
class WayBack:
    """A link back to the client that sent the person here."""

    url: str
    client_name: str


def _plain(value: str) -> bool:
    """No backslash, space or control character: nothing a browser rewrites into a host."""
    return len(value) <= MAX_ADDRESS and not any(
        ch == "\\" or ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in value
    )


def safe_next(raw: str | None, site_path: str) -> str | None:
    """``raw`` when it is a page of the member site at ``site_path``, else ``None``.

    Args:
        raw: The ``next`` value as sent.
        site_path: The member site's own path, e.g. ``/sandbox/amex/member``.
    """
    if not raw or not _plain(raw) or not raw.startswith("/") or raw.startswith("//"):
        return None
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or parts.fragment:
        return None
    if parts.path != site_path and not parts.path.startswith(f"{site_path}/"):
        return None
    if any(unquote(segment) in _DOT_SEGMENTS for segment in parts.path.split("/")):
        return None
    if parts.path.rstrip("/") == f"{site_path}/login":
        return None  # the login again: nothing to land on
    return raw


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    default = 443 if parts.scheme == "https" else 80
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port or default}"


def way_back(raw: str | None, clients: Iterable[ClientRegistration]) -> WayBack | None:
    """The link back for ``raw``, when it is an address of a registered client.

    Args:
        raw: The ``return_to`` value as sent.
        clients: The registered clients.
    """
    if not raw or not _plain(raw):
        return None
    parts = urlsplit(raw)
    if parts.username is not None or parts.password is not None:
        return None
    origin = _origin(raw)
    if origin is None:
        return None
    for client in clients:
        if any(_origin(uri) == origin for uri in client.redirect_uris):
            return WayBack(url=raw, client_name=client.name)
    return None
