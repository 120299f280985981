"""A fake Slack Web API on a real loopback port, for tests without Slack.

It answers the methods renkei calls as Slack does, records every request (method,
arguments, token), refuses a reply in the thread of a message the channel does not hold
(``thread_not_found``) and plays scripted errors: ``ratelimited`` with ``Retry-After``,
``expired_trigger_id``, a 500. The app under test reaches it through
``SLACK_API_URL``, as it would reach slack.com. It serves the files people share
(``url_private``, bot token required) and, with ``socket_mode=True``, a Socket Mode
WebSocket that ``apps.connections.open`` hands out.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aiohttp import WSMsgType, web
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.servers import free_port, serve_asgi

TEAM_ID = "T0RENKEI"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"


@dataclass
class Call:
    """One request to the fake: the method, its arguments, and what the fake answered."""

    method: str
    args: dict[str, Any]
    token: str | None
    ok: bool = True
    error: str | None = None
    ts: str | None = None  # the ts the fake gave a posted message

    @property
    def text(self) -> str:
        return str(self.args.get("text") or "")

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.args.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        return list(blocks)

    def buttons(self) -> list[dict[str, Any]]:
        return [
            element
            for block in self.blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
        ]

    def all_text(self) -> str:
        """Every word of the message: the text and the sections' text."""
        parts = [self.text]
        for block in self.blocks:
            section = block.get("text")
            if isinstance(section, dict):
                parts.append(str(section.get("text") or ""))
            for element in block.get("elements") or []:
                if element.get("type") == "mrkdwn":
                    parts.append(str(element.get("text") or ""))
                elif element.get("type") == "button":
                    parts.append(str(element["text"]["text"]))
        view = self.args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if isinstance(view, dict):
            for block in view.get("blocks") or []:
                section = block.get("text")
                if isinstance(section, dict):
                    parts.append(str(section.get("text") or ""))
        return "\n".join(parts)


@dataclass
class Failure:
    method: str
    error: str
    status: int
    retry_after: int | None
    times: int
    when: Callable[[dict[str, Any]], bool]


@dataclass
class User:
    id: str
    email: str | None
    locale: str = "ja-JP"


class FakeSocketMode:
    """Slack's Socket Mode end: a WebSocket that says ``hello``, sends envelopes, keeps acks.

    aiohttp serves it (the uvicorn of the Web API fake has no WebSocket library here),
    on a loop of its own in a background thread; tests talk to it from theirs.
    """

    def __init__(self) -> None:
        self.url = ""
        self.acks: list[dict[str, Any]] = []
        self._outboxes: list[asyncio.Queue[dict[str, Any]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @classmethod
    @contextmanager
    def serving(cls) -> Iterator[FakeSocketMode]:
        socket = cls()
        port = free_port()
        loop = asyncio.new_event_loop()
        socket._loop = loop
        app = web.Application()
        app.router.add_get("/link/", socket._connection)
        runner = web.AppRunner(app)

        async def start() -> None:
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()

        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        # The test's own loop is running: the server is set up on its loop, from here.
        asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
        socket.url = f"ws://127.0.0.1:{port}"
        try:
            yield socket
        finally:
            cleanup = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
            cleanup.result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    async def _connection(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()  # answers the client's pings by itself, as Slack does
        await ws.prepare(request)
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
                "connection_info": {"app_id": "A0RENKEI"},
            }
        )
        with self._lock:
            self._outboxes.append(outbox)

        async def send() -> None:
            while True:
                await ws.send_json(await outbox.get())

        sender = asyncio.create_task(send())
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    with self._lock:
                        self.acks.append(json.loads(message.data))
        finally:
            sender.cancel()
            with self._lock:
                self._outboxes.remove(outbox)
        return ws

    async def send(self, envelope: dict[str, Any], *, seconds: float = 10.0) -> None:
        """Send an envelope to the connected app (waiting for it to connect)."""
        deadline = time.monotonic() + seconds
        while True:
            with self._lock:
                outboxes = list(self._outboxes)
            if outboxes:
                break
            if time.monotonic() > deadline:
                raise AssertionError("the app never connected to Socket Mode")
            await asyncio.sleep(0.05)
        assert self._loop is not None
        for outbox in outboxes:
            self._loop.call_soon_threadsafe(outbox.put_nowait, envelope)

    async def ack(self, envelope_id: str, *, seconds: float = 3.0) -> dict[str, Any]:
        """The app's acknowledgement of an envelope; Slack waits 3 seconds for it."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                found = [a for a in self.acks if a.get("envelope_id") == envelope_id]
            if found:
                return found[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no ack of {envelope_id}; acks: {self.acks}")


@dataclass
class SharedFile:
    id: str
    name: str
    data: bytes
    mimetype: str


@dataclass
class FakeSlack:
    """State of the fake; ``url`` is set while it serves."""

    url: str = ""
    calls: list[Call] = field(default_factory=list)
    users: dict[str, User] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    files: dict[str, SharedFile] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)  # method → seconds (a slow Slack)
    socket: FakeSocketMode | None = None
    posted: set[tuple[str, str]] = field(default_factory=set)  # (channel, ts) of messages
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def add_user(self, user_id: str, email: str | None, locale: str = "ja-JP") -> None:
        self.users[user_id] = User(user_id, email, locale)

    def add_file(self, name: str, data: bytes, mimetype: str = "text/csv") -> SharedFile:
        """A file a person shared; ``files.info`` describes it and its URL serves it."""
        shared = SharedFile(f"F{next(self._ts):08d}", name, data, mimetype)
        with self._lock:
            self.files[shared.id] = shared
        return shared

    def person_posted(self, channel: str, ts: str) -> None:
        """A message a person posted in a channel (an event tells the app of it): renkei
        may reply in its thread."""
        with self._lock:
            self.posted.add((channel, ts))

    def file_url(self, shared: SharedFile) -> str:
        return f"{self.url}/files-pri/{TEAM_ID}-{shared.id}/{shared.name}"

    def fail(
        self,
        method: str,
        error: str,
        *,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] = lambda _args: True,
    ) -> None:
        """The next ``times`` calls of ``method`` (matching ``when``) fail with ``error``."""
        with self._lock:
            self.failures.append(Failure(method, error, status, retry_after, times, when))

    # ------------------------------------------------------------------ reading
    def of(self, method: str, *, ok: bool | None = True) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def posts(self, channel: str) -> list[Call]:
        return [c for c in self.of("chat.postMessage") if c.args.get("channel") == channel]

    async def wait_for(
        self,
        method: str,
        check: Callable[[Call], bool] = lambda _call: True,
        *,
        after: int = 0,
        seconds: float = 20.0,
    ) -> Call:
        """The first successful call of ``method`` from index ``after`` on passing ``check``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                found = [c for c in self.calls[after:] if c.method == method and c.ok and check(c)]
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {method} call matched; calls: {[c.method for c in self.calls]}")

    def mark(self) -> int:
        """Where the recording stands now (for ``wait_for(after=...)``)."""
        with self._lock:
            return len(self.calls)

    # ------------------------------------------------------------------ answering
    def _scripted(self, method: str, args: dict[str, Any]) -> Failure | None:
        with self._lock:
            for failure in self.failures:
                if failure.method == method and failure.times > 0 and failure.when(args):
                    failure.times -= 1
                    return failure
        return None

    def answer(self, method: str, args: dict[str, Any], token: str | None) -> JSONResponse:
        failure = self._scripted(method, args)
        call = Call(method, args, token)
        with self._lock:
            self.calls.append(call)
        if failure is not None:
            call.ok, call.error = False, failure.error
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            return JSONResponse(
                {"ok": False, "error": failure.error}, status_code=failure.status, headers=headers
            )
        if token is None and method not in ("oauth.v2.access",):
            call.ok, call.error = False, "not_authed"
            return JSONResponse({"ok": False, "error": "not_authed"})
        refused = self._refused(method, args)
        if refused is not None:
            call.ok, call.error = False, str(refused["error"])
            return JSONResponse(refused)
        body = {"ok": True, **self._body(method, args)}
        if not body["ok"]:  # an error Slack answers for these arguments (no such file…)
            call.ok, call.error = False, str(body.get("error"))
        elif method == "chat.postMessage":
            call.ts = str(body["ts"])
            with self._lock:
                self.posted.add((str(args.get("channel")), call.ts))
        return JSONResponse(body)

    def _refused(self, method: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """Slack's answer to arguments it refuses: bad Block Kit, a missing field."""
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            if not args.get("channel"):
                return {"ok": False, "error": "channel_not_found"}
            thread = args.get("thread_ts")
            if method == "chat.postMessage" and thread is not None:
                # A reply goes under a message of the same channel, named by its own ts.
                with self._lock:
                    known = (str(args["channel"]), str(thread)) in self.posted
                if not known:
                    return {"ok": False, "error": "thread_not_found"}
            if not args.get("text") and not args.get("blocks"):
                return {"ok": False, "error": "no_text"}
            if "blocks" in args:
                problems = block_kit_problems(args["blocks"])
                if problems:
                    return {
                        "ok": False,
                        "error": "invalid_blocks",
                        "errors": problems,
                        "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]},
                    }
        if method in ("views.open", "views.update", "views.publish"):
            problems = view_problems(args.get("view"))
            if problems:
                return {
                    "ok": False,
                    "error": "invalid_arguments",
                    "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]},
                }
        return None

    def _body(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "url": "https://renkei-test.slack.com/",
                "team": "renkei test",
                "user": "renkei",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            ts = args.get("ts") or f"{int(time.time())}.{next(self._ts):06d}"
            return {"channel": args.get("channel"), "ts": ts, "message": {"text": args.get("text")}}
        if method in ("views.open", "views.update", "views.publish"):
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else dict(view or {})
            number = next(self._ts)
            view_id = args.get("view_id") or f"V{number:08d}"
            return {"view": {**view, "id": view_id, "hash": f"hash-{number}"}}
        if method == "users.info":
            user = self.users.get(str(args.get("user")))
            if user is None:
                return {"user": {"id": args.get("user"), "profile": {}, "locale": "ja-JP"}}
            profile = {"email": user.email} if user.email else {}
            return {"user": {"id": user.id, "profile": profile, "locale": user.locale}}
        if method == "conversations.open":
            return {"channel": {"id": f"D{args.get('users')}"}}
        if method == "files.info":
            shared = self.files.get(str(args.get("file")))
            if shared is None:
                return {"ok": False, "error": "file_not_found"}
            url = self.file_url(shared)
            return {
                "file": {
                    "id": shared.id,
                    "name": shared.name,
                    "title": shared.name,
                    "mimetype": shared.mimetype,
                    "filetype": shared.name.rpartition(".")[2],
                    "size": len(shared.data),
                    "url_private": url,
                    "url_private_download": url + "?download=1",
                }
            }
        if method == "apps.connections.open":
            if self.socket is None:
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"url": f"{self.socket.url}/link/?ticket={next(self._ts)}"}
        if method == "oauth.v2.access":
            return {
                "app_id": "A0RENKEI",
                "authed_user": {"id": "U0INSTALLER"},
                "scope": "commands,chat:write",
                "token_type": "bot",
                "access_token": "xoxb-installed",
                "bot_user_id": BOT_USER_ID,
                "team": {"id": "T0OTHER", "name": "other"},
                "enterprise": None,
                "is_enterprise_install": False,
            }
        return {}


# --------------------------------------------------------------------------- Block Kit
# Slack's limits (https://api.slack.com/reference/block-kit): a message or view that
# breaks one is refused whole, ``invalid_blocks`` (``invalid_arguments`` for views).
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
ACTIONS_ELEMENTS_MAX = 25
CONTEXT_ELEMENTS_MAX = 10
SECTION_FIELDS_MAX = 10
TEXT_MAX = {"section": 3000, "header": 150, "field": 2000, "context": 3000}
BUTTON_TEXT_MAX = 75
VALUE_MAX = 2000
URL_MAX = 3000
ACTION_ID_MAX = 255
BLOCK_ID_MAX = 255
VIEW_TITLE_MAX = 24
PRIVATE_METADATA_MAX = 3000
INPUT_LABEL_MAX = 2000


def _text_object(where: str, text: Any, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(text, dict):
        return [f"{where}: missing required field: text"]
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if text.get("type") not in kinds:
        return [f"{where}: must be one of {kinds} [json-pointer:{where}/type]"]
    body = text.get("text")
    if not isinstance(body, str) or not body:
        return [f"{where}: must be more than 0 characters [json-pointer:{where}/text]"]
    if len(body) > limit:
        return [f"{where}: must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _absolute_url(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _element(where: str, element: Any) -> list[str]:
    if not isinstance(element, dict):
        return [f"{where}: must be an object"]
    problems: list[str] = []
    kind = element.get("type")
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > ACTION_ID_MAX):
        problems.append(f"{where}: action_id must be at most {ACTION_ID_MAX} characters")
    if kind == "button":
        problems += _text_object(
            f"{where}/text", element.get("text"), BUTTON_TEXT_MAX, plain_only=True
        )
        value = element.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > VALUE_MAX):
            problems.append(f"{where}: value must be less than {VALUE_MAX + 1} characters")
        if "url" in element:
            url = element["url"]
            if not _absolute_url(url):
                problems.append(
                    f"{where}: url must be an absolute http(s) URL [json-pointer:{where}/url]"
                )
            elif len(url) > URL_MAX:
                problems.append(f"{where}: url must be less than {URL_MAX + 1} characters")
        if element.get("style") not in (None, "primary", "danger"):
            problems.append(f"{where}: style must be primary or danger")
    elif kind == "plain_text_input":
        if not action_id:
            problems.append(f"{where}: missing required field: action_id")
    elif kind in ("mrkdwn", "plain_text"):
        problems += _text_object(where, element, TEXT_MAX["context"])
    elif kind == "image":
        if not _absolute_url(element.get("image_url")) or not element.get("alt_text"):
            problems.append(f"{where}: image needs an absolute image_url and alt_text")
    else:
        problems.append(f"{where}: unsupported element type {kind!r}")
    return problems


def _block(where: str, block: Any) -> list[str]:
    if not isinstance(block, dict):
        return [f"{where}: must be an object"]
    problems: list[str] = []
    kind = block.get("type")
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > BLOCK_ID_MAX):
        problems.append(f"{where}: block_id must be at most {BLOCK_ID_MAX} characters")
    if kind == "section":
        fields = block.get("fields")
        if "text" not in block and not fields:
            problems.append(f"{where}: must provide text or fields")
        if "text" in block:
            problems += _text_object(f"{where}/text", block["text"], TEXT_MAX["section"])
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > SECTION_FIELDS_MAX:
                problems.append(f"{where}/fields: at most {SECTION_FIELDS_MAX} items")
            else:
                for i, item in enumerate(fields):
                    problems += _text_object(f"{where}/fields/{i}", item, TEXT_MAX["field"])
        if "accessory" in block:
            problems += _element(f"{where}/accessory", block["accessory"])
    elif kind in ("actions", "context"):
        elements = block.get("elements")
        limit = ACTIONS_ELEMENTS_MAX if kind == "actions" else CONTEXT_ELEMENTS_MAX
        if not isinstance(elements, list) or not elements:
            problems.append(f"{where}/elements: must provide at least 1 item")
        elif len(elements) > limit:
            problems.append(f"{where}/elements: must provide at most {limit} items")
        else:
            ids = [e.get("action_id") for e in elements if isinstance(e, dict)]
            named = [i for i in ids if i is not None]
            if len(named) != len(set(named)):
                problems.append(f"{where}/elements: action_id must be unique in a block")
            for i, element in enumerate(elements):
                if (
                    kind == "context"
                    and isinstance(element, dict)
                    and element.get("type") not in ("mrkdwn", "plain_text", "image")
                ):
                    problems.append(f"{where}/elements/{i}: not allowed in a context block")
                    continue
                problems += _element(f"{where}/elements/{i}", element)
    elif kind == "header":
        problems += _text_object(
            f"{where}/text", block.get("text"), TEXT_MAX["header"], plain_only=True
        )
    elif kind == "input":
        problems += _text_object(
            f"{where}/label", block.get("label"), INPUT_LABEL_MAX, plain_only=True
        )
        if "element" not in block:
            problems.append(f"{where}: missing required field: element")
        else:
            problems += _element(f"{where}/element", block["element"])
    elif kind == "divider":
        pass
    else:
        problems.append(f"{where}: unsupported block type {kind!r}")
    return problems


def block_kit_problems(blocks: Any, *, limit: int = MESSAGE_BLOCKS_MAX) -> list[str]:
    """What Slack would refuse in ``blocks`` (empty when it takes them)."""
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return ["blocks: not valid JSON"]
    if not isinstance(blocks, list):
        return ["blocks: must be an array"]
    if len(blocks) > limit:
        return [f"blocks: must provide at most {limit} items"]
    problems: list[str] = []
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        problems += _block(f"/blocks/{i}", block)
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str):
            if block_id in seen:
                problems.append(f"/blocks/{i}: block_id must be unique")
            seen.add(block_id)
    return problems


def view_problems(view: Any) -> list[str]:
    """What Slack would refuse in a modal or home ``view``."""
    if isinstance(view, str):
        try:
            view = json.loads(view)
        except ValueError:
            return ["view: not valid JSON"]
    if not isinstance(view, dict):
        return ["view: must be an object"]
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return [f"view: unsupported type {kind!r}"]
    problems = block_kit_problems(view.get("blocks"), limit=VIEW_BLOCKS_MAX)
    if kind == "modal":
        problems += _text_object("/title", view.get("title"), VIEW_TITLE_MAX, plain_only=True)
        for name in ("close", "submit"):
            if name in view:
                problems += _text_object(f"/{name}", view[name], VIEW_TITLE_MAX, plain_only=True)
        raw = view.get("blocks")
        blocks: list[Any] = raw if isinstance(raw, list) else []
        inputs = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if inputs and "submit" not in view:
            problems.append("/submit: required when the view has input blocks")
    metadata = view.get("private_metadata")
    if metadata is not None and (
        not isinstance(metadata, str) or len(metadata) > PRIVATE_METADATA_MAX
    ):
        problems.append(f"/private_metadata: at most {PRIVATE_METADATA_MAX} characters")
    return problems


async def _arguments(request: Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if not body:
        return args
    kind = request.headers.get("content-type", "")
    if "json" in kind:
        args.update(json.loads(body))
    else:
        args.update(dict(parse_qsl(body.decode())))
    return args


def create_app(fake: FakeSlack) -> Starlette:
    async def api(request: Request) -> JSONResponse:
        method = request.path_params["method"]
        auth = request.headers.get("authorization", "")
        args = await _arguments(request)
        token = auth.removeprefix("Bearer ").strip() or args.get("token") or None
        if fake.delays.get(method):
            await asyncio.sleep(fake.delays[method])
        return fake.answer(method, args, token)

    async def download(request: Request) -> Response:
        # Slack serves url_private to a bot token only; anyone else gets its login page.
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        file_id = str(request.path_params["key"]).rpartition("-")[2]
        shared = fake.files.get(file_id)
        call = Call("files.download", {"file": file_id}, token or None)
        with fake._lock:
            fake.calls.append(call)
        if not token.startswith("xoxb-") or shared is None:
            call.ok, call.error = False, "not_authed"
            return Response("<html>sign in</html>", status_code=302, headers={"Location": "/"})
        return Response(shared.data, media_type=shared.mimetype)

    async def respond(request: Request) -> JSONResponse:
        # A command's or a button's response_url: Slack takes a message posted to it.
        args = await _arguments(request)
        refused = fake._refused("chat.postMessage", {"channel": "response", **args})
        call = Call("response", args, None)
        with fake._lock:
            fake.calls.append(call)
        if refused is not None:
            call.ok, call.error = False, str(refused["error"])
            return JSONResponse(refused, status_code=400)
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/api/{method}", api, methods=["GET", "POST"]),
            Route("/response", respond, methods=["POST"]),
            Route("/files-pri/{key}/{name}", download, methods=["GET"]),
        ]
    )


@contextmanager
def fake_slack(*, socket_mode: bool = False) -> Iterator[FakeSlack]:
    """A fake Slack Web API serving on an ephemeral loopback port until the block ends."""
    fake = FakeSlack()
    with serve_asgi(create_app(fake)) as url:
        fake.url = url
        if not socket_mode:
            yield fake
            return
        with FakeSocketMode.serving() as socket:
            fake.socket = socket
            yield fake
