"""Whole-file concerns: issuer detection, encodings, empty and foreign files, error codes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from backend.service.ports import IssuerName
from connectors.statements import (
    BadEncoding,
    EmptyFile,
    MalformedRow,
    ParsedStatementFile,
    StatementFileError,
    UnknownFormat,
    WrongIssuer,
    parse_amex_csv,
    parse_jcb_csv,
    parse_statement_file,
)

from .helpers import (
    AMEX_HEADER_LINE,
    BASIC,
    SUPPLEMENTARY,
    amex_fixture,
    amex_row,
    csv_bytes,
    jcb_fixture,
)


def test_issuer_is_detected_from_the_header() -> None:
    assert parse_statement_file(amex_fixture()).issuer == "amex"
    assert parse_statement_file(jcb_fixture()).issuer == "jcb"


def test_detected_and_explicit_issuer_give_the_same_result() -> None:
    assert parse_statement_file(amex_fixture()) == parse_amex_csv(amex_fixture())
    assert parse_statement_file(jcb_fixture(), "jcb") == parse_jcb_csv(jcb_fixture())


@pytest.mark.parametrize("source", [amex_fixture, jcb_fixture])
@pytest.mark.parametrize(
    ("encode", "encoding"),
    [
        (lambda text: text.encode("utf-8"), "utf-8"),
        (lambda text: text.encode("utf-8-sig"), "utf-8-sig"),
        (lambda text: text.encode("cp932"), "cp932"),
    ],
)
def test_every_encoding_gives_the_same_rows(
    source: Callable[[], bytes], encode: Callable[[str], bytes], encoding: str
) -> None:
    downloaded = source()
    reencoded = encode(downloaded.decode("cp932"))

    parsed = parse_statement_file(reencoded)

    assert parsed.encoding == encoding
    assert parsed.groups == parse_statement_file(downloaded).groups
    assert parsed.summary == parse_statement_file(downloaded).summary
    assert len(parsed.rows) > 0


def test_utf8_bom_does_not_spoil_the_first_header_cell() -> None:
    parsed = parse_statement_file(csv_bytes([AMEX_HEADER_LINE], encoding="utf-8-sig"), "amex")

    assert parsed.encoding == "utf-8-sig"
    assert parsed.groups == ()


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n", b"\xef\xbb\xbf", b",,,\n \n"])
def test_empty_file_is_refused_clearly(data: bytes) -> None:
    with pytest.raises(EmptyFile) as info:
        parse_statement_file(data)

    assert info.value.code == "statement_file_empty"
    assert isinstance(info.value, UnknownFormat)
    assert "empty" in str(info.value)


def test_amex_file_given_as_jcb_is_the_wrong_issuer() -> None:
    with pytest.raises(WrongIssuer) as info:
        parse_statement_file(amex_fixture(), "jcb")

    error = info.value
    assert error.code == "statement_file_wrong_issuer"
    assert (error.expected, error.found, error.line) == ("jcb", "amex", 1)
    assert "Amex Japan CSV, not a MyJCB CSV" in str(error)


def test_jcb_file_given_as_amex_is_the_wrong_issuer() -> None:
    with pytest.raises(WrongIssuer) as info:
        parse_amex_csv(jcb_fixture())

    # The MyJCB header sits below three summary lines.
    assert (info.value.expected, info.value.found, info.value.line) == ("amex", "jcb", 4)
    assert info.value.as_dict()["found"] == "jcb"


@pytest.mark.parametrize("issuer", [None, "amex", "jcb"])
def test_unknown_header_is_refused(issuer: IssuerName | None) -> None:
    data = csv_bytes(["", "日付,金額,店名", "2026/11/01,980,アスクル"])

    with pytest.raises(UnknownFormat) as info:
        parse_statement_file(data, issuer)

    assert type(info.value) is UnknownFormat
    assert info.value.code == "statement_file_unknown_format"
    assert info.value.line == 2  # the first line that is not blank


def test_amex_header_with_a_renamed_column_names_that_column() -> None:
    header = AMEX_HEADER_LINE.replace("金額,", "ご利用金額,")

    with pytest.raises(UnknownFormat) as info:
        parse_amex_csv(csv_bytes([header, amex_row()]))

    assert (info.value.line, info.value.column_index, info.value.column) == (1, 6, "金額")


def test_amex_header_with_a_missing_column_is_refused() -> None:
    header = AMEX_HEADER_LINE.rsplit(",", 1)[0]

    with pytest.raises(UnknownFormat) as info:
        parse_statement_file(csv_bytes([header, amex_row()]), "amex")

    assert (info.value.line, info.value.column) == (1, "換算レート")


def test_header_variants_of_a_spreadsheet_resave_are_recognised() -> None:
    # Half-width parentheses and slash, full-width space: the same columns.
    header = (
        "ご利用者,カテゴリ,ご利用日,ご利用先など,ご利用金額(¥),支払区分,今回回数,"
        "訂正サイン,お支払い金額（￥）,国内/海外,摘要,備考"
    )
    data = csv_bytes([header, "本人 山田 太郎,,2026/11/01,店,980,,,,980,国内,,"], encoding="utf-8")

    parsed = parse_statement_file(data)

    assert parsed.issuer == "jcb"
    assert [r.amount_jpy for r in parsed.rows] == [980]


def _cp932_with_bad_bytes_on_line_3() -> bytes:
    lines = csv_bytes([AMEX_HEADER_LINE, amex_row()]) + b"\r\n"
    return lines + b"2026/11/02,2026/11/04,\x81\x20\x81,x,X-31001,980,,\r\n"


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (_cp932_with_bad_bytes_on_line_3(), 3),
        (b"\xef\xbb\xbf" + AMEX_HEADER_LINE.encode("utf-8") + b"\n\xff\xfe\xfd\n", 2),
        ("ご利用日,金額".encode("utf-16"), 1),
        (b"PK\x03\x04\x14\x00\x06\x00", 1),  # a zip (an .xlsx saved by mistake)
        (csv_bytes([AMEX_HEADER_LINE, amex_row()]) + b"\r\n\xff", 3),
    ],
)
def test_undecodable_bytes_are_refused_with_their_line(data: bytes, line: int) -> None:
    with pytest.raises(BadEncoding) as info:
        parse_statement_file(data)

    assert info.value.code == "statement_file_bad_encoding"
    assert info.value.line == line
    assert "UTF-8" in str(info.value)


def test_result_is_immutable() -> None:
    parsed = parse_statement_file(amex_fixture())

    assert isinstance(parsed, ParsedStatementFile)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.groups = ()  # type: ignore[misc]
    assert isinstance(parsed.groups, tuple)
    assert [g.card_ref for g in parsed.groups] == [BASIC, SUPPLEMENTARY]


@pytest.mark.parametrize(
    ("error_type", "code"),
    [
        (StatementFileError, "statement_file_error"),
        (BadEncoding, "statement_file_bad_encoding"),
        (UnknownFormat, "statement_file_unknown_format"),
        (EmptyFile, "statement_file_empty"),
        (WrongIssuer, "statement_file_wrong_issuer"),
        (MalformedRow, "statement_file_malformed_row"),
    ],
)
def test_error_codes_are_stable_and_share_one_base(
    error_type: type[StatementFileError], code: str
) -> None:
    # The back end keys its message catalogs on these codes: changing one is a
    # breaking change.
    assert error_type.code == code
    assert issubclass(error_type, StatementFileError)


def test_error_text_says_where_and_what_to_do() -> None:
    with pytest.raises(MalformedRow) as info:
        parse_statement_file(csv_bytes([AMEX_HEADER_LINE, amex_row(use_date="2026/00/10")]))

    text = str(info.value)
    assert text.startswith("line 2, column 1 (ご利用日): '2026/00/10' is not a date")
    assert "download the file again" in text
