"""`renkei chat` in a real terminal process: numbered choices, typed text, issuer links."""

from __future__ import annotations

import asyncio
import os
import re
import sys

from tests.e2e.conftest import Renkei
from tests.e2e.test_backend_rules import BIZ, SHOP


class Terminal:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.screen = ""

    async def until_prompt(self) -> str:
        """Everything printed up to the next "> " prompt."""
        assert self.process.stdout is not None
        chunk = await asyncio.wait_for(self.process.stdout.readuntil(b"> "), 30)
        text = chunk.decode()
        self.screen += text
        return text

    async def type(self, line: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()
        return await self.until_prompt()


def number_of(screen: str, words: str) -> str:
    for match in re.finditer(r"\[(\d+)\] (.+)", screen):
        if words in match.group(2):
            return match.group(1)
    raise AssertionError(f"no choice {words!r} in:\n{screen}")


async def test_switch_to_api_from_the_terminal(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, BIZ)
    token = renkei.cli("token", "create", "owner@example.com")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "renkei.cli", "chat",
        "--url", renkei.base_url, "--token", token,
        "--user", "owner@example.com", "--locale", "en",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, **renkei.env},
    )  # fmt: skip
    terminal = Terminal(process)
    try:
        menu = await terminal.until_prompt()
        assert "Hello" in menu
        offices = await terminal.type(number_of(menu, "Switch an account to API"))
        accounts = await terminal.type(number_of(offices, SHOP))
        consent = await terminal.type(number_of(accounts, BIZ))
        link = re.search(r"→ .+?: (http\S+)", consent)
        assert link, consent
        code = re.search(r"Confirmation code: ([A-Z0-9]{4}-[A-Z0-9]{4})", consent)
        assert code, consent  # typed into the browser the link opens
        await renkei.consent(link.group(1), cards=["amex-biz-1001"], code=code.group(1))
        for _ in range(60):
            screen = await terminal.type("")  # Enter: read the conversation again
            if "is switched" in screen:
                break
            await asyncio.sleep(0.3)
        assert "is switched" in screen
        help_screen = await terminal.type("help")
        assert "Pick a procedure" in help_screen
        assert process.stdin is not None
        process.stdin.write(b"q\n")
        await process.stdin.drain()
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
    assert (await renkei.get_account(account["id"]))["sync_method"] == "api"
