"""Amex Japan CSV (the online service's statement download).

The header is the first line (:data:`.formats.AMEX_HEADER`); dates ``YYYY/MM/DD``;
``金額`` quoted with thousands separators; the foreign amount like ``"12.34 USD"``;
the rate like ``"151.23"``. A download for a basic card holds the rows of every
card on the online-service ID, basic and supplementary.

Besides purchases a download holds the payment of the previous bill (口座振替 /
お支払い: a minus amount and no card number) and refunds or adjustments (a minus
amount with the card's number). Each row is read with its kind
(:data:`.model.RowKind`); none of them makes the file unreadable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ._reading import (
    CellReader,
    Record,
    decode,
    fit_columns,
    group_by_card,
    is_rate,
    normalize,
    parse_foreign,
    read_records,
    statement,
)
from .errors import MalformedRow
from .formats import AMEX_HEADER, locate_header
from .model import Encoding, ParsedStatementFile, RowKind, StatementEntry

_USE_DATE, _POSTED_DATE, _MERCHANT, _HOLDER, _CARD, _AMOUNT, _FOREIGN, _RATE = range(8)

# The visible end of a masked number: enough digits to tell the basic card from
# its supplementary cards (R15).
_CARD_SUFFIX = re.compile(r"\d{4,}")

# How Amex Japan names the payment of an earlier bill (and how a spreadsheet
# user might have typed it back): such a row pays a bill, it buys nothing.
_PAYMENT_WORDS = ("口座振替", "お支払", "ご入金", "ご返済", "PAYMENT", "THANK YOU")


def parse_amex_csv(data: bytes) -> ParsedStatementFile:
    """Read an Amex Japan CSV download, completely or not at all.

    Args:
        data: The file's bytes (CP932 as downloaded, or UTF-8 with or without BOM).

    Returns:
        The file, one group per masked card number: a supplementary card's rows
        are a group of their own, never mixed into the basic card's (R15).

    Raises:
        BadEncoding: The bytes are not UTF-8 or CP932 text.
        EmptyFile: The file is empty.
        WrongIssuer: The file is a MyJCB CSV.
        UnknownFormat: The first line is not the Amex header.
        MalformedRow: A row cannot be read; names its line and column.
    """
    text, encoding = decode(data)
    records = read_records(text)
    return from_records(records, locate_header(records, "amex"), encoding)


def from_records(
    records: Sequence[Record], header_index: int, encoding: Encoding
) -> ParsedStatementFile:
    """Build the parsed file from records whose Amex header is at ``header_index``."""
    header_width = len(records[header_index].cells)
    keyed = []
    for record in records[header_index + 1 :]:
        if record.is_blank:  # blank lines, trailing ones above all, carry nothing
            continue
        cells = CellReader(record, fit_columns(record, AMEX_HEADER, header_width), AMEX_HEADER)
        # Cells are checked left to right so the first bad one is the one reported.
        use_date = cells.required_date(_USE_DATE)
        posted_date = cells.date(_POSTED_DATE, required=False)
        merchant = cells.required_text(_MERCHANT)
        holder = cells.text(_HOLDER, required=False)
        card_ref = _card_ref(cells)
        amount = cells.required_yen(_AMOUNT)
        foreign = _foreign(cells)
        _check_rate(cells)
        kind = _kind(card_ref, merchant, amount, record)
        row = statement(
            card_ref=card_ref,
            use_date=use_date,
            posted_date=posted_date,
            merchant=merchant,
            amount_jpy=amount,
            foreign=foreign,
            holder_name=holder,
        )
        # R15: the masked number alone is the key, so a supplementary card never
        # shares a group with the basic card even when the holder is the same.
        # A payment's card-less group has the empty key: it is no card's (R15).
        entry = StatementEntry(line=record.line, statement=row, kind=kind)
        keyed.append((card_ref, holder, entry))
    return ParsedStatementFile(issuer="amex", encoding=encoding, groups=group_by_card(keyed))


def _kind(card_ref: str, merchant: str, amount: int, record: Record) -> RowKind:
    folded = normalize(merchant).upper()
    paying = any(word in folded for word in _PAYMENT_WORDS)
    if not card_ref:
        if amount <= 0 or paying:
            return "payment"
        # A charge of no card cannot be placed on any account: say which row.
        raise MalformedRow(
            "the row names no card number, and it is not the payment of a bill",
            line=record.line,
            column=AMEX_HEADER[_CARD],
            column_index=_CARD + 1,
            reason="missing_card_number",
            value="",
        )
    if amount < 0:
        return "payment" if paying else "adjustment"
    return "purchase"


def _card_ref(cells: CellReader) -> str:
    raw = cells.text(_CARD, required=False)
    if raw is None:
        return ""  # the payment of a bill names no card; _kind() decides
    masked = normalize(raw)
    if _CARD_SUFFIX.search(masked) is None or not masked[-1].isdigit():
        raise cells.fail(
            _CARD,
            "bad_card_number",
            f"{raw!r} is not a masked card number ending in its last digits",
        )
    return masked


def _foreign(cells: CellReader) -> tuple[str, str] | None:
    raw = cells.text(_FOREIGN, required=False)
    if raw is None:
        return None
    parsed = parse_foreign(raw, anywhere=False)
    if parsed is None:
        raise cells.fail(
            _FOREIGN, "bad_foreign_amount", f"{raw!r} is not a foreign amount such as 12.34 USD"
        )
    return parsed


def _check_rate(cells: CellReader) -> None:
    # The rate is not kept, but a cell that is no number means the columns are off.
    raw = cells.text(_RATE, required=False)
    if raw is not None and not is_rate(raw):
        raise cells.fail(_RATE, "bad_rate", f"{raw!r} is not an exchange rate such as 151.23")
