"""Errors of the statement-file importers.

One tree for the whole package. Every error carries a stable ``code`` that the
back end maps to user-facing text in its message catalogs; ``str()`` is English
text for developers and logs. Where a position is known, ``line`` is the 1-based
row number as a spreadsheet shows it, and ``column`` / ``column_index`` name the
cell (header name and 1-based position)::

    StatementFileError   statement_file_error
    ├── BadEncoding      statement_file_bad_encoding    not UTF-8 (BOM or not) nor CP932
    ├── UnknownFormat    statement_file_unknown_format  no Amex or MyJCB header where due
    │   ├── EmptyFile    statement_file_empty           nothing but blank lines
    │   └── WrongIssuer  statement_file_wrong_issuer    the other issuer's file was given
    └── MalformedRow     statement_file_malformed_row   a row or cell that cannot be read

``MalformedRow.reason`` says what was wrong with the cell, in a stable word the
catalogs may also key on: ``bad_csv``, ``column_count``, ``missing_value``,
``bad_date``, ``bad_amount``, ``bad_foreign_amount``, ``bad_rate``,
``bad_card_number``, ``missing_card_number`` (an Amex row of no card that is not
a payment), ``bad_region``.
"""

from __future__ import annotations

from typing import Any

_VALUE_PREVIEW = 40  # long enough to recognise the cell, short enough for a log line


class StatementFileError(Exception):
    """Base of every error a statement-file importer raises.

    Attributes:
        code: Stable identifier the back end renders from its catalogs.
        line: 1-based row number of the problem, or None when it concerns the file.
        column: Header name of the offending cell, when one is known.
        column_index: 1-based position of the offending cell, when one is known.
        hint: What the person can do about it, in English (catalogs hold the real text).
    """

    code = "statement_file_error"
    hint = "Download the statement file again from the card issuer's website and upload it as is."

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: str | None = None,
        column_index: int | None = None,
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.column_index = column_index
        super().__init__(self._render())

    def _where(self) -> str:
        parts: list[str] = []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.column_index is not None:
            name = f" ({self.column})" if self.column else ""
            parts.append(f"column {self.column_index}{name}")
        elif self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def _render(self) -> str:
        where = self._where()
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.message}. {self.hint}"

    def as_dict(self) -> dict[str, Any]:
        """The error as plain data, for an API response or a catalog lookup.

        Returns:
            A dict with ``code``, ``line``, ``column`` and ``column_index``, plus
            what a subclass adds (``reason``, ``value``, ``expected``, ``found``).
        """
        return {
            "code": self.code,
            "line": self.line,
            "column": self.column,
            "column_index": self.column_index,
        }


class BadEncoding(StatementFileError):
    """The bytes are neither UTF-8 (with or without BOM) nor CP932 (Shift_JIS)."""

    code = "statement_file_bad_encoding"
    hint = (
        "Save the file as CSV in Shift_JIS (CP932) or UTF-8, or download it again "
        "from the card issuer's website."
    )


class UnknownFormat(StatementFileError):
    """The file is not an Amex Japan CSV nor a MyJCB CSV."""

    code = "statement_file_unknown_format"
    hint = (
        "Upload the CSV file downloaded from the American Express online service or "
        "from MyJCB, without editing its header line."
    )


class EmptyFile(UnknownFormat):
    """The file holds nothing but blank lines."""

    code = "statement_file_empty"
    hint = "The file is empty; download the statement again from the card issuer's website."


class WrongIssuer(UnknownFormat):
    """A file of one issuer was given where the other issuer's was expected."""

    code = "statement_file_wrong_issuer"
    hint = "Upload it to an account of the matching card, or choose the other card's file."

    def __init__(self, message: str, *, expected: str, found: str, line: int | None) -> None:
        self.expected = expected
        self.found = found
        super().__init__(message, line=line)

    def as_dict(self) -> dict[str, Any]:
        """The error as plain data, with the ``expected`` and ``found`` issuers."""
        return {**super().as_dict(), "expected": self.expected, "found": self.found}


class MalformedRow(StatementFileError):
    """A row or cell cannot be read; the whole file is refused."""

    code = "statement_file_malformed_row"
    hint = (
        "Correct that cell in a spreadsheet and save as CSV again, or download the "
        "file again from the card issuer's website."
    )

    def __init__(
        self,
        message: str,
        *,
        line: int,
        reason: str,
        column: str | None = None,
        column_index: int | None = None,
        value: str | None = None,
    ) -> None:
        self.reason = reason
        # Only dates, amounts and masked card numbers are ever validated strictly, so
        # the preview never carries more than what the file shows on screen.
        self.value = None if value is None else value[:_VALUE_PREVIEW]
        super().__init__(message, line=line, column=column, column_index=column_index)

    def as_dict(self) -> dict[str, Any]:
        """The error as plain data, with ``reason`` and the offending ``value``."""
        return {**super().as_dict(), "reason": self.reason, "value": self.value}
