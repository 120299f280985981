"""Secrets at rest: Fernet, with keys that can be rotated while renkei runs.

A box holds every key it knows (all of them decrypt) and encrypts with one: the key the
database names as the newest (``use_newest``), or its first key while the database
names none. ``renkei keys rotate`` names a new key there; every process follows it
within seconds (``backend.db.secret_keys.KeyWatcher``), so nothing new is sealed under
a key that is about to be dropped.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)


class SecretError(Exception):
    """A secret could not be decrypted with any configured key."""


def key_id(key: str) -> str:
    """A short public name of a key: a hash, from which the key cannot be found."""
    return hashlib.sha256(b"renkei-secret-key:" + key.strip().encode()).hexdigest()[:16]


class FernetSecretBox:
    """Encrypts and decrypts short secrets (tokens, passwords, PKCE verifiers).

    With ``reload``, the box reads its keys again when a secret no key it holds opens,
    or when the database names a newest key it does not hold yet: another process may
    have added one (``renkei keys rotate``) meanwhile.
    """

    def __init__(
        self, keys: Sequence[str], reload: Callable[[], Sequence[str]] | None = None
    ) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._reload = reload
        self._set_keys(list(keys), keys[0])

    def _set_keys(self, keys: list[str], current: str) -> None:
        self._keys = keys
        self._current = current
        self._encrypting = Fernet(current.encode())
        others = [Fernet(k.encode()) for k in keys if k != current]
        self._fernet = MultiFernet([self._encrypting, *others])

    @property
    def current_key_id(self) -> str:
        return key_id(self._current)

    @property
    def key_ids(self) -> list[str]:
        return [key_id(k) for k in self._keys]

    def use_newest(self, newest_id: str) -> bool:
        """Encrypt from now on with the key named ``newest_id``; False if no key has it."""
        if key_id(self._current) == newest_id:
            return True
        found = self._find(newest_id)
        if found is None and self._reload is not None:
            self._reload_keys()
            found = self._find(newest_id)
        if found is None:
            log.error("the newest secret key (id %s) is not among this process's keys", newest_id)
            return False
        self._set_keys(self._keys, found)
        log.info("secrets are now encrypted with key %s", newest_id)
        return True

    def _find(self, wanted: str) -> str | None:
        return next((k for k in self._keys if key_id(k) == wanted), None)

    def _reload_keys(self) -> None:
        assert self._reload is not None
        keys = list(self._reload())
        if not keys:
            return
        # The key in use stays in use until the database names another one.
        current = self._current if self._current in keys else keys[0]
        self._set_keys(keys, current)

    def encrypt(self, plaintext: str) -> bytes:
        return self._encrypting.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken as exc:
            if self._reload is not None:
                self._reload_keys()
                try:
                    return self._fernet.decrypt(ciphertext).decode()
                except InvalidToken:
                    pass
            raise SecretError("secret cannot be decrypted with the configured keys") from exc

    def is_current(self, ciphertext: bytes) -> bool:
        """Whether ``ciphertext`` is sealed under the key this box encrypts with."""
        try:
            self._encrypting.decrypt(ciphertext)
        except InvalidToken:
            return False
        return True

    def rotate(self, ciphertext: bytes) -> bytes:
        """Re-encrypt under the key this box encrypts with."""
        try:
            return self._fernet.rotate(ciphertext)
        except InvalidToken as exc:
            raise SecretError("secret cannot be decrypted with the configured keys") from exc


def read_key_file(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_or_create_key_file(path: Path) -> list[str]:
    """Keys from ``path`` (one per line, newest first); create it, owner-only, if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(Fernet.generate_key().decode() + "\n")
    os.chmod(path, 0o600)
    return read_key_file(path)


def write_key_file(path: Path, keys: Sequence[str]) -> None:
    """Replace the key file whole: written aside and renamed, so a crash leaves the old one."""
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(keys) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def add_key_to_file(path: Path) -> str:
    """Put a fresh key first in the key file (the older keys keep decrypting); return it."""
    keys = load_or_create_key_file(path)
    new_key = Fernet.generate_key().decode()
    write_key_file(path, [new_key, *keys])
    return new_key
