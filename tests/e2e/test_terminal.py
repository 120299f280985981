"""`renkei chat` in a real terminal process: numbered choices, typed text, issuer links."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path

import httpx

from bot.terminal import TerminalChat
from tests.e2e.conftest import Renkei
from tests.e2e.test_backend_rules import BIZ, SHOP
from tests.support.servers import free_port


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


async def chat_process(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "renkei.cli", "chat", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **env},
    )  # fmt: skip


async def finished(process: asyncio.subprocess.Process, seconds: float) -> tuple[int, str]:
    """Exit status and everything printed; fails when the process outlives ``seconds``."""
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"renkei chat still running after {seconds} s") from None
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


async def test_ctrl_c_ends_the_chat_at_once(renkei: Renkei) -> None:
    token = renkei.cli("token", "create", "owner@example.com")
    process = await chat_process(
        "--url", renkei.base_url, "--token", token, "--user", "owner@example.com",
        "--locale", "en", env=renkei.env,
    )  # fmt: skip
    try:
        await Terminal(process).until_prompt()
        process.send_signal(signal.SIGINT)  # the person waits at the prompt, types nothing
        status, printed = await finished(process, 10)
    finally:
        if process.returncode is None:
            process.kill()
    assert status == 130
    assert "Goodbye." in printed
    assert "Traceback" not in printed


async def test_a_server_that_is_down_gets_one_clear_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    process = await chat_process(
        "--url", url, "--token", "rk_any", "--user", "owner@example.com", "--locale", "en",
        env={"RENKEI_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    status, printed = await finished(process, 30)
    assert status == 1
    assert f"Cannot reach renkei at {url}" in printed
    assert "Traceback" not in printed
    assert len(printed.strip().splitlines()) == 1, printed


async def test_a_port_taken_by_another_program_gets_one_clear_line(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()  # accepts connections, never answers: not a renkei
        port = taken.getsockname()[1]
        process = await chat_process(
            "--port", str(port), "--locale", "en", env={"RENKEI_DATA_DIR": str(tmp_path)}
        )
        status, printed = await finished(process, 60)
    assert status == 1
    assert f"Port {port} is taken by another program" in printed
    assert "Traceback" not in printed


async def test_chat_talks_to_the_renkei_already_running_here(renkei: Renkei) -> None:
    """`renkei serve` in one terminal, `renkei chat` in another: no URL, no token typed."""
    port = renkei.base_url.rsplit(":", 1)[1]
    process = await chat_process("--port", port, "--locale", "en", env=renkei.env)
    terminal = Terminal(process)
    try:
        menu = await terminal.until_prompt()
        assert f"Talking to the renkei already running at {renkei.base_url}" in menu
        offices = await terminal.type(number_of(menu, "Switch an account to API"))
        assert SHOP in offices  # the demo owner's offices, read from the running renkei
        assert process.stdin is not None
        process.stdin.write(b"q\n")
        await process.stdin.drain()
        status, printed = await finished(process, 15)
    finally:
        if process.returncode is None:
            process.kill()
    assert status == 0
    assert "Traceback" not in printed


async def test_a_password_that_looks_like_a_choice_is_sent_as_a_password() -> None:
    sent: list[dict[str, object]] = []
    asking = {
        "id": "c1", "locale": "en", "secret": True,
        "replies": [{"text": "Password?", "choices": [{"value": "cancel", "label": "Stop"}]}],
    }  # fmt: skip

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/messages"):
            sent.append(json.loads(request.content))
            return httpx.Response(200, json={**asking, "secret": False, "replies": []})
        return httpx.Response(201, json=asking)

    typed = iter(["1", None])

    async def ask(prompt: str) -> str | None:
        return next(typed)

    shown: list[str] = []
    async with httpx.AsyncClient(
        base_url="http://renkei.test", transport=httpx.MockTransport(answer)
    ) as api:
        chat = TerminalChat(
            api, user="owner@example.com", locale="en", ask=ask, ask_secret=ask, show=shown.append
        )
        assert await chat.run() == 0
    assert sent == [{"text": "1"}]  # "1" is the password, not the first choice
