"""Building statement files for the importer tests."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "statements"

AMEX_HEADER_LINE = (
    "ご利用日,データ処理日,ご利用内容,カード会員様名,会員番号 #,金額,海外通貨利用金額,換算レート"
)
JCB_HEADER_LINE = (
    "ご利用者,カテゴリ,ご利用日,ご利用先など,ご利用金額(￥),支払区分,今回回数,"
    "訂正サイン,お支払い金額(￥),国内／海外,摘要,備考"
)
JCB_SUMMARY_LINES = ["今回のお支払日,2026/12/10", '今回のお支払金額合計(￥),"123,456"', ""]

BASIC = "XXXX-XXXXXX-31001"
SUPPLEMENTARY = "XXXX-XXXXXX-31002"


def fixture(name: str) -> bytes:
    """The bytes of a committed fixture file (CP932, CRLF)."""
    return (FIXTURES / name).read_bytes()


def amex_fixture() -> bytes:
    """Amex download with a basic and a supplementary card."""
    return fixture("amex_basic_and_supplementary.csv")


def jcb_fixture() -> bytes:
    """MyJCB download with the cardholder's and a family member's rows."""
    return fixture("jcb_family.csv")


def csv_bytes(lines: list[str], *, encoding: str = "cp932", newline: str = "\r\n") -> bytes:
    """Join ``lines`` into a file as an issuer (CP932, CRLF) or a spreadsheet would."""
    return newline.join(lines).encode(encoding)


def amex_file(*rows: str) -> bytes:
    """An Amex CSV: the header, then ``rows`` (header is line 1, rows from line 2)."""
    return csv_bytes([AMEX_HEADER_LINE, *rows])


def jcb_file(*rows: str, summary: bool = True) -> bytes:
    """A MyJCB CSV: summary lines (lines 1-3), header (line 4), then ``rows`` (from line 5)."""
    head = [*JCB_SUMMARY_LINES] if summary else []
    return csv_bytes([*head, JCB_HEADER_LINE, *rows])


def amex_row(
    *,
    use_date: str = "2026/11/01",
    posted: str = "2026/11/03",
    merchant: str = "アスクル",
    holder: str = "山田 太郎",
    card: str = BASIC,
    amount: str = '"1,000"',
    foreign: str = "",
    rate: str = "",
) -> str:
    """One Amex data line; cells are written as given (quote them yourself)."""
    return ",".join([use_date, posted, merchant, holder, card, amount, foreign, rate])


def jcb_row(
    *,
    user: str = "本人 山田 太郎",
    category: str = "ショッピング取組(国内)",
    use_date: str = "2026/11/01",
    merchant: str = "ヨドバシカメラ",
    amount: str = "980",
    kind: str = "1回払い",
    instalment: str = "",
    correction: str = "",
    payment: str = "980",
    region: str = "国内",
    note: str = "",
    remarks: str = "",
) -> str:
    """One MyJCB data line; cells are written as given (quote them yourself)."""
    cells = [user, category, use_date, merchant, amount, kind, instalment]
    return ",".join([*cells, correction, payment, region, note, remarks])
