"""Statement-file importers: the CSV files people download from Amex and MyJCB.

A statement upload (明細アップロード) is how old-card statements reach an account
after a JCB card change (R7 (a)); files also help when a sync has a gap. Each
importer reads a whole file or raises one error from :mod:`.errors`; nothing is
ever returned half-read.

Typical use::

    parsed = parse_statement_file(data)            # issuer detected from the header
    parsed = parse_statement_file(data, "amex")    # or insist on one issuer
    for group in parsed.groups:                    # one per card (R15) / per JCB user
        for entry in group.entries:                # kind: purchase, adjustment, payment
            ...

The payment of an earlier bill (Amex: a minus row with no card number) comes in a
group with an empty ``card_ref``; MyJCB's notes below the table are not read.

Standard library only (plus the stdlib-only value types of the service ports).
"""

from __future__ import annotations

from backend.service.ports import IssuerName

from . import amex, jcb
from ._reading import decode, read_records
from .amex import parse_amex_csv
from .errors import (
    BadEncoding,
    EmptyFile,
    MalformedRow,
    StatementFileError,
    UnknownFormat,
    WrongIssuer,
)
from .formats import AMEX_HEADER, JCB_HEADER, locate_header, sniff, unknown_format
from .jcb import parse_jcb_csv
from .model import (
    CardGroup,
    Encoding,
    JcbSummary,
    ParsedStatementFile,
    RowKind,
    StatementEntry,
)

__all__ = [
    "AMEX_HEADER",
    "JCB_HEADER",
    "BadEncoding",
    "CardGroup",
    "EmptyFile",
    "Encoding",
    "JcbSummary",
    "MalformedRow",
    "ParsedStatementFile",
    "RowKind",
    "StatementEntry",
    "StatementFileError",
    "UnknownFormat",
    "WrongIssuer",
    "parse_amex_csv",
    "parse_jcb_csv",
    "parse_statement_file",
]


def parse_statement_file(data: bytes, issuer: IssuerName | None = None) -> ParsedStatementFile:
    """Read an Amex Japan or MyJCB statement CSV, completely or not at all.

    Args:
        data: The uploaded bytes: CP932 as the issuers serve them, or UTF-8 with
            or without BOM (a spreadsheet re-save); CRLF or LF line ends.
        issuer: The issuer the file must come from, or None to tell it from the
            header.

    Returns:
        The parsed file: issuer, encoding, one group of rows per card (Amex:
        per masked number, so supplementary cards stay apart, R15) or per card
        user (MyJCB), and the MyJCB summary when present.

    Raises:
        BadEncoding: The bytes are not UTF-8 or CP932 text.
        EmptyFile: The file holds nothing but blank lines.
        WrongIssuer: ``issuer`` was given and the file is the other issuer's.
        UnknownFormat: Neither issuer's header was found.
        MalformedRow: A row cannot be read; ``line`` and ``column`` say where.
    """
    text, encoding = decode(data)
    records = read_records(text)
    if issuer is None:
        found = sniff(records)
        if found is None:
            raise unknown_format(records, None)
        issuer, header_index = found
    else:
        header_index = locate_header(records, issuer)
    if issuer == "amex":
        return amex.from_records(records, header_index, encoding)
    return jcb.from_records(records, header_index, encoding)
