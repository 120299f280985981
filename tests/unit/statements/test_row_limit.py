"""A statement file longer than the row limit is refused while it is read."""

from __future__ import annotations

import pytest

from connectors.statements import AMEX_HEADER, TooManyRows, parse_statement_file

ROW = '2026/11/01,2026/11/03,アスクル,山田 太郎,XXXX-XXXXXX-31001,"12,345",,\r\n'


def amex_file(rows: int, line_end: str = "\r\n") -> bytes:
    text = ",".join(AMEX_HEADER) + "\r\n" + ROW * rows
    return text.replace("\r\n", line_end).encode("cp932")


def test_a_file_within_the_limit_is_read_whole() -> None:
    parsed = parse_statement_file(amex_file(100), "amex", max_rows=100)
    assert sum(len(g.rows) for g in parsed.groups) == 100


@pytest.mark.parametrize("line_end", ["\r\n", "\n", "\r"])
def test_a_file_over_the_limit_names_the_limit(line_end: str) -> None:
    with pytest.raises(TooManyRows) as refused:
        parse_statement_file(amex_file(200, line_end), "amex", max_rows=100)
    assert refused.value.as_dict()["max_rows"] == 100
    assert refused.value.code == "statement_file_too_many_rows"


@pytest.mark.parametrize("line_end", ["\n", "\r"])
def test_other_line_ends_read_the_same(line_end: str) -> None:
    assert parse_statement_file(amex_file(3, line_end), "amex") == parse_statement_file(
        amex_file(3), "amex"
    )
