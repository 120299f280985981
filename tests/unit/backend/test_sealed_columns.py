"""Every secret at rest is in the rotation's registry, and a box follows the named key."""

from __future__ import annotations

from cryptography.fernet import Fernet
from sqlalchemy import JSON, LargeBinary

from backend.db import tables as t
from backend.secrets import FernetSecretBox, key_id


def test_every_binary_column_is_sealed_and_so_rotated() -> None:
    # A secret added later as plain bytes would be missed by `renkei keys rotate`.
    plain = [
        f"{table.name}.{column.name}"
        for table in t.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, LargeBinary)
    ]
    assert plain == []
    names = {f"{table.name}.{column.name}" for table, column in t.sealed_columns()}
    assert {
        "accounts.legacy_login_id",
        "accounts.legacy_password",
        "api_links.tokens",
        "pending_authorizations.code_verifier",
        "slack_installations.sealed",
    } <= names


def test_slack_installations_keep_nothing_in_json() -> None:
    json_columns = [c.name for c in t.slack_installations.columns if isinstance(c.type, JSON)]
    assert json_columns == []


def test_a_box_seals_with_the_named_key_once_it_holds_it() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    on_disk = [old]
    box = FernetSecretBox(list(on_disk), reload=lambda: on_disk)
    sealed_before = box.encrypt("token")
    assert not box.use_newest(key_id(new))  # not in the key set yet: keeps the old key
    assert box.current_key_id == key_id(old)
    on_disk[:] = [new, old]
    assert box.use_newest(key_id(new))
    sealed_after = box.encrypt("token")
    assert FernetSecretBox([new]).decrypt(sealed_after) == "token"
    assert box.decrypt(sealed_before) == "token" and not box.is_current(sealed_before)
    assert FernetSecretBox([new]).decrypt(box.rotate(sealed_before)) == "token"
