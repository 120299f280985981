"""Clicking through the issuer's HTML pages the way a person would, with httpx.

Forms are read from the page (hidden fields included) and submitted by the
label of the button pressed, so the tests depend on what a person sees, not on
the markup's details.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode

import httpx


@dataclass
class Field:
    name: str
    value: str
    kind: str  # hidden, text, password, checkbox, radio, submit...
    label: str = ""  # text of a button
    disabled: bool = False


@dataclass
class Form:
    action: str
    method: str
    fields: list[Field] = field(default_factory=list)


@dataclass
class Link:
    href: str
    text: str = ""


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.links: list[Link] = []
        self._form: Form | None = None
        self._button: Field | None = None
        self._link: Link | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action", ""), method=a.get("method", "get").lower())
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            kind = a.get("type", "text").lower()
            self._form.fields.append(
                Field(
                    a["name"],
                    a.get("value", "on" if kind == "checkbox" else ""),
                    kind,
                    a.get("value", ""),
                    "disabled" in a,
                )
            )
        elif tag == "button" and self._form is not None:
            self._button = Field(
                a.get("name", ""), a.get("value", ""), "submit", "", "disabled" in a
            )
            self._form.fields.append(self._button)
        elif tag == "a":
            self._link = Link(a.get("href", ""))
            self.links.append(self._link)

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button.label += data.strip()
        if self._link is not None:
            self._link.text += data.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "button":
            self._button = None
        elif tag == "a":
            self._link = None


class Browser:
    """A person's browser: keeps cookies, follows what they click."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.page: httpx.Response | None = None

    async def open(self, url: str) -> httpx.Response:
        self.page = await self.client.get(url)
        return self.page

    def _parsed(self) -> _PageParser:
        assert self.page is not None
        parser = _PageParser()
        parser.feed(self.page.text)
        return parser

    def link(self, text: str) -> str:
        """The absolute href of the link whose text contains ``text``."""
        assert self.page is not None
        for link in self._parsed().links:
            if text in link.text:
                return str(self.page.url.join(link.href))
        raise AssertionError(f"no link {text!r} on the page:\n{self.page.text}")

    async def press_in_row(self, row_text: str, button: str) -> httpx.Response:
        """Press ``button`` in the table row that shows ``row_text`` (e.g. a card number)."""
        assert self.page is not None
        for row in re.findall(r"<tr\b.*?</tr>", self.page.text, flags=re.S):
            if row_text in row:
                parser = _PageParser()
                parser.feed(row)
                return await self._submit(parser.forms, button)
        raise AssertionError(f"no row with {row_text!r} on the page:\n{self.page.text}")

    async def press(
        self, button: str, *, fill: dict[str, str] | None = None, tick: list[str] | None = None
    ) -> httpx.Response:
        """Fill text fields, tick checkboxes by value, then press the button labelled ``button``."""
        return await self._submit(self._parsed().forms, button, fill=fill, tick=tick)

    async def _submit(
        self,
        forms: list[Form],
        button: str,
        *,
        fill: dict[str, str] | None = None,
        tick: list[str] | None = None,
    ) -> httpx.Response:
        assert self.page is not None
        for form in forms:
            pressed = next(
                (f for f in form.fields if f.kind in ("submit", "button") and button in f.label),
                None,
            )
            if pressed is None:
                continue
            data: list[tuple[str, str]] = []
            for f in form.fields:
                if f.kind in ("submit", "button") or f.disabled:
                    continue  # a person cannot send a disabled field
                if f.kind in ("checkbox", "radio"):
                    if tick is not None and f.value in tick:
                        data.append((f.name, f.value))
                elif fill and f.name in fill:
                    data.append((f.name, fill[f.name]))
                else:
                    data.append((f.name, f.value))
            if pressed.name:
                data.append((pressed.name, pressed.value))
            url = self.page.url.join(form.action) if form.action else self.page.url
            self.page = await self.client.request(
                form.method.upper(),
                url,
                content=urlencode(data).encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            return self.page
        raise AssertionError(f"no button {button!r} on the page:\n{self.page.text}")
