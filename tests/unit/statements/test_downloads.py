"""Statement files as people download them, written from the issuers' formats.

Each kind of row an Amex Japan or MyJCB download holds, and each way a spreadsheet
saves the file again, read by the importers.
"""

from __future__ import annotations

import datetime as dt

import pytest

from connectors.statements import (
    MalformedRow,
    WrongIssuer,
    parse_amex_csv,
    parse_jcb_csv,
    parse_statement_file,
)
from tests.support.statement_files import (
    AMEX,
    JCB,
    SPREADSHEET_RESAVES,
    DownloadFormat,
    Resave,
    Row,
    write,
    write_with_lines,
)

BASIC = "XXXX-XXXXXX-31001"
SUPPLEMENTARY = "XXXX-XXXXXX-31002"
DAY = dt.date(2026, 11, 1)


def amex_rows() -> list[Row]:
    return [
        Row("purchase", DAY, "アスクル", 12_345, BASIC, "YAMADA TARO"),
        Row("payment", DAY + dt.timedelta(days=9), "口座振替によるお支払い", -98_000),
        Row("foreign", DAY + dt.timedelta(days=2), "AWS", 1_866, BASIC, "YAMADA TARO",
            ("12.34", "USD", "151.23")),
        Row("purchase", DAY + dt.timedelta(days=3), "スターバックス", 550, SUPPLEMENTARY,
            "YAMADA HANAKO"),
        Row("adjustment", DAY + dt.timedelta(days=4), "アスクル 返品", -1_200, BASIC,
            "YAMADA TARO"),
    ]  # fmt: skip


def jcb_rows() -> list[Row]:
    return [
        Row("purchase", DAY, "ヨドバシカメラ", 54_800, "本人"),
        Row("purchase", DAY + dt.timedelta(days=1), "セブン-イレブン", 648, "家族1"),
        Row("foreign", DAY + dt.timedelta(days=2), "GITHUB", 1_512, "本人", "",
            ("10.00", "USD", "151.20")),
        Row("adjustment", DAY + dt.timedelta(days=3), "ユニクロ", -2_990, "家族1"),
        Row("purchase", DAY + dt.timedelta(days=4), "ローソン", 320, "家族2"),
    ]  # fmt: skip


def test_amex_payment_row_is_read_as_a_payment_of_no_card() -> None:
    # One payment row used to refuse the whole file, asking for a card number.
    written = write_with_lines(AMEX, amex_rows())

    parsed = parse_amex_csv(written.data)

    payments = parsed.group("")
    assert payments is not None
    assert [(e.kind, e.line, e.statement.amount_jpy) for e in payments.entries] == [
        ("payment", written.lines[1], -98_000)
    ]
    basic = parsed.group(BASIC)
    assert basic is not None and all(e.kind != "payment" for e in basic.entries)


def test_amex_refund_is_an_adjustment_of_its_card() -> None:
    basic = parse_amex_csv(write(AMEX, amex_rows())).group(BASIC)

    assert basic is not None
    assert [(e.statement.merchant, e.kind) for e in basic.entries] == [
        ("アスクル", "purchase"),
        ("AWS", "purchase"),
        ("アスクル 返品", "adjustment"),
    ]
    assert basic.entries[-1].statement.amount_jpy == -1_200


def test_amex_foreign_row_keeps_its_currency() -> None:
    basic = parse_amex_csv(write(AMEX, amex_rows())).group(BASIC)

    assert basic is not None
    aws = basic.rows[1]
    assert (aws.amount_jpy, aws.foreign_amount, aws.foreign_currency) == (1_866, "12.34", "USD")


def test_amex_supplementary_card_rows_stay_apart() -> None:
    # R15: basic and supplementary cards in one file, two groups.
    parsed = parse_amex_csv(write(AMEX, amex_rows()))

    assert [g.card_ref for g in parsed.groups] == [BASIC, "", SUPPLEMENTARY]
    supplementary = parsed.group(SUPPLEMENTARY)
    assert supplementary is not None and supplementary.holder_name == "YAMADA HANAKO"


def test_amex_payment_written_with_a_card_number_is_still_a_payment() -> None:
    rows = [Row("adjustment", DAY, "お支払いありがとうございます", -5_000, BASIC, "YAMADA TARO")]

    parsed = parse_amex_csv(write(AMEX, rows))

    assert [e.kind for e in parsed.groups[0].entries] == ["payment"]


def test_amex_charge_without_card_number_names_its_line() -> None:
    rows = [*amex_rows(), Row("payment", DAY, "年会費", 3_300)]
    written = write_with_lines(AMEX, rows)

    with pytest.raises(MalformedRow) as caught:
        parse_amex_csv(written.data)

    assert caught.value.line == written.lines[-1]
    assert caught.value.reason == "missing_card_number"
    assert caught.value.column == "会員番号 #"


def test_myjcb_notes_after_the_table_are_skipped() -> None:
    data = write(JCB, jcb_rows())
    assert "【".encode("cp932") in data  # the format ends with MyJCB's notes

    parsed = parse_jcb_csv(data)

    assert len(parsed.rows) == len(jcb_rows())


def test_myjcb_text_after_the_notes_is_not_read_either() -> None:
    data = write(JCB, jcb_rows()) + "2026/11/30,のご案内,,\r\n".encode("cp932")

    assert len(parse_jcb_csv(data).rows) == len(jcb_rows())


def test_myjcb_users_are_the_holder_and_numbered_family_members() -> None:
    parsed = parse_jcb_csv(write(JCB, jcb_rows()))

    assert [(g.card_ref, g.relation, g.family_number) for g in parsed.groups] == [
        ("本人", "principal", None),
        ("家族1", "family", 1),
        ("家族2", "family", 2),
    ]
    # 家族1 is a number, not a name: the name is the issuer's, found from the card.
    assert {g.holder_name for g in parsed.groups} == {None}
    assert {r.holder_name for r in parsed.rows} == {None}


def test_myjcb_user_label_with_a_name_keeps_the_name() -> None:
    rows = [Row("purchase", DAY, "A", 100, "家族1 山田 花子"), Row("purchase", DAY, "B", 1, "本人")]

    parsed = parse_jcb_csv(write(JCB, rows))

    family = parsed.groups[0]
    assert (family.relation, family.family_number, family.holder_name) == ("family", 1, "山田 花子")


def test_myjcb_correction_is_an_adjustment() -> None:
    parsed = parse_jcb_csv(write(JCB, jcb_rows()))

    family = parsed.group("家族1")
    assert family is not None
    assert [(e.kind, e.correction) for e in family.entries] == [
        ("purchase", False),
        ("adjustment", True),
    ]


@pytest.mark.parametrize("resave", SPREADSHEET_RESAVES.values(), ids=SPREADSHEET_RESAVES.keys())
@pytest.mark.parametrize("fmt", [AMEX, JCB], ids=["amex", "jcb"])
def test_a_spreadsheet_resave_reads_as_the_download(resave: Resave, fmt: DownloadFormat) -> None:
    rows = amex_rows() if fmt is AMEX else jcb_rows()

    again = parse_statement_file(write(fmt, rows, resave), fmt.issuer)
    downloaded = parse_statement_file(write(fmt, rows), fmt.issuer)

    assert again.groups == downloaded.groups


@pytest.mark.parametrize("resave", SPREADSHEET_RESAVES.values(), ids=SPREADSHEET_RESAVES.keys())
def test_a_broken_row_of_a_resaved_file_names_its_line(resave: Resave) -> None:
    rows = jcb_rows()
    written = write_with_lines(JCB, rows, resave)
    line = written.lines[2]
    text = written.data.decode("utf-8-sig" if resave.encoding == "utf-8" else "cp932")
    broken = text.replace("2026/11/03", "2026/13/45").encode(resave.encoding)

    with pytest.raises(MalformedRow) as caught:
        parse_jcb_csv(broken)

    assert (caught.value.line, caught.value.reason) == (line, "bad_date")


@pytest.mark.parametrize(
    ("fmt", "expected"), [(AMEX, "jcb"), (JCB, "amex")], ids=["amex file", "jcb file"]
)
def test_a_file_of_the_other_issuer_is_named_as_such(fmt: DownloadFormat, expected: str) -> None:
    data = write(fmt, amex_rows() if fmt is AMEX else jcb_rows())

    with pytest.raises(WrongIssuer) as caught:
        parse_statement_file(data, expected)  # type: ignore[arg-type]

    assert (caught.value.found, caught.value.expected) == (fmt.issuer, expected)
