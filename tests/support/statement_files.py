"""Statement files written from a description of each issuer's download format.

The tests do not copy one sample file: each format below says which columns the
issuer writes, in which encoding and line ends, how it writes amounts, what comes
above and below the table, and how each kind of row fills the columns. A test
describes the rows it needs (:class:`Row`), and how the file was saved again by a
spreadsheet program (:class:`Resave`), and gets the bytes::

    data = write(AMEX, [purchase(...), payment(...)], Resave(bom=True, newline="\\n"))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

RowKind = Literal["purchase", "foreign", "adjustment", "payment"]


@dataclass(frozen=True)
class Row:
    """One row as a person sees it on the issuer's site.

    ``card`` is the Amex masked number (empty for a payment) or the MyJCB user
    (本人, 家族1…); ``foreign`` is ``(amount, currency, rate)``.
    """

    kind: RowKind
    use_date: dt.date
    merchant: str
    amount_jpy: int
    card: str = ""
    holder: str = ""
    foreign: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class Resave:
    """How the file reached renkei: as downloaded, or saved again by a spreadsheet.

    Attributes:
        encoding: ``cp932`` as the issuers serve it, or ``utf-8``.
        bom: A UTF-8 byte order mark in front (Excel's "CSV UTF-8").
        newline: ``\\r\\n`` as downloaded; ``\\n`` from other programs.
        quote_amounts: None: as the issuer writes them; False: bare digits without
            separators (``12345``), as a spreadsheet writes numbers; True: always
            quoted with separators.
        pad_columns: Empty cells a spreadsheet adds at the end of every line.
    """

    encoding: Literal["cp932", "utf-8"] = "cp932"
    bom: bool = False
    newline: str = "\r\n"
    quote_amounts: bool | None = None
    pad_columns: int = 0


AS_DOWNLOADED = Resave()


@dataclass(frozen=True)
class DownloadFormat:
    """An issuer's CSV download.

    Attributes:
        issuer: ``amex`` or ``jcb``.
        columns: Header name and the field each column shows, in order.
        always_quote_amounts: Amex quotes every amount; MyJCB only from 1,000 up.
        preamble: Lines above the header (MyJCB's summary), from the rows.
        trailer: Lines below the table (MyJCB's notes).
        fill: Row kind → the row's fields by name (a kind the issuer does not
            write is missing).
    """

    issuer: Literal["amex", "jcb"]
    columns: tuple[tuple[str, str], ...]
    always_quote_amounts: bool
    fill: dict[RowKind, Callable[[Row], dict[str, str | int]]]
    preamble: Callable[[Sequence[Row]], list[str]] = lambda rows: []
    trailer: tuple[str, ...] = ()
    amount_fields: tuple[str, ...] = ()

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


def _day(value: dt.date) -> str:
    return value.strftime("%Y/%m/%d")


def _amex_fields(row: Row) -> dict[str, str | int]:
    fields: dict[str, str | int] = {
        "use_date": _day(row.use_date),
        "posted_date": _day(row.use_date + dt.timedelta(days=2)),
        "merchant": row.merchant,
        "holder": row.holder,
        "card": row.card,
        "amount": row.amount_jpy,
    }
    if row.foreign is not None:
        fields["foreign"] = f"{row.foreign[0]} {row.foreign[1]}"
        fields["rate"] = row.foreign[2]
    return fields


def _amex_payment(row: Row) -> dict[str, str | int]:
    # The payment of the previous bill: a minus amount, and neither card nor holder.
    return {**_amex_fields(row), "holder": "", "card": ""}


AMEX = DownloadFormat(
    issuer="amex",
    columns=(
        ("ご利用日", "use_date"),
        ("データ処理日", "posted_date"),
        ("ご利用内容", "merchant"),
        ("カード会員様名", "holder"),
        ("会員番号 #", "card"),
        ("金額", "amount"),
        ("海外通貨利用金額", "foreign"),
        ("換算レート", "rate"),
    ),
    always_quote_amounts=True,
    amount_fields=("amount",),
    fill={
        "purchase": _amex_fields,
        "foreign": _amex_fields,
        "adjustment": _amex_fields,  # a refund: minus amount, the card's number
        "payment": _amex_payment,
    },
)


def _jcb_fields(row: Row) -> dict[str, str | int]:
    abroad = row.foreign is not None
    fields: dict[str, str | int] = {
        "user": row.card or "本人",
        "category": "ショッピング取組（海外）" if abroad else "ショッピング取組（国内）",
        "use_date": _day(row.use_date),
        "merchant": row.merchant,
        "amount": row.amount_jpy,
        "payment_kind": "1回払い",
        "payment_amount": row.amount_jpy,
        "region": "海外" if abroad else "国内",
    }
    if row.foreign is not None:
        fields["note"] = f"{row.foreign[1]} {row.foreign[0]} 換算レート {row.foreign[2]}"
    return fields


def _jcb_adjustment(row: Row) -> dict[str, str | int]:
    return {**_jcb_fields(row), "correction": "＊", "remarks": "返品"}


def _jcb_summary(rows: Sequence[Row]) -> list[str]:
    total = sum(row.amount_jpy for row in rows)
    return ["今回のお支払日,2026/12/10", f'今回のお支払金額合計(￥),"{total:,}"', ""]


JCB = DownloadFormat(
    issuer="jcb",
    columns=(
        ("ご利用者", "user"),
        ("カテゴリ", "category"),
        ("ご利用日", "use_date"),
        ("ご利用先など", "merchant"),
        ("ご利用金額(￥)", "amount"),
        ("支払区分", "payment_kind"),
        ("今回回数", "instalment"),
        ("訂正サイン", "correction"),
        ("お支払い金額(￥)", "payment_amount"),
        ("国内／海外", "region"),
        ("摘要", "note"),
        ("備考", "remarks"),
    ),
    always_quote_amounts=False,
    amount_fields=("amount", "payment_amount"),
    fill={"purchase": _jcb_fields, "foreign": _jcb_fields, "adjustment": _jcb_adjustment},
    preamble=_jcb_summary,
    trailer=(
        "",
        "【ご利用明細についてのご案内】",
        "ご利用内容に心当たりがない場合は、カード裏面のお問い合わせ先までご連絡ください。",
        "",
        "",
    ),
)


@dataclass
class Written:
    """A written file and where each row landed (1-based lines, as a spreadsheet shows)."""

    data: bytes
    lines: list[int] = field(default_factory=list)


def _cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\r\n') else value


def _amount(fmt: DownloadFormat, value: int, resave: Resave) -> str:
    if resave.quote_amounts is False:
        return str(value)
    if resave.quote_amounts or fmt.always_quote_amounts or abs(value) >= 1000:
        return f'"{value:,}"'
    return str(value)


def write_with_lines(
    fmt: DownloadFormat, rows: Sequence[Row], resave: Resave = AS_DOWNLOADED
) -> Written:
    """The file of ``rows`` in ``fmt``, saved as ``resave`` says, and each row's line."""
    pad = "," * resave.pad_columns
    lines = [*fmt.preamble(rows), ",".join(fmt.header) + pad]
    landed: list[int] = []
    for row in rows:
        fields = fmt.fill[row.kind](row)
        cells = []
        for _, name in fmt.columns:
            value = fields.get(name, "")
            if name in fmt.amount_fields and isinstance(value, int):
                cells.append(_amount(fmt, value, resave))
            else:
                cells.append(_cell(str(value)))
        lines.append(",".join(cells) + pad)
        landed.append(len(lines))
    lines.extend(fmt.trailer)
    text = resave.newline.join(lines) + resave.newline
    data = text.encode(resave.encoding)
    if resave.bom:
        data = b"\xef\xbb\xbf" + data
    return Written(data, landed)


def write(fmt: DownloadFormat, rows: Sequence[Row], resave: Resave = AS_DOWNLOADED) -> bytes:
    """The bytes of the file of ``rows`` in ``fmt``."""
    return write_with_lines(fmt, rows, resave).data


SPREADSHEET_RESAVES: dict[str, Resave] = {
    "as downloaded": AS_DOWNLOADED,
    "utf-8 with bom, crlf": Resave(encoding="utf-8", bom=True),
    "utf-8, lf": Resave(encoding="utf-8", newline="\n"),
    "bare amounts, padded": Resave(quote_amounts=False, pad_columns=3),
    "quoted amounts, bom, lf": Resave(encoding="utf-8", bom=True, newline="\n", quote_amounts=True),
}
"""The ways a spreadsheet program saves a download again."""
