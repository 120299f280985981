"""MyJCB CSV (the member site's statement download).

Summary lines first (``今回のお支払日,2026/12/10``, ``今回のお支払金額合計(￥),"123,456"``,
a blank line), then the 12-column header
``ご利用者,カテゴリ,ご利用日,ご利用先など,ご利用金額(￥),支払区分,今回回数,訂正サイン,お支払い金額(￥),国内／海外,摘要,備考``.
``ご利用者`` is the card user: ``本人`` (the cardholder) or ``家族1``, ``家族2``… (the
family cards, numbered by the issuer), sometimes followed by a name
(``本人 山田 太郎``). One MyJCB ID covers every user's card (R9), so the rows are
grouped per user. After the table MyJCB may add notes: a ``【…】`` line and free
text, with blank lines; the table ends there.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence

from ._reading import (
    CellReader,
    Record,
    decode,
    fit_columns,
    group_by_card,
    header_key,
    normalize,
    parse_date,
    parse_foreign,
    parse_yen,
    read_records,
    statement,
)
from .errors import MalformedRow
from .formats import JCB_HEADER, locate_header
from .model import (
    CardGroup,
    Encoding,
    JcbSummary,
    ParsedStatementFile,
    RowKind,
    StatementEntry,
    UserRelation,
)

(
    _USER,
    _CATEGORY,
    _USE_DATE,
    _MERCHANT,
    _AMOUNT,
    _PAYMENT_KIND,
    _INSTALMENT,
    _CORRECTION,
    _PAYMENT_AMOUNT,
    _REGION,
    _NOTE,
    _REMARKS,
) = range(12)

_USER_KINDS = ("本人", "家族")  # cardholder / family member
# 家族1, 家族 2, 家族１ (NFKC folds the full-width digit), then an optional name.
_USER_LABEL = re.compile(r"(本人|家族)\s*(\d*)\s*(.*)")
_NOTES_MARK = "【"  # MyJCB's notes below the table start with 【ご案内】 and the like
_DOMESTIC, _OVERSEAS = "国内", "海外"

_PAYMENT_DATE_KEY = header_key(["今回のお支払日"])[0]
# MyJCB writes (￥); a spreadsheet re-save may write (円) or drop it.
_TOTAL_KEY_PREFIX = header_key(["今回のお支払金額合計"])[0]


def parse_jcb_csv(data: bytes) -> ParsedStatementFile:
    """Read a MyJCB CSV download, completely or not at all.

    Args:
        data: The file's bytes (CP932 as downloaded, or UTF-8 with or without BOM).

    Returns:
        The file, one group per card user (``本人 …`` / ``家族 …``), with the
        summary lines when the file has them.

    Raises:
        BadEncoding: The bytes are not UTF-8 or CP932 text.
        EmptyFile: The file is empty.
        WrongIssuer: The file is an Amex CSV.
        UnknownFormat: No MyJCB header in the first lines.
        MalformedRow: A summary line or row cannot be read; names its line and column.
    """
    text, encoding = decode(data)
    records = read_records(text)
    return from_records(records, locate_header(records, "jcb"), encoding)


def from_records(
    records: Sequence[Record], header_index: int, encoding: Encoding
) -> ParsedStatementFile:
    """Build the parsed file from records whose MyJCB header is at ``header_index``."""
    summary = _summary(records[:header_index])
    header_width = len(records[header_index].cells)
    keyed = []
    users: dict[str, tuple[UserRelation | None, int | None]] = {}
    for record in records[header_index + 1 :]:
        if record.is_blank:
            continue
        if _starts_notes(record):
            break  # the notes are no statements; nothing after them is either
        cells = CellReader(record, fit_columns(record, JCB_HEADER, header_width), JCB_HEADER)
        # Cells are checked left to right so the first bad one is the one reported.
        user = _user_label(cells.required_text(_USER))
        relation, number, holder = _user_parts(user)
        users.setdefault(user, (relation, number))
        use_date = cells.required_date(_USE_DATE)
        merchant = cells.required_text(_MERCHANT)
        amount = cells.required_yen(_AMOUNT)
        correction = cells.text(_CORRECTION, required=False) is not None
        payment_amount = cells.yen(_PAYMENT_AMOUNT, required=False)
        overseas = _is_overseas(cells)
        note = cells.text(_NOTE, required=False)
        # Only overseas rows carry a foreign amount; a domestic note such as
        # "ETC 1234" must not be read as one. Absent or unreadable: no amount.
        foreign = parse_foreign(note, anywhere=True) if overseas and note else None
        kind: RowKind = "adjustment" if correction or amount < 0 else "purchase"
        row = statement(
            card_ref=user,
            use_date=use_date,
            posted_date=None,  # MyJCB files show no processing date
            merchant=merchant,
            amount_jpy=amount,  # sign kept as written, corrections included
            foreign=foreign,
            holder_name=holder,
        )
        entry = StatementEntry(
            line=record.line,
            statement=row,
            correction=correction,
            payment_amount_jpy=payment_amount,
            kind=kind,
        )
        keyed.append((user, holder, entry))
    groups = tuple(_with_user(group, users[group.card_ref]) for group in group_by_card(keyed))
    return ParsedStatementFile(issuer="jcb", encoding=encoding, groups=groups, summary=summary)


def _with_user(group: CardGroup, user: tuple[UserRelation | None, int | None]) -> CardGroup:
    return dataclasses.replace(group, relation=user[0], family_number=user[1])


def _starts_notes(record: Record) -> bool:
    first = normalize(record.cells[0]) if record.cells else ""
    return first.startswith(_NOTES_MARK)


def _summary(preamble: Sequence[Record]) -> JcbSummary | None:
    payment_date: dt.date | None = None
    total: int | None = None
    seen = False
    for record in preamble:
        if record.is_blank:
            continue
        key = header_key(record.cells[:1])
        name = record.cells[0].strip()
        value = record.cells[1] if len(record.cells) > 1 else ""
        if key == (_PAYMENT_DATE_KEY,):
            seen = True
            payment_date = parse_date(value)
            if payment_date is None:
                raise _bad_summary(record, name, value, "bad_date", "a date in YYYY/MM/DD form")
        elif key and key[0].startswith(_TOTAL_KEY_PREFIX):
            seen = True
            total = parse_yen(value)
            if total is None:
                raise _bad_summary(
                    record, name, value, "bad_amount", "a whole-yen amount such as 123,456"
                )
        # Other summary lines (MyJCB adds some for some cards) carry nothing we keep.
    return JcbSummary(payment_date=payment_date, total_jpy=total) if seen else None


def _bad_summary(record: Record, name: str, value: str, reason: str, want: str) -> MalformedRow:
    return MalformedRow(
        f"the value of {name!r} must be {want}",
        line=record.line,
        column=name,
        column_index=2,
        reason=reason,
        value=value,
    )


def _user_label(raw: str) -> str:
    # One key per user however the spaces were typed (full-width, doubled).
    return " ".join(normalize(raw).split())


def _user_parts(label: str) -> tuple[UserRelation | None, int | None, str | None]:
    """Who the label names: relation, family number and the name, when shown.

    ``家族1`` is the family member's number, not a name: the card and the name
    are the issuer's, found by the back end from the number.
    """
    match = _USER_LABEL.fullmatch(label)
    if match is None:
        return None, None, label  # a label MyJCB does not write: a name, at best
    relation: UserRelation = "principal" if match[1] == _USER_KINDS[0] else "family"
    number = int(match[2]) if match[2] else None
    return relation, number, match[3].strip() or None


def _is_overseas(cells: CellReader) -> bool:
    raw = cells.text(_REGION, required=False)
    region = normalize(raw) if raw is not None else ""
    if region not in ("", _DOMESTIC, _OVERSEAS):
        raise cells.fail(_REGION, "bad_region", f"{raw!r} is neither {_DOMESTIC} nor {_OVERSEAS}")
    return region == _OVERSEAS
