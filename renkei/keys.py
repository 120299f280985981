"""Key rotation: a new key named in the database, every stored secret re-encrypted under it.

``rotate`` may be stopped at any point and run again: it goes on with the key it named
(each batch was committed), and once finished, a further run starts the next rotation.
``drop`` removes the older keys only after a finished rotation, and only if no secret
is still sealed under one of them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from backend.db.engine import make_engine, migrate
from backend.db.secret_keys import (
    DONE,
    ROTATING,
    KeyState,
    KeyStateChanged,
    ResealPass,
    Unreadable,
    mark_done,
    name_newest_key,
    read_key_state,
    reseal,
)
from backend.secrets import (
    FernetSecretBox,
    add_key_to_file,
    key_id,
    load_or_create_key_file,
    write_key_file,
)
from renkei.settings import Settings

# Passes after the grace period before giving up on a process that still seals under an
# older key (one that has not got the new key: another host, an old RENKEI_SECRET_KEYS).
_MAX_CLEAN_PASSES = 10


class RotationError(Exception):
    """The rotation cannot go on; the message says what to do."""


@dataclass
class RotationReport:
    newest_key_id: str
    resealed: int
    resumed: bool
    unreadable: list[Unreadable] = field(default_factory=list)


def _env_keys(settings: Settings) -> list[str] | None:
    if settings.secret_keys is None:
        return None
    keys = [k.strip() for k in settings.secret_keys.get_secret_value().split(",") if k.strip()]
    if not keys:
        raise RotationError("RENKEI_SECRET_KEYS is set but holds no key")
    return keys


def _choose_newest(settings: Settings, state: KeyState | None) -> tuple[list[str], str, bool]:
    """The key set, the key to rotate to, and whether that key is already named."""
    keys = _env_keys(settings)
    if keys is not None:
        # The operator puts the new key first in RENKEI_SECRET_KEYS of every process.
        target = keys[0]
        return keys, target, state is not None and state.newest_key_id == key_id(target)
    path = settings.data_dir / "secret-keys"
    keys = load_or_create_key_file(path)
    ids = [key_id(k) for k in keys]
    if state is not None and state.status == ROTATING and state.newest_key_id in ids:
        return keys, keys[ids.index(state.newest_key_id)], True  # an interrupted run
    if state is not None and ids[0] != state.newest_key_id:
        # A key first in the file but not named yet: put there by hand, or by a run that
        # stopped before naming it. Rotating to it loses nothing either way.
        return keys, keys[0], False
    new_key = add_key_to_file(path)
    return load_or_create_key_file(path), new_key, False


def _describe_old(found: ResealPass) -> str:
    return ", ".join(f"{name}: {count}" for name, count in sorted(found.old.items()))


async def _rotate(
    engine: AsyncEngine,
    settings: Settings,
    batch_size: int,
    grace: float,
    on_batch: Callable[[int], None] | None,
) -> RotationReport:
    async with engine.connect() as connection:
        state = await read_key_state(connection)
    keys, target, resumed = _choose_newest(settings, state)
    if not resumed or state is None:
        # From this commit on every running renkei seals with the new key (within its
        # check interval); the passes below catch what was sealed before it switched.
        state = await name_newest_key(engine, key_id(target))
    box = FernetSecretBox(keys)
    box.use_newest(key_id(target))
    report = RotationReport(key_id(target), 0, resumed)
    clean_passes = 0
    while True:
        try:
            found = await reseal(
                engine, box, batch_size=batch_size, on_batch=on_batch, version=state.version
            )
        except KeyStateChanged as exc:
            raise RotationError(
                "another `renkei keys rotate` named a newer key meanwhile: let it finish"
            ) from exc
        report.resealed += found.resealed
        report.unreadable = found.unreadable
        waited = (dt.datetime.now(dt.UTC) - state.changed_at).total_seconds()
        if waited < grace:
            # A process may still be sealing under the old key until its next check.
            await asyncio.sleep(grace - waited)
            continue
        if found.resealed == 0 and found.old_total == 0:
            break
        clean_passes += 1
        if clean_passes >= _MAX_CLEAN_PASSES:
            raise RotationError(
                "secrets are still being written under an older key "
                f"({_describe_old(found) or f'{found.resealed} re-encrypted in the last pass'}): "
                "a running renkei does not hold the new key. Give every process the same "
                "keys (the key file or RENKEI_SECRET_KEYS), then run `renkei keys rotate` "
                "again; keep the older keys until it finishes"
            )
        await asyncio.sleep(settings.key_check_seconds)
    if not await mark_done(engine, state.version):
        raise RotationError("another rotation began meanwhile: run `renkei keys rotate` again")
    return report


async def rotate_keys(
    settings: Settings,
    *,
    batch_size: int = 500,
    grace: float | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> RotationReport:
    """Rotate to a new key (or finish the rotation that was interrupted)."""
    if batch_size < 1:
        raise RotationError("the batch size is at least 1")
    engine = make_engine(settings.resolved_database_url())
    try:
        await migrate(engine)
        # Every process checks the key state every key_check_seconds: after three of
        # those, none is still sealing under the old key.
        wait = 3 * settings.key_check_seconds + 1 if grace is None else grace
        return await _rotate(engine, settings, batch_size, wait, on_batch)
    finally:
        await engine.dispose()


@dataclass
class KeyStatus:
    state: KeyState | None
    key_ids: list[str]
    found: ResealPass


async def key_status(settings: Settings) -> KeyStatus:
    """The named key, the keys held here, and the secrets still under another key."""
    engine = make_engine(settings.resolved_database_url())
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            state = await read_key_state(connection)
        keys = _env_keys(settings) or load_or_create_key_file(settings.data_dir / "secret-keys")
        box = FernetSecretBox(keys)
        if state is not None and not box.use_newest(state.newest_key_id):
            raise RotationError(
                f"the newest key (id {state.newest_key_id}) is not among this machine's keys"
            )
        found = await reseal(engine, box, write=False)
        return KeyStatus(state, box.key_ids, found)
    finally:
        await engine.dispose()


async def drop_old_keys(settings: Settings) -> list[str]:
    """Remove every key but the newest from the key file; the ids of the older keys.

    With RENKEI_SECRET_KEYS, nothing is written: the operator removes them there.
    """
    status = await key_status(settings)
    state = status.state
    if state is None:
        raise RotationError("no rotation was made yet: there is no older key to remove")
    if state.status != DONE:
        raise RotationError(
            "the rotation is not finished: run `renkei keys rotate` (it goes on where it "
            "stopped); no key was removed"
        )
    if status.found.old_total:
        raise RotationError(
            f"{status.found.old_total} secrets are still under an older key "
            f"({_describe_old(status.found)}): run `renkei keys rotate` to finish; "
            "no key was removed"
        )
    older = [k for k in status.key_ids if k != state.newest_key_id]
    if _env_keys(settings) is not None:
        return older  # the operator removes them from RENKEI_SECRET_KEYS
    path = settings.data_dir / "secret-keys"
    keys = load_or_create_key_file(path)
    write_key_file(path, [k for k in keys if key_id(k) == state.newest_key_id])
    return older
