"""Message catalogs: every word the assistant says, one TOML file per language."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

LOCALES = ("ja", "en")
DEFAULT_LOCALE = "ja"
_HERE = Path(__file__).parent


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
    with (_HERE / f"{locale}.toml").open("rb") as handle:
        return _flatten(tomllib.load(handle))


class MissingMessage(KeyError):
    """A key that no catalog holds: a bug, found by the tests."""


class _Params(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(key: str, locale: str, params: Mapping[str, Any] | None = None) -> str:
    """The message ``key`` in ``locale`` (Japanese when that language lacks it)."""
    words = catalog(locale if locale in LOCALES else DEFAULT_LOCALE).get(key)
    if words is None:
        words = catalog(DEFAULT_LOCALE).get(key)
    if words is None:
        raise MissingMessage(key)
    return words.format_map(_Params(params or {}))


def has(key: str) -> bool:
    return key in catalog(DEFAULT_LOCALE)
