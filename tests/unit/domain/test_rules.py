"""Each rule of domain.md refusing what it must, on plain domain objects."""

from __future__ import annotations

import datetime as dt

import pytest

from backend.domain import errors, rules
from backend.domain.model import (
    Account,
    AccountStatus,
    ApiLink,
    Card,
    CardRole,
    Issuer,
    LinkStatus,
    Role,
    SyncMethod,
)
from backend.domain.statements import natural_key, surplus_of_batch


def amex_card(
    ref: str = "amex-gold-2001", product: str = "amex_business_gold", **kw: object
) -> Card:
    return Card(Issuer.AMEX, ref, product, "XXXX-XXXXXX-21001", "YAMADA TARO", **kw)  # type: ignore[arg-type]


def jcb_card(ref: str = "jcb-gold-4001") -> Card:
    return Card(Issuer.JCB, ref, "jcb_gold", "XXXX-XXXX-XXXX-4001", "山田 太郎")


def account(
    card: Card,
    office: str = "o1",
    sync_method: SyncMethod = SyncMethod.LEGACY,
    status: AccountStatus = AccountStatus.ACTIVE,
) -> Account:
    return Account(office, "acct", card.issuer, card.id, sync_method, status)


def link(card: Card, acct: Account, subject: str = "user_good") -> ApiLink:
    return ApiLink(acct.id, acct.office_id, card.issuer, card.id, subject, b"x")


def test_r1_personal_amex_card_is_not_eligible() -> None:
    with pytest.raises(errors.CardNotEligible) as info:
        rules.ensure_card_eligible(amex_card("amex-green-9001", "amex_personal_green"))
    assert info.value.rule == "R1"
    rules.ensure_card_eligible(amex_card())  # a business card passes


def test_r1_excluded_jcb_card_is_not_eligible() -> None:
    card = Card(Issuer.JCB, "jcb-x", "jcb_excluded", "XXXX", "x")
    with pytest.raises(errors.CardNotEligible):
        rules.ensure_card_eligible(card)


def test_r3_r4_not_released_refuses() -> None:
    with pytest.raises(errors.ApiNotReleased) as info:
        rules.ensure_released(False, Issuer.AMEX)
    assert info.value.code == "api_not_released"
    rules.ensure_released(True, Issuer.AMEX)


def test_r5_r14_card_linked_elsewhere_refuses_and_names_the_office() -> None:
    card = amex_card()
    holder = account(card, office="office-a")
    other = account(card, office="office-b")
    with pytest.raises(errors.CardAlreadyLinked) as info:
        rules.ensure_card_free(card, [link(card, holder)], account_id=other.id)
    assert info.value.details["office_id"] == "office-a"
    # the account that holds the link may renew it in place
    rules.ensure_card_free(card, [link(card, holder)], account_id=holder.id)


def test_r5_ignores_revoked_links() -> None:
    card = amex_card()
    old = link(card, account(card))
    old.status = LinkStatus.REVOKED
    rules.ensure_card_free(card, [old], account_id="new")


def test_r6_combined_login_refused() -> None:
    card = jcb_card()
    with pytest.raises(errors.CombinedLoginRefused) as info:
        rules.ensure_grant_fits_account(
            issuer=Issuer.JCB,
            subject_kind="combined",
            granted_card_refs=[card.card_ref],
            account_card=card,
        )
    assert info.value.code == "combined_login_not_supported"


def test_r6_wrong_myjcb_id_refused() -> None:
    with pytest.raises(errors.WrongMyJcbId):
        rules.ensure_grant_fits_account(
            issuer=Issuer.JCB,
            subject_kind="single",
            granted_card_refs=["jcb-other"],
            account_card=jcb_card(),
        )


def test_r6_one_account_per_myjcb_id() -> None:
    card = jcb_card()
    taken = link(card, account(card), subject="user_good")
    with pytest.raises(errors.MyJcbIdAlreadyLinked):
        rules.ensure_myjcb_id_free("user_good", [taken], account_id="another")
    rules.ensure_myjcb_id_free("user_good", [taken], account_id=taken.account_id)


def test_r10_r16_amex_api_account_delete_refused_until_stopped() -> None:
    card = amex_card()
    acct = account(card, sync_method=SyncMethod.API)
    live = link(card, acct)
    with pytest.raises(errors.RevokeAtIssuerFirst) as info:
        rules.ensure_deletable(acct, live, stopped_at_issuer=False)
    assert info.value.rule == "R10"
    rules.ensure_deletable(acct, live, stopped_at_issuer=True)


def test_r10_an_expired_amex_link_is_not_a_stopped_one() -> None:
    card = amex_card()
    acct = account(card, sync_method=SyncMethod.API)
    expired = link(card, acct)
    expired.status = LinkStatus.EXPIRED  # tokens refused, grant maybe still active at Amex
    with pytest.raises(errors.RevokeAtIssuerFirst):
        rules.ensure_deletable(acct, expired, stopped_at_issuer=False)
    expired.status = LinkStatus.REVOKED
    rules.ensure_deletable(acct, expired, stopped_at_issuer=False)


def test_r10_does_not_apply_to_jcb() -> None:
    card = jcb_card()
    acct = account(card, sync_method=SyncMethod.API)
    rules.ensure_deletable(acct, link(card, acct), stopped_at_issuer=False)


def test_r13_one_amex_card_per_authorization() -> None:
    card = amex_card()
    for refs in ([], [card.card_ref, "amex-biz-1001"]):
        with pytest.raises(errors.OneCardPerAuthorization):
            rules.ensure_grant_fits_account(
                issuer=Issuer.AMEX,
                subject_kind="single",
                granted_card_refs=refs,
                account_card=card,
            )


def test_r15_supplementary_card_must_be_registered() -> None:
    supplementary = amex_card(
        "amex-plat-3002", "amex_business_platinum", role=CardRole.SUPPLEMENTARY
    )
    with pytest.raises(errors.SupplementaryNotRegistered):
        rules.ensure_supplementary_registered(supplementary, ["amex-plat-3001"])
    rules.ensure_supplementary_registered(supplementary, ["amex-plat-3002"])


def test_r15_basic_card_consent_does_not_fit_supplementary_account() -> None:
    supplementary = amex_card(
        "amex-plat-3002", "amex_business_platinum", role=CardRole.SUPPLEMENTARY
    )
    with pytest.raises(errors.CardMismatch):
        rules.ensure_grant_fits_account(
            issuer=Issuer.AMEX,
            subject_kind="single",
            granted_card_refs=["amex-plat-3001"],
            account_card=supplementary,
        )


def test_r15_amex_account_takes_only_its_card_r9_jcb_takes_family() -> None:
    card = amex_card()
    acct = account(card)
    assert rules.statement_belongs(card.id, acct, [])
    assert not rules.statement_belongs("supplementary-id", acct, ["supplementary-id"])
    jcb = jcb_card()
    jacct = account(jcb)
    assert rules.statement_belongs("family-id", jacct, ["family-id"])
    assert not rules.statement_belongs("stranger", jacct, ["family-id"])


def test_roles_rank() -> None:
    with pytest.raises(errors.Forbidden):
        rules.require_role(Role.READ_ONLY, Role.MEMBER)
    with pytest.raises(errors.Forbidden):
        rules.require_role(None, Role.READ_ONLY)
    rules.require_role(Role.ADMIN, Role.MEMBER)


def test_switch_refused_for_deleted_or_already_linked() -> None:
    card = amex_card()
    with pytest.raises(errors.InvalidState):
        rules.ensure_switchable(account(card, status=AccountStatus.DELETED))
    with pytest.raises(errors.InvalidState):
        rules.ensure_switchable(account(card, sync_method=SyncMethod.API))


def test_r2_batch_import_adds_only_what_is_new() -> None:
    day = dt.date(2026, 11, 1)
    key = natural_key("c", day, 1200, "ｽﾀｰﾊﾞｯｸｽ")
    assert key == natural_key("c", day, 1200, "スターバックス")  # width folded
    # two identical purchases on one day are two lines; one is stored already
    fresh = surplus_of_batch([(key, "first"), (key, "second")], {key: 1})
    assert fresh == ["second"]
    assert surplus_of_batch([(key, "again")], {key: 1}) == []
