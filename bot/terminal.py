"""The terminal chat: numbered choices, free text, issuer links printed to open in a browser.

It speaks the conversation API like any front end: to a remote renkei by URL and
token, or to the embedded service started in this process.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from i18n import render

Ask = Callable[[str], Awaitable[str | None]]
Show = Callable[[str], None]

QUIT_WORDS = {"q", "quit", "exit", "終了"}

T = TypeVar("T")


async def _in_daemon_thread(read: Callable[[], T]) -> T:
    """Run a blocking read in a thread that never holds the process open.

    The event loop's default executor is joined when ``asyncio.run`` ends, so a read
    left waiting there would keep Ctrl-C from ending the chat until Enter is pressed.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not done.done():
            outcome()

    def work() -> None:
        try:
            value = read()
        except BaseException as exc:  # handed to the waiting coroutine, not lost
            error = exc
            loop.call_soon_threadsafe(settle, lambda: done.set_exception(error))
        else:
            loop.call_soon_threadsafe(settle, lambda: done.set_result(value))

    threading.Thread(target=work, name="terminal-input", daemon=True).start()
    return await done


async def _stdin_line(prompt: str) -> str | None:
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = await _in_daemon_thread(sys.stdin.readline)
    return line.rstrip("\n") if line else None


async def _hidden_line(prompt: str) -> str | None:
    """A password: read without echo (``getpass``), so it never shows on the screen."""
    if not sys.stdin.isatty():
        return await _stdin_line(prompt)  # piped: nothing is echoed to hide
    try:
        return await _in_daemon_thread(lambda: getpass.getpass(prompt))
    except EOFError:
        return None


def write_line(text: str) -> None:
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
        show: Show = write_line,
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
        self.handoff_id: str | None = None
        self.answers_shown = 0  # support's answers to that handoff already printed

    async def _render(self) -> None:
        handoff = self.conversation.get("handoff") or {}
        if self.handoff_id is not None and handoff.get("id") != self.handoff_id:
            # The handoff ended: what support said just before may not be shown yet.
            await self._last_answers(self.handoff_id)
        self.locale = self.conversation.get("locale", self.locale)
        if self.conversation["replies"]:
            # No reply while support owns the conversation: the numbers shown still hold.
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
        if handoff.get("id") != self.handoff_id:
            self.handoff_id, self.answers_shown = handoff.get("id"), 0
        # Support's answers, each once: at the next turn, or when Enter alone reads again.
        for answer in (handoff.get("answers") or [])[self.answers_shown :]:
            self.show("")
            self.show(answer["text"])
            self.answers_shown += 1

    async def _last_answers(self, handoff_id: str) -> None:
        """Support's answers to a handoff that ended, those not shown yet, from the
        conversation's history (the conversation no longer carries them)."""
        # The latest lines (the API's page): the handoff just ended is among them.
        response = await self.api.get(f"/api/v1/conversations/{self.conversation['id']}/history")
        if response.status_code != 200:
            return
        lines = response.json()["lines"]
        answers = [
            line["text"]
            for line in lines
            if line["speaker"] == "support" and line.get("handoff_id") == handoff_id
        ]
        for text in answers[self.answers_shown :]:
            self.show("")
            self.show(text)
        self.answers_shown = len(answers)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        response = await self.api.post(path, json=body)
        if response.status_code >= 400:
            error = response.json().get("error", {})
            self.show(render("terminal.error", self.locale, {"message": error.get("message", "")}))
            return None
        answer: dict[str, Any] = response.json()
        return answer

    async def run(self) -> int:
        """Hold the conversation; the process's exit status (0 when the person quit)."""
        try:
            return await self._run()
        except httpx.TransportError:
            # One line, not a traceback: the server went away or was never there.
            self.show(render("terminal.unreachable", self.locale, {"url": str(self.api.base_url)}))
            return 1

    async def _run(self) -> int:
        body: dict[str, Any] = {"user": self.user, "locale": self.locale}
        if self.office_id:
            body["office_id"] = self.office_id
        started = await self._post("/api/v1/conversations", body)
        if started is None:
            return 1
        self.conversation = started
        self.show(render("terminal.intro", self.locale))
        await self._render()
        await self.loop()
        return 0

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
                    await self._render()
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
                await self._render()
