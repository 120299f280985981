"""Issuer connectors: Amex and JCB over OAuth (authlib) and HTTP (httpx).

Each implements ``backend.service.ports.IssuerGateway``; errors are the tree of
``connectors.issuers.errors``. Build them with ``build_gateways``.
"""

from connectors.issuers.amex import AmexGateway
from connectors.issuers.config import IssuerConfig
from connectors.issuers.factory import build_gateways
from connectors.issuers.jcb import JcbGateway
from connectors.issuers.oauth_client import OAuthIssuerGateway

__all__ = [
    "AmexGateway",
    "IssuerConfig",
    "JcbGateway",
    "OAuthIssuerGateway",
    "build_gateways",
]
