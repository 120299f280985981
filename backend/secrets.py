"""Secrets at rest: MultiFernet with key rotation.

The first key encrypts; every key decrypts, so a new key can be put first and the
stored secrets re-encrypted (``rotate``) without downtime.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretError(Exception):
    """A secret could not be decrypted with any configured key."""


class FernetSecretBox:
    """Encrypts and decrypts short secrets (tokens, passwords, PKCE verifiers).

    With ``reload``, a secret no current key opens makes the box read its keys again
    once: another process may have rotated them (``renkei keys rotate``) meanwhile.
    """

    def __init__(
        self, keys: Sequence[str], reload: Callable[[], Sequence[str]] | None = None
    ) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._fernet = self._build(keys)
        self._reload = reload

    @staticmethod
    def _build(keys: Sequence[str]) -> MultiFernet:
        return MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken as exc:
            if self._reload is not None:
                self._fernet = self._build(self._reload())
                try:
                    return self._fernet.decrypt(ciphertext).decode()
                except InvalidToken:
                    pass
            raise SecretError("secret cannot be decrypted with the configured keys") from exc

    def rotate(self, ciphertext: bytes) -> bytes:
        """Re-encrypt under the first (newest) key."""
        try:
            return self._fernet.rotate(ciphertext)
        except InvalidToken as exc:
            raise SecretError("secret cannot be decrypted with the configured keys") from exc


def load_or_create_key_file(path: Path) -> list[str]:
    """Keys from ``path`` (one per line, newest first); create it, owner-only, if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(Fernet.generate_key().decode() + "\n")
    os.chmod(path, 0o600)
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def add_key_to_file(path: Path) -> None:
    """Put a fresh key first in the key file (the older keys keep decrypting).

    Written to a temporary file and renamed over the old one, so a crash midway
    leaves the old file whole.
    """
    keys = load_or_create_key_file(path)
    new_keys = [Fernet.generate_key().decode(), *keys]
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(new_keys) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
