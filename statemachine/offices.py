"""Offices as a person picks one: two offices of one name are told apart.

An office's name is chosen by whoever created it, so a look-alike name is easy to make;
where two of the person's offices share a name, each button also shows an admin of the
office and the start of its id (the catalog's ``office.told_apart``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from statemachine.port import OfficeInfo
from statemachine.replies import Choice

TOLD_APART = "office.told_apart"
TOLD_APART_BY_ID = "office.told_apart_by_id"  # where the office's admins are not known
SHORT_ID = 6


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
