"""Demo data seeded on first start; it agrees with the sandbox issuers' demo IDs and cards.

Every procedure has a case: an office where API linking is released and one where it
is not; an Amex Business card on legacy sync; a Gold card used in two offices (R14);
a Platinum basic card whose supplementary card is not registered to the ID (R15); a
personal Amex card that cannot be API-linked (R1); a MyJCB ID covering two users'
cards (R9); a JCB card that was upgraded (R7); an Amex ID whose supplementary card was
registered after renkei first saw it, offered at the first sync (cards that appear); an
Amex Business card linked by API at the first start, through the real consent path, whose
consent ends three days later (consents that end).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import func, select

from backend.db import tables as t
from backend.db.repository import SqlUnitOfWork
from backend.domain.identity import Principal
from backend.domain.model import (
    Account,
    Card,
    CardRole,
    Issuer,
    Membership,
    Office,
    Role,
    Rollout,
    SyncMethod,
)
from backend.service import consent_binding, jobs, linking

if TYPE_CHECKING:
    from renkei.bootstrap import Runtime

log = logging.getLogger("renkei.demo")

OWNER = "owner@example.com"
DEMO_LOGIN = ("user_good", "pass_good")

# (issuer, card_ref, product, masked number, holder, role, basic card_ref)
DEMO_CARDS = [
    (
        Issuer.AMEX,
        "amex-biz-1001",
        "amex_business",
        "XXXX-XXXXXX-11001",
        "YAMADA TARO",
        "basic",
        None,
    ),
    (
        Issuer.AMEX,
        "amex-gold-2001",
        "amex_business_gold",
        "XXXX-XXXXXX-21001",
        "YAMADA TARO",
        "basic",
        None,
    ),
    (
        Issuer.AMEX,
        "amex-plat-3001",
        "amex_business_platinum",
        "XXXX-XXXXXX-31001",
        "YAMADA TARO",
        "basic",
        None,
    ),
    (
        Issuer.AMEX,
        "amex-plat-3002",
        "amex_business_platinum",
        "XXXX-XXXXXX-31002",
        "YAMADA HANAKO",
        "supplementary",
        "amex-plat-3001",
    ),
    (
        Issuer.AMEX,
        "amex-green-9001",
        "amex_personal_green",
        "XXXX-XXXXXX-91001",
        "YAMADA TARO",
        "basic",
        None,
    ),
    (
        Issuer.AMEX,
        "amex-biz-7001",
        "amex_business",
        "XXXX-XXXXXX-71001",
        "YAMADA JIRO",
        "basic",
        None,
    ),
    (Issuer.JCB, "jcb-gold-4001", "jcb_gold", "XXXX-XXXX-XXXX-4001", "山田 太郎", "basic", None),
    (
        Issuer.JCB,
        "jcb-gold-4002",
        "jcb_gold",
        "XXXX-XXXX-XXXX-4002",
        "山田 花子",
        "supplementary",
        "jcb-gold-4001",
    ),
    (
        Issuer.JCB,
        "jcb-general-5001",
        "jcb_general",
        "XXXX-XXXX-XXXX-5001",
        "山田 太郎",
        "basic",
        None,
    ),
]

SHOP = "山田商店"
FAMILY_ACCOUNT = "アメックス 次郎"
CONSULTING = "山田コンサルティング"

# (office, account name, issuer, card_ref, login)
DEMO_ACCOUNTS = [
    (SHOP, "アメックス ビジネス", Issuer.AMEX, "amex-biz-1001", DEMO_LOGIN),
    (SHOP, "アメックス ビジネス・ゴールド", Issuer.AMEX, "amex-gold-2001", DEMO_LOGIN),
    (CONSULTING, "アメックス ビジネス・ゴールド", Issuer.AMEX, "amex-gold-2001", DEMO_LOGIN),
    (SHOP, "アメックス ビジネス・プラチナ", Issuer.AMEX, "amex-plat-3001", DEMO_LOGIN),
    (SHOP, "アメックス グリーン (個人)", Issuer.AMEX, "amex-green-9001", DEMO_LOGIN),
    (SHOP, "JCBゴールド", Issuer.JCB, "jcb-gold-4001", DEMO_LOGIN),
    (CONSULTING, "JCB一般カード", Issuer.JCB, "jcb-general-5001", ("user_upgrade", "pass_good")),
    (SHOP, FAMILY_ACCOUNT, Issuer.AMEX, "amex-biz-7001", ("user_family", "pass_good")),
]
# Linked by API at the first start with a consent that ends within days: the expiry
# warnings, and the renewal in place, show without waiting a year.
RENEWAL_ACCOUNT = "アメックス 三郎 API"
RENEWAL_CARD = "amex-biz-8001"
RENEWAL_LOGIN = "user_renewal"
RENEWAL_CONSENT_DAYS = 3

# Seen before the demo starts: the online-service ID of this account held only its basic
# card, so its supplementary card (registered to the ID since) is offered at the first
# sync of a fresh start (card.discovered), as a card that appears after the link is.
SEEN_BEFORE = {FAMILY_ACCOUNT: ["amex-biz-7001"]}


async def seed_demo(runtime: Runtime, sandbox_key: str) -> bool:
    """Seed once: an empty database gets the demo; any office present means it was done.

    ``sandbox_key`` opens the mounted sandbox's control API (the demo runs on it alone).
    """
    ctx = runtime.services
    async with SqlUnitOfWork(runtime.sessions) as uow:
        if await uow.session.scalar(select(func.count()).select_from(t.offices)):
            return False
        offices = {name: Office(name=name, created_at=ctx.clock()) for name in (SHOP, CONSULTING)}
        for office in offices.values():
            await uow.repo.add(office)
        await uow.repo.flush()
        for office in offices.values():
            await uow.repo.add(Membership(office_id=office.id, email=OWNER, role=Role.ADMIN))
        # R3: API linking reached 山田商店 only.
        for issuer in (Issuer.AMEX, Issuer.JCB):
            await uow.repo.add(Rollout(office_id=offices[SHOP].id, issuer=issuer))
        cards: dict[str, Card] = {}
        for issuer, ref, product, masked, holder, role, basic in DEMO_CARDS:
            card = Card(
                issuer=issuer,
                card_ref=ref,
                product=product,
                masked_number=masked,
                holder_name=holder,
                role=CardRole(role),
                basic_card_id=cards[basic].id if basic else None,
            )
            cards[ref] = card
            await uow.repo.add(card)
            await uow.repo.flush()
        for office_name, name, issuer, ref, (login, password) in DEMO_ACCOUNTS:
            account = Account(
                office_id=offices[office_name].id,
                name=name,
                issuer=issuer,
                card_id=cards[ref].id,
                sync_method=SyncMethod.LEGACY,
                legacy_login_id=ctx.secrets.encrypt(login),
                legacy_password=ctx.secrets.encrypt(password),
                created_at=ctx.clock(),
            )
            await uow.repo.add(account)
            await uow.repo.flush()
            for ref in SEEN_BEFORE.get(name, []):
                await uow.repo.note_card_seen(
                    account.id, account.office_id, cards[ref].id, ctx.clock()
                )
            await jobs.enqueue_sync(ctx, uow.repo, account.id)
        await uow.commit()
    await _link_by_consent(runtime, offices[SHOP].id, sandbox_key)
    token = await runtime.tokens.create(OWNER, "demo")
    token_file = runtime.settings.data_dir / "demo-token"
    token_file.touch(mode=0o600)
    token_file.write_text(token + "\n")
    log.info("demo data seeded; API token of %s written to %s", OWNER, token_file)
    return True


async def _link_by_consent(runtime: Runtime, office_id: str, sandbox_key: str) -> None:
    """The renewal account, linked through the real consent path: renkei starts the
    authorization, the owner's browser is bound, the sandbox issuer consents (its control
    API, as Plaid's sandbox does) and renkei's callback completes the link.

    A sandbox that does not know the ID (a state file older than this demo) leaves the
    account waiting for consent, as any unfinished link does.
    """
    ctx = runtime.services
    owner = Principal(email=OWNER)
    start = await linking.register_api_account(
        ctx, owner, office_id=office_id, issuer=Issuer.AMEX, name=RENEWAL_ACCOUNT
    )
    binding = await consent_binding.bind_signed_in(
        ctx, owner, start.authorization_url.rsplit("/", 1)[-1]
    )
    asked = dict(parse_qsl(urlsplit(binding.issuer_url).query))
    answer = await runtime.backend_http.post(
        f"{runtime.settings.issuer_base_url(Issuer.AMEX)}/control/authorize",
        headers={"X-Sandbox-Key": sandbox_key},
        json={
            "client_id": asked["client_id"],
            "redirect_uri": asked["redirect_uri"],
            "state": asked["state"],
            "code_challenge": asked["code_challenge"],
            "user_id": RENEWAL_LOGIN,
            "card_ids": [RENEWAL_CARD],
            "consent_lifetime_days": RENEWAL_CONSENT_DAYS,
        },
    )
    if not answer.is_success:
        log.warning("the demo's API link was not made: the sandbox answered %s", answer.text)
        return
    consented = answer.json()
    outcome = await linking.complete_authorization(
        ctx,
        state=consented["state"],
        code=consented["code"],
        error=None,
        iss=consented["iss"],
        browser_key=binding.browser_key,
    )
    if outcome.error_code is not None:
        log.warning("the demo's API link was not made: %s", outcome.error_code)
