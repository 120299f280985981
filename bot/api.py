"""The conversation API (``/api/v1/conversations``) and the flows' analytics.

Authenticated like the rest of the API: a member may only talk in their own
conversations; a support administrator may open one for any member.
"""

# No ``from __future__ import annotations``: the routes are built in ``conversation_router``
# and FastAPI reads their annotations, which name that function's dependencies.
import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.api.schemas import Email
from backend.domain import errors
from backend.domain.identity import Principal
from bot.conversations import HISTORY_MOST, HISTORY_PAGE, Conversations, history, rendered
from bot.ports import ApiEdge
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
    turn: int | None = Field(
        default=None,
        ge=0,
        description="With a choice: the conversation's `turn` when its button was shown. A "
        "button of an earlier step (the conversation moved on meanwhile, in another tab or "
        "by itself) is then not carried out: the answer says so and shows the step as it "
        "stands.",
    )

    @model_validator(mode="after")
    def one_input(self) -> "MessageIn":
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


class AnswerOut(BaseModel):
    text: str = Field(description="Support's answer, in words to show as it is.")
    at: str


class HandoffOut(BaseModel):
    id: str
    status: Literal["open", "answered"]
    answers: list[AnswerOut] = Field(
        description="Support's answers so far, oldest first: show those not shown yet."
    )


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
    turn: int = Field(
        0,
        description="The number (`seq`) of the conversation's latest history line, the "
        "one `replies` are: send it back with a choice.",
    )

    handoff: HandoffOut | None = Field(
        None,
        description="A person of support owns the conversation: the assistant stays quiet "
        "(what is sent goes to support) until it is resolved. Read the conversation again "
        "for their answers.",
    )


class PastReplyOut(BaseModel):
    text: str = Field(description="The words as they were shown, in the language of then.")
    choices: list[ChoiceOut] = Field(description="The buttons shown (no longer to be pressed).")
    link: str | None = Field(description="The label of the link shown (its address is not kept).")


class HistoryLineOut(BaseModel):
    seq: int = Field(description="The line's number in the conversation, from 1.")
    at: str | None = Field(description="When the line was said (ISO 8601).")
    speaker: Literal["assistant", "person", "support"] = Field(
        description="Who said it: the assistant, the person, or a person of support (an "
        "answer to a handoff, drawn after the line it followed, with that line's number)."
    )
    text: str | None = Field(
        description="What the person typed (a password shows as ●●●) or the label of the "
        "button they chose, or support's answer; null for the assistant."
    )
    file: str | None = Field(description="The name of the file the person sent.")
    replies: list[PastReplyOut] = Field(
        description="What the assistant said; empty for the person."
    )
    handoff_id: str | None = Field(
        None, description="The handoff a support answer belongs to; null for other lines."
    )


class HistoryOut(BaseModel):
    lines: list[HistoryLineOut] = Field(description="Oldest first; the last is the newest.")
    more: bool = Field(description="Older lines are kept: ask again with `before`.")


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


async def _out(record: ConversationRecord, service: Conversations) -> ConversationOut:
    return ConversationOut.model_validate(
        {
            **rendered(record),
            "secret": service.is_secret(record),
            "handoff": await service.handoff(record),
        }
    )


def conversation_router(edge: ApiEdge) -> APIRouter:
    """``/api/v1/conversations`` and the flows' analytics, guarded as the API's own routes."""
    router = APIRouter(prefix="/api/v1", tags=["conversations"], responses=edge.error_responses())
    Caller = Annotated[Principal, Depends(edge.caller)]

    @router.post(
        "/conversations",
        response_model=ConversationOut,
        status_code=status.HTTP_201_CREATED,
        summary="Start a conversation",
        dependencies=[Depends(edge.conversation_limit)],
        responses=edge.error_responses(429),
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
        return await _out(record, service)

    @router.get(
        "/conversations/{conversation_id}",
        response_model=ConversationOut,
        summary="Read a conversation",
    )
    async def get_conversation(
        conversation_id: str, service: Service, caller: Caller
    ) -> ConversationOut:
        return await _out(await _load(service, conversation_id, caller), service)

    @router.get(
        "/conversations/{conversation_id}/history",
        response_model=HistoryOut,
        summary="Read a conversation's history",
        description=(
            "What was said, oldest first, as the person read it: the assistant's words and "
            "buttons in the language of the moment, the person's choices and typed text "
            "(never a password). The newest `limit` lines, or those before the line "
            "`before`; the conversation's last line is the step under way (its `replies`). "
            f"The latest {HISTORY_MOST} lines are kept."
        ),
    )
    async def get_history(
        conversation_id: str,
        service: Service,
        caller: Caller,
        before: Annotated[int | None, Query(ge=1)] = None,
        limit: Annotated[int, Query(ge=1, le=HISTORY_MOST)] = HISTORY_PAGE,
    ) -> HistoryOut:
        record = await _load(service, conversation_id, caller)
        answers = await service.support_answers(record.id)
        return HistoryOut.model_validate(
            history(record, before=before, limit=limit, answers=answers)
        )

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
        given = Input(text=body.text, choice=body.choice, shown_at=body.turn)
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
            raise errors.Conflict(
                "another input was handled meanwhile: read the conversation"
            ) from exc
        return await _out(record, service)

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

    return router
