"""Amex Japan CSV import: grouping per card (R15), amounts, malformed rows."""

from __future__ import annotations

import datetime as dt

import pytest

from connectors.statements import (
    MalformedRow,
    StatementFileError,
    parse_amex_csv,
)

from .helpers import (
    AMEX_HEADER_LINE,
    BASIC,
    SUPPLEMENTARY,
    amex_file,
    amex_fixture,
    amex_row,
    csv_bytes,
)


def test_download_is_read_with_encoding_and_issuer() -> None:
    parsed = parse_amex_csv(amex_fixture())

    assert parsed.issuer == "amex"
    assert parsed.encoding == "cp932"
    assert parsed.summary is None
    assert len(parsed.rows) == 5


def test_supplementary_card_rows_form_their_own_group() -> None:
    # R15: the basic card's account must never import the supplementary card's rows.
    parsed = parse_amex_csv(amex_fixture())

    assert [g.card_ref for g in parsed.groups] == [BASIC, SUPPLEMENTARY]
    basic, supplementary = parsed.groups
    assert [r.merchant for r in basic.rows] == ["アスクル", "AWS EMEA", "アスクル 返品"]
    assert [r.merchant for r in supplementary.rows] == [
        "ＡＭＡＺＯＮ．ＣＯ．ＪＰ",
        "スターバックス",
    ]
    assert {r.card_ref for r in basic.rows} == {BASIC}
    assert {r.card_ref for r in supplementary.rows} == {SUPPLEMENTARY}
    assert (basic.holder_name, supplementary.holder_name) == ("山田 太郎", "山田 花子")


def test_supplementary_card_of_the_same_holder_is_still_separate() -> None:
    # The holder name is no key: one person may hold both cards (R15).
    data = amex_file(
        amex_row(card=BASIC, merchant="A"),
        amex_row(card=SUPPLEMENTARY, merchant="B"),
        amex_row(card=BASIC, merchant="C"),
    )

    parsed = parse_amex_csv(data)

    assert [(g.card_ref, [r.merchant for r in g.rows]) for g in parsed.groups] == [
        (BASIC, ["A", "C"]),
        (SUPPLEMENTARY, ["B"]),
    ]
    assert parsed.group(SUPPLEMENTARY) is parsed.groups[1]
    assert parsed.group("XXXX-XXXXXX-39999") is None


def test_row_fields_map_to_issuer_statement() -> None:
    first = parse_amex_csv(amex_fixture()).groups[0].rows[0]

    assert first.transaction_id is None  # files carry no transaction id
    assert first.use_date == dt.date(2026, 11, 1)
    assert first.posted_date == dt.date(2026, 11, 3)  # データ処理日
    assert first.amount_jpy == 12345
    assert first.status == "confirmed"
    assert first.holder_name == "山田 太郎"
    assert (first.foreign_amount, first.foreign_currency) == (None, None)


def test_refund_keeps_its_minus_sign() -> None:
    basic = parse_amex_csv(amex_fixture()).group(BASIC)

    assert basic is not None
    assert [r.amount_jpy for r in basic.rows] == [12345, 1866, -1200]


def test_foreign_amount_is_decimal_text_with_currency() -> None:
    aws = parse_amex_csv(amex_fixture()).groups[0].rows[1]

    assert aws.foreign_amount == "12.34"
    assert aws.foreign_currency == "USD"
    assert aws.amount_jpy == 1866


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('"12.34 USD"', ("12.34", "USD")),
        ('"1,234.50 EUR"', ("1234.50", "EUR")),
        ('"-12.34 USD"', ("-12.34", "USD")),
        ('"USD 12.34"', ("12.34", "USD")),
        ("", (None, None)),
    ],
)
def test_foreign_amount_forms(cell: str, expected: tuple[str | None, str | None]) -> None:
    row = parse_amex_csv(amex_file(amex_row(foreign=cell, rate="151.23"))).rows[0]

    assert (row.foreign_amount, row.foreign_currency) == expected


def test_entries_remember_their_line_numbers() -> None:
    parsed = parse_amex_csv(amex_fixture())

    assert [e.line for e in parsed.groups[0].entries] == [2, 4, 5]
    assert [e.line for e in parsed.groups[1].entries] == [3, 6]


def test_blank_lines_are_skipped_and_numbering_follows_the_file() -> None:
    data = amex_file(amex_row(merchant="A"), "", ",,,,,,,", amex_row(merchant="B"), "", "")

    parsed = parse_amex_csv(data)

    assert [(e.line, e.statement.merchant) for e in parsed.groups[0].entries] == [
        (2, "A"),
        (5, "B"),
    ]


def test_header_only_file_is_valid_and_empty() -> None:
    parsed = parse_amex_csv(amex_file())

    assert parsed.issuer == "amex"
    assert parsed.groups == ()
    assert parsed.rows == ()


def test_lf_and_crlf_give_the_same_result() -> None:
    lines = [AMEX_HEADER_LINE, amex_row(merchant="A"), amex_row(amount="-500")]

    crlf = parse_amex_csv(csv_bytes(lines, newline="\r\n"))
    lf = parse_amex_csv(csv_bytes(lines, newline="\n"))

    assert crlf.groups == lf.groups
    assert [r.amount_jpy for r in lf.rows] == [1000, -500]


def test_spreadsheet_resave_variants_are_accepted() -> None:
    # A spreadsheet rewrites dates without leading zeros, drops the quotes of
    # small amounts and may add a trailing comma to every line.
    data = csv_bytes(
        [
            AMEX_HEADER_LINE + ",",
            "2026/1/5,2026/1/7,アスクル,山田 太郎,XXXX-XXXXXX-31001,980,,,",
            "2026/1/6,,アスクル,,XXXX-XXXXXX-31001,12345,,,",
        ]
    )

    rows = parse_amex_csv(data).rows

    assert [(r.use_date, r.posted_date, r.amount_jpy) for r in rows] == [
        (dt.date(2026, 1, 5), dt.date(2026, 1, 7), 980),
        (dt.date(2026, 1, 6), None, 12345),
    ]
    assert rows[1].holder_name is None


@pytest.mark.parametrize(
    ("row", "column_index", "column", "reason"),
    [
        (amex_row(use_date="2026/13/01"), 1, "ご利用日", "bad_date"),
        (amex_row(use_date="11/01/2026"), 1, "ご利用日", "bad_date"),
        (amex_row(use_date=""), 1, "ご利用日", "missing_value"),
        (amex_row(posted="2026/02/30"), 2, "データ処理日", "bad_date"),
        (amex_row(merchant=""), 3, "ご利用内容", "missing_value"),
        (amex_row(card="山田 太郎"), 5, "会員番号 #", "bad_card_number"),
        (amex_row(amount='"12,34"'), 6, "金額", "bad_amount"),
        (amex_row(amount="1200.50"), 6, "金額", "bad_amount"),
        (amex_row(amount="千円"), 6, "金額", "bad_amount"),
        (amex_row(foreign='"12.34"'), 7, "海外通貨利用金額", "bad_foreign_amount"),
        (amex_row(rate="abc"), 8, "換算レート", "bad_rate"),
    ],
)
def test_malformed_cell_names_line_and_column(
    row: str, column_index: int, column: str, reason: str
) -> None:
    data = amex_file(amex_row(merchant="ok"), amex_row(merchant="ok"), row)

    with pytest.raises(MalformedRow) as info:
        parse_amex_csv(data)

    error = info.value
    assert error.code == "statement_file_malformed_row"
    assert (error.line, error.column_index, error.column, error.reason) == (
        4,
        column_index,
        column,
        reason,
    )
    assert f"line 4, column {column_index} ({column})" in str(error)


@pytest.mark.parametrize(
    "row",
    [
        "2026/11/01,2026/11/03,アスクル,山田 太郎,XXXX-XXXXXX-31001,980,",  # 7 columns
        amex_row() + ",surplus",  # text beyond the last column: the row is shifted
        "2026/11/01",
    ],
)
def test_wrong_column_count(row: str) -> None:
    with pytest.raises(MalformedRow) as info:
        parse_amex_csv(amex_file(amex_row(), row))

    assert info.value.line == 3
    assert info.value.reason == "column_count"
    assert "8 are expected" in str(info.value)


def test_unquoted_amount_with_separator_shifts_columns_and_is_refused() -> None:
    # 1,200 without quotes splits into two cells: a file edited by hand.
    row = "2026/11/01,2026/11/03,アスクル,山田 太郎,XXXX-XXXXXX-31001,1,200,,"

    with pytest.raises(MalformedRow) as info:
        parse_amex_csv(amex_file(row))

    assert (info.value.line, info.value.reason) == (2, "column_count")


def test_broken_quoting_names_its_line() -> None:
    data = amex_file(amex_row(), '2026/11/02,2026/11/04,"アスクル"x,山田 太郎,X-31001,980,,')

    with pytest.raises(MalformedRow) as info:
        parse_amex_csv(data)

    assert (info.value.line, info.value.reason) == (3, "bad_csv")


def test_file_is_refused_whole_at_its_first_bad_line() -> None:
    # All or nothing: good rows before the bad one are not returned either, and
    # the error points at the first bad line, not a later one.
    good = [amex_row(merchant=f"shop {i}") for i in range(5)]
    data = amex_file(*good, amex_row(amount="x"), amex_row(use_date="bad"))

    with pytest.raises(StatementFileError) as info:
        parse_amex_csv(data)

    assert isinstance(info.value, MalformedRow)
    assert info.value.line == 7
    assert info.value.column == "金額"
    assert info.value.value == "x"
    # The same file without its bad lines reads completely.
    assert len(parse_amex_csv(amex_file(*good)).rows) == 5


def test_first_bad_cell_of_a_row_is_the_one_reported() -> None:
    row = amex_row(use_date="bad", amount="bad")

    with pytest.raises(MalformedRow) as info:
        parse_amex_csv(amex_file(row))

    assert info.value.column_index == 1
