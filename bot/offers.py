"""What a notice's button plays: the flow it starts, then the answers that pick the
notice's account or card, so the person lands on the step that concerns them.

One table for every front end: the Slack notifier fills it in Python, the web chat
page gets it in its configuration and fills it in the browser (``{name}`` is a field of
the notice).
"""

from __future__ import annotations

from collections.abc import Mapping

OFFER_STEPS: dict[str, list[str]] = {
    # Straight to the issuer's consent page for this account, where it is renewed in place.
    "consent_expiring": ["status", "pick:{account_id}", "reauth"],
    # The status flow checks whether the old Amex link must be stopped first (R10/R16).
    "needs_reauth": ["status", "pick:{account_id}", "reauth"],
    "api_released": ["switch_to_api"],  # R4
    # R15: a supplementary card gets an account of its own, from its basic card's account.
    "supplementary_card": ["supplementary_card", "pick:{basic_account_id}", "card:{card_id}"],
    "supplementary_card_unknown_basic": ["supplementary_card"],
    "register_amex": ["register", "issuer:amex", "card:{card_id}"],
    # R9: a MyJCB ID's cards come with its account; the ID is chosen at the issuer.
    "register_jcb": ["register", "issuer:jcb"],
}


def offer_kind(data: Mapping[str, object]) -> str:
    """The row of ``OFFER_STEPS`` a discovered card's offer (``card.discovered``) plays."""
    if data.get("offer") == "supplementary_card":
        known = bool(data.get("basic_account_id"))
        return "supplementary_card" if known else "supplementary_card_unknown_basic"
    return "register_jcb" if data.get("issuer") == "jcb" else "register_amex"


def offer_steps(kind: str, fields: Mapping[str, object]) -> list[str]:
    """The steps of ``kind`` with the notice's ``fields`` filled in."""
    return [
        step.format_map({k: str(v) for k, v in fields.items() if v is not None})
        for step in OFFER_STEPS[kind]
    ]
