"""The two header lines the importers know, and telling the files apart by them."""

from __future__ import annotations

from collections.abc import Sequence

from backend.service.ports import IssuerName

from ._reading import Record, header_key
from .errors import UnknownFormat, WrongIssuer

AMEX_HEADER: tuple[str, ...] = (
    "ご利用日",
    "データ処理日",
    "ご利用内容",
    "カード会員様名",
    "会員番号 #",
    "金額",
    "海外通貨利用金額",
    "換算レート",
)
"""Amex Japan CSV header: the file's first line."""

JCB_HEADER: tuple[str, ...] = (
    "ご利用者",
    "カテゴリ",
    "ご利用日",
    "ご利用先など",
    "ご利用金額(￥)",
    "支払区分",
    "今回回数",
    "訂正サイン",
    "お支払い金額(￥)",
    "国内／海外",
    "摘要",
    "備考",
)
"""MyJCB CSV header: after the summary lines, when there are any."""

HEADERS: dict[IssuerName, tuple[str, ...]] = {"amex": AMEX_HEADER, "jcb": JCB_HEADER}

_LABELS: dict[IssuerName, str] = {"amex": "an Amex Japan CSV", "jcb": "a MyJCB CSV"}

# MyJCB puts a few summary lines above its table; a header further down than this
# is not a MyJCB download.
_JCB_PREAMBLE_LIMIT = 20

_AMEX_KEY = header_key(AMEX_HEADER)
_JCB_KEY = header_key(JCB_HEADER)


def sniff(records: Sequence[Record]) -> tuple[IssuerName, int] | None:
    """Find the header row of either format.

    Args:
        records: The file's records, blank ones included.

    Returns:
        The issuer and the index of its header record, or None when neither header
        is where it must be (Amex: first non-blank line; MyJCB: within the first
        lines, after the summary).
    """
    first = _first_content(records)
    if header_key(records[first].cells) == _AMEX_KEY:
        return "amex", first
    for index in range(first, min(len(records), first + _JCB_PREAMBLE_LIMIT)):
        if header_key(records[index].cells) == _JCB_KEY:
            return "jcb", index
    return None


def locate_header(records: Sequence[Record], expected: IssuerName) -> int:
    """The index of ``expected``'s header record.

    Args:
        records: The file's records (at least one non-blank).
        expected: The issuer whose file this must be.

    Returns:
        Index into ``records`` of the header.

    Raises:
        WrongIssuer: The file is the other issuer's.
        UnknownFormat: The file is neither issuer's.
    """
    found = sniff(records)
    if found is None:
        raise unknown_format(records, expected)
    issuer, index = found
    if issuer != expected:
        raise WrongIssuer(
            f"this is {_LABELS[issuer]}, not {_LABELS[expected]}",
            expected=expected,
            found=issuer,
            line=records[index].line,
        )
    return index


def unknown_format(records: Sequence[Record], expected: IssuerName | None) -> UnknownFormat:
    """The error for a file whose header is not found.

    When the first line looks like the expected header but differs in one cell
    (an edited or truncated header), that cell is named.

    Args:
        records: The file's records (at least one non-blank).
        expected: The issuer the file should come from, or None when unknown.

    Returns:
        The error to raise, pointing at the line (and cell) to look at.
    """
    first = _first_content(records)
    record = records[first]
    if expected is None:
        return UnknownFormat(
            "the first line is neither the Amex Japan CSV header nor the MyJCB CSV header",
            line=record.line,
        )
    header = HEADERS[expected]
    want = header_key(header)
    # The header of a MyJCB file sits below its summary: look for the line that
    # starts like it, so an edited header is reported where it is.
    window = records[first : first + _JCB_PREAMBLE_LIMIT] if expected == "jcb" else [record]
    record = next((r for r in window if header_key(r.cells)[:1] == want[:1]), record)
    got = header_key(record.cells)
    if got and got[0] == want[0]:
        for index, name in enumerate(header):
            if index >= len(got) or got[index] != want[index]:
                return UnknownFormat(
                    f"the header of {_LABELS[expected]} must have {name!r} here",
                    line=record.line,
                    column=name,
                    column_index=index + 1,
                )
        return UnknownFormat(
            f"the header has {len(got)} columns; {_LABELS[expected]} has {len(want)}",
            line=record.line,
            column_index=len(want) + 1,
        )
    return UnknownFormat(f"the file is not {_LABELS[expected]}", line=record.line)


def _first_content(records: Sequence[Record]) -> int:
    # read_records() already refused files without a non-blank record.
    return next(i for i, record in enumerate(records) if not record.is_blank)
