"""Tenancy, generated from the route table of the real app.

Every operation renkei serves is called with the ids of a victim office (its office id,
its API-linked account, that account's card, a conversation of its admin, a download
link) by each kind of caller: the victim's admin, member and read-only member, the
assistant's service token acting for the member, an outsider (the admin of another
office), and the service token acting for the outsider. Each operation must be
classified in ``ACCESS``: a route added later fails here until someone says who may
call it, and is then covered without further editing.

Outsiders never get a 2xx from an office-scoped operation, and nothing answered to an
outsider, by any operation, carries an id of the victim office.

In process (ASGI transport) on SQLite, with the mounted sandbox issuers and Slack on.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount, Route

from backend.api.deps import ACT_AS_HEADER
from renkei.bootstrap import create_app
from renkei.settings import Settings
from tests.support.browser import Browser

ADMIN_TOKEN = "tenancy-support-admin-token"
BASE = "http://renkei.test"
FIXTURE = Path(__file__).parents[1] / "fixtures/statements/amex_basic_and_supplementary.csv"

# Who may call an operation:
#   read_only / member / admin  office-scoped: that role of the victim office or higher
#   operator  support administrators only (no office role is enough)
#   creator   the one member who started or owns it (a conversation, an API token): nobody
#             else, same office or not
#   invitee   only the person invited (none of the callers here): everyone else is refused
#   caller    any signed-in caller, answered about the caller's own offices only
#   public    no bearer token needed (health, docs, pages, the OAuth callback by its state)
#   signed    a signature is the credential (issuer webhooks, Slack, the back end's events)
#   link      a signed download link is the credential, checked as the member it names
Access = Literal[
    "read_only",
    "member",
    "admin",
    "operator",
    "creator",
    "invitee",
    "caller",
    "public",
    "signed",
    "link",
]
API = "/api/v1"
ACCESS: dict[tuple[str, str], Access] = {
    ("GET", f"{API}/offices"): "caller",
    ("POST", f"{API}/offices"): "caller",
    ("GET", f"{API}/offices/{{office_id}}"): "read_only",
    ("GET", f"{API}/offices/{{office_id}}/members"): "read_only",
    ("PUT", f"{API}/offices/{{office_id}}/members/{{email}}"): "admin",
    # Anyone may leave (their own email); removing someone else is for admins.
    ("DELETE", f"{API}/offices/{{office_id}}/members/{{email}}"): "admin",
    ("POST", f"{API}/offices/{{office_id}}/invitations"): "admin",
    ("GET", f"{API}/offices/{{office_id}}/invitations"): "admin",
    ("DELETE", f"{API}/offices/{{office_id}}/invitations/{{invitation_id}}"): "admin",
    ("GET", f"{API}/invitations"): "caller",
    ("POST", f"{API}/invitations/{{invitation_id}}/accept"): "invitee",
    ("POST", f"{API}/invitations/{{invitation_id}}/decline"): "invitee",
    ("GET", f"{API}/tokens"): "caller",
    ("DELETE", f"{API}/tokens/{{token_id}}"): "creator",
    ("GET", f"{API}/offices/{{office_id}}/notices"): "read_only",
    ("POST", f"{API}/offices/{{office_id}}/rollouts"): "operator",
    ("GET", f"{API}/offices/{{office_id}}/accounts"): "read_only",
    ("POST", f"{API}/offices/{{office_id}}/accounts"): "member",
    ("GET", f"{API}/accounts/{{account_id}}"): "read_only",
    ("DELETE", f"{API}/accounts/{{account_id}}"): "admin",
    # A registration never consented holds nothing: any member of its office removes it.
    ("DELETE", f"{API}/accounts/{{account_id}}/registration"): "member",
    ("POST", f"{API}/accounts/{{account_id}}/switch-to-api"): "member",
    ("POST", f"{API}/accounts/{{account_id}}/reauth"): "member",
    ("POST", f"{API}/accounts/{{account_id}}/link/check"): "member",
    ("POST", f"{API}/accounts/{{account_id}}/archive"): "member",
    ("POST", f"{API}/accounts/{{account_id}}/unarchive"): "member",
    ("POST", f"{API}/accounts/{{account_id}}/registered-cards"): "member",
    ("POST", f"{API}/accounts/{{account_id}}/sync"): "member",
    ("GET", f"{API}/offices/{{office_id}}/cards"): "read_only",
    ("GET", f"{API}/offices/{{office_id}}/cards/{{card_id}}/uses"): "read_only",
    ("GET", f"{API}/accounts/{{account_id}}/statements"): "read_only",
    ("GET", f"{API}/accounts/{{account_id}}/statements.csv"): "read_only",
    ("POST", f"{API}/accounts/{{account_id}}/statements/export-link"): "read_only",
    ("POST", f"{API}/accounts/{{account_id}}/statements/upload"): "member",
    ("POST", f"{API}/accounts/{{account_id}}/card-change/resync-old-card"): "member",
    ("POST", f"{API}/accounts/{{account_id}}/card-change/new-account"): "member",
    ("GET", f"{API}/events"): "read_only",  # narrowed by office_id / account_id (filled)
    ("GET", f"{API}/oauth/callback"): "public",
    # The start link: its page asks for the one-time code (no token is a credential there);
    # going on from a signed-in browser is for the member who started it only.
    ("GET", f"{API}/oauth/start/{{start_id}}"): "public",
    ("POST", f"{API}/oauth/start/{{start_id}}"): "public",
    ("POST", f"{API}/oauth/start/{{start_id}}/signed-in"): "creator",
    ("POST", f"{API}/issuer-webhooks/{{issuer}}"): "signed",
    ("GET", f"{API}/issuers"): "caller",
    ("GET", f"{API}/issuers/health"): "caller",  # names no office: renkei as a whole
    ("GET", f"{API}/exports/{{token}}"): "link",
    # For the caller, in the office named: each step then acts with the caller's own role.
    ("POST", f"{API}/conversations"): "read_only",
    ("GET", f"{API}/conversations/{{conversation_id}}"): "creator",
    ("GET", f"{API}/conversations/{{conversation_id}}/history"): "creator",
    ("POST", f"{API}/conversations/{{conversation_id}}/messages"): "creator",
    ("GET", f"{API}/analytics/flows"): "operator",
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "public",
    ("GET", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("GET", "/docs/assets/{name}"): "public",
    ("POST", "/bot/backend-events"): "signed",
    ("GET", "/chat"): "public",
    ("GET", "/chat/static/{name}"): "public",
    ("GET", "/chat/me"): "caller",
    ("POST", "/chat/demo-session"): "public",
    ("POST", "/slack/events"): "signed",
    # The support page: support administrators only (a bearer token or the page's own
    # signed-in cookie); its sign-in form takes the token, so it is open to everyone.
    ("GET", "/support"): "operator",
    ("POST", "/support/handoffs/{handoff_id}/answer"): "operator",
    ("POST", "/support/handoffs/{handoff_id}/resolve"): "operator",
    ("GET", "/support/sign-in"): "public",
    ("POST", "/support/sign-in"): "public",
    ("POST", "/support/sign-out"): "public",
    ("GET", "/.well-known/oauth-authorization-server/sandbox/amex"): "public",
    ("GET", "/.well-known/oauth-authorization-server/sandbox/jcb"): "public",
}
# Mounted applications: the simulated issuers, which hold no office data of renkei's.
MOUNTS = {"/sandbox/amex", "/sandbox/jcb"}
RANK = {"read_only": 0, "member": 1, "admin": 2}
Caller = Literal[
    "admin", "member", "read_only", "service_as_member", "outsider", "service_as_outsider"
]
CALLERS: tuple[Caller, ...] = (
    "outsider",
    "service_as_outsider",
    "read_only",
    "member",
    "service_as_member",
    "admin",
)
ROLE_OF: dict[Caller, str | None] = {
    "admin": "admin",
    "member": "member",
    "service_as_member": "member",
    "read_only": "read_only",
    "outsider": None,
    "service_as_outsider": None,
}
EMAILS: dict[Caller, str] = {
    "admin": "owner@victim.example",
    "member": "member@victim.example",
    "service_as_member": "member@victim.example",
    "read_only": "clerk@victim.example",
    "outsider": "mallory@elsewhere.example",
    "service_as_outsider": "mallory@elsewhere.example",
}


BYSTANDER = "bystander@victim.example"  # a member whose role is changed, then removed
INVITEE = "invitee@victim.example"  # invited, never accepts


@dataclass
class Victim:
    office_id: str
    account_id: str
    card_id: str
    card_ref: str
    conversation_id: str
    invitation_id: str = ""
    token_id: str = ""  # a spare token of the victim's admin
    secret_ids: set[str] = field(default_factory=set)
    start_id: str = ""  # of the victim admin's consent (used by now)


@dataclass
class World:
    app: FastAPI
    client: httpx.AsyncClient
    headers: dict[Caller, dict[str, str]]
    victim: Victim
    outsider_office_id: str
    outsider_account_id: str
    counter: Iterator[int]

    def as_(self, caller: Caller) -> dict[str, str]:
        return self.headers[caller]


def operations(app: FastAPI) -> tuple[list[tuple[str, str]], set[str]]:
    """(method, path) of every route the app serves, and the paths of its mounts."""
    found: list[tuple[str, str]] = []
    mounts: set[str] = set()
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            items = contexts() if callable(contexts) else contexts
            found += [(m, c.path) for c in items for m in sorted(c.methods or ()) if m != "HEAD"]
        elif isinstance(route, Route):
            found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
        elif isinstance(route, Mount):
            mounts.add(route.path)
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")
    return found, mounts


async def _ok(response: httpx.Response, expected: int = 200) -> Any:
    assert response.status_code == expected, response.text
    return response.json() if response.content else None


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'renkei.sqlite3'}",
        admin_token=ADMIN_TOKEN,
        public_url=BASE,
        seed_demo=False,
        slack_signing_secret="tenancy-slack-signing-secret",
        slack_bot_token="xoxb-tenancy",
        slack_api_url="http://127.0.0.1:9/api/",
    )
    app = create_app(settings, start_jobs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=60) as client:
            yield await _build_world(app, client, transport)


async def _build_world(
    app: FastAPI, client: httpx.AsyncClient, transport: httpx.AsyncBaseTransport
) -> World:
    tokens = app.state.token_store
    headers: dict[Caller, dict[str, str]] = {}
    for caller, email in EMAILS.items():
        if caller.startswith("service_as_"):
            headers[caller] = {
                "Authorization": f"Bearer {app.state.service_token}",
                ACT_AS_HEADER: email,
            }
        else:
            headers[caller] = {"Authorization": f"Bearer {await tokens.create(email, 'test')}"}
    support = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    owner = headers["admin"]
    office = await _ok(
        await client.post(f"{API}/offices", json={"name": "Victim KK"}, headers=owner), 201
    )
    office_id = office["id"]
    bystander = {"Authorization": f"Bearer {await tokens.create(BYSTANDER, 'test')}"}
    joining: list[tuple[str, str, dict[str, str]]] = [
        (EMAILS[c], c, headers[c]) for c in ("member", "read_only")
    ]
    for email, role, own in [*joining, (BYSTANDER, "read_only", bystander)]:
        invited = await _ok(
            await client.post(
                f"{API}/offices/{office_id}/invitations",
                json={"email": email, "role": role},
                headers=owner,
            ),
            201,
        )
        await _ok(await client.post(f"{API}/invitations/{invited['id']}/accept", headers=own))
    pending = await _ok(
        await client.post(
            f"{API}/offices/{office_id}/invitations",
            json={"email": INVITEE, "role": "admin"},
            headers=owner,
        ),
        201,
    )
    await tokens.create(EMAILS["admin"], "spare")
    spare = next(
        t
        for t in await _ok(await client.get(f"{API}/tokens", headers=owner))
        if t["name"] == "spare"
    )
    await _ok(
        await client.post(
            f"{API}/offices/{office_id}/rollouts", json={"issuer": "amex"}, headers=support
        ),
        201,
    )
    account = await _ok(
        await client.post(
            f"{API}/offices/{office_id}/accounts",
            json={
                "sync_method": "legacy",
                "issuer": "amex",
                "name": "Business",
                "login_id": "user_good",
                "password": "pass_good",
                "card_ref": "amex-biz-1001",
            },
            headers=owner,
        ),
        201,
    )
    account_id = account["id"]
    await _ok(await client.post(f"{API}/accounts/{account_id}/sync", headers=owner))
    start = await _ok(
        await client.post(f"{API}/accounts/{account_id}/switch-to-api", headers=owner)
    )
    await _consent(transport, start["authorization_url"], card="amex-biz-1001", headers=owner)
    linked = await _ok(await client.get(f"{API}/accounts/{account_id}", headers=owner))
    assert linked["link"]["status"] == "active", linked
    await _ok(await client.post(f"{API}/accounts/{account_id}/sync", headers=owner))
    conversation = await _ok(
        await client.post(
            f"{API}/conversations",
            json={"user": EMAILS["admin"], "office_id": office_id},
            headers=owner,
        ),
        201,
    )
    victim = Victim(
        office_id,
        account_id,
        linked["card"]["id"],
        linked["card"]["card_ref"],
        conversation["id"],
        invitation_id=pending["id"],
        token_id=spare["id"],
    )
    victim.secret_ids |= {office_id, account_id, victim.card_id, conversation["id"]}
    victim.secret_ids |= {pending["id"], spare["id"]}
    victim.start_id = start["authorization_url"].rsplit("/", 1)[1]
    statements = await _ok(
        await client.get(f"{API}/accounts/{account_id}/statements", headers=owner)
    )
    assert statements["items"], "the victim needs statements"
    victim.secret_ids |= {s["id"] for s in statements["items"]}
    events = await _ok(
        await client.get(f"{API}/events", params={"office_id": office_id}, headers=owner)
    )
    victim.secret_ids |= {e["id"] for e in events}
    # The outsider: admin of an office of her own, with an account of her own.
    mallory = headers["outsider"]
    hers = await _ok(
        await client.post(f"{API}/offices", json={"name": "Elsewhere"}, headers=mallory), 201
    )
    await _ok(
        await client.post(
            f"{API}/offices/{hers['id']}/rollouts", json={"issuer": "amex"}, headers=support
        ),
        201,
    )
    her_account = await _ok(
        await client.post(
            f"{API}/offices/{hers['id']}/accounts",
            json=_upload_body("mallory-own-card"),
            headers=mallory,
        ),
        201,
    )
    return World(app, client, headers, victim, hers["id"], her_account["id"], iter(range(10**6)))


async def _consent(
    transport: httpx.AsyncBaseTransport, url: str, *, card: str, headers: dict[str, str]
) -> None:
    """The member's signed-in browser opens renkei's start link, then the issuer's pages,
    clicked through in process: log in, agree, tick, allow, back."""
    async with httpx.AsyncClient(transport=transport, follow_redirects=True, timeout=60) as web:
        browser = Browser(web)
        bound = await web.post(f"{url}/signed-in", headers=headers)
        assert bound.status_code == 200, bound.text
        page = await browser.open(bound.json()["issuer_url"])
        assert page.status_code == 200, page.text
        page = await browser.press(
            "ログイン", fill={"user_id": "user_good", "password": "pass_good"}
        )
        page = await browser.press("同意して次へ")
        page = await browser.press("許可する", tick=[card])
        assert page.status_code == 200, page.text
        back = await browser.open(browser.link("に戻る"))
        assert back.status_code == 200, back.text


def _upload_body(card_ref: str, product: str = "amex_business") -> dict[str, Any]:
    return {
        "sync_method": "upload",
        "issuer": "amex",
        "name": card_ref,
        "card": {
            "card_ref": card_ref,
            "product": product,
            "masked_number": "XXXX-XXXXXX-77777",
            "holder_name": "TENANCY TEST",
            "role": "supplementary",
        },
    }


# ------------------------------------------------------------------ filling a request
PATH_VALUES: dict[str, Callable[[World, Caller], str]] = {
    "office_id": lambda w, c: w.victim.office_id,
    "account_id": lambda w, c: w.victim.account_id,
    "card_id": lambda w, c: w.victim.card_id,
    "conversation_id": lambda w, c: w.victim.conversation_id,
    "email": lambda w, c: BYSTANDER,
    "invitation_id": lambda w, c: w.victim.invitation_id,
    "token_id": lambda w, c: w.victim.token_id,
    "start_id": lambda w, c: w.victim.start_id,
    "issuer": lambda w, c: "amex",
    "name": lambda w, c: "chat.js",
    "handoff_id": lambda w, c: "0" * 32,
}


async def _export_token(world: World, caller: Caller) -> str:
    """A victim member's own link; for an outsider, her own link re-aimed at the victim's
    account (the signature no longer matches what it names)."""
    if ROLE_OF[caller] is not None:
        made = await world.client.post(
            f"{API}/accounts/{world.victim.account_id}/statements/export-link",
            headers=world.as_(caller),
        )
        assert made.status_code == 200, made.text
        return str(made.json()["url"]).rsplit("/", 1)[1]
    made = await world.client.post(
        f"{API}/accounts/{world.outsider_account_id}/statements/export-link",
        headers=world.as_(caller),
    )
    assert made.status_code == 200, made.text
    body, mac = str(made.json()["url"]).rsplit("/", 1)[1].split(".", 1)
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["a"] = world.victim.account_id
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{forged}.{mac}"


def _request_extras(world: World, caller: Caller, method: str, path: str) -> dict[str, Any]:
    """Query, body or file of each operation that takes one; the victim's ids wherever an
    id is asked for."""
    n = next(world.counter)
    email = EMAILS[caller]
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", f"{API}/offices"): {"json": {"name": f"Own office {n}"}},
        ("PUT", f"{API}/offices/{{office_id}}/members/{{email}}"): {"json": {"role": "read_only"}},
        ("POST", f"{API}/offices/{{office_id}}/invitations"): {
            "json": {"email": f"newcomer-{n}@victim.example", "role": "member"}
        },
        ("POST", f"{API}/offices/{{office_id}}/rollouts"): {"json": {"issuer": "jcb"}},
        ("POST", f"{API}/offices/{{office_id}}/accounts"): {"json": _upload_body(f"declared-{n}")},
        ("POST", f"{API}/accounts/{{account_id}}/statements/upload"): {
            "files": {"file": ("amex.csv", FIXTURE.read_bytes(), "text/csv")}
        },
        ("POST", f"{API}/accounts/{{account_id}}/card-change/resync-old-card"): {
            "json": {"login_id": "user_good", "password": "pass_good"}
        },
        ("POST", f"{API}/accounts/{{account_id}}/card-change/new-account"): {
            "json": {"login_id": "user_good", "password": "pass_good", "name": f"old {n}"}
        },
        ("GET", f"{API}/events"): {
            "params": {"office_id": world.victim.office_id, "account_id": world.victim.account_id}
        },
        ("POST", f"{API}/conversations"): {
            "json": {"user": email, "office_id": world.victim.office_id}
        },
        ("POST", f"{API}/conversations/{{conversation_id}}/messages"): {"json": {"text": "help"}},
        ("POST", f"{API}/issuer-webhooks/{{issuer}}"): {
            "json": {
                "id": f"evt-{n}",
                "type": "link.revoked",
                "data": {"card_ids": ["amex-biz-1001"]},
            }
        },
        ("POST", "/bot/backend-events"): {"json": {"type": "link.revoked"}},
        ("POST", "/slack/events"): {"json": {"type": "url_verification", "challenge": "x"}},
    }
    return bodies.get((method, path), {})


def _denied(response: httpx.Response) -> bool:
    return response.status_code in (401, 403, 404)


def _authorized(response: httpx.Response) -> bool:
    """Past the role check: whatever the operation then answers (a rule may refuse it)."""
    if response.status_code in (401, 403):
        return False
    if response.status_code == 404:
        body = response.json() if "json" in response.headers.get("content-type", "") else {}
        return bool(body.get("error", {}).get("code") != "not_found")
    return True


def _allowed(access: Access, caller: Caller) -> bool | None:
    """Whether the caller may call it; None: any caller, scoped to the caller's offices."""
    role = ROLE_OF[caller]
    if access in RANK:
        return role is not None and RANK[role] >= RANK[access]
    if access == "creator":
        return caller == "admin"
    if access in ("operator", "signed", "invitee"):
        return False
    if access == "link":
        return role is not None
    return None


def _leaks(world: World, response: httpx.Response) -> set[str]:
    """Victim ids in the answer beyond those the caller sent (an error may name those)."""
    sent = str(response.request.url) + response.request.read().decode("utf-8", "replace")
    return {i for i in world.victim.secret_ids if i in response.text and i not in sent}


# In her own office the outsider names the victim's card wherever a card is asked for.
OWN_OFFICE_VALUES: dict[str, Callable[[World, Caller], str]] = {
    **PATH_VALUES,
    "office_id": lambda w, c: w.outsider_office_id,
    "account_id": lambda w, c: w.outsider_account_id,
}


def _own_office_extras(world: World, caller: Caller, method: str, path: str) -> dict[str, Any]:
    """What she sends in her own office: the victim's card, re-declared or named by id."""
    if (method, path) == ("POST", f"{API}/offices/{{office_id}}/accounts"):
        if caller == "outsider":
            return {"json": _upload_body(world.victim.card_ref, product="amex_personal_green")}
        return {"json": {"sync_method": "api", "issuer": "amex", "card_id": world.victim.card_id}}
    extras = _request_extras(world, caller, method, path)
    if (method, path) == ("GET", f"{API}/events"):
        extras = {"params": {"office_id": world.outsider_office_id}}
    return extras


async def _call(
    world: World,
    method: str,
    path: str,
    caller: Caller,
    values: dict[str, Callable[[World, Caller], str]],
    extras: dict[str, Any],
) -> httpx.Response:
    access = ACCESS[(method, path)]
    url = path
    for name in re.findall(r"{(\w+)}", path):
        if name == "token":
            value = await _export_token(world, caller)
        else:
            assert name in values, f"no value for path parameter {name!r} of {path}"
            value = values[name](world, caller)
        url = url.replace(f"{{{name}}}", value)
    # A bearer token is no credential where a signature or a link is: sent anyway there.
    headers = {} if access in ("public", "link") else world.as_(caller)
    return await world.client.request(method, url, headers=headers, **extras)


async def _victim_view(world: World, found: list[tuple[str, str]]) -> dict[str, str]:
    """Everything the victim's admin reads about the office: every read operation."""
    view: dict[str, str] = {}
    for method, path in sorted(found):
        if method == "GET" and ACCESS[(method, path)] in RANK:
            response = await _call(
                world,
                method,
                path,
                "admin",
                PATH_VALUES,
                _request_extras(world, "admin", method, path),
            )
            assert response.status_code == 200, f"{path}: {response.text}"
            view[path] = response.text
    return view


def _check(
    world: World, access: Access, caller: Caller, response: httpx.Response, where: str
) -> list[str]:
    if response.status_code >= 500:
        return [f"server error: {where}"]
    problems = []
    allowed = _allowed(access, caller)
    if allowed is True and not _authorized(response):
        problems.append(f"refused a caller it should serve: {where}")
    if allowed is False:
        refused = 400 <= response.status_code < 500 if access == "signed" else _denied(response)
        if response.is_success or not refused:
            problems.append(f"not refused: {where}")
        elif access in RANK and ROLE_OF[caller] is not None and response.status_code != 403:
            problems.append(f"a member whose role is too low is told 403: {where}")
    if ROLE_OF[caller] is None:
        leaked = _leaks(world, response)
        if leaked:
            problems.append(f"victim ids {sorted(leaked)} shown: {where}")
    return problems


def _where(method: str, path: str, caller: str, response: httpx.Response) -> str:
    return f"{method} {path} as {caller}: {response.status_code} {response.text[:200]}"


async def test_every_route_is_classified_and_outsiders_never_get_in(world: World) -> None:
    found, mounts = operations(world.app)
    unclassified = sorted(set(found) - set(ACCESS))
    assert not unclassified, f"classify these routes in ACCESS: {unclassified}"
    stale = sorted(set(ACCESS) - set(found))
    assert not stale, f"routes no longer served, remove them from ACCESS: {stale}"
    assert mounts <= MOUNTS, f"unknown mounted applications: {sorted(mounts - MOUNTS)}"
    # Destructive operations last, so every other one meets the victim's data intact.
    ordered = sorted(set(found), key=lambda op: (op[0] == "DELETE", op))
    outsiders = [c for c in CALLERS if ROLE_OF[c] is None]
    insiders = [c for c in CALLERS if ROLE_OF[c] is not None]
    before = await _victim_view(world, found)
    problems: list[str] = []
    # 1. Outsiders, at the victim's ids and in an office of their own with the victim's card.
    for method, path in ordered:
        access = ACCESS[(method, path)]
        for caller in outsiders:
            extras = _request_extras(world, caller, method, path)
            response = await _call(world, method, path, caller, PATH_VALUES, extras)
            problems += _check(
                world, access, caller, response, _where(method, path, caller, response)
            )
            extras = _own_office_extras(world, caller, method, path)
            response = await _call(world, method, path, caller, OWN_OFFICE_VALUES, extras)
            where = "(own office) " + _where(method, path, caller, response)
            if response.status_code >= 500:
                problems.append(f"server error: {where}")
            if leaked := _leaks(world, response):
                problems.append(f"victim ids {sorted(leaked)} shown: {where}")
    after = await _victim_view(world, found)
    changed = sorted(path for path in before if before[path] != after[path])
    assert not changed, f"outsiders changed what the victim sees: {changed}\n" + "\n".join(
        f"{p}:\n  before {before[p][:300]}\n  after  {after[p][:300]}" for p in changed
    )
    # 2. The victim's own members, each role against the role table.
    for method, path in ordered:
        access = ACCESS[(method, path)]
        for caller in insiders:
            extras = _request_extras(world, caller, method, path)
            response = await _call(world, method, path, caller, PATH_VALUES, extras)
            problems += _check(
                world, access, caller, response, _where(method, path, caller, response)
            )
    assert not problems, "\n".join(problems)
