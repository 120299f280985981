"""The issuers' own sites: where a person does what only the issuer can do."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request

from backend.api.deps import Caller, Services
from backend.api.openapi import error_responses
from backend.api.schemas import IssuerHealthOut, IssuerInfoOut
from backend.service import issuer_health

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


@router.get(
    "/issuers/health",
    response_model=list[IssuerHealthOut],
    summary="How each issuer answers right now",
    description=(
        "`healthy`, `degraded` or `down`, from the outcomes of renkei's recent syncs of "
        "every office (the thresholds are in the schema). It names no office, account or "
        "card: any signed-in caller may read it. While an issuer is down, scheduled syncs "
        "wait for one probe sync instead of asking for every account, and nobody is asked "
        "to authenticate again for the outage."
    ),
)
async def issuers_health(services: Services, caller: Caller) -> list[IssuerHealthOut]:
    return [
        IssuerHealthOut.model_validate(health) for health in await issuer_health.current(services)
    ]
