"""Offices of one name are told apart on every button that picks one."""

from __future__ import annotations

from typing import Any, cast

from backend.domain.vocabulary import Role
from bot.conversations import choice_label
from statemachine.flow import Turn
from statemachine.flows.multi_office import prompt_choose_office
from statemachine.offices import office_choices
from statemachine.port import BackendPort, OfficeInfo


def test_only_offices_sharing_a_name_get_their_admin_and_short_id() -> None:
    offices = [
        OfficeInfo(id="aaaaaa111", name="山田商店", role=Role.ADMIN, admins=("me@example.com",)),
        OfficeInfo(
            id="bbbbbb222", name="山田商店 ", role=Role.MEMBER, admins=("eve@evil.example",)
        ),
        OfficeInfo(id="cccccc333", name="山田コンサルティング", role=Role.ADMIN),
    ]
    labels = [choice_label(c, "en") for c in office_choices(offices)]
    assert labels == [
        "山田商店 (admin me@example.com, ID aaaaaa)",
        "山田商店  (admin eve@evil.example, ID bbbbbb)",
        "山田コンサルティング",
    ]
    assert [c.value for c in office_choices(offices)] == [f"office:{o.id}" for o in offices]
    ja = choice_label(office_choices(offices)[1], "ja")
    assert "eve@evil.example" in ja and "bbbbbb" in ja


def test_the_multi_office_chooser_tells_apart_offices_of_one_name() -> None:
    uses: list[dict[str, Any]] = [
        {"account_id": "acc1", "office_id": "aaaaaa111", "office_name": "山田商店"},
        {"account_id": "acc2", "office_id": "bbbbbb222", "office_name": "山田商店"},
        {"account_id": "acc3", "office_id": "cccccc333", "office_name": "別の事業所"},
    ]
    for use in uses:
        use.update(sync_method="api", api_linked=False)
    turn = Turn(
        conversation_id="c1",
        user="me@example.com",
        locale="en",
        office_id="aaaaaa111",
        state="choose_office",
        slots={"uses": uses},
        backend=cast(BackendPort, object()),
    )
    prompt_choose_office(turn)
    labels = [choice_label(c, "en") for r in turn.replies for c in r.choices]
    assert labels == ["山田商店 (ID aaaaaa)", "山田商店 (ID bbbbbb)", "別の事業所"]
