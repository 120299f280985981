"""The sandbox's own database file: its issuers' state survives a restart.

A real issuer does not forget its grants when a client restarts, so neither does
the sandbox. `SandboxState` stays the working copy that every route reads and
changes in memory; `SandboxStore` writes it to a SQLite file of its own (never
renkei's database) at the end of each request and each background delivery, before
the answer leaves: a token answer that reached the client is always on disk, so a
rotated refresh token is never lost by a restart.

Each collection has its own table, a row per object (issuer, key, JSON body); a
save writes only the rows whose JSON changed since the last save and deletes the
rows whose object is gone, in one transaction. The many objects (tokens, codes,
sessions, consent requests) journal their own changes (`Tracked`, `TrackedDict`), so
a save costs what changed, not what exists; the few others (users, cards, grants) are
compared whole. The file belongs to one process at a
time: the sandbox runs in one process (in ``renkei serve`` or ``renkei sandbox``).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sandbox.statements import DateSegment, RangeEvent, StatementLedger

if TYPE_CHECKING:
    from sandbox.state import SandboxState

SCHEMA_VERSION = 1
# Collections of each issuer: the attribute of `IssuerData` and the table holding it.
COLLECTIONS = (
    "users",
    "cards",
    "grants",
    "requests",
    "codes",
    "access_tokens",
    "refresh_tokens",
    "sessions",
    "faults",
)
SHARED = ""  # the issuer column of rows both issuers share (clients, settings)

Row = tuple[str, str, str]  # (table, issuer, key)
T = TypeVar("T")
V = TypeVar("V")
# Collections of `Tracked` objects, saved from their journal; the others are compared.
JOURNALED = ("requests", "codes", "access_tokens", "refresh_tokens", "sessions", "faults")
SCANNED = tuple(name for name in COLLECTIONS if name not in JOURNALED)

# The statements of each table, made once from the fixed names above (never from input).
_SELECT = {t: f"SELECT key, body FROM {t} WHERE issuer = ?" for t in COLLECTIONS}  # noqa: S608
_UPSERT = {
    t: f"INSERT INTO {t} (issuer, key, body) VALUES (?, ?, ?) "  # noqa: S608
    "ON CONFLICT (issuer, key) DO UPDATE SET body = excluded.body"
    for t in (*COLLECTIONS, "shared")
}
_DELETE = {
    t: f"DELETE FROM {t} WHERE issuer = ? AND key = ?"  # noqa: S608
    for t in (*COLLECTIONS, "shared")
}


class Tracked:
    """An object whose fields all hold plain values, so every change is an assignment.

    Held by a `TrackedDict`, it notes each change of its own in that dict's journal.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        journal = self.__dict__.get("_journal")
        if journal is not None:
            journal.add(self.__dict__["_row"])


class TrackedDict(dict[str, V]):
    """A collection that journals every key added, changed or removed."""

    def bind(self, table: str, issuer: str, journal: set[Row]) -> None:
        """Name the rows of this collection and the journal its changes go to."""
        self._table = table
        self._issuer = issuer
        self._journal: set[Row] | None = journal

    def _note(self, key: str) -> None:
        journal = getattr(self, "_journal", None)
        if journal is not None:
            journal.add((self._table, self._issuer, key))

    def __setitem__(self, key: str, value: V) -> None:
        super().__setitem__(key, value)
        self._note(key)
        if isinstance(value, Tracked) and getattr(self, "_journal", None) is not None:
            object.__setattr__(value, "_row", (self._table, self._issuer, key))
            object.__setattr__(value, "_journal", self._journal)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._note(key)

    def pop(self, key: str, *default: Any) -> Any:
        """As `dict.pop`, journaled."""
        self._note(key)
        return super().pop(key, *default)

    def clear(self) -> None:
        """As `dict.clear`, journaled."""
        for key in self:
            self._note(key)
        super().clear()

    def popitem(self) -> tuple[str, V]:
        """As `dict.popitem`, journaled."""
        key, value = super().popitem()
        self._note(key)
        return key, value

    def setdefault(self, key: str, default: V) -> V:
        """As `dict.setdefault`, journaled."""
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        """As `dict.update`, journaled."""
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


class SandboxStoreError(RuntimeError):
    """The state file cannot be used (written by a newer sandbox, or not a sandbox file)."""


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def build(cls: type[T], body: dict[str, Any]) -> T:
    """An object of the dataclass ``cls`` from a stored body; unknown keys are ignored.

    A field added by a later version of the sandbox takes its default when an older
    file is read, and a field that was removed is dropped.
    """
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in body.items() if k in names})


def ledger_body(ledger: StatementLedger) -> dict[str, Any]:
    """A ledger as JSON-ready data (dates as ISO strings)."""
    return {
        "segments": [
            [s.start, s.stop, s.first_day.isoformat(), s.last_day.isoformat()]
            for s in ledger.segments
        ],
        "events": [dict(vars(event)) for event in ledger.events],
        "total": ledger.total,
        "confirmed_upto": ledger.confirmed_upto,
        "removed": [list(pair) for pair in ledger.removed],
    }


def ledger_from(body: dict[str, Any]) -> StatementLedger:
    """The ledger of `ledger_body`."""
    return StatementLedger(
        segments=[
            DateSegment(start, stop, date.fromisoformat(first), date.fromisoformat(last))
            for start, stop, first, last in body["segments"]
        ],
        events=[RangeEvent(**event) for event in body["events"]],
        total=body["total"],
        confirmed_upto=body["confirmed_upto"],
        removed=[(lo, hi) for lo, hi in body["removed"]],
    )


def _body(value: Any) -> dict[str, Any]:
    # The stored objects are flat (their lists and dicts hold plain values), so a shallow
    # copy is enough, and far cheaper than `dataclasses.asdict`; bookkeeping stays out.
    body = {name: item for name, item in vars(value).items() if not name.startswith("_")}
    if "ledger" in body:
        body["ledger"] = ledger_body(value.ledger)
    return body


class SandboxStore:
    """One SQLite file holding the state of both simulated issuers."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the file; its directory is made if missing.

        Raises:
            SandboxStoreError: The file was written by a newer sandbox.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # Grants and tokens: the owner's alone, like renkei's own database file.
        path.chmod(0o600)
        # WAL and NORMAL sync: a save is one short transaction, cheap enough per request.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for table in (*COLLECTIONS, "shared"):
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} ("
                "issuer TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, "
                "PRIMARY KEY (issuer, key))"
            )
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SandboxStoreError(
                f"{path} was written by a newer sandbox (schema {version}); "
                "remove it to start from the demo data"
            )
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._saved: dict[Row, str] = {}
        self._scanned: set[Row] = set()  # the rows of SCANNED collections at the last save

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    # ------------------------------------------------------------------ reading
    def is_empty(self) -> bool:
        """Whether nothing was ever saved (a first start: seed the demo data)."""
        found = self._db.execute("SELECT 1 FROM shared WHERE key = 'meta'").fetchone()
        return found is None

    def load(self, state: SandboxState) -> None:
        """Replace ``state``'s contents with what the file holds (in place)."""
        from sandbox.state import (
            ISSUERS,
            AccessToken,
            AuthorizationCode,
            AuthorizationRequest,
            Card,
            ClientRegistration,
            DueNotification,
            Fault,
            Grant,
            IssuerSettings,
            LegacySession,
            RefreshToken,
            SandboxSettings,
            User,
            WebhookDelivery,
        )

        kinds: dict[str, Callable[[dict[str, Any]], Any]] = {
            "users": lambda b: build(User, b),
            "cards": lambda b: build(Card, {**b, "ledger": ledger_from(b["ledger"])}),
            "grants": lambda b: build(Grant, b),
            "requests": lambda b: build(AuthorizationRequest, b),
            "codes": lambda b: build(AuthorizationCode, b),
            "access_tokens": lambda b: build(AccessToken, b),
            "refresh_tokens": lambda b: build(RefreshToken, b),
            "sessions": lambda b: build(LegacySession, b),
            "faults": lambda b: build(Fault, b),
        }
        saved: dict[Row, str] = {}
        for issuer in ISSUERS:
            data = state.issuers[issuer]
            data.clear()
            for table, make in kinds.items():
                target: dict[str, Any] = getattr(data, table)
                rows = self._db.execute(_SELECT[table], (issuer,)).fetchall()
                for key, text in rows:
                    target[key] = make(json.loads(text))
                    saved[(table, issuer, key)] = text
            data.changes.clear()  # what was just read is what the file holds
        shared = dict(self._db.execute("SELECT key, body FROM shared").fetchall())
        saved.update({("shared", SHARED, key): text for key, text in shared.items()})
        meta = json.loads(shared["meta"])
        state.generation = meta["generation"]
        state.seq = meta["seq"]
        state.clock.offset = meta["clock_offset"]
        state.site_key = bytes.fromhex(meta["site_key"])
        state.settings = build(SandboxSettings, json.loads(shared["settings"]))
        state.settings.issuers = {
            name: build(IssuerSettings, body)
            for name, body in json.loads(shared["settings"]).get("issuers", {}).items()
        }
        # Clients given by configuration win over stored ones (their secrets may change).
        for body in json.loads(shared.get("clients", "[]")):
            state.clients.setdefault(body["client_id"], build(ClientRegistration, body))
        state.deliveries[:] = [build(WebhookDelivery, b) for b in json.loads(shared["deliveries"])]
        state.due_notifications[:] = [
            build(DueNotification, b) for b in json.loads(shared["due_notifications"])
        ]
        self._saved = saved
        self._scanned = {row for row in saved if row[0] in SCANNED}

    # ------------------------------------------------------------------ writing
    def _rows(self, state: SandboxState) -> tuple[dict[Row, str], set[Row]]:
        """The rows to compare with the file, and the rows that may have gone."""
        rows: dict[Row, str] = {}
        maybe_gone: set[Row] = set()
        scanned: set[Row] = set()
        for issuer, data in state.issuers.items():
            for table in SCANNED:
                for key, value in getattr(data, table).items():
                    scanned.add((table, issuer, key))
                    rows[(table, issuer, key)] = _json(_body(value))
            for row in data.changes:
                table, _, key = row
                value = getattr(data, table).get(key)
                if value is None:
                    maybe_gone.add(row)
                else:
                    rows[row] = _json(_body(value))
            data.changes.clear()
        maybe_gone.update(self._scanned - scanned)
        self._scanned = scanned
        shared = {
            "meta": {
                "generation": state.generation,
                "seq": state.seq,
                "clock_offset": state.clock.offset,
                "site_key": state.site_key.hex(),
            },
            "settings": dataclasses.asdict(state.settings),
            "clients": [_body(c) for c in state.clients.values()],
            "deliveries": [_body(d) for d in state.deliveries],
            "due_notifications": [_body(d) for d in state.due_notifications],
        }
        rows.update({("shared", SHARED, key): _json(body) for key, body in shared.items()})
        return rows, maybe_gone

    def save(self, state: SandboxState) -> int:
        """Write what changed since the last save; returns how many rows were written."""
        rows, maybe_gone = self._rows(state)
        changed = [(row, text) for row, text in rows.items() if self._saved.get(row) != text]
        gone = [row for row in maybe_gone if row in self._saved]
        if not changed and not gone:
            return 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            _write(self._db, changed, gone)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        for row, text in changed:
            self._saved[row] = text
        for row in gone:
            del self._saved[row]
        return len(changed) + len(gone)


def _write(db: sqlite3.Connection, changed: Iterable[tuple[Row, str]], gone: Iterable[Row]) -> None:
    for (table, issuer, key), text in changed:
        db.execute(_UPSERT[table], (issuer, key, text))
    for table, issuer, key in gone:
        db.execute(_DELETE[table], (issuer, key))
