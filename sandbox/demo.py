"""The demo data of docs/issuer-api.md, seeded at creation and on `POST /control/reset`."""

from __future__ import annotations

from datetime import timedelta

from sandbox.cards import create_card, set_statements
from sandbox.state import SandboxState, User

DEMO_PASSWORD = "pass_good"
DEMO_STATEMENTS = 40
DEMO_PENDING = 3


def seed_demo_data(state: SandboxState) -> None:
    """Create the demo IDs and cards of both issuers, 40 statements each, 3 pending."""
    _seed_amex(state)
    _seed_jcb(state)


def _seed_amex(state: SandboxState) -> None:
    data = state.issuers["amex"]
    data.users["user_good"] = User("user_good", DEMO_PASSWORD)
    cards = [
        ("amex-biz-1001", "amex_business", "YAMADA TARO", "XXXX-XXXXXX-11001"),
        ("amex-gold-2001", "amex_business_gold", "YAMADA TARO", "XXXX-XXXXXX-21001"),
        ("amex-plat-3001", "amex_business_platinum", "YAMADA TARO", "XXXX-XXXXXX-31001"),
        ("amex-green-9001", "amex_personal_green", "YAMADA TARO", "XXXX-XXXXXX-91001"),
    ]
    for card_id, product, holder, masked in cards:
        card = create_card(
            state,
            "amex",
            user_id="user_good",
            card_id=card_id,
            product=product,
            holder_name=holder,
            masked_number=masked,
        )
        set_statements(
            state, "amex", card, count=DEMO_STATEMENTS, pending=DEMO_PENDING, historical=True
        )
    # R15: the supplementary card exists but is not registered to the online-service ID.
    supplementary = create_card(
        state,
        "amex",
        user_id="user_good",
        card_id="amex-plat-3002",
        product="amex_business_platinum",
        holder_name="YAMADA HANAKO",
        masked_number="XXXX-XXXXXX-31002",
        role="supplementary",
        basic_card_id="amex-plat-3001",
        registered=False,
    )
    set_statements(
        state, "amex", supplementary, count=DEMO_STATEMENTS, pending=DEMO_PENDING, historical=True
    )
    _seed_amex_family(state)
    _seed_amex_renewal(state)


def _seed_amex_family(state: SandboxState) -> None:
    """A second online-service ID whose supplementary card was registered to it after
    renkei first saw the ID (renkei's demo notes the basic card alone as seen): the first
    sync after a fresh start finds the new card, and renkei offers it."""
    state.issuers["amex"].users["user_family"] = User("user_family", DEMO_PASSWORD)
    for card_id, holder, masked, role, basic in (
        ("amex-biz-7001", "YAMADA JIRO", "XXXX-XXXXXX-71001", "basic", None),
        ("amex-biz-7002", "YAMADA YOKO", "XXXX-XXXXXX-71002", "supplementary", "amex-biz-7001"),
    ):
        card = create_card(
            state,
            "amex",
            user_id="user_family",
            card_id=card_id,
            product="amex_business",
            holder_name=holder,
            masked_number=masked,
            role="basic" if role == "basic" else "supplementary",
            basic_card_id=basic,
        )
        set_statements(
            state, "amex", card, count=DEMO_STATEMENTS, pending=DEMO_PENDING, historical=True
        )


def _seed_amex_renewal(state: SandboxState) -> None:
    """An online-service ID whose card renkei's demo links by API at its first start, with
    a consent that ends within days: the warnings and the renewal show at once."""
    state.issuers["amex"].users["user_renewal"] = User("user_renewal", DEMO_PASSWORD)
    card = create_card(
        state,
        "amex",
        user_id="user_renewal",
        card_id="amex-biz-8001",
        product="amex_business",
        holder_name="YAMADA SABURO",
        masked_number="XXXX-XXXXXX-81001",
    )
    set_statements(
        state, "amex", card, count=DEMO_STATEMENTS, pending=DEMO_PENDING, historical=True
    )


def _seed_jcb(state: SandboxState) -> None:
    data = state.issuers["jcb"]
    data.users["user_good"] = User("user_good", DEMO_PASSWORD)
    data.users["user_upgrade"] = User("user_upgrade", DEMO_PASSWORD)
    # R6: a combined login that groups the two IDs above.
    data.users["user_combined"] = User(
        "user_combined", DEMO_PASSWORD, combined_of=["user_good", "user_upgrade"]
    )
    principal = create_card(
        state,
        "jcb",
        user_id="user_good",
        card_id="jcb-gold-4001",
        product="jcb_gold",
        holder_name="山田 太郎",
        masked_number="XXXX-XXXX-XXXX-4001",
    )
    family = create_card(
        state,
        "jcb",
        user_id="user_good",
        card_id="jcb-gold-4002",
        product="jcb_gold",
        holder_name="山田 花子",
        masked_number="XXXX-XXXX-XXXX-4002",
        role="supplementary",
        basic_card_id="jcb-gold-4001",
    )
    for card in (principal, family):
        set_statements(
            state, "jcb", card, count=DEMO_STATEMENTS, pending=DEMO_PENDING, historical=True
        )
    # R7: the upgrade already happened 30 days ago; the old card keeps its history.
    today = state.clock.today()
    old = create_card(
        state,
        "jcb",
        user_id="user_upgrade",
        card_id="jcb-general-5001",
        product="jcb_general",
        holder_name="山田 太郎",
        masked_number="XXXX-XXXX-XXXX-5001",
    )
    set_statements(
        state,
        "jcb",
        old,
        count=DEMO_STATEMENTS,
        historical=True,
        first_day=today - timedelta(days=120),
        last_day=today - timedelta(days=31),
    )
    new = create_card(
        state,
        "jcb",
        user_id="user_upgrade",
        card_id="jcb-plat-5002",
        product="jcb_platinum",
        holder_name="山田 太郎",
        masked_number="XXXX-XXXX-XXXX-5002",
    )
    set_statements(
        state,
        "jcb",
        new,
        count=DEMO_STATEMENTS,
        pending=DEMO_PENDING,
        historical=True,
        first_day=today - timedelta(days=30),
        last_day=today,
    )
    old.status = "replaced"
    old.replaced_by = new.card_id
