"""The error answers each operation declares in the OpenAPI document, from one place."""

from __future__ import annotations

from typing import Any

from backend.api.errors import ERROR_RESPONSES
from backend.api.schemas import ErrorResponse

_ERROR_REF = "#/components/schemas/ErrorResponse"


def _doc(description: str, *codes: str) -> dict[str, Any]:
    listed = ", ".join(f"`{code}`" for code in codes)
    return {"model": ErrorResponse, "description": f"{description} Codes: {listed}."}


OPTIONAL_RESPONSES: dict[int, dict[str, Any]] = {
    429: {
        **_doc(
            "Too many requests of this kind from this token or this client address; "
            "try again after `Retry-After` seconds (also in `details.retry_after`).",
            "too_many_requests",
        ),
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
}

INTERNAL_ERROR = _doc(
    "Something unexpected failed; the answer carries the request id to quote.",
    "internal_error",
)


def error_responses(*extra: int) -> dict[int | str, dict[str, Any]]:
    """Every error status an operation may answer, in the error shape.

    Args:
        extra: Statuses only some operations answer, e.g. 429 for a rate-limited one.
    """
    chosen: dict[int | str, dict[str, Any]] = {**ERROR_RESPONSES, 500: INTERNAL_ERROR}
    for status in extra:
        chosen[status] = OPTIONAL_RESPONSES[status]
    # Named as JSON outright: a route that answers HTML when it succeeds (the OAuth
    # callback) still answers its errors in the error shape to a JSON client.
    return {
        status: {**entry, "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}}}
        for status, entry in chosen.items()
    }
