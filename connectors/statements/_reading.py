"""Shared plumbing of the importers: bytes to text, text to numbered rows, cell parsers."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from backend.service.ports import IssuerStatement

from .errors import BadEncoding, EmptyFile, MalformedRow, TooManyRows
from .model import CardGroup, Encoding, StatementEntry

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

# Characters no issuer CSV contains. C0/C1 controls betray a binary file or
# UTF-16; U+F8F0-U+F8F3 are what Python's cp932 codec makes of the single bytes
# 0xA0 and 0xFD-0xFF, which Shift_JIS text never holds.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\uf8f0-\uf8f3]")


@dataclass(frozen=True)
class Record:
    """One CSV record with its 1-based row number as a spreadsheet shows it."""

    line: int
    cells: tuple[str, ...]

    @property
    def is_blank(self) -> bool:
        """True for an empty line or a row of empty cells (``,,,`` from a spreadsheet)."""
        return not any(cell.strip() for cell in self.cells)


def decode(data: bytes) -> tuple[str, Encoding]:
    """Decode a statement file: UTF-8 with BOM, UTF-8, else CP932.

    Args:
        data: The uploaded bytes.

    Returns:
        The text and the encoding that read it.

    Raises:
        BadEncoding: Neither encoding reads the bytes cleanly.
    """
    if data.startswith(_UTF16_BOMS):
        raise BadEncoding("the file is UTF-16, not UTF-8 or Shift_JIS (CP932)", line=1)
    if data.startswith(_UTF8_BOM):
        # A BOM is a declaration: no fallback to CP932 after it.
        try:
            text = data[len(_UTF8_BOM) :].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadEncoding(
                "the file starts with a UTF-8 byte order mark but is not valid UTF-8",
                line=_line_of_byte(data, len(_UTF8_BOM) + exc.start),
            ) from exc
        return _checked(text, "utf-8-sig")
    try:
        return _checked(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as utf8_exc:
        utf8_error = utf8_exc
    try:
        return _checked(data.decode("cp932"), "cp932")
    except UnicodeDecodeError as cp932_exc:
        # Report where the encoding that read further gave up: that one is most
        # likely what the file was meant to be.
        worst = max(utf8_error, cp932_exc, key=lambda e: e.start)
        raise BadEncoding(
            "the file is neither UTF-8 nor Shift_JIS (CP932) text",
            line=_line_of_byte(data, worst.start),
        ) from cp932_exc


def _line_of_byte(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _checked(text: str, encoding: Encoding) -> tuple[str, Encoding]:
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        raise BadEncoding(
            f"the file holds a control character (U+{ord(bad.group()):04X}) that no "
            "statement CSV contains",
            line=text.count("\n", 0, bad.start()) + 1,
        )
    return text, encoding


# Room above the data rows for MyJCB's summary lines and the header.
_PREAMBLE_ROWS = 25


def read_records(text: str, max_rows: int | None = None) -> list[Record]:
    """Split CSV text (CRLF, LF or CR) into numbered records.

    Args:
        text: Decoded file text.
        max_rows: Refuse a file with more data rows than this, as soon as the
            reader gets there (None: no limit).

    Returns:
        Every record, blank ones included so that numbering matches a spreadsheet.

    Raises:
        EmptyFile: The text holds no non-blank record.
        MalformedRow: The CSV quoting is broken.
        TooManyRows: More than ``max_rows`` data rows.
    """
    reader = csv.reader(_lines(text), strict=True)
    records: list[Record] = []
    line = 0
    most = None if max_rows is None else max_rows + _PREAMBLE_ROWS
    while True:
        line += 1
        if most is not None and line > most:
            assert max_rows is not None
            raise TooManyRows(
                f"the file has more than {max_rows} rows", line=line, max_rows=max_rows
            )
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise MalformedRow(
                f"the CSV text cannot be read ({exc})", line=line, reason="bad_csv"
            ) from exc
        records.append(Record(line, tuple(cells)))
    if all(record.is_blank for record in records):
        raise EmptyFile("the file holds no data", line=None)
    return records


def _lines(text: str) -> Iterator[str]:
    """The text's lines, ends kept, one at a time: no copy of a large file's text."""
    if text.count("\r") != text.count("\r\n"):
        # Bare CR line ends (an old spreadsheet's): the csv module splits those itself.
        yield from io.StringIO(text, newline="")
        return
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        stop = len(text) if end < 0 else end + 1
        yield text[start:stop]
        start = stop


def header_key(cells: Sequence[str]) -> tuple[str, ...]:
    """A header row reduced to what identifies it.

    Full-width and half-width forms (``（￥）`` / ``(¥)``), spaces and trailing
    empty cells differ between the issuer's file and a spreadsheet's re-save; none
    of that changes which column is which.
    """
    key = [_squash(cell) for cell in cells]
    while key and not key[-1]:
        key.pop()
    return tuple(key)


def _squash(cell: str) -> str:
    # A stray BOM survives in the first cell of a file saved twice with one.
    return "".join(unicodedata.normalize("NFKC", cell).replace("\ufeff", "").split())


def normalize(cell: str) -> str:
    """Cell text with full-width forms folded and surrounding space removed."""
    return unicodedata.normalize("NFKC", cell).replace("\u2212", "-").strip()


def fit_columns(record: Record, header: Sequence[str], header_width: int) -> tuple[str, ...]:
    """The record's cells, exactly one per header column.

    Extra cells are tolerated only when empty and only as many as the file's
    header line has: a spreadsheet re-save pads every line with trailing commas,
    but a data line wider than its header means an unquoted ``1,200`` or a stray
    separator shifted the row.

    Args:
        record: A data record.
        header: The format's column names.
        header_width: How many cells the file's own header line has.

    Returns:
        One cell per column of ``header``.

    Raises:
        MalformedRow: Too few cells, too many, or text beyond the last column.
    """
    cells = record.cells
    width = len(header)
    allowed = max(width, header_width)
    if not width <= len(cells) <= allowed or any(cell.strip() for cell in cells[width:]):
        raise MalformedRow(
            f"the row has {len(cells)} columns where {width} are expected",
            line=record.line,
            reason="column_count",
        )
    return cells[:width]


class CellReader:
    """Parses the cells of one record, naming line and column in every error."""

    def __init__(self, record: Record, cells: Sequence[str], header: Sequence[str]) -> None:
        self._line = record.line
        self._cells = cells
        self._header = header

    @property
    def line(self) -> int:
        """1-based row number of the record."""
        return self._line

    def fail(self, index: int, reason: str, message: str) -> MalformedRow:
        """Build the error for the cell at ``index`` (0-based)."""
        return MalformedRow(
            message,
            line=self._line,
            column=self._header[index],
            column_index=index + 1,
            reason=reason,
            value=self._cells[index],
        )

    def text(self, index: int, *, required: bool) -> str | None:
        """The cell as text (space-trimmed); None when empty and not required."""
        value = self._cells[index].strip()
        if value:
            return value
        if required:
            raise self.fail(index, "missing_value", "the cell is empty but must have a value")
        return None

    def required_text(self, index: int) -> str:
        """A cell that must not be empty."""
        value = self.text(index, required=True)
        assert value is not None  # text(required=True) raises instead
        return value

    def date(self, index: int, *, required: bool = True) -> dt.date | None:
        """A ``YYYY/MM/DD`` date (``YYYY/M/D`` as spreadsheets rewrite it is accepted)."""
        raw = self.text(index, required=required)
        if raw is None:
            return None
        parsed = parse_date(raw)
        if parsed is None:
            raise self.fail(index, "bad_date", f"{raw!r} is not a date in YYYY/MM/DD form")
        return parsed

    def required_date(self, index: int) -> dt.date:
        """A date cell that must not be empty."""
        value = self.date(index, required=True)
        assert value is not None  # date(required=True) raises instead
        return value

    def yen(self, index: int, *, required: bool = True) -> int | None:
        """A whole-yen amount, sign kept (refunds are negative)."""
        raw = self.text(index, required=required)
        if raw is None:
            return None
        parsed = parse_yen(raw)
        if parsed is None:
            raise self.fail(
                index, "bad_amount", f"{raw!r} is not a whole-yen amount such as 12,345 or -1,200"
            )
        return parsed

    def required_yen(self, index: int) -> int:
        """An amount cell that must not be empty."""
        value = self.yen(index, required=True)
        assert value is not None  # yen(required=True) raises instead
        return value


_DATE = re.compile(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})")
_YEN = re.compile(r"([+-]?)[¥\\]?(\d{1,3}(?:,\d{3})+|\d+)")
_DECIMAL = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_FOREIGN_AMOUNT = rf"[+-]?{_DECIMAL}"
_CURRENCY = r"[A-Z]{3}"
_FOREIGN_CELL = re.compile(
    rf"(?P<a1>{_FOREIGN_AMOUNT})\s*(?P<c1>{_CURRENCY})|(?P<c2>{_CURRENCY})\s*(?P<a2>{_FOREIGN_AMOUNT})"
)
# In free text the currency-first form ("USD 12.34", as MyJCB writes it) is
# tried first: in "換算レート 151.20 USD 10.00" the amount-first reading would take
# the rate for the amount. JPY is never a foreign amount.
_IN_TEXT_EDGE = r"(?<![A-Za-z0-9.,])"
_IN_TEXT_END = r"(?![A-Za-z0-9])"
_FOREIGN_IN_TEXT = (
    re.compile(
        rf"{_IN_TEXT_EDGE}(?P<c2>(?!JPY){_CURRENCY})\s*(?P<a2>{_FOREIGN_AMOUNT}){_IN_TEXT_END}"
    ),
    re.compile(
        rf"{_IN_TEXT_EDGE}(?P<a1>{_FOREIGN_AMOUNT})\s*(?P<c1>(?!JPY){_CURRENCY}){_IN_TEXT_END}"
    ),
)
_RATE = re.compile(_DECIMAL)


def parse_date(raw: str) -> dt.date | None:
    """``YYYY/MM/DD`` (or ``YYYY-MM-DD``) to a date; None when it is not one."""
    match = _DATE.fullmatch(normalize(raw))
    if match is None:
        return None
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def parse_yen(raw: str) -> int | None:
    """``"12,345"`` / ``"-1,200"`` / ``"980"`` to an int; None when it is not one.

    Thousands separators must be well placed (``"1,20"`` is refused): a misplaced
    comma usually means a decimal comma or a typing slip, and yen has no fraction.
    """
    match = _YEN.fullmatch(normalize(raw))
    if match is None:
        return None
    value = int(match[2].replace(",", ""))
    return -value if match[1] == "-" else value


def parse_foreign(raw: str, *, anywhere: bool) -> tuple[str, str] | None:
    """A foreign amount with its currency, as ``("12.34", "USD")``.

    Args:
        raw: ``"12.34 USD"`` or ``"USD 12.34"`` (separators are dropped).
        anywhere: Search inside free text (MyJCB 摘要) instead of matching the
            whole cell (Amex 海外通貨利用金額).

    Returns:
        Amount as decimal text (never a float) and ISO currency code, or None.
    """
    text = normalize(raw)
    if anywhere:
        match = next((m for m in (p.search(text) for p in _FOREIGN_IN_TEXT) if m is not None), None)
    else:
        match = _FOREIGN_CELL.fullmatch(text)
    if match is None:
        return None
    found = match.groupdict()
    amount = found.get("a1") or found["a2"]
    currency = found.get("c1") or found["c2"]
    return amount.replace(",", ""), currency


def is_rate(raw: str) -> bool:
    """Whether ``raw`` is an exchange rate such as ``151.23``."""
    return _RATE.fullmatch(normalize(raw)) is not None


def group_by_card(
    keyed: Sequence[tuple[str, str | None, StatementEntry]],
) -> tuple[CardGroup, ...]:
    """Group entries by card key, groups in order of first appearance.

    Args:
        keyed: ``(card key, holder name, entry)`` per data row, in file order.

    Returns:
        One group per key; each keeps its rows in file order.
    """
    entries: dict[str, list[StatementEntry]] = {}
    holders: dict[str, str | None] = {}
    for key, holder, entry in keyed:
        entries.setdefault(key, []).append(entry)
        if holders.get(key) is None:
            holders[key] = holder
    return tuple(CardGroup(key, holders[key], tuple(rows)) for key, rows in entries.items())


def statement(
    *,
    card_ref: str,
    use_date: dt.date,
    posted_date: dt.date | None,
    merchant: str,
    amount_jpy: int,
    foreign: tuple[str, str] | None,
    holder_name: str | None,
) -> IssuerStatement:
    """An ``IssuerStatement`` for a file row: no transaction id, always confirmed.

    A downloaded statement only lists what the issuer has confirmed, and files
    carry no transaction id (like the legacy method's lines).
    """
    return IssuerStatement(
        transaction_id=None,
        card_ref=card_ref,
        use_date=use_date,
        posted_date=posted_date,
        merchant=merchant,
        amount_jpy=amount_jpy,
        foreign_amount=foreign[0] if foreign else None,
        foreign_currency=foreign[1] if foreign else None,
        status="confirmed",
        holder_name=holder_name,
    )
