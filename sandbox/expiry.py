"""Time passing at the issuer: consents end, spent credentials are forgotten.

A consent ends: `link.expiring` goes out ahead of the end, the grant stops at the end.
Codes, authorization requests, sessions and tokens that can never work again are
dropped after a while, as an issuer's token store does, so the state (and its file)
stays the size of what is alive. Nothing waits on a timer: the sandbox looks at its
clock whenever something happens (every request, and each advance of the control API's
clock) and acts on what fell due since. A restart loses nothing, since the grants and
what was already sent are in the state.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from sandbox.grants import stop_grant
from sandbox.state import DAY_SECONDS, ISSUERS, IssuerData, SandboxState
from sandbox.webhooks import build_event, notify_grant, send_event

# How long a spent access token, code, request or session is kept before it is dropped:
# long enough that a late use still gets its precise error ("token expired").
SPENT_RETENTION = 1 * DAY_SECONDS
# How long a used refresh token is kept: a reuse within it still revokes the family
# (RFC 9700 §4.14.2); later, it is refused as unknown.
USED_REFRESH_RETENTION = 7 * DAY_SECONDS
PRUNE_EVERY = 600  # seconds of the sandbox clock


class Expiring(Protocol):
    """A code, request, session or access token: useless after ``expires_at``."""

    @property
    def expires_at(self) -> float: ...


E = TypeVar("E", bound=Expiring)


def tick(state: SandboxState) -> dict[str, int]:
    """Send the warnings and end the consents that fell due; returns how many of each."""
    now = state.now()
    warned = ended = 0
    for issuer in ISSUERS:
        data = state.issuers[issuer]
        notice = state.settings.of(issuer).expiring_notice_days * DAY_SECONDS
        for grant in list(data.grants.values()):
            if grant.status != "active" or grant.expires_at is None:
                continue
            cards = [card.card_id for card in data.grant_cards(grant)]
            if now >= grant.expires_at:
                stop_grant(state, issuer, grant, by="expired")
                notify_grant(state, issuer, grant, "link.revoked", cards, reason="expired")
                ended += 1
            elif grant.expiring_sent_at is None and now >= grant.expires_at - notice:
                grant.expiring_sent_at = now
                client = state.clients.get(grant.client_id)
                if client is not None:
                    event = build_event(
                        state,
                        issuer,
                        "link.expiring",
                        grant_subject=grant.subject,
                        card_ids=cards,
                        grant_id=grant.grant_id,
                        expires_at=int(grant.expires_at),
                    )
                    send_event(state, client, event)
                warned += 1
    if now - state.pruned_at >= PRUNE_EVERY:
        # Not at every request: the stores are scanned whole.
        state.pruned_at = now
        for issuer in ISSUERS:
            forget_spent(state.issuers[issuer], now)
    return {"expiring": warned, "expired": ended}


def _drop_expired(mapping: dict[str, E], before: float) -> None:
    for key in [k for k, v in mapping.items() if v.expires_at < before]:
        del mapping[key]


def forget_spent(data: IssuerData, now: float) -> None:
    """Drop what can never be used again, once its retention has passed."""
    before = now - SPENT_RETENTION
    _drop_expired(data.codes, before)
    _drop_expired(data.requests, before)
    _drop_expired(data.sessions, before)
    _drop_expired(data.access_tokens, before)
    stopped = {
        grant.grant_id
        for grant in data.grants.values()
        if grant.stopped_at is not None and grant.stopped_at < now - USED_REFRESH_RETENTION
    }
    for key, refresh in list(data.refresh_tokens.items()):
        spent = refresh.used_at is not None and refresh.used_at < now - USED_REFRESH_RETENTION
        if spent or refresh.grant_id in stopped:
            del data.refresh_tokens[key]
