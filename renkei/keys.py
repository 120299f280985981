"""Key rotation: a new key first, every stored secret re-encrypted under it."""

from __future__ import annotations

from sqlalchemy import select, update

from backend.db import tables as t
from backend.db.engine import make_engine, make_sessions, migrate
from backend.secrets import FernetSecretBox, add_key_to_file
from renkei.settings import Settings

_SECRET_COLUMNS = [
    (t.accounts, ("legacy_login_id", "legacy_password")),
    (t.api_links, ("tokens",)),
    (t.pending_authorizations, ("code_verifier",)),
]


async def rotate_keys(settings: Settings) -> int:
    if settings.secret_keys is not None:
        raise SystemExit("keys come from RENKEI_SECRET_KEYS: put a new key first there, then rerun")
    key_file = settings.data_dir / "secret-keys"
    add_key_to_file(key_file)
    from renkei.bootstrap import secret_keys

    box = FernetSecretBox(secret_keys(settings))
    engine = make_engine(settings.resolved_database_url())
    await migrate(engine)
    count = 0
    async with make_sessions(engine)() as session:
        for table, columns in _SECRET_COLUMNS:
            for row in (
                await session.execute(select(table.c.id, *[table.c[c] for c in columns]))
            ).all():
                values = {
                    c: box.rotate(getattr(row, c)) for c in columns if getattr(row, c) is not None
                }
                if values:
                    await session.execute(
                        update(table).where(table.c.id == row.id).values(**values)
                    )
                    count += len(values)
        await session.commit()
    await engine.dispose()
    return count
