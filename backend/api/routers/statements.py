"""Statements of an account: read (paged), upload a statement file, and the R7
operations that keep an old card's statements after a card upgrade or downgrade."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status

from backend.api.deps import Caller, Services, StatementParser
from backend.api.errors import API_PREFIX, ERROR_RESPONSES
from backend.api.schemas import (
    AccountOut,
    ExportLinkOut,
    OldCardAccountCreate,
    OldCardCredentials,
    SkippedGroupOut,
    StatementOut,
    StatementPageOut,
    UploadResultOut,
)
from backend.domain import errors
from backend.domain.model import Issuer, Statement
from backend.service import accounts, export_links, statements
from backend.service.statements import UploadResult, statements_csv

router = APIRouter(prefix="/accounts/{account_id}", tags=["statements"], responses=ERROR_RESPONSES)

MAX_PAGE = 500
# Issuer statement files are a few hundred kilobytes at most; refuse anything far larger.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def encode_cursor(use_date: dt.date, statement_id: str) -> str:
    raw = f"{use_date.isoformat()}|{statement_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.date, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        date_text, statement_id = text.split("|", 1)
        return dt.date.fromisoformat(date_text), statement_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise errors.InvalidRequest("cursor is not valid", cursor=cursor) from exc


def _upload_out(result: UploadResult) -> UploadResultOut:
    return UploadResultOut(
        added=result.added,
        duplicates=result.duplicates,
        skipped_groups=[
            SkippedGroupOut(
                card=str(g.get("card", "")),
                rows=int(str(g.get("rows", 0))),
                line=int(str(g["line"])) if g.get("line") is not None else None,
            )
            for g in result.skipped_groups
        ],
        payments=result.payments,
        adjustments=result.adjustments,
        first_use_date=result.first_use_date,
        last_use_date=result.last_use_date,
    )


@router.get(
    "/statements",
    response_model=StatementPageOut,
    summary="List an account's statements",
    description="Newest first (by use date). Pass `next_cursor` back as `cursor` for the "
    "next page; the cursor is opaque.",
)
async def list_statements(
    account_id: str,
    services: Services,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query()] = None,
) -> StatementPageOut:
    after = decode_cursor(cursor) if cursor else None
    # One more than asked tells whether another page exists.
    rows = await statements.list_statements(
        services, caller, account_id, after=after, limit=limit + 1
    )
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].use_date, page[-1].id) if len(rows) > limit else None
    return StatementPageOut(
        items=[StatementOut.from_domain(s) for s in page], next_cursor=next_cursor
    )


@router.get(
    "/statements.csv",
    response_class=Response,
    summary="Export an account's statements as CSV",
    description=(
        "Every statement of the account, oldest first, as UTF-8 CSV with a byte-order mark "
        "(opens in spreadsheet software as is). Also for a deleted account: its statements "
        "are kept (R10/R16 export before deletion)."
    ),
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_statements(account_id: str, services: Services, caller: Caller) -> Response:
    return csv_response(account_id, await statements.all_statements(services, caller, account_id))


def csv_response(account_id: str, rows: list[Statement]) -> Response:
    return Response(
        content=statements_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="statements-{account_id}.csv"',
            "Cache-Control": "no-store",
        },
    )


exports_router = APIRouter(tags=["statements"], responses=ERROR_RESPONSES)


@exports_router.get(
    "/exports/{token}",
    response_class=Response,
    summary="Download a statement export by its signed link",
    description="No bearer token: the link, signed and short-lived, is the credential.",
    responses={200: {"content": {"text/csv": {}}}},
)
async def download_export(token: str, request: Request, services: Services) -> Response:
    account_id, member = export_links.read_export_token(
        services, token, request.app.state.export_secret
    )
    return csv_response(account_id, await statements.all_statements(services, member, account_id))


@router.post(
    "/statements/export-link",
    response_model=ExportLinkOut,
    summary="A short-lived download link for the CSV export",
    description=(
        "A link a browser can open without a bearer token for ten minutes, for the member "
        "who asked only; it downloads the same CSV as `statements.csv`."
    ),
)
async def export_link(
    account_id: str, request: Request, services: Services, caller: Caller
) -> ExportLinkOut:
    token = await export_links.make_export_token(
        services, caller, account_id, request.app.state.export_secret
    )
    return ExportLinkOut(url=f"{API_PREFIX}/exports/{token}")


@router.post(
    "/statements/upload",
    response_model=UploadResultOut,
    summary="Upload a statement file",
    description=(
        "Imports an issuer statement file (CSV), all or nothing; lines already present (by "
        "upload, legacy sync or API) are counted as duplicates. Payments of an earlier bill "
        "are counted in `payments` and not stored; refunds and corrections are stored and "
        "counted in `adjustments`. A file whose rows are another card's statements already "
        "in the account answers 409 `card_mismatch` with `details.reason` "
        "`rows_of_another_card`. Rows of another card are left out and listed in "
        "`skipped_groups` (R15: a supplementary card needs its own account). `card_id` names "
        "the card the file is for, e.g. the old card after an upgrade (R7 a). A file that "
        "cannot be read answers 422 `statement_file_invalid` with line and column."
    ),
)
async def upload_statements(
    account_id: str,
    services: Services,
    caller: Caller,
    parse: StatementParser,
    file: Annotated[UploadFile, File(description="The statement file from the issuer.")],
    card_id: Annotated[str | None, Form()] = None,
) -> UploadResultOut:
    detail = await accounts.get_account(services, caller, account_id)
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise errors.InvalidRequest("statement file is too large", max_bytes=MAX_UPLOAD_BYTES)
    groups = parse(data, Issuer(detail.account.issuer).value)
    result = await statements.upload_statements(
        services, caller, account_id, groups, card_id=card_id or None
    )
    return _upload_out(result)


@router.post(
    "/card-change/resync-old-card",
    response_model=UploadResultOut,
    summary="Fetch the old card's statements (R7 b)",
    description=(
        "After a card upgrade or downgrade, sync fetches only the new card's statements. This "
        "logs in once with the old card's issuer-website ID and password (not stored) and "
        "imports the old card's statements into this account."
    ),
)
async def resync_old_card(
    account_id: str, body: OldCardCredentials, services: Services, caller: Caller
) -> UploadResultOut:
    result = await statements.resync_old_card(
        services, caller, account_id, login_id=body.login_id, password=body.password
    )
    return _upload_out(result)


@router.post(
    "/card-change/new-account",
    response_model=AccountOut,
    status_code=status.HTTP_201_CREATED,
    summary="New account for the old card (R7 c)",
    description="Creates a legacy account in the same office that syncs the card this "
    "account's card replaced, with the old card's credentials.",
)
async def new_account_for_old_card(
    account_id: str, body: OldCardAccountCreate, services: Services, caller: Caller
) -> AccountOut:
    account = await statements.create_account_for_old_card(
        services,
        caller,
        account_id,
        login_id=body.login_id,
        password=body.password,
        name=body.name,
    )
    detail = await accounts.get_account(services, caller, account.id)
    return AccountOut.from_domain(detail.account, detail.card, detail.link)
