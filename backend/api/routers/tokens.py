"""The caller's own API tokens: list them, revoke one."""

from __future__ import annotations

from fastapi import APIRouter, status

from backend.api.deps import Caller, Tokens
from backend.api.openapi import error_responses
from backend.api.schemas import TokenOut
from backend.service import api_tokens

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=error_responses())


@router.get(
    "",
    response_model=list[TokenOut],
    summary="My API tokens",
    description="The caller's own tokens (never the tokens themselves): name, creation, "
    "expiry and revocation.",
)
async def list_tokens(tokens: Tokens, caller: Caller) -> list[TokenOut]:
    return [TokenOut.model_validate(r) for r in await api_tokens.list_own(tokens, caller)]


@router.delete(
    "/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke one of my API tokens",
    description="Only the caller's own; it stops working at once, this request's own token "
    "included. Revoking again answers 204; another member's token answers 404.",
)
async def revoke_token(token_id: str, tokens: Tokens, caller: Caller) -> None:
    await api_tokens.revoke_own(tokens, caller, token_id)
