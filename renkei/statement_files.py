"""Adapter from the statement-file importers to the service's port types."""

from __future__ import annotations

from typing import Literal, cast

from backend.domain.errors import StatementFileInvalid
from backend.service.ports import ParsedStatementGroup
from connectors.statements import StatementFileError
from connectors.statements import parse_statement_file as parse_file


def parse_statement_file(data: bytes, issuer: str) -> list[ParsedStatementGroup]:
    """Parse a whole file or raise ``StatementFileInvalid`` naming the line and column."""
    try:
        parsed = parse_file(data, cast(Literal["amex", "jcb"], issuer))
    except StatementFileError as exc:
        raise StatementFileInvalid(str(exc), **exc.as_dict()) from exc
    return [
        ParsedStatementGroup(
            key=g.card_ref,
            rows=g.rows,
            lines=tuple(entry.line for entry in g.entries),
            kinds=tuple(entry.kind for entry in g.entries),
            relation=g.relation,
            family_number=g.family_number,
            holder_name=g.holder_name,
        )
        for g in parsed.groups
    ]
