"""Settings of one issuer connector."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IssuerConfig:
    """How to reach one issuer and how patiently.

    Attributes:
        base_url: The issuer's base URL, e.g. ``http://HOST/sandbox/amex``; every
            path of ``docs/issuer-api.md`` is relative to it.
        client_id: renkei's OAuth client id at the issuer.
        client_secret: renkei's OAuth client secret (never logged, never in ``repr``).
        timeout: Seconds allowed for connect, read, write and pool wait of one request,
            and for the whole wait for its answer, whatever the transport.
        max_retries: Retries after the first attempt for transient failures
            (5xx, timeouts, connection errors, 429); 0 disables retrying.
        backoff_base: First backoff delay in seconds; doubled per retry, with jitter.
        scope: OAuth scope to ask for; empty means the issuer's default.
        retry_after_cap: Longest ``Retry-After`` the connector waits for by itself;
            a longer one ends the call with ``RateLimited`` at once.
        max_backoff: Ceiling of one backoff delay in seconds.
        token_leeway: Seconds before ``expires_at`` from which authlib refreshes.
    """

    base_url: str
    client_id: str
    client_secret: str = ""
    timeout: float = 10.0
    max_retries: int = 3
    backoff_base: float = 0.5
    scope: str = ""
    retry_after_cap: float = 30.0
    max_backoff: float = 8.0
    token_leeway: int = 60

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.timeout <= 0:
            raise ValueError("timeout must be > 0")

    def __repr__(self) -> str:  # the secret never reaches a log line through repr()
        return (
            f"IssuerConfig(base_url={self.base_url!r}, client_id={self.client_id!r}, "
            f"timeout={self.timeout!r}, max_retries={self.max_retries!r})"
        )
