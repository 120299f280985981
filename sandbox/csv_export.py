"""The issuers' CSV downloads: Amex Japan and MyJCB formats, CP932 with CRLF.

As the real downloads do, an Amex file also carries the payment of the previous
bill (口座振替, a minus amount, no card number), and a MyJCB file names its users
本人 and 家族1, 家族2… and ends with notes (a 【…】 line, free text, blank lines).
"""

from __future__ import annotations

from collections.abc import Sequence
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


AMEX_PAYMENT = "口座振替によるお支払い ありがとうございました"
JCB_NOTES = (
    "【ご利用明細についてのご案内】",
    "ご利用内容に心当たりがない場合は、カード裏面のお問い合わせ先までご連絡ください。",
    "",
)


def amex_csv(rows: Sequence[tuple[Card, Purchase]]) -> bytes:
    """An Amex Japan statement download.

    Args:
        rows: Confirmed purchases with their cards, in the order to write them.

    Returns:
        CP932 bytes with CRLF line ends: the purchases, and the payment of the
        previous bill (every purchase used before the month of the last one) on
        the 10th of that month, as a card-less minus row.
    """
    lines = [AMEX_HEADER]
    payment = _previous_bill(rows)
    for card, bought in rows:
        if payment is not None and payment[0] <= bought.use_date:
            lines.append(_amex_payment_line(*payment))
            payment = None
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
    if payment is not None:
        lines.append(_amex_payment_line(*payment))
    return ("\r\n".join(lines) + "\r\n").encode(ENCODING)


def _previous_bill(rows: Sequence[tuple[Card, Purchase]]) -> tuple[date, int] | None:
    if not rows:
        return None
    last = max(bought.use_date for _, bought in rows)
    pay_day = last.replace(day=10)
    owed = sum(b.amount_jpy for _, b in rows if b.use_date < last.replace(day=1))
    return (pay_day, owed) if owed else None


def _amex_payment_line(day: date, owed: int) -> str:
    # No card and no holder: the payment settles the membership's bill, not a card.
    cells = [_slash_date(day), _slash_date(day), AMEX_PAYMENT, "", "", _quoted(f"{-owed:,}")]
    return ",".join([*cells, "", ""])


def jcb_user_labels(basic: Card, family: Sequence[Card]) -> dict[str, str]:
    """ご利用者 of each card: 本人 for the basic card, 家族N for its family cards.

    MyJCB numbers the family cards in the order of their card numbers.
    """
    ordered = sorted(family, key=lambda card: (card.masked_number, card.card_id))
    labels = {basic.card_id: "本人"}
    labels.update({card.card_id: f"家族{n}" for n, card in enumerate(ordered, start=1)})
    return labels


def jcb_csv(
    users: Sequence[tuple[str, list[Purchase]]], payment_date: date, *, notes: bool = True
) -> bytes:
    """A MyJCB statement download.

    Args:
        users: Each card user's label (本人, 家族1…, see :func:`jcb_user_labels`)
            and confirmed purchases, in the order to write them.
        payment_date: The next payment date shown in the summary lines.
        notes: End with MyJCB's notes below the table.

    Returns:
        CP932 bytes with CRLF line ends.
    """
    total = sum(bought.amount_jpy for _, purchases in users for bought in purchases)
    lines = [
        f"今回のお支払日,{_slash_date(payment_date)}",
        f"今回のお支払金額合計(￥),{_quoted(f'{total:,}')}",
        "",
        JCB_HEADER,
    ]
    for label, purchases in users:
        for bought in purchases:
            lines.append(_jcb_line(label, bought))
    if notes:
        lines.extend(["", *JCB_NOTES])
    return ("\r\n".join(lines) + "\r\n").encode(ENCODING)


def _jcb_line(label: str, bought: Purchase) -> str:
    abroad = bought.foreign_amount is not None
    note = (
        f"{bought.foreign_currency} {bought.foreign_amount} 換算レート {bought.rate}"
        if abroad
        else ""
    )
    return ",".join(
        [
            _field(label),
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
