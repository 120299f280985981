"""Retrying transient issuer failures with exponential backoff.

A call is retried only when the failure says the issuer may answer next time:
5xx, timeouts and connection errors (``IssuerUnavailable``) and 429
(``RateLimited``, honouring ``Retry-After`` up to a cap). The code raising the
failure decides whether it is safe to repeat (see ``Transient``); the loop here
only decides how long to wait and when to give up.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from connectors.issuers.errors import IssuerError, RateLimited

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

log = logging.getLogger(__name__)


class Transient(Exception):
    """A failure worth another attempt; carries the typed error to raise at the end.

    Internal to this package: ``run_with_retries`` always unwraps it.

    Args:
        error: The typed error the caller gets when no attempt is left.
        cause: The library exception behind it, kept as ``__cause__`` of ``error``.
    """

    def __init__(self, error: IssuerError, cause: BaseException | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.cause = cause

    @property
    def retry_after(self) -> float | None:
        """The issuer's ``Retry-After`` in seconds, when it gave one."""
        return self.error.retry_after if isinstance(self.error, RateLimited) else None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between attempts.

    Attributes:
        max_retries: Retries after the first attempt.
        backoff_base: First delay in seconds; doubled per retry.
        max_backoff: Ceiling of one computed delay.
        retry_after_cap: Longest ``Retry-After`` waited for; above it, give up at once.
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    max_backoff: float = 8.0
    retry_after_cap: float = 30.0

    def backoff(self, retry: int) -> float:
        """Delay before retry number ``retry`` (0-based), with equal jitter.

        Jitter spreads the retries of many sync jobs that failed together.
        """
        ceiling = min(self.max_backoff, self.backoff_base * 2.0**retry)
        # Not a secret: jitter only needs to spread load.
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311

    def delay(self, retry: int, retry_after: float | None) -> float | None:
        """Delay before retry ``retry``, or None when the issuer asks for too long."""
        if retry_after is None:
            return self.backoff(retry)
        if retry_after > self.retry_after_cap:
            return None
        return max(retry_after, 0.0)


async def run_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or the retries run out.

    Args:
        attempt: One try; raises ``Transient`` for failures worth repeating and a
            typed ``IssuerError`` for final ones.
        policy: Backoff and limits.
        what: A short label for log lines (method and path, never a secret).
        sleep: The waiting function; tests may pass a recorder.

    Returns:
        What ``attempt`` returned.

    Raises:
        IssuerError: The typed error of the last failure.
    """
    retry = 0
    while True:
        try:
            return await attempt()
        except Transient as exc:
            delay = policy.delay(retry, exc.retry_after) if retry < policy.max_retries else None
            if delay is None:
                log.warning("%s failed for good after %d retries: %s", what, retry, exc.error.code)
                raise exc.error from exc.cause
            log.info("%s: %s, retry %d in %.2fs", what, exc.error.code, retry + 1, delay)
            retry += 1
            await sleep(delay)
