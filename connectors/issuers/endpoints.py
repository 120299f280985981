"""Where an issuer's OAuth endpoints are: RFC 8414 metadata, or the contract's paths."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

METADATA_PATH = "/.well-known/oauth-authorization-server"


@dataclass(frozen=True)
class Endpoints:
    """The OAuth endpoints of one issuer (absolute URLs) and its issuer identifier."""

    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str
    issuer: str

    @classmethod
    def derived(cls, base_url: str) -> Endpoints:
        """The paths of ``docs/issuer-api.md`` under ``base_url``."""
        base = base_url.rstrip("/")
        return cls(
            authorization_endpoint=f"{base}/oauth/authorize",
            token_endpoint=f"{base}/oauth/token",
            revocation_endpoint=f"{base}/oauth/revoke",
            issuer=base,
        )

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], base_url: str) -> Endpoints:
        """Endpoints named by an RFC 8414 document; contract paths fill the gaps.

        Raises:
            ValueError: The document is not usable: an endpoint is not text, the
                issuer says it does not support PKCE S256 (we never send ``plain`` nor
                go without PKCE), or it names another issuer than the one asked.
        """
        methods = metadata.get("code_challenge_methods_supported")
        if methods is not None and (not isinstance(methods, list) or "S256" not in methods):
            raise ValueError("issuer metadata does not offer PKCE S256")
        fallback = cls.derived(base_url)
        found: dict[str, str] = {}
        for name in ("authorization_endpoint", "token_endpoint", "revocation_endpoint"):
            value = metadata.get(name, getattr(fallback, name))
            if not isinstance(value, str) or not value.startswith(("http://", "https://")):
                raise ValueError(f"issuer metadata {name} is not an absolute URL")
            found[name] = value
        issuer = metadata.get("issuer", fallback.issuer)
        # RFC 8414 §3.3: the document's issuer must be the one it was fetched from, or a
        # server could pass itself off as another (the mix-up attack, RFC 9700 §4.4).
        if not isinstance(issuer, str) or issuer.rstrip("/") != fallback.issuer:
            raise ValueError("issuer metadata names another issuer")
        return cls(**found, issuer=issuer)
