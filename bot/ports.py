"""What the assistant's HTTP routes are lent by the back end's API, as a port it owns.

The conversation API and the web chat's sign-in are routes of the same service as the
back end's API: a caller authenticates as on every other route, the same flood guards
count the requests, and errors are documented in the same shape. The assistant does
not import the API's modules (they reach into the service layer); the composition root
hands their FastAPI dependencies in through ``ApiEdge``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from backend.domain.identity import Principal

RouteGuard = Callable[[Request], Awaitable[None]]
"""A route dependency that refuses a request (a flood guard) or lets it through."""


@dataclass(frozen=True)
class ApiEdge:
    caller: Callable[..., Awaitable[Principal]]
    """The dependency that turns the bearer token into the calling member."""
    conversation_limit: RouteGuard
    """Counts conversation creations."""
    demo_session_limit: RouteGuard
    """Counts demo sign-ins."""
    error_responses: Callable[..., dict[int | str, dict[str, Any]]]
    """The documented error answers of a route (``error_responses(429)`` adds 429)."""
