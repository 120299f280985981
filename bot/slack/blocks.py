"""Block Kit built from rendered conversations and catalog keys; no words of its own.

Buttons carry ``<conversation id>|<choice value>`` so that any process can take the
click: the conversation lives in the database, not in this process.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

from i18n import render, text_of, values

Block = dict[str, Any]

CHOICE_ACTION = "renkei_choice"
LINK_ACTION = "renkei_link"
FORM_ACTION = "renkei_form"
START_ACTION = "renkei_start"
CHANNEL_ACTION = "renkei_channel"
RESOLVE_ACTION = "renkei_handoff_resolve"  # the support channel's "mark resolved"
FORM_CALLBACK = "renkei_form"
INFO_CALLBACK = "renkei_info"
INPUT_BLOCK = "renkei_input"
INPUT_ACTION = "text"
SEPARATOR = "|"
# Between the choices a notice's button plays one after the other; no choice value has one.
STEP_SEPARATOR = " "

# Slack's limits (https://api.slack.com/reference/block-kit): kept to, or Slack refuses.
BUTTON_TEXT_MAX = 75
SECTION_TEXT_MAX = 3000
ACTIONS_MAX = 25
VALUE_MAX = 2000
# What the person typed, when said back to them (an unknown subcommand): enough to
# recognise, never the whole of a pasted text.
SNIPPET_MAX = 40


def escape(text: str) -> str:
    """Slack reads &, < and > as markup; data shown as it is must not be."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def words(key: str, locale: str, **params: Any) -> str:
    return render(key, locale, params)


def snippet(text: str, limit: int = SNIPPET_MAX) -> str:
    """A bit of what the person typed, said back: shortened, and never read as markup."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return escape(text)


def plain(text: str, limit: int = BUTTON_TEXT_MAX) -> dict[str, Any]:
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return {"type": "plain_text", "text": text, "emoji": True}


def section(text: str) -> Block:
    if len(text) > SECTION_TEXT_MAX:
        text = text[: SECTION_TEXT_MAX - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def button(action_id: str, label: str, value: str, *, url: str | None = None) -> Block:
    element: Block = {"type": "button", "action_id": action_id, "text": plain(label)}
    if url is not None:
        element["url"] = url
    else:
        element["value"] = value[:VALUE_MAX]
    return element


def absolute(url: str, base_url: str) -> str:
    """``url`` as an absolute address: Slack refuses a message whose button has a relative
    one (the back end gives its own links as paths, e.g. a statements export)."""
    if urlsplit(url).scheme in ("http", "https"):
        return url
    return urljoin(base_url.rstrip("/") + "/", url)


def actions(elements: Sequence[Block]) -> list[Block]:
    """Actions blocks of at most 25 elements each."""
    return [
        {"type": "actions", "elements": list(elements[i : i + ACTIONS_MAX])}
        for i in range(0, len(elements), ACTIONS_MAX)
    ]


def choice_value(conversation_id: str, choice: str) -> str:
    return f"{conversation_id}{SEPARATOR}{choice}"


def split_value(value: str) -> tuple[str, str]:
    conversation_id, _, choice = value.partition(SEPARATOR)
    return conversation_id, choice


def steps(choices: Sequence[str]) -> str:
    """Several choices in one button value: a notice's button starts a flow and answers on."""
    return STEP_SEPARATOR.join(choices)


def split_steps(choice: str) -> list[str]:
    return [step for step in choice.split(STEP_SEPARATOR) if step]


def conversation_blocks(
    conversation: Mapping[str, Any],
    *,
    base_url: str,
    form: bool = False,
    secret: bool = False,
) -> list[Block]:
    """The replies of a rendered conversation: text, a button per choice, link buttons
    (made absolute against ``base_url``, renkei's public address).

    Action ids are numbered because Slack wants them unique within a block; listeners
    match them by prefix.
    """
    conversation_id = str(conversation["id"])
    locale = str(conversation.get("locale") or "ja")
    blocks: list[Block] = []
    counter = 0
    replies = list(conversation.get("replies") or [])
    for index, reply in enumerate(replies):
        blocks.append(section(escape(str(reply["text"]))))
        elements: list[Block] = []
        link = reply.get("link")
        if link and link.get("note"):
            # The member's own DM only: the code opens the link in their browser.
            blocks.append(context(escape(str(link["note"]))))
        if link:
            elements.append(
                button(
                    f"{LINK_ACTION}-{counter}",
                    str(link["label"]),
                    "",
                    url=absolute(str(link["url"]), base_url),
                )
            )
            counter += 1
        if form and index == len(replies) - 1:
            # Typed answers (and above all passwords) go through a modal, not a message.
            elements.append(button(FORM_ACTION, words("slack.open_form", locale), conversation_id))
            if secret:
                blocks.append(context(words("slack.modal.secret_hint", locale)))
        for choice in reply.get("choices") or []:
            value = choice_value(conversation_id, str(choice["value"]))
            elements.append(button(f"{CHOICE_ACTION}-{counter}", str(choice["label"]), value))
            counter += 1
        blocks.extend(actions(elements))
    if not blocks:
        blocks.append(section(words("slack.nothing_to_show", locale)))
    return blocks


def fallback_text(conversation: Mapping[str, Any]) -> str:
    """The notification text of a message (shown where blocks are not)."""
    texts = [str(r["text"]) for r in conversation.get("replies") or []]
    return "\n".join(texts)[:SECTION_TEXT_MAX] or words(
        "slack.fallback_text", str(conversation.get("locale") or "ja")
    )


def answered(blocks: Iterable[Block], chosen_label: str, locale: str) -> list[Block]:
    """The clicked message without its buttons, saying what was chosen (no double clicks)."""
    kept = [b for b in blocks if b.get("type") != "actions"]
    kept.append(context(escape(words("slack.chosen", locale, label=chosen_label))))
    return kept


def label_of(blocks: Iterable[Block], action_id: str) -> str:
    for block in blocks:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return str(element.get("text", {}).get("text") or "")
    return ""


# --------------------------------------------------------------------------- modals
def _modal(callback_id: str, locale: str, blocks: list[Block], **extra: Any) -> Block:
    view: Block = {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(words("slack.modal.title", locale), 24),
        "close": plain(words("slack.modal.close", locale), 24),
        "blocks": blocks,
    }
    view.update(extra)
    return view


def loading_view(locale: str, callback_id: str = INFO_CALLBACK) -> Block:
    """Shown the moment Slack's trigger arrives; the real view replaces it."""
    return _modal(callback_id, locale, [section(words("slack.modal.loading", locale))])


def info_view(locale: str, blocks: list[Block]) -> Block:
    return _modal(
        INFO_CALLBACK, locale, blocks or [section(words("slack.nothing_to_show", locale))]
    )


def form_view(conversation: Mapping[str, Any], *, secret: bool, channel_id: str | None) -> Block:
    locale = str(conversation.get("locale") or "ja")
    replies = list(conversation.get("replies") or [])
    prompt = "\n".join(str(r["text"]) for r in replies[-2:])
    blocks: list[Block] = [section(escape(prompt))]
    if secret:
        blocks.append(context(words("slack.modal.secret_hint", locale)))
    blocks.append(
        {
            "type": "input",
            "block_id": INPUT_BLOCK,
            "label": plain(words("slack.modal.input_label", locale), 2000),
            "element": {"type": "plain_text_input", "action_id": INPUT_ACTION},
        }
    )
    metadata = json.dumps({"conversation_id": conversation["id"], "channel_id": channel_id})
    return _modal(
        FORM_CALLBACK,
        locale,
        blocks,
        submit=plain(words("slack.modal.submit", locale), 24),
        private_metadata=metadata,
    )


# --------------------------------------------------------------------------- offices
def synced_at(value: str | None, locale: str) -> str:
    """The last sync in Japan time with how long ago, or the word for never."""
    return text_of(values.moment(value), locale)


def office_blocks(offices: Sequence[Mapping[str, Any]], locale: str) -> list[Block]:
    """Each office with its accounts: issuer, sync method, status, last sync."""
    blocks: list[Block] = []
    for office in offices:
        blocks.append(
            section(
                words(
                    "slack.offices.office",
                    locale,
                    office=escape(str(office["name"])),
                    role=words(f"words.role.{office['role']}", locale),
                )
            )
        )
        lines = [
            words(
                "slack.offices.account",
                locale,
                account=escape(str(a["name"])),
                issuer=words(f"words.issuer.{a['issuer']}", locale),
                method=words(f"words.sync_method.{a['sync_method']}", locale),
                status=words(f"words.account_status.{a['status']}", locale),
                synced=synced_at(a.get("last_synced_at"), locale),
            )
            for a in office.get("accounts") or []
        ]
        blocks.append(
            section("\n".join(lines) if lines else words("slack.offices.no_accounts", locale))
        )
        blocks.append({"type": "divider"})
    return blocks


def home_view(locale: str, body: list[Block]) -> Block:
    return {
        "type": "home",
        "blocks": [
            {"type": "header", "text": plain(words("slack.home.header", locale), 150)},
            context(words("slack.home.intro", locale)),
            *body,
        ],
    }
