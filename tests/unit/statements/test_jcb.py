"""MyJCB CSV import: summary, grouping per card user (R9), foreign amounts, corrections."""

from __future__ import annotations

import datetime as dt

import pytest

from connectors.statements import (
    JcbSummary,
    MalformedRow,
    UnknownFormat,
    parse_jcb_csv,
)

from .helpers import JCB_HEADER_LINE, csv_bytes, jcb_file, jcb_fixture, jcb_row

HOLDER = "本人 山田 太郎"
FAMILY = "家族 山田 花子"


def test_summary_lines_are_read() -> None:
    parsed = parse_jcb_csv(jcb_fixture())

    assert parsed.issuer == "jcb"
    assert parsed.encoding == "cp932"
    assert parsed.summary == JcbSummary(payment_date=dt.date(2026, 12, 10), total_jpy=123456)


def test_rows_are_grouped_per_card_user() -> None:
    # R9: one MyJCB ID covers every user's card; each user's rows stay together.
    parsed = parse_jcb_csv(jcb_fixture())

    assert [g.card_ref for g in parsed.groups] == [HOLDER, FAMILY]
    holder, family = parsed.groups
    assert [r.merchant for r in holder.rows] == [
        "ヨドバシカメラ",
        "GITHUB INC",
        "PARIS CAFE",
        "ビックカメラ",
    ]
    assert [r.merchant for r in family.rows] == ["セブンイレブン", "ユニクロ"]
    assert [e.line for e in family.entries] == [6, 9]
    assert {r.card_ref for r in family.rows} == {FAMILY}
    assert (holder.holder_name, family.holder_name) == ("山田 太郎", "山田 花子")
    assert {r.holder_name for r in family.rows} == {"山田 花子"}


def test_user_labels_typed_with_other_spaces_are_one_user() -> None:
    data = jcb_file(
        jcb_row(user="家族 山田 花子", merchant="A"),
        jcb_row(user="家族　山田　花子", merchant="B"),  # full-width spaces
        jcb_row(user=" 家族  山田 花子 ", merchant="C"),
    )

    parsed = parse_jcb_csv(data)

    assert [(g.card_ref, len(g.rows)) for g in parsed.groups] == [(FAMILY, 3)]


def test_row_fields_map_to_issuer_statement() -> None:
    first = parse_jcb_csv(jcb_fixture()).groups[0].rows[0]

    assert first.transaction_id is None
    assert first.use_date == dt.date(2026, 11, 1)
    assert first.posted_date is None  # MyJCB shows no processing date
    assert first.amount_jpy == 54800
    assert first.status == "confirmed"


def test_overseas_row_takes_its_foreign_amount_from_the_note() -> None:
    holder = parse_jcb_csv(jcb_fixture()).groups[0]
    github, paris = holder.rows[1], holder.rows[2]

    assert (github.foreign_amount, github.foreign_currency) == ("10.00", "USD")
    # An overseas row without a note is fine: no foreign amount.
    assert (paris.foreign_amount, paris.foreign_currency) == (None, None)


@pytest.mark.parametrize(
    ("region", "note", "expected"),
    [
        ("海外", "USD 12.34", ("12.34", "USD")),
        ("海外", "12.34 USD", ("12.34", "USD")),
        ("海外", "現地利用額 EUR 1,234.56 換算レート 160.10", ("1234.56", "EUR")),
        ("海外", "換算レート 151.20 USD 10.00", ("10.00", "USD")),
        ("海外", "JPY 1,512", (None, None)),
        ("海外", "お問い合わせ先 0120-000-000", (None, None)),
        ("国内", "ETC 1234", (None, None)),  # domestic notes are never foreign amounts
        ("", "USD 12.34", (None, None)),
    ],
)
def test_foreign_amount_in_note(
    region: str, note: str, expected: tuple[str | None, str | None]
) -> None:
    row = parse_jcb_csv(jcb_file(jcb_row(region=region, note=f'"{note}"'))).rows[0]

    assert (row.foreign_amount, row.foreign_currency) == expected


def test_correction_sign_is_kept_with_the_amount_as_written() -> None:
    family = parse_jcb_csv(jcb_fixture()).groups[1]
    refund = family.entries[1]

    assert refund.correction is True
    assert refund.statement.amount_jpy == -2990
    assert family.entries[0].correction is False


def test_instalment_payment_amount_is_kept_apart_from_the_use_amount() -> None:
    purchase = parse_jcb_csv(jcb_fixture()).groups[0].entries[3]

    assert purchase.statement.amount_jpy == 66000
    assert purchase.payment_amount_jpy == 22000


def test_file_without_summary_lines() -> None:
    parsed = parse_jcb_csv(jcb_file(jcb_row(amount='"1,980"'), summary=False))

    assert parsed.summary is None
    assert [r.amount_jpy for r in parsed.rows] == [1980]
    assert parsed.groups[0].entries[0].line == 2


def test_header_only_file_is_valid_and_keeps_its_summary() -> None:
    parsed = parse_jcb_csv(jcb_file())

    assert parsed.groups == ()
    assert parsed.summary is not None
    assert parsed.summary.total_jpy == 123456


def test_other_summary_lines_are_ignored() -> None:
    data = csv_bytes(
        [
            "今回のお支払日,2026/12/10",
            "うち国内ご利用金額合計(￥),980",
            "",
            JCB_HEADER_LINE,
            jcb_row(),
        ]
    )

    parsed = parse_jcb_csv(data)

    assert parsed.summary == JcbSummary(payment_date=dt.date(2026, 12, 10), total_jpy=None)
    assert len(parsed.rows) == 1


def test_lf_and_utf8_give_the_same_rows_as_the_download() -> None:
    text = jcb_fixture().decode("cp932").replace("\r\n", "\n")

    assert parse_jcb_csv(text.encode("utf-8")).groups == parse_jcb_csv(jcb_fixture()).groups


@pytest.mark.parametrize(
    ("row", "column_index", "column", "reason"),
    [
        (jcb_row(user=""), 1, "ご利用者", "missing_value"),
        (jcb_row(use_date="2026/11/31"), 3, "ご利用日", "bad_date"),
        (jcb_row(merchant=""), 4, "ご利用先など", "missing_value"),
        (jcb_row(amount="１，２００円"), 5, "ご利用金額(￥)", "bad_amount"),
        (jcb_row(payment="abc"), 9, "お支払い金額(￥)", "bad_amount"),
        (jcb_row(region="US"), 10, "国内／海外", "bad_region"),
    ],
)
def test_malformed_cell_names_line_and_column(
    row: str, column_index: int, column: str, reason: str
) -> None:
    # Lines 1-3 summary, 4 header, 5-6 good rows, 7 the bad one.
    data = jcb_file(jcb_row(), jcb_row(), row)

    with pytest.raises(MalformedRow) as info:
        parse_jcb_csv(data)

    error = info.value
    assert (error.line, error.column_index, error.column, error.reason) == (
        7,
        column_index,
        column,
        reason,
    )


def test_wrong_column_count() -> None:
    short = ",".join(jcb_row().split(",")[:11])

    with pytest.raises(MalformedRow) as info:
        parse_jcb_csv(jcb_file(jcb_row(), short))

    assert (info.value.line, info.value.reason) == (6, "column_count")
    assert "11 columns where 12 are expected" in str(info.value)


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    [
        (["今回のお支払日,12月10日"], 1, "bad_date"),
        (["今回のお支払日,2026/12/10", "今回のお支払金額合計(￥),たくさん"], 2, "bad_amount"),
    ],
)
def test_malformed_summary_line(lines: list[str], line: int, reason: str) -> None:
    data = csv_bytes([*lines, "", JCB_HEADER_LINE, jcb_row()])

    with pytest.raises(MalformedRow) as info:
        parse_jcb_csv(data)

    assert (info.value.line, info.value.column_index, info.value.reason) == (line, 2, reason)
    assert info.value.column is not None
    assert info.value.column.startswith("今回のお支払")


def test_edited_header_is_reported_where_it_is() -> None:
    header = JCB_HEADER_LINE.replace("ご利用先など", "利用先")
    data = csv_bytes(["今回のお支払日,2026/12/10", "", header, jcb_row()])

    with pytest.raises(UnknownFormat) as info:
        parse_jcb_csv(data)

    assert info.value.code == "statement_file_unknown_format"
    assert (info.value.line, info.value.column_index, info.value.column) == (3, 4, "ご利用先など")


def test_file_is_refused_whole() -> None:
    data = jcb_file(jcb_row(), jcb_row(user=FAMILY), jcb_row(amount="x"))

    with pytest.raises(MalformedRow) as info:
        parse_jcb_csv(data)

    assert info.value.line == 7
    assert info.value.as_dict() == {
        "code": "statement_file_malformed_row",
        "line": 7,
        "column": "ご利用金額(￥)",
        "column_index": 5,
        "reason": "bad_amount",
        "value": "x",
    }
