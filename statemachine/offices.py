"""Offices as a person picks one: two offices of one name are told apart.

An office's name is chosen by whoever created it, so a look-alike name is easy to make;
where two of the person's offices share a name, each button also shows an admin of the
office and the start of its id (the catalog's ``office.told_apart``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from statemachine.intents import fold
from statemachine.port import OfficeInfo
from statemachine.replies import Choice

TOLD_APART = "office.told_apart"
TOLD_APART_BY_ID = "office.told_apart_by_id"  # where the office's admins are not known
SHORT_ID = 6
STATED = "menu.office_stated"
STATED_APART = "menu.office_stated_apart"


def office_detail(office: OfficeInfo) -> dict[str, str]:
    """The words that tell this office apart: its first admin and a short id."""
    admin = office.admins[0] if office.admins else ""
    return {"name": office.name, "admin": admin, "ref": office.id[:SHORT_ID]}


def shared_names(offices: Sequence[OfficeInfo]) -> set[str]:
    counts = Counter(o.name.strip().casefold() for o in offices)
    return {name for name, count in counts.items() if count > 1}


def office_choices(offices: Sequence[OfficeInfo], prefix: str = "office:") -> tuple[Choice, ...]:
    shared = shared_names(offices)
    return tuple(
        Choice(value=f"{prefix}{o.id}", label=TOLD_APART, params=office_detail(o))
        if o.name.strip().casefold() in shared
        else Choice(value=f"{prefix}{o.id}", text=o.name)
        for o in offices
    )


def named_offices(text: str, offices: Sequence[OfficeInfo]) -> list[OfficeInfo]:
    """The person's offices whose name the text names (「山田コンサルティングの口座を…」).

    The longest name found wins, so 「山田商店本店」 is not also 「山田商店」; two offices
    of that one name are both answered, and the person is asked which (a look-alike name
    alone never picks an office).
    """
    folded = fold(text)
    found = [o for o in offices if fold(o.name) and fold(o.name) in folded]
    if not found:
        return []
    longest = max(len(fold(o.name)) for o in found)
    return [o for o in found if len(fold(o.name)) == longest]


def office_stated(office: OfficeInfo, offices: Sequence[OfficeInfo]) -> tuple[str, dict[str, str]]:
    """The catalog key and words that say which office a procedure is for."""
    if office.name.strip().casefold() in shared_names(offices):
        return STATED_APART, office_detail(office)
    return STATED, {"name": office.name}
