"""The web chat page at ``/chat``, on the conversation API, and the support page."""

from __future__ import annotations

from fastapi import FastAPI

from bot.ports import ApiEdge


def install(app: FastAPI, edge: ApiEdge) -> None:
    """Mount the web chat page, its static files and the support page on ``app``."""
    from bot.web.page import chat_router
    from bot.web.support import support_router

    app.include_router(chat_router(edge))
    app.include_router(support_router(edge))
