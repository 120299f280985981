"""The assistant keeps the person's place: each procedure is for the office it says."""

from __future__ import annotations

from i18n import render
from tests.e2e.chat import Chat
from tests.e2e.conftest import Renkei
from tests.e2e.test_backend_rules import BIZ, CONSULTING, SHOP, switch
from tests.e2e.test_reauth_notice import sync_refused


async def accounts_offered(chat: Chat) -> set[str]:
    return {c.removeprefix("pick:") for c in chat.choices() if c.startswith("pick:")}


async def office_accounts(renkei: Renkei, office: str) -> set[str]:
    found = await renkei.office(office)
    listed = (await renkei.api.get(f"/offices/{found['id']}/accounts")).json()
    return {a["id"] for a in listed}


async def test_each_procedure_asks_or_says_its_office_and_start_over_forgets_it(
    renkei: Renkei,
) -> None:
    shop = await office_accounts(renkei, SHOP)
    consulting = await office_accounts(renkei, CONSULTING)
    chat = Chat(renkei)
    await chat.start()
    await chat.choose("status")
    assert chat.where() == (None, "choose_office")  # the owner belongs to two offices
    await chat.choose_label(SHOP)
    assert chat.where() == ("status", "choose_account")
    assert await accounts_offered(chat) == shop
    await chat.say("やめる")
    assert chat.where() == (None, "menu")

    # The next procedure is asked for anew: the last one's office is not kept silently.
    await chat.choose("status")
    assert chat.where() == (None, "choose_office")
    await chat.choose("cancel")
    assert chat.where() == (None, "menu")

    # An office named in the request is the one the procedure is for, and it is said.
    await chat.say(f"{CONSULTING}の口座の明細が届かない")
    assert chat.where() == ("status", "choose_account")
    assert chat.said("menu.office_stated", name=CONSULTING)
    assert await accounts_offered(chat) == consulting

    # Start over forgets the procedure and its office: the office is asked again.
    await chat.say("最初から")
    assert chat.where() == (None, "menu")
    assert chat.said("common.restarted")
    await chat.choose("status")
    assert chat.where() == (None, "choose_office")
    # The office question answered in words.
    await chat.say(f"{SHOP}です")
    assert chat.where() == ("status", "choose_account")
    assert await accounts_offered(chat) == shop


async def test_a_conversation_opened_for_an_office_says_so_and_then_asks(renkei: Renkei) -> None:
    consulting = await renkei.office(CONSULTING)
    chat = Chat(renkei)
    await chat.start(locale="en", office_id=consulting["id"])
    await chat.choose("status")
    assert chat.where() == ("status", "choose_account")
    assert chat.said("menu.office_stated", name=CONSULTING)
    await chat.choose("cancel")
    await chat.choose("status")
    assert chat.where() == (None, "choose_office")


async def test_cancelling_before_consent_leaves_no_half_made_account(renkei: Renkei) -> None:
    before = await office_accounts(renkei, SHOP)
    chat = Chat(renkei)
    await chat.start()
    await chat.choose("register")
    await chat.choose_label(SHOP)
    await chat.choose("issuer:jcb")
    await chat.choose("named:")  # the default name, 「JCB API」
    assert chat.where() == ("register", "consent")
    draft = (await office_accounts(renkei, SHOP)) - before
    assert len(draft) == 1  # created before the issuer's consent, to be linked by it
    await chat.say("やめる")
    assert chat.where() == (None, "menu")
    assert await office_accounts(renkei, SHOP) == before  # in no list any more
    gone = await renkei.api.get(f"/accounts/{draft.pop()}")
    assert gone.status_code == 404 or gone.json()["status"] == "deleted"


async def test_only_a_member_abandons_only_a_registration_never_consented(
    renkei: Renkei,
) -> None:
    shop = await renkei.office(SHOP)
    started = await renkei.api.post(
        f"/offices/{shop['id']}/accounts",
        json={"sync_method": "api", "issuer": "jcb", "name": "JCB 下書き"},
    )
    assert started.status_code == 201, started.text
    draft = started.json()["account_id"]
    outsider = renkei.cli("token", "create", "eve@example.com")
    refused = await renkei.api.delete(
        f"/accounts/{draft}/registration", headers={"Authorization": f"Bearer {outsider}"}
    )
    assert refused.status_code == 404  # another office's account does not exist for her
    legacy = await renkei.account(SHOP, "JCBゴールド")
    kept = await renkei.api.delete(f"/accounts/{legacy['id']}/registration")
    assert kept.status_code == 409 and kept.json()["error"]["code"] == "invalid_state"
    assert (await renkei.get_account(legacy["id"]))["status"] != "deleted"
    token = await renkei.join(shop["id"], "member@example.com", "member")
    removed = await renkei.api.delete(
        f"/accounts/{draft}/registration", headers={"Authorization": f"Bearer {token}"}
    )
    assert removed.status_code == 204, removed.text
    assert draft not in await office_accounts(renkei, SHOP)


async def test_an_unreadable_answer_to_the_office_question_keeps_the_procedure(
    renkei: Renkei,
) -> None:
    chat = Chat(renkei)
    await chat.start()
    await chat.choose("register")
    offices = [c for c in chat.choices() if c.startswith("office:")]
    for unreadable, why in (
        (chat.say("えーと、どうだったかな"), "common.not_understood"),
        (chat.upload("memo.txt", b"?"), "common.file_unexpected"),
    ):
        await unreadable
        assert chat.said(why) and chat.said("menu.choose_office")
        assert chat.where() == (None, "choose_office")
        assert [c for c in chat.choices() if c.startswith("office:")] == offices
    await chat.choose_label(SHOP)
    assert chat.where() == ("register", "choose_issuer")  # the procedure chosen first


async def test_toggling_the_language_says_one_confirmation(renkei: Renkei) -> None:
    chat = Chat(renkei)
    await chat.start()
    await chat.choose("register")
    await chat.choose_label(SHOP)
    for _ in range(2):
        await chat.say("English")
        await chat.say("日本語")
    await chat.say("English")
    assert chat.text().count(render("common.language_changed", "en")) == 1
    assert render("common.language_changed", "ja") not in chat.text()
    assert chat.said("register.choose_issuer")  # the step, said again in English
    assert chat.where() == ("register", "choose_issuer")


async def test_an_input_the_step_does_not_take_is_told_for_what_it_was(renkei: Renkei) -> None:
    for locale in ("ja", "en"):
        chat = Chat(renkei)
        await chat.start(locale)
        await chat.choose("register")
        await chat.choose_label(SHOP)
        await chat.choose("issuer:amex")
        assert chat.where() == ("register", "choose_card")
        words = {"ja": "はい", "en": "yes"}[locale]  # words, but no answer to this step
        await chat.say(words)
        assert chat.said("common.not_understood")
        await chat.upload("statement.csv", b"date,amount\n")
        assert chat.said("common.file_unexpected")
        await chat._send({"choice": "issuer:jcb"})  # a button of the step before
        assert chat.said("common.choice_stale")
        for said in ("common.not_understood", "common.file_unexpected", "common.choice_stale"):
            assert render(said, "ja") != render(said, "en")
        assert chat.where() == ("register", "choose_card")


async def test_amex_reauth_sends_to_the_member_site_first_while_the_old_grant_holds_the_card(
    renkei: Renkei,
) -> None:
    account = await renkei.account(SHOP, BIZ)
    await renkei.consent(await switch(renkei, account["id"]), cards=["amex-biz-1001"])
    await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    grants = (await renkei.control_get("amex", "/grants"))["grants"]
    grant = next(g for g in grants if "amex-biz-1001" in g["card_ids"] and g["status"] == "active")
    # The tokens die; the grant stays registered at Amex and keeps holding the card (R10).
    await renkei.control("amex", f"/grants/{grant['grant_id']}/expire-tokens")
    await sync_refused(renkei, account["id"])
    chat = Chat(renkei)
    await chat.start()
    await chat.choose("status")
    await chat.choose_label(SHOP)
    await chat.choose(f"pick:{account['id']}")
    await chat.choose("reauth")
    # Told before going to the issuer, with the path on the member site; no issuer link yet.
    assert chat.where() == ("status", "stop_first")
    assert chat.said("status.stop_first") and "外部サービスとの連携" in chat.text()
    assert not any(r["link"] for r in chat.last["replies"])
    await chat.choose("stopped")  # not stopped yet: said so, and the step stays
    assert chat.where() == ("status", "stop_first") and chat.said("status.still_held")
    await renkei.stop_link_on_member_site(account["card"]["masked_number"])
    await chat.choose("stopped")
    assert chat.where() == ("status", "reauth_consent")
    await renkei.consent(chat.link(), cards=["amex-biz-1001"])  # selectable again
    await chat.wait_until(lambda c: c["flow"] is None)
    assert (await renkei.get_account(account["id"]))["status"] in ("active", "syncing")
