"""Building the issuer gateways from configuration."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from backend.service.ports import IssuerGateway
from connectors.issuers.amex import AmexGateway
from connectors.issuers.config import IssuerConfig
from connectors.issuers.jcb import JcbGateway
from connectors.issuers.oauth_client import OAuthIssuerGateway

GATEWAY_CLASSES: dict[str, type[OAuthIssuerGateway]] = {
    "amex": AmexGateway,
    "jcb": JcbGateway,
}


def build_gateways(
    configs: Mapping[str, IssuerConfig],
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, IssuerGateway]:
    """One gateway per configured issuer.

    Args:
        configs: Issuer name (``amex``, ``jcb``) to its settings; issuers left
            out get no gateway.
        transport: Shared by every gateway when given, e.g. an
            ``httpx.ASGITransport`` over the app that mounts the sandbox.

    Returns:
        Issuer name to its gateway.

    Raises:
        ValueError: A name is not a known issuer.
    """
    unknown = sorted(set(configs) - set(GATEWAY_CLASSES))
    if unknown:
        raise ValueError(f"unknown issuer(s): {', '.join(unknown)}")
    return {name: GATEWAY_CLASSES[name](config, transport) for name, config in configs.items()}
