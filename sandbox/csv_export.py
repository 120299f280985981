"""The issuers' CSV downloads: Amex Japan and MyJCB formats, CP932 with CRLF."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sandbox.state import Card
from sandbox.statements import Purchase

AMEX_HEADER = (
    "ご利用日,データ処理日,ご利用内容,カード会員様名,会員番号 #,金額,海外通貨利用金額,換算レート"
)
JCB_HEADER = (
    "ご利用者,カテゴリ,ご利用日,ご利用先など,ご利用金額(￥),支払区分,今回回数,訂正サイン,"
    "お支払い金額(￥),国内／海外,摘要,備考"
)
ENCODING = "cp932"


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _field(value: str) -> str:
    """A CSV field, quoted only when it has to be."""
    return _quoted(value) if any(ch in value for ch in ',"\r\n') else value


def _slash_date(day: date) -> str:
    return day.strftime("%Y/%m/%d")


def _yen(amount: int) -> str:
    """``"12,345"`` from 1,000 up, plain digits below (MyJCB)."""
    return _quoted(f"{amount:,}") if abs(amount) >= 1_000 else str(amount)


def amex_csv(rows: Iterable[tuple[Card, Purchase]]) -> bytes:
    """An Amex Japan statement download.

    Args:
        rows: Confirmed purchases with their cards, in the order to write them.

    Returns:
        CP932 bytes with CRLF line ends.
    """
    lines = [AMEX_HEADER]
    for card, bought in rows:
        foreign = (
            f"{bought.foreign_amount} {bought.foreign_currency}" if bought.foreign_amount else ""
        )
        lines.append(
            ",".join(
                [
                    _slash_date(bought.use_date),
                    _slash_date(bought.posted_date),
                    _field(bought.merchant),
                    _field(card.holder_name),
                    card.masked_number,
                    # Amex always quotes the amount, thousands separators included.
                    _quoted(f"{bought.amount_jpy:,}"),
                    _quoted(foreign) if foreign else "",
                    _quoted(bought.rate) if bought.rate else "",
                ]
            )
        )
    return ("\r\n".join(lines) + "\r\n").encode(ENCODING)


def jcb_csv(card: Card, purchases: list[Purchase], payment_date: date) -> bytes:
    """A MyJCB statement download of one card.

    Args:
        card: The card.
        purchases: Its confirmed purchases, in the order to write them.
        payment_date: The next payment date shown in the summary lines.

    Returns:
        CP932 bytes with CRLF line ends.
    """
    total = sum(bought.amount_jpy for bought in purchases)
    relation = "本人" if card.role == "basic" else "家族"
    lines = [
        f"今回のお支払日,{_slash_date(payment_date)}",
        f"今回のお支払金額合計(￥),{_quoted(f'{total:,}')}",
        "",
        JCB_HEADER,
    ]
    for bought in purchases:
        abroad = bought.foreign_amount is not None
        note = (
            f"{bought.foreign_currency} {bought.foreign_amount} 換算レート {bought.rate}"
            if abroad
            else ""
        )
        lines.append(
            ",".join(
                [
                    _field(f"{relation} {card.holder_name}"),
                    "ショッピング取組（海外）" if abroad else "ショッピング取組（国内）",
                    _slash_date(bought.use_date),
                    _field(bought.merchant),
                    _yen(bought.amount_jpy),
                    "1回払い",
                    "",
                    "",
                    _yen(bought.amount_jpy),
                    "海外" if abroad else "国内",
                    _field(note),
                    "",
                ]
            )
        )
    return ("\r\n".join(lines) + "\r\n").encode(ENCODING)
