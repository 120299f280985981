"""amex_revoke: deleting an Amex account, the API link stopped at Amex first (R10, R16).

choose_account → (API link held at Amex) stop_at_amex: the warning (R10) and the member-site
path 登録情報の変更 → 外部サービスとの連携 → renkei → 停止する (R16) → ready, once the back end
knows the link is stopped: the issuer's link.revoked webhook moves the step by itself, or the
person says they stopped it and the back end asks Amex while deleting (refused with
revoke_at_issuer_first while the link is still active: the step stays) → deleted (the card is
free to link elsewhere, R16). A legacy account (R10 is about API links) → legacy → deleted at
once. The statements export is offered at every step before the delete.
"""

from __future__ import annotations

from typing import Any

from backend.domain.vocabulary import (
    AccountStatus,
    EventType,
    Issuer,
    LinkCheck,
    LinkStatus,
    RefusalCode,
    SyncMethod,
)
from statemachine.flow import (
    NEXT,
    SAME,
    STAY,
    FlowDefinition,
    Given,
    State,
    Step,
    Turn,
    choice,
    data_choice,
)
from statemachine.flows.common import account_label, account_slot
from statemachine.port import AccountInfo
from statemachine.replies import Link

ID = "amex_revoke"

# Link states after which Amex no longer holds the card for this account (R16).
LINK_GONE = (None, LinkStatus.REVOKED)


def _deletable(account: AccountInfo) -> bool:
    return account.issuer == Issuer.AMEX and account.status != AccountStatus.DELETED


async def start(turn: Turn) -> None:
    assert turn.office_id is not None
    accounts = [a for a in await turn.backend.accounts(turn.office_id) if _deletable(a)]
    turn.slots["accounts"] = [account_slot(a) for a in accounts]
    amex = (await turn.backend.issuer_sites()).get(Issuer.AMEX)
    member_site = amex.member_site_url if amex else ""
    turn.slots["services_url"] = (amex.external_services_url if amex else None) or member_site
    if not accounts:
        turn.state = "no_accounts"


def _route(account: dict[str, Any]) -> str:
    if account["sync_method"] != SyncMethod.API:
        return "legacy"  # R10 is about API links: an ID/password account holds nothing at Amex
    if account.get("link_status") in LINK_GONE:
        return "ready"
    return "stop"  # active, or expired tokens whose grant may still hold the card (R10)


# ----------------------------------------------------------------------- steps
async def pick_account(turn: Turn, given: Given) -> str:
    """The account as the back end has it now (its link may have changed since listed);
    its outcome is the way to its deletion (``_route``)."""
    account_id = given.value
    if not any(a["id"] == account_id for a in turn.slots.get("accounts", [])):
        return STAY
    account = await turn.backend.account(account_id)
    turn.slots["account_id"] = account_id
    turn.slots["account"] = account_slot(account)
    for stale in ("export_url", "still_active", "deleted"):
        turn.slots.pop(stale, None)
    return _route(turn.slots["account"])


async def link_revoked(turn: Turn, given: Given) -> str:
    """Amex's link.revoked webhook reached the back end: the stop is verified."""
    account = await turn.backend.account(str(turn.slots["account_id"]))
    turn.slots["account"] = account_slot(account)
    turn.slots.pop("export_url", None)  # it may have expired while waiting: a fresh one on request
    return "stopped" if account.link_status in LINK_GONE else STAY


async def stopped_by_person(turn: Turn, given: Given) -> str:
    """The person says they stopped it: the back end asks Amex now (R16). Only a link
    Amex no longer holds lets the flow go on; nothing is deleted before they confirm."""
    account_id = str(turn.slots["account_id"])
    status = await turn.backend.check_link(account_id)
    if status == LinkCheck.ACTIVE:
        turn.slots["still_active"] = True  # R10: still registered at Amex
        turn.say_refusal(RefusalCode.REVOKE_AT_ISSUER_FIRST)
        return STAY
    account = await turn.backend.account(account_id)
    turn.slots["account"] = account_slot(account)
    turn.slots.pop("still_active", None)
    turn.slots.pop("export_url", None)
    return "stopped"


async def export(turn: Turn, given: Given) -> str:
    """A short-lived download link of the account's statements, before they are needed."""
    url = await turn.backend.export_link(str(turn.slots["account_id"]))
    turn.slots["export_url"] = str(url)
    return NEXT


async def delete(turn: Turn, given: Given) -> str:
    await turn.backend.delete_account(str(turn.slots["account_id"]))
    turn.slots["deleted"] = True
    return NEXT


# ----------------------------------------------------------------------- prompts
def _name(turn: Turn) -> str:
    return str(turn.slots.get("account", {}).get("name", ""))


def _export_reply(turn: Turn) -> None:
    url = turn.slots.get("export_url")
    if url:
        turn.say(f"{ID}.export_ready", link=Link(url=str(url), label=f"{ID}.download"))


def prompt_choose_account(turn: Turn) -> None:
    accounts: list[dict[str, Any]] = turn.slots.get("accounts", [])
    turn.say(
        f"{ID}.choose_account",
        *[data_choice(f"pick:{a['id']}", account_label(a)) for a in accounts],
    )


def prompt_stop_at_amex(turn: Turn) -> None:
    if not turn.slots.get("still_active"):
        turn.say(f"{ID}.warning", account=_name(turn))  # R10
    services = Link(url=str(turn.slots.get("services_url") or ""), label=f"{ID}.open_services")
    turn.say(
        f"{ID}.member_site_path",
        link=services,
        card=turn.slots.get("account", {}).get("masked_number", ""),
    )  # R16
    _export_reply(turn)
    turn.say(
        f"{ID}.waiting",
        choice("stopped", f"{ID}.stopped"),
        choice("export", f"{ID}.export"),
    )


def prompt_legacy(turn: Turn) -> None:
    turn.say(f"{ID}.legacy", account=_name(turn))
    _export_reply(turn)
    turn.say(
        f"{ID}.confirm_delete",
        choice("export", f"{ID}.export"),
        choice("delete", f"{ID}.delete"),
        account=_name(turn),
    )


def prompt_ready(turn: Turn) -> None:
    linked = turn.slots.get("account", {}).get("link_status") == LinkStatus.REVOKED
    turn.say(f"{ID}.verified" if linked else f"{ID}.no_link", account=_name(turn))
    _export_reply(turn)
    turn.say(
        f"{ID}.confirm_delete",
        choice("export", f"{ID}.export"),
        choice("delete", f"{ID}.delete"),
        account=_name(turn),
    )


def prompt_deleted(turn: Turn) -> None:
    account = turn.slots.get("account", {})
    if account.get("sync_method") == SyncMethod.API:
        turn.say(f"{ID}.deleted_api", account=_name(turn), card=account.get("masked_number", ""))
    else:
        turn.say(f"{ID}.deleted_legacy", account=_name(turn))


def prompt_no_accounts(turn: Turn) -> None:
    turn.say(f"{ID}.no_accounts")


FLOW = FlowDefinition(
    id=ID,
    initial="choose_account",
    start=start,
    menu_position=50,
    keywords=(
        "delete",
        "revoke",
        "remove the account",
        "unlink",
        "削除",
        "連携解除",
        "連携を解除",
        "停止",
    ),
    keyword_rank=20,
    command="revoke",
    states=[
        State("choose_account", prompt_choose_account),
        State("stop_at_amex", prompt_stop_at_amex, waits_for="account_id"),
        State("legacy", prompt_legacy),
        State("ready", prompt_ready),
        State("deleted", prompt_deleted, final=True),
        State("no_accounts", prompt_no_accounts, final=True),
    ],
    steps=[
        Step(
            "pick",
            "choose_account",
            {"stop": "stop_at_amex", "legacy": "legacy", "ready": "ready"},
            pick_account,
        ),
        Step("revoked", "stop_at_amex", {"stopped": "ready"}, link_revoked),
        Step("stopped", "stop_at_amex", {"stopped": "ready"}, stopped_by_person),
        Step("export", ("stop_at_amex", "legacy", "ready"), {NEXT: SAME}, export),
        Step("delete", ("legacy", "ready"), {NEXT: "deleted"}, delete),
    ],
    event_triggers={EventType.LINK_REVOKED: "revoked"},
)
