"""Talking to renkei's assistant through the conversation API, as a front end would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from i18n import render
from tests.e2e.conftest import Renkei

Conversation = dict[str, Any]


class Chat:
    """One conversation of the demo owner (or another member, with their token)."""

    def __init__(self, renkei: Renkei, client: httpx.AsyncClient | None = None) -> None:
        self.renkei = renkei
        self.api = client or renkei.api
        self.id = ""
        self.last: Conversation = {}

    async def start(self, locale: str = "ja", office_id: str | None = None) -> Conversation:
        body: dict[str, Any] = {"user": "owner@example.com", "locale": locale}
        if office_id:
            body["office_id"] = office_id
        response = await self.api.post("/conversations", json=body)
        assert response.status_code == 201, response.text
        self.last = response.json()
        self.id = self.last["id"]
        return self.last

    async def say(self, text: str) -> Conversation:
        return await self._send({"text": text})

    async def choose(self, value: str) -> Conversation:
        offered = self.choices()
        assert value in offered, f"{value!r} is not offered; choices: {offered}"
        return await self._send({"choice": value})

    async def choose_label(self, words: str) -> Conversation:
        """Press the button whose label contains ``words``, as a person reading would."""
        for reply in self.last["replies"]:
            for button in reply["choices"]:
                if words in button["label"]:
                    return await self._send({"choice": button["value"]})
        raise AssertionError(f"no button with {words!r}: {self.labels()}")

    async def upload(self, name: str, data: bytes) -> Conversation:
        import base64

        return await self._send(
            {"file": {"name": name, "content_base64": base64.b64encode(data).decode()}}
        )

    async def _send(self, body: dict[str, Any]) -> Conversation:
        response = await self.api.post(f"/conversations/{self.id}/messages", json=body)
        assert response.status_code == 200, response.text
        self.last = response.json()
        return self.last

    async def refresh(self) -> Conversation:
        response = await self.api.get(f"/conversations/{self.id}")
        assert response.status_code == 200, response.text
        self.last = response.json()
        return self.last

    async def wait_until(
        self, check: Callable[[Conversation], bool], seconds: float = 20.0
    ) -> Conversation:
        """Wait for a back-end event to move the conversation on by itself."""
        for _ in range(int(seconds / 0.1)):
            if check(await self.refresh()):
                return self.last
            await asyncio.sleep(0.1)
        raise AssertionError(f"conversation never got there: {self.last}")

    # ---------------------------------------------------------------- reading
    def text(self) -> str:
        return "\n".join(r["text"] for r in self.last["replies"])

    def said(self, key: str, **params: Any) -> bool:
        """Whether the last answer says the catalog's ``key``, in the conversation's language."""
        return render(key, self.last["locale"], params) in self.text()

    def choices(self) -> list[str]:
        return [c["value"] for r in self.last["replies"] for c in r["choices"]]

    def labels(self) -> list[str]:
        return [c["label"] for r in self.last["replies"] for c in r["choices"]]

    def link(self) -> str:
        links = [r["link"]["url"] for r in self.last["replies"] if r["link"]]
        assert links, f"no link in {self.last}"
        return str(links[-1])

    def choice_for(self, words: str) -> str:
        for reply in self.last["replies"]:
            for button in reply["choices"]:
                if words in button["label"]:
                    return str(button["value"])
        raise AssertionError(f"no button with {words!r}: {self.labels()}")

    def where(self) -> tuple[Any, Any]:
        """(flow, state) now."""
        return self.last["flow"], self.last["state"]
