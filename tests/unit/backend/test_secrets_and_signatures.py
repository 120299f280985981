"""Secrets at rest and webhook signatures."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from backend.domain import errors
from backend.secrets import FernetSecretBox, SecretError, add_key_to_file, load_or_create_key_file
from backend.service import outbox
from backend.service.linking import checked_return_url
from backend.service.ports import TokenSet


def test_secret_round_trip_and_ciphertext_hides_plaintext() -> None:
    box = FernetSecretBox([Fernet.generate_key().decode()])
    sealed = box.encrypt("pass_good")
    assert b"pass_good" not in sealed
    assert box.decrypt(sealed) == "pass_good"


def test_rotation_keeps_old_secrets_readable_and_moves_them_to_the_new_key() -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_with_old = FernetSecretBox([old_key]).encrypt("token")
    both = FernetSecretBox([new_key, old_key])
    assert both.decrypt(sealed_with_old) == "token"
    rotated = both.rotate(sealed_with_old)
    assert FernetSecretBox([new_key]).decrypt(rotated) == "token"
    with pytest.raises(SecretError):
        FernetSecretBox([new_key]).decrypt(sealed_with_old)


def test_a_box_rereads_its_keys_after_another_process_rotated_them(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    running = FernetSecretBox(
        load_or_create_key_file(path), reload=lambda: load_or_create_key_file(path)
    )
    add_key_to_file(path)  # another process rotates and re-encrypts under the new key
    rotated = FernetSecretBox(load_or_create_key_file(path)).encrypt("token")
    assert running.decrypt(rotated) == "token"
    assert not list(tmp_path.glob("*.new"))  # the key file was replaced whole


def test_key_file_is_created_owner_only_and_new_keys_go_first(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    first = load_or_create_key_file(path)
    assert len(first) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    add_key_to_file(path)
    keys = load_or_create_key_file(path)
    assert len(keys) == 2 and keys[1] == first[0]


def test_token_repr_hides_secrets() -> None:
    tokens = TokenSet(access_token="at-secret", refresh_token="rt-secret", expires_at=1)
    assert "secret" not in repr(tokens)


def test_signature_verifies_and_refuses_tampering_and_staleness() -> None:
    body = b'{"id":"evt_1"}'
    header = outbox.sign("s3cret", 1_000_000, body)
    assert outbox.verify("s3cret", header, body, now=1_000_010)
    assert not outbox.verify("s3cret", header, body + b" ", now=1_000_010)
    assert not outbox.verify("other", header, body, now=1_000_010)
    assert not outbox.verify("s3cret", header, body, now=1_000_000 + 301)  # replayed late
    assert not outbox.verify("s3cret", "garbage", body, now=1_000_000)


def test_backoff_grows_and_is_capped() -> None:
    delays = [outbox.backoff_seconds(n) for n in range(1, 20)]
    assert delays[:4] == [1, 2, 4, 8]
    assert max(delays) == 3600


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/",
        "//evil.example",
        "/\t/evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "chat",
        "/chat\n",
    ],
)
def test_return_url_must_stay_on_this_service(url: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        checked_return_url(url)


def test_return_url_accepts_a_path() -> None:
    assert checked_return_url("/chat?conversation=abc") == "/chat?conversation=abc"
    assert checked_return_url(None) is None
