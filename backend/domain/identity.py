"""What a person's name and email address may be: real people's, nothing that hides text.

Email addresses are internationalised (RFC 6531: any Unicode in the local part, an IDN
domain); they are compared in NFC and lower case. Names shown to other people (offices,
accounts) are NFC-normalised and may not hold control characters, bidirectional
overrides or invisible format characters: such a name can look like another one, or
reorder the text around it where it is shown.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_EMAIL = 254  # RFC 5321's path limit less the angle brackets
MAX_LOCAL_PART = 64  # RFC 5321 §4.5.3.1.1
MAX_LABEL = 63  # a DNS label, after the IDN encoding

# Cc control, Cf format (bidi overrides and isolates, zero-width space, joiners, BOM),
# Cs lone surrogates, Co private use, Zl and Zp line and paragraph separators.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
# ASCII characters no address may hold unquoted (RFC 5322 specials and spaces);
# quoted local parts are refused too: no mail system a person uses needs them.
_LOCAL_FORBIDDEN = frozenset(' "(),:;<>[\\]')
_LDH = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


class InvalidIdentity(ValueError):
    """A name or address refused; the message says why (English, for developers)."""


def hidden_characters(text: str) -> list[str]:
    """The code points (``U+202E``) of the characters a name may not hold, in order."""
    return [f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in _HIDDEN]


def normalize_name(text: str) -> str:
    """A display name in NFC without surrounding spaces.

    Raises:
        InvalidIdentity: It holds a control, format (bidi, zero-width) or separator
            character.
    """
    name = unicodedata.normalize("NFC", text).strip()
    hidden = hidden_characters(name)
    if hidden:
        raise InvalidIdentity(
            "control, bidirectional or invisible characters are not allowed: "
            + ", ".join(dict.fromkeys(hidden))
        )
    return name


def normalize_email(text: str) -> str:
    """An email address in its compared form: NFC, lower case, a valid local@domain.

    Raises:
        InvalidIdentity: Too long, no single ``@``, an empty or over-long part, a
            control or space character, or a domain that is no valid (IDN) host name.
    """
    address = unicodedata.normalize("NFC", text).strip().lower()
    if len(address) > MAX_EMAIL:
        raise InvalidIdentity(f"an email address has at most {MAX_EMAIL} characters")
    if hidden_characters(address) or any(c.isspace() for c in address):
        raise InvalidIdentity("an email address holds no spaces or control characters")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise InvalidIdentity("an email address is local-part@domain")
    if len(local.encode()) > MAX_LOCAL_PART:
        raise InvalidIdentity(f"the part before @ has at most {MAX_LOCAL_PART} bytes")
    if "@" in local or any(c in _LOCAL_FORBIDDEN for c in local):
        raise InvalidIdentity("the part before @ holds a character no address may hold")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidIdentity("the part before @ may not start, end or repeat a dot")
    _check_domain(domain)
    return address


def _check_domain(domain: str) -> None:
    labels = domain.split(".")
    for label in labels:
        try:
            # IDNA 2003 from the standard library: enough to tell a host name.
            ascii_label = label.encode("idna").decode("ascii") if label else ""
        except UnicodeError as exc:
            raise InvalidIdentity("the domain is not a valid host name") from exc
        if not ascii_label or len(ascii_label) > MAX_LABEL or not _LDH.match(ascii_label):
            raise InvalidIdentity("the domain is not a valid host name")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a member (by email) or a support administrator over every office.

    Defined here, not in the service layer, so that every front end (the assistant's
    routes included) names the caller with the same type.
    """

    email: str
    support_admin: bool = False
