"""What every use case is given: the unit of work, the issuers, secrets, the clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from backend.domain.identity import Principal as Principal
from backend.domain.model import Issuer
from backend.service.ports import IssuerGateway
from backend.service.uow import UnitOfWork


class SecretBox(Protocol):
    def encrypt(self, plaintext: str) -> bytes: ...

    def decrypt(self, ciphertext: bytes) -> str: ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class ServiceContext:
    """The composition root builds one; use cases take it as their first argument."""

    uow: Callable[[], UnitOfWork]
    gateways: Mapping[Issuer, IssuerGateway]
    secrets: SecretBox
    oauth_redirect_uri: str
    webhook_urls: Sequence[str] = ()
    clock: Callable[[], dt.datetime] = _utcnow
    authorization_ttl: dt.timedelta = field(default_factory=lambda: dt.timedelta(minutes=30))
    # How long an account's sync lease holds without renewal (renewed at every page): a
    # process that died mid-sync keeps the account from syncing for at most this long.
    sync_lease: dt.timedelta = field(default_factory=lambda: dt.timedelta(minutes=10))

    def gateway(self, issuer: Issuer | str) -> IssuerGateway:
        return self.gateways[Issuer(issuer)]
