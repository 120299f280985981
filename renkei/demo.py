"""Demo data seeded on first start; it agrees with the sandbox issuers' demo IDs and cards.

Every procedure has a case: an office where API linking is released and one where it
is not; an Amex Business card on legacy sync; a Gold card used in two offices (R14);
a Platinum basic card whose supplementary card is not registered to the ID (R15); a
personal Amex card that cannot be API-linked (R1); a MyJCB ID covering two users'
cards (R9); a JCB card that was upgraded (R7).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from backend.db import tables as t
from backend.db.repository import SqlUnitOfWork
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
from backend.service import jobs

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
]


async def seed_demo(runtime: Runtime) -> bool:
    """Seed once: an empty database gets the demo; any office present means it was done."""
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
            await jobs.enqueue_sync(ctx, uow.repo, account.id)
        await uow.commit()
    token = await runtime.tokens.create(OWNER, "demo")
    token_file = runtime.settings.data_dir / "demo-token"
    token_file.touch(mode=0o600)
    token_file.write_text(token + "\n")
    log.info("demo data seeded; API token of %s written to %s", OWNER, token_file)
    return True
