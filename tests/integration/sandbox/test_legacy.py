"""The legacy website: login, statements, and the two CSV downloads in CP932."""

from __future__ import annotations

import csv
import io
import re

import httpx

from tests.integration.sandbox.helpers import link_by_control, sync_all

AMEX_HEADER = (
    "ご利用日,データ処理日,ご利用内容,カード会員様名,会員番号 #,金額,海外通貨利用金額,換算レート"
)
JCB_HEADER = (
    "ご利用者,カテゴリ,ご利用日,ご利用先など,ご利用金額(￥),支払区分,今回回数,訂正サイン,"
    "お支払い金額(￥),国内／海外,摘要,備考"
)


async def legacy_session(
    client: httpx.AsyncClient, issuer: str, user_id: str = "user_good"
) -> dict[str, str]:
    login = await client.post(
        f"/sandbox/{issuer}/legacy/login", data={"user_id": user_id, "password": "pass_good"}
    )
    assert login.status_code == 200
    return {"X-Legacy-Session": login.json()["session"]}


async def test_legacy_login_is_checked(client: httpx.AsyncClient) -> None:
    wrong = await client.post(
        "/sandbox/amex/legacy/login", data={"user_id": "user_good", "password": "bad"}
    )
    assert wrong.status_code == 401 and wrong.json() == {"error": "login_failed"}
    anonymous = await client.get("/sandbox/amex/legacy/statements")
    assert anonymous.status_code == 401


async def test_legacy_and_api_describe_the_same_purchases(client: httpx.AsyncClient) -> None:
    headers = await legacy_session(client, "amex")
    website = (await client.get("/sandbox/amex/legacy/statements", headers=headers)).json()
    # R15: the unregistered supplementary card is not on the login.
    assert "amex-plat-3002" not in {card["card_id"] for card in website["cards"]}
    assert all("transaction_id" not in line for line in website["statements"])
    legacy = {
        (s["card_id"], s["use_date"], s["merchant"], s["amount_jpy"])
        for s in website["statements"]
        if s["card_id"] == "amex-biz-1001"
    }
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    changes, _ = await sync_all(client, linked)
    api = {
        (t["card_id"], t["use_date"], t["merchant"], t["amount_jpy"])
        for t in changes["added"]
        if t["status"] == "confirmed"
    }
    assert len(legacy) == 37
    assert api == legacy


async def test_amex_csv_is_cp932_in_the_amex_format(client: httpx.AsyncClient) -> None:
    headers = await legacy_session(client, "amex")
    answer = await client.get(
        "/sandbox/amex/legacy/statements.csv",
        params={"card_id": "amex-plat-3001"},
        headers=headers,
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    text = answer.content.decode("cp932")
    assert text.endswith("\r\n")
    lines = text.split("\r\n")
    assert lines[0] == AMEX_HEADER
    rows = list(csv.reader(io.StringIO("\r\n".join(lines[1:]))))
    rows = [row for row in rows if row]
    assert all(len(row) == 8 for row in rows)
    assert all(re.fullmatch(r"\d{4}/\d{2}/\d{2}", row[0]) for row in rows)
    assert all(re.search(r',"-?\d{1,3}(,\d{3})*",', line) for line in lines[1:] if line)
    # The previous bill's payment: a minus amount and no card number or holder.
    payments = [row for row in rows if not row[4]]
    assert len(payments) == 1 and "口座振替" in payments[0][2]
    assert payments[0][3] == "" and payments[0][5].startswith("-")
    rows = [row for row in rows if row[4]]
    # The basic card's download holds every card on the online-service ID.
    assert {row[4] for row in rows} >= {"XXXX-XXXXXX-31001", "XXXX-XXXXXX-11001"}
    foreign = [row for row in rows if row[6]]
    assert foreign
    assert all(re.fullmatch(r"\d+\.\d{2} USD", row[6]) for row in foreign)
    assert all(re.fullmatch(r"\d+\.\d{2}", row[7]) for row in foreign)


async def test_myjcb_csv_is_cp932_in_the_myjcb_format(client: httpx.AsyncClient) -> None:
    headers = await legacy_session(client, "jcb")
    answer = await client.get(
        "/sandbox/jcb/legacy/statements.csv", params={"card_id": "jcb-gold-4001"}, headers=headers
    )
    lines = answer.content.decode("cp932").split("\r\n")
    assert re.fullmatch(r"今回のお支払日,\d{4}/\d{2}/10", lines[0])
    assert re.fullmatch(r'今回のお支払金額合計\(￥\),"\d{1,3}(,\d{3})*"', lines[1])
    assert lines[2] == ""
    assert lines[3] == JCB_HEADER
    table = list(csv.reader(io.StringIO("\r\n".join(lines[4:]))))
    notes = next(i for i, row in enumerate(table) if row and row[0].startswith("【"))
    rows = [row for row in table[:notes] if row]
    assert table[notes - 1] == [] and all(len(row) < 12 for row in table[notes:])
    # The basic card's statement holds its family card's uses: 本人, then 家族1.
    assert len(rows) == 2 * 37
    assert all(len(row) == 12 for row in rows)
    assert [row[0] for row in rows] == ["本人"] * 37 + ["家族1"] * 37
    total = sum(int(row[4].replace(",", "")) for row in rows)
    assert lines[1].endswith(f'"{total:,}"')
    family = await client.get(
        "/sandbox/jcb/legacy/statements.csv", params={"card_id": "jcb-gold-4002"}, headers=headers
    )
    family_rows = list(csv.reader(io.StringIO(family.content.decode("cp932"))))[4:]
    assert {row[0] for row in family_rows if len(row) == 12} == {"家族1"}
    unknown = await client.get(
        "/sandbox/jcb/legacy/statements.csv", params={"card_id": "jcb-plat-5002"}, headers=headers
    )
    assert unknown.status_code == 404
