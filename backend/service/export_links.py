"""Short-lived signed links to a statement export, for a person's browser (no bearer token).

A link names the account and the member it was made for and expires; opening it runs
the same access check as the API, as that member.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

from backend.domain import errors
from backend.domain.model import Role
from backend.service import access
from backend.service.context import Principal, ServiceContext

LINK_TTL = dt.timedelta(minutes=10)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def make_export_token(
    ctx: ServiceContext, principal: Principal, account_id: str, secret: str
) -> str:
    async with ctx.uow() as uow:
        await access.account_for(uow.repo, principal, account_id, Role.READ_ONLY)
    claims = {
        "a": account_id,
        "u": principal.email,
        "s": principal.support_admin,
        "e": int((ctx.clock() + LINK_TTL).timestamp()),
    }
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def read_export_token(ctx: ServiceContext, token: str, secret: str) -> tuple[str, Principal]:
    """The account and the member of a valid, unexpired link; refuses anything else."""
    try:
        body, mac = token.split(".", 1)
        expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            raise ValueError("bad signature")
        claims = json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise errors.Unauthenticated("this download link is not valid") from exc
    if int(claims["e"]) < ctx.clock().timestamp():
        raise errors.Unauthenticated("this download link has expired; ask for a new one")
    principal = Principal(email=str(claims["u"]), support_admin=bool(claims.get("s")))
    return str(claims["a"]), principal
