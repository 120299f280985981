"""Drive the sandbox as a person and a client would: HTML forms, PKCE, token calls."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx

CLIENT_ID = "renkei-test"
CLIENT_SECRET = "renkei-test-secret"
OTHER_CLIENT_ID = "other-books"
OTHER_SECRET = "other-books-secret"
REDIRECT_URI = "http://127.0.0.1:8000/api/v1/oauth/callback"
WEBHOOK_SECRET = "whsec_test"
CONTROL_KEY = "control-key"
KEY = {"X-Sandbox-Key": CONTROL_KEY}
AUTH = (CLIENT_ID, CLIENT_SECRET)


def pkce() -> tuple[str, str]:
    """A fresh (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Form:
    """One HTML form as a browser would submit it."""

    action: str
    inputs: list[dict[str, str]] = field(default_factory=list)
    buttons: list[dict[str, str]] = field(default_factory=list)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.labels: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self._label_for: str | None = None
        self._button: dict[str, str] | None = None
        self._link: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(Form(action=attr.get("action", "")))
        elif tag in ("input", "select") and self.forms:
            entry = {"tag": tag, **attr}
            if "disabled" in attr:
                entry["disabled"] = "1"
            self.forms[-1].inputs.append(entry)
        elif tag == "option" and self.forms and self.forms[-1].inputs:
            self.forms[-1].inputs[-1].setdefault("value", attr.get("value", ""))
        elif tag == "button" and self.forms:
            self._button = {"name": attr.get("name", ""), "value": attr.get("value", "")}
            self._text = []
        elif tag == "label":
            self._label_for = attr.get("for")
            self._text = []
        elif tag == "a":
            self._link = attr.get("href", "")
            self._text = []

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text).strip()
        if tag == "button" and self._button is not None:
            self._button["text"] = text
            self.forms[-1].buttons.append(self._button)
            self._button = None
        elif tag == "label" and self._label_for:
            self.labels[text] = self._label_for
            self._label_for = None
        elif tag == "a" and self._link is not None:
            self.links[text] = self._link
            self._link = None


def parse(html: str) -> _Page:
    """Parse a page into forms, labels and links."""
    page = _Page()
    page.feed(html)
    return page


def link(html: str, text: str) -> str:
    """The href of the link whose visible text is ``text``."""
    return parse(html).links[text]


def label_texts(html: str) -> list[str]:
    """The visible texts of every <label> of a page."""
    return list(parse(html).labels)


def disabled_labels(html: str) -> list[str]:
    """Labels of the disabled checkboxes/radios of a page."""
    page = parse(html)
    disabled_ids = {i.get("id") for f in page.forms for i in f.inputs if i.get("disabled")}
    return [text for text, for_id in page.labels.items() if for_id in disabled_ids]


async def press(
    client: httpx.AsyncClient,
    html: str,
    button: str,
    *,
    fill: dict[str, str] | None = None,
    check: list[str] | None = None,
) -> httpx.Response:
    """Fill fields by label, tick boxes whose label contains a text, press a button.

    Args:
        client: The browser.
        html: The current page.
        button: The exact visible text of the button to press.
        fill: Label text → value for text fields.
        check: Substrings of the labels of checkboxes or radios to tick, even
            disabled ones (a tampering browser).
    """
    page = parse(html)
    form = next(f for f in page.forms if any(b.get("text") == button for b in f.buttons))
    pressed = next(b for b in form.buttons if b.get("text") == button)
    fill_by_id = {page.labels[label]: value for label, value in (fill or {}).items()}
    check_ids = {
        for_id for text, for_id in page.labels.items() for part in check or [] if part in text
    }
    data: list[tuple[str, str]] = []
    for field_ in form.inputs:
        name = field_.get("name")
        if not name:
            continue
        kind = field_.get("type", "text")
        if kind in ("checkbox", "radio"):
            if field_.get("id") in check_ids:
                data.append((name, field_.get("value", "")))
        elif field_.get("id") in fill_by_id:
            data.append((name, fill_by_id[field_["id"]]))
        else:
            data.append((name, field_.get("value", "")))
    if pressed.get("name"):
        data.append((pressed["name"], pressed["value"]))
    grouped: dict[str, list[str]] = {}
    for name, value in data:
        grouped.setdefault(name, []).append(value)
    return await client.post(form.action, data=grouped)


def authorize_params(
    challenge: str, *, state: str = "state-123", redirect_uri: str = REDIRECT_URI
) -> dict[str, str]:
    """The query of an authorization request as the connector sends it."""
    return {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def query_of(url: str) -> dict[str, str]:
    """The query parameters of a URL (single values)."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


async def reach_card_page(
    browser: httpx.AsyncClient,
    issuer: str,
    challenge: str,
    *,
    user_id: str = "user_good",
    password: str = "pass_good",
    state: str = "state-123",
) -> httpx.Response:
    """Open the authorization URL, log in and press 同意して次へ."""
    login = await browser.get(
        f"/sandbox/{issuer}/oauth/authorize", params=authorize_params(challenge, state=state)
    )
    assert login.status_code == 200, login.text
    consent = await press(
        browser, login.text, "ログイン", fill={"ユーザーID": user_id, "パスワード": password}
    )
    assert consent.status_code == 200, consent.text
    return await press(browser, consent.text, "同意して次へ")


async def consent_code(
    browser: httpx.AsyncClient,
    issuer: str,
    challenge: str,
    *,
    user_id: str = "user_good",
    check: list[str] | None = None,
    state: str = "state-123",
) -> str:
    """The whole consent flow by pages; returns the code of the "renkei に戻る" link."""
    cards = await reach_card_page(browser, issuer, challenge, user_id=user_id, state=state)
    done = await press(browser, cards.text, "許可する", check=check)
    assert done.status_code == 200, done.text
    back = query_of(link(done.text, "renkei に戻る"))
    assert back["state"] == state
    return back["code"]


async def exchange(
    client: httpx.AsyncClient, issuer: str, code: str, verifier: str, **extra: str
) -> httpx.Response:
    """POST the authorization_code grant with client_secret_basic."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        **extra,
    }
    return await client.post(f"/sandbox/{issuer}/oauth/token", data=data, auth=AUTH)


@dataclass
class Link:
    """Tokens of a completed link."""

    issuer: str
    access_token: str
    refresh_token: str
    grant_id: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def link_by_control(
    client: httpx.AsyncClient,
    issuer: str,
    *,
    user_id: str = "user_good",
    card_ids: list[str] | None = None,
    client_id: str = CLIENT_ID,
    auth: tuple[str, str] = AUTH,
) -> Link:
    """A link made through `POST /control/authorize` (the pages are tested elsewhere)."""
    verifier, challenge = pkce()
    made = await client.post(
        f"/sandbox/{issuer}/control/authorize",
        headers=KEY,
        json={
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "user_id": user_id,
            "card_ids": card_ids or [],
            "state": "s",
            "code_challenge": challenge,
        },
    )
    assert made.status_code == 200, made.text
    tokens = await client.post(
        f"/sandbox/{issuer}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": made.json()["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=auth,
    )
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    me = await client.get(
        f"/sandbox/{issuer}/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    return Link(issuer, body["access_token"], body["refresh_token"], me.json()["grant_id"])


async def sync_all(
    client: httpx.AsyncClient, link_: Link, cursor: str | None = None, count: int = 500
) -> tuple[dict[str, list[dict[str, object]]], str]:
    """Follow has_more to the end; returns the merged changes and the last cursor."""
    merged: dict[str, list[dict[str, object]]] = {"added": [], "modified": [], "removed": []}
    while True:
        params: dict[str, str | int] = {"count": count}
        if cursor:
            params["cursor"] = cursor
        page = await client.get(
            f"/sandbox/{link_.issuer}/api/v1/transactions/sync", params=params, headers=link_.bearer
        )
        assert page.status_code == 200, page.text
        body = page.json()
        for key in merged:
            merged[key].extend(body[key])
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return merged, cursor
