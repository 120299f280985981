"""What the assistant says, as catalog keys with parameters; the bot renders the words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REFUSAL = "refusal."
REFUSAL_FALLBACK = "refusal.other"


@dataclass(frozen=True)
class Choice:
    """A button: ``value`` is what comes back; ``label`` a catalog key (or ``text`` as is)."""

    value: str
    label: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    text: str | None = None  # data shown as it is (an office or card name), not a key


@dataclass(frozen=True)
class Link:
    """A link to open; ``code`` is the one-time code the page it opens may ask for."""

    url: str
    label: str
    code: str | None = None


@dataclass(frozen=True)
class Reply:
    key: str
    params: dict[str, Any] = field(default_factory=dict)
    choices: tuple[Choice, ...] = ()
    link: Link | None = None
    # Said instead when the catalog has no words for ``key`` (a refusal code it lacks).
    fallback: str | None = None

    @property
    def fallback_key(self) -> str | None:
        """What is said when the catalog lacks ``key``: the reply's own fallback; for a
        refusal, the plain words naming its code (the back end may refuse with a code
        newer than the catalogs)."""
        if self.fallback is not None:
            return self.fallback
        return REFUSAL_FALLBACK if self.key.startswith(REFUSAL) else None

    def to_json(self) -> dict[str, Any]:
        shape: dict[str, Any] = {
            "key": self.key,
            "params": self.params,
            "choices": [
                {"value": c.value, "label": c.label, "params": c.params, "text": c.text}
                for c in self.choices
            ],
            "link": (
                {"url": self.link.url, "label": self.link.label, "code": self.link.code}
                if self.link
                else None
            ),
        }
        if self.fallback is not None:
            shape["fallback"] = self.fallback
        return shape

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        link = data.get("link")
        return cls(
            key=str(data["key"]),
            params=dict(data.get("params") or {}),
            choices=tuple(
                Choice(
                    value=str(c["value"]),
                    label=str(c.get("label") or ""),
                    params=dict(c.get("params") or {}),
                    text=c.get("text"),
                )
                for c in data.get("choices") or []
            ),
            link=(
                Link(url=str(link["url"]), label=str(link["label"]), code=link.get("code"))
                if link
                else None
            ),
            fallback=data.get("fallback"),
        )
