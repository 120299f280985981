"""The shared words are types: a misspelt status, event type or refusal code fails mypy."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import pytest
from mypy import api

from backend.domain import vocabulary

ROOT = Path(__file__).resolve().parents[3]

SPELT_RIGHT = """
from backend.domain.vocabulary import AccountStatus, EventType, RefusalCode, SyncStatus
from statemachine.port import AccountInfo, SyncInfo

def waiting(account: AccountInfo) -> bool:
    return account.status == AccountStatus.NEEDS_REAUTH

answer = SyncInfo(status=SyncStatus.SUCCEEDED)
linked = EventType.LINK_CREATED
code = RefusalCode.CARD_ALREADY_LINKED
"""


def _mypy(source: str, tmp_path: Path) -> tuple[str, int]:
    module = tmp_path / "spelling.py"
    module.write_text(source, encoding="utf-8")
    out, err, status = api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--follow-imports=silent",
            str(module),
        ]
    )
    return out + err, status


def test_the_right_words_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out, status = _mypy(SPELT_RIGHT, tmp_path)
    assert status == 0, out


@pytest.mark.parametrize(
    ("right", "wrong"),
    [
        ("AccountStatus.NEEDS_REAUTH", "AccountStatus.NEEDS_REAUHT"),
        ("SyncInfo(status=SyncStatus.SUCCEEDED)", 'SyncInfo(status="succeded")'),
        ("EventType.LINK_CREATED", "EventType.LINK_CREATD"),
        ("RefusalCode.CARD_ALREADY_LINKED", "RefusalCode.CARD_ALREADY_LINKD"),
    ],
)
def test_a_misspelt_word_fails_mypy(
    right: str, wrong: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    out, status = _mypy(SPELT_RIGHT.replace(right, wrong), tmp_path)
    assert status == 1 and "spelling.py" in out, out


def test_each_value_is_defined_once() -> None:
    """One word, one meaning: no two members of one vocabulary share a value."""
    for name in dir(vocabulary):
        kind = getattr(vocabulary, name)
        if isinstance(kind, type) and issubclass(kind, StrEnum):
            values = [member.value for member in kind]
            assert len(values) == len(set(values)), name


def test_every_error_of_the_back_end_answers_a_known_refusal_code() -> None:
    from backend.domain import errors
    from backend.service import ports

    def codes(base: type[Exception]) -> set[str]:
        found = {str(getattr(base, "code", ""))}
        for subclass in base.__subclasses__():
            found |= codes(subclass)
        return found

    known = {c.value for c in vocabulary.RefusalCode}
    assert codes(errors.DomainError) | codes(ports.IssuerError) <= known
