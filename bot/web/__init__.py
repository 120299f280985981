"""The web chat page at ``/chat``, on the conversation API."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount the web chat page and its static files on ``app``."""
    from bot.web.page import router

    app.include_router(router)
