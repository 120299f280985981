"""The terminal chat: numbered choices, free text, issuer links printed to open in a browser.

It speaks the conversation API like any front end: to a remote renkei by URL and
token, or to the embedded service started in this process.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bot.catalog import render

Ask = Callable[[str], Awaitable[str | None]]
Show = Callable[[str], None]

QUIT_WORDS = {"q", "quit", "exit", "終了"}


async def _stdin_line(prompt: str) -> str | None:
    loop = asyncio.get_running_loop()
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    return line.rstrip("\n") if line else None


async def _hidden_line(prompt: str) -> str | None:
    """A password: read without echo (``getpass``), so it never shows on the screen."""
    if not sys.stdin.isatty():
        return await _stdin_line(prompt)  # piped: nothing is echoed to hide
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(None, getpass.getpass, prompt)
    except EOFError:
        return None


def _stdout(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class TerminalChat:
    """One conversation in a terminal."""

    def __init__(
        self,
        api: httpx.AsyncClient,
        *,
        user: str,
        locale: str,
        office_id: str | None = None,
        ask: Ask = _stdin_line,
        ask_secret: Ask = _hidden_line,
        show: Show = _stdout,
    ) -> None:
        self.api = api
        self.user = user
        self.locale = locale
        self.office_id = office_id
        self.ask = ask
        self.ask_secret = ask_secret
        self.show = show
        self.conversation: dict[str, Any] = {}
        self.numbered: list[str] = []

    def _render(self) -> None:
        self.locale = self.conversation.get("locale", self.locale)
        self.numbered = []
        for reply in self.conversation["replies"]:
            self.show("")
            self.show(reply["text"])
            if reply.get("link"):
                self.show(f"  → {reply['link']['label']}: {reply['link']['url']}")
                if reply["link"].get("note"):
                    self.show(f"    {reply['link']['note']}")
            for choice in reply["choices"]:
                self.numbered.append(choice["value"])
                self.show(f"  [{len(self.numbered)}] {choice['label']}")

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        response = await self.api.post(path, json=body)
        if response.status_code >= 400:
            error = response.json().get("error", {})
            self.show(render("terminal.error", self.locale, {"message": error.get("message", "")}))
            return None
        answer: dict[str, Any] = response.json()
        return answer

    async def run(self) -> None:
        body: dict[str, Any] = {"user": self.user, "locale": self.locale}
        if self.office_id:
            body["office_id"] = self.office_id
        started = await self._post("/api/v1/conversations", body)
        if started is None:
            return
        self.conversation = started
        self.show(render("terminal.intro", self.locale))
        self._render()
        await self.loop()

    async def loop(self) -> None:
        """Read and send lines until the person quits, from the conversation held."""
        while True:
            secret = bool(self.conversation.get("secret"))
            ask = self.ask_secret if secret else self.ask
            line = await ask(render("terminal.prompt", self.locale))
            if line is None or (not secret and line.strip().lower() in QUIT_WORDS):
                self.show(render("terminal.bye", self.locale))
                return
            text = line.strip()
            if not text:
                # Enter alone: read the conversation again (the issuer may have answered).
                response = await self.api.get(f"/api/v1/conversations/{self.conversation['id']}")
                if response.status_code == 200:
                    self.conversation = response.json()
                    self._render()
                continue
            message: dict[str, Any] = {"text": text}
            # A typed password is sent as it is, even when it looks like a choice number.
            if not secret and text.isdigit() and 1 <= int(text) <= len(self.numbered):
                message = {"choice": self.numbered[int(text) - 1]}
            answer = await self._post(
                f"/api/v1/conversations/{self.conversation['id']}/messages", message
            )
            if answer is not None:
                self.conversation = answer
                self._render()
