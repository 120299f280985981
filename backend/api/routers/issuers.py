"""The issuers' own sites: where a person does what only the issuer can do."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request

from backend.api.deps import Caller
from backend.api.openapi import error_responses
from backend.api.schemas import IssuerInfoOut

router = APIRouter(tags=["issuers"], responses=error_responses())


@router.get(
    "/issuers",
    response_model=list[IssuerInfoOut],
    summary="The issuers' member sites",
    description=(
        "Links to each issuer's member site: Amex 登録情報の変更 → 外部サービスとの連携 to "
        "stop a link (R16) and カードの追加登録 for a supplementary card (R15); MyJCB."
    ),
)
async def list_issuers(request: Request, caller: Caller) -> list[IssuerInfoOut]:
    sites: Mapping[str, IssuerInfoOut] = request.app.state.issuer_sites
    return list(sites.values())
