"""The conversation API (``/api/v1/conversations``) and the flows' analytics.

Authenticated like the rest of the API: a member may only talk in their own
conversations; a support administrator may open one for any member.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.api.deps import Caller
from backend.api.openapi import error_responses
from backend.api.rate_limits import CONVERSATIONS, limited
from backend.api.schemas import Email
from backend.domain import errors
from backend.service.context import Principal
from bot.conversations import Conversations, rendered
from statemachine.engine import ConversationConflict, ConversationNotFound, Input
from statemachine.port import BackendRefusal
from statemachine.store import ConversationRecord

MAX_FILE_BYTES = 10 * 1024 * 1024


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: Email = Field(description="The member's email.")
    locale: Literal["ja", "en"] = "ja"
    office_id: str | None = None


class FileIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    content_base64: str = Field(min_length=1)


class MessageIn(BaseModel):
    """One input: a typed text, a choice's value, or a statement file."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, max_length=2000)
    choice: str | None = Field(default=None, max_length=200)
    file: FileIn | None = None

    @model_validator(mode="after")
    def one_input(self) -> MessageIn:
        given = [v for v in (self.text, self.choice, self.file) if v is not None]
        if len(given) != 1:
            raise ValueError("send exactly one of text, choice or file")
        return self


class ChoiceOut(BaseModel):
    value: str
    label: str


class LinkOut(BaseModel):
    url: str
    label: str
    code: str | None = Field(
        default=None, description="One-time code the linked page asks for, for this member only."
    )
    note: str | None = Field(default=None, description="The code, in words to show with it.")


class ReplyOut(BaseModel):
    text: str
    choices: list[ChoiceOut]
    link: LinkOut | None


class ConversationOut(BaseModel):
    id: str
    flow: str | None = Field(description="The flow under way, or null in the main menu.")
    state: str
    locale: str
    office_id: str | None
    replies: list[ReplyOut] = Field(description="What the assistant said to the last input.")
    secret: bool = Field(
        False,
        description="The step asks for a password: a front end shows a masked field and "
        "never echoes what is typed.",
    )


class StepCountOut(BaseModel):
    flow: str
    step: str
    entered: int
    completed: int
    abandoned: int


def get_conversations(request: Request) -> Conversations:
    conversations: Conversations = request.app.state.conversations
    return conversations


Service = Annotated[Conversations, Depends(get_conversations)]

router = APIRouter(prefix="/api/v1", tags=["conversations"], responses=error_responses())


def _own(record: ConversationRecord, caller: Principal) -> None:
    if not caller.support_admin and record.user != caller.email:
        # Someone else's conversation does not exist for the caller.
        raise errors.NotFound("conversation not found")


async def _load(
    service: Conversations, conversation_id: str, caller: Principal
) -> ConversationRecord:
    try:
        record = await service.get(conversation_id)
    except ConversationNotFound as exc:
        raise errors.NotFound("conversation not found") from exc
    _own(record, caller)
    return record


def _out(record: ConversationRecord, service: Conversations) -> ConversationOut:
    return ConversationOut.model_validate(
        {**rendered(record), "secret": service.is_secret(record)}
    )


@router.post(
    "/conversations",
    response_model=ConversationOut,
    status_code=status.HTTP_201_CREATED,
    summary="Start a conversation",
    dependencies=[Depends(limited(CONVERSATIONS))],
    responses=error_responses(429),
    description="The first reply offers the six procedures (choice values are the flow ids).",
)
async def create_conversation(
    body: ConversationCreate, service: Service, caller: Caller
) -> ConversationOut:
    user = body.user
    if not caller.support_admin and user != caller.email:
        raise errors.Forbidden("a member talks for themselves only")
    try:
        record = await service.start(user, body.locale, body.office_id)
    except BackendRefusal as refusal:
        raise errors.NotFound("office not found") from refusal
    return _out(record, service)


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationOut,
    summary="Read a conversation",
)
async def get_conversation(
    conversation_id: str, service: Service, caller: Caller
) -> ConversationOut:
    return _out(await _load(service, conversation_id, caller), service)


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=ConversationOut,
    summary="Send a message",
    description=(
        '`{"text": ...}`, `{"choice": <value>}` or `{"file": {"name", '
        '"content_base64"}}` (a statement file, where a step asks for one). 409 '
        "`conflict` when another input was handled at the same moment: read "
        "the conversation again."
    ),
)
async def post_message(
    conversation_id: str, body: MessageIn, service: Service, caller: Caller
) -> ConversationOut:
    await _load(service, conversation_id, caller)
    given = Input(text=body.text, choice=body.choice)
    if body.file is not None:
        try:
            data = base64.b64decode(body.file.content_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise errors.InvalidRequest("the file is not valid base64") from exc
        if len(data) > MAX_FILE_BYTES:
            raise errors.InvalidRequest("the file is larger than 10 MB")
        given = Input(file_name=body.file.name, file_data=data)
    try:
        record = await service.send(conversation_id, given)
    except ConversationConflict as exc:
        raise errors.Conflict("another input was handled meanwhile: read the conversation") from exc
    return _out(record, service)


@router.get(
    "/analytics/flows",
    response_model=list[StepCountOut],
    summary="How far people get in each flow",
    description=(
        "Per flow and step: entered, completed (left forward) and abandoned (cancelled, "
        "started over, handed over, or idle for seven days). Support administrators only."
    ),
    tags=["analytics"],
)
async def flow_analytics(service: Service, caller: Caller) -> list[dict[str, Any]]:
    if not caller.support_admin:
        raise errors.Forbidden("analytics are for support administrators")
    return await service.engine.analytics()
