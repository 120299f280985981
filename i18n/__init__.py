"""The message catalog: every word renkei says to a person, one TOML file per language.

The back end's pages (the consent result and start pages), the assistant in every
channel and the Slack notices all render from here, so a refusal reads the same
wherever it is met. Keys are ``<area>.<name>``. A message fills ``{name}`` from its
parameters and may choose words by number, ICU style, with CLDR's plural rules (Babel)::

    resync_done = "{added, plural, one {# new statement} other {# new statements}}"

``#`` is the number, written the locale's way. A parameter made by ``i18n.values``
(a moment, an amount, a word for a status) is formatted for the language rendered in.
This package imports nothing of renkei, so the back end and the bot may both use it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from i18n import formats, values

LOCALES = ("ja", "en")
DEFAULT_LOCALE = "ja"
_HERE = Path(__file__).parent

PLURAL_CATEGORIES = frozenset({"zero", "one", "two", "few", "many", "other"})


class MissingMessage(KeyError):
    """A key that no catalog holds: a bug, found by the tests."""


class MalformedMessage(ValueError):
    """A catalog entry whose braces or plural branches do not parse: a bug of the catalog."""


# --- parsing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    name: str


@dataclass(frozen=True)
class Plural:
    name: str
    branches: dict[str, tuple[Node, ...]]  # "one", "other", "=0"…


Node = str | Arg | Plural

_ARG = re.compile(r"\s*(\w+)\s*\Z")
_PLURAL_HEAD = re.compile(r"\s*(\w+)\s*,\s*plural\s*,", re.S)
_BRANCH = re.compile(r"\s*(=\d+|\w+)\s*\{")


def _closing(text: str, start: int) -> int:
    """The index of the brace closing the one opened at ``start``."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise MalformedMessage(f"unclosed brace in {text!r}")


def _branches(body: str) -> dict[str, tuple[Node, ...]]:
    branches: dict[str, tuple[Node, ...]] = {}
    position = 0
    while body[position:].strip():
        match = _BRANCH.match(body, position)
        if match is None:
            raise MalformedMessage(f"plural branch expected in {body!r}")
        selector = match.group(1)
        if not selector.startswith("=") and selector not in PLURAL_CATEGORIES:
            raise MalformedMessage(f"{selector!r} is no plural category")
        end = _closing(body, match.end() - 1)
        branches[selector] = _parse(body[match.end() : end])
        position = end + 1
    if "other" not in branches:
        raise MalformedMessage(f"a plural needs an 'other' branch: {body!r}")
    return branches


@cache
def _parse(text: str) -> tuple[Node, ...]:
    nodes: list[Node] = []
    position = 0
    while position < len(text):
        start = text.find("{", position)
        if start < 0:
            nodes.append(text[position:])
            break
        if start > position:
            nodes.append(text[position:start])
        end = _closing(text, start)
        body = text[start + 1 : end]
        head = _PLURAL_HEAD.match(body)
        if head is not None:
            nodes.append(Plural(head.group(1), _branches(body[head.end() :])))
        elif (arg := _ARG.match(body)) is not None:
            nodes.append(Arg(arg.group(1)))
        else:
            raise MalformedMessage(f"cannot read {{{body}}} in {text!r}")
        position = end + 1
    return tuple(nodes)


def placeholders(text: str) -> set[str]:
    """The parameter names a message uses, inside plural branches too."""
    found: set[str] = set()

    def walk(nodes: tuple[Node, ...]) -> None:
        for node in nodes:
            if isinstance(node, Arg):
                found.add(node.name)
            elif isinstance(node, Plural):
                found.add(node.name)
                for branch in node.branches.values():
                    walk(branch)

    walk(_parse(text))
    return found


# --- the catalogs ------------------------------------------------------------------------


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = str(value)
    return flat


@cache
def catalog(locale: str) -> dict[str, str]:
    """Every message of one language, by key."""
    with (_HERE / f"{locale}.toml").open("rb") as handle:
        return _flatten(tomllib.load(handle))


def has(key: str) -> bool:
    return key in catalog(DEFAULT_LOCALE)


def language(locale: str | None) -> str:
    """One of ``LOCALES``: the given one when it is ours, else the default."""
    return locale if locale in LOCALES else DEFAULT_LOCALE


# --- rendering ---------------------------------------------------------------------------


def text_of(value: Any, locale: str) -> str:
    """One parameter in words of ``locale``: ``i18n.values`` markers formatted, numbers grouped."""
    if values.is_marker(value):
        return _marker(value, locale)
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | float):
        return formats.number(value, locale)
    return str(value)


def _marker(marker: Mapping[str, Any], locale: str) -> str:
    kind = marker[values.MARK]
    if kind == values.MOMENT:
        return render(
            "format.moment",
            locale,
            {
                "datetime": formats.date_time(marker["value"], locale),
                "relative": formats.relative(marker["value"], locale),
            },
        )
    if kind == values.AMOUNT:
        return formats.amount(marker["value"], locale, str(marker.get("currency") or "JPY"))
    if kind == values.WORD:
        key = f"{marker['group']}.{marker['value']}"
        return render(key, locale) if has(key) else str(marker["value"])
    raise MalformedMessage(f"unknown value kind {kind!r}")


def _choose(plural: Plural, count: Any, locale: str) -> tuple[Node, ...]:
    try:
        number = float(count)
    except (TypeError, ValueError):
        return plural.branches["other"]
    exact = f"={int(number)}" if number.is_integer() else ""
    if exact in plural.branches:
        return plural.branches[exact]
    category = formats.plural_category(number, locale)
    return plural.branches.get(category, plural.branches["other"])


def _fill(
    nodes: tuple[Node, ...], params: Mapping[str, Any], locale: str, pound: str | None = None
) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            # ``#`` stands for the number only in the catalog's own words of a plural branch.
            out.append(node.replace("#", pound) if pound is not None else node)
        elif isinstance(node, Arg):
            out.append(
                text_of(params[node.name], locale) if node.name in params else f"{{{node.name}}}"
            )
        else:
            count = params.get(node.name)
            number = text_of(count, locale) if count is not None else f"{{{node.name}}}"
            out.append(_fill(_choose(node, count, locale), params, locale, number))
    return "".join(out)


def render(key: str, locale: str, params: Mapping[str, Any] | None = None) -> str:
    """The message ``key`` in ``locale`` (Japanese when that language lacks it)."""
    words = catalog(language(locale)).get(key)
    if words is None:
        words = catalog(DEFAULT_LOCALE).get(key)
    if words is None:
        raise MissingMessage(key)
    return _fill(_parse(words), params or {}, language(locale))
