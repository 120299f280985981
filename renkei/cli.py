"""The ``renkei`` command."""

from __future__ import annotations

import asyncio
import datetime as dt
import warnings
from pathlib import Path
from typing import Annotated, Any

import authlib.deprecate  # noqa: F401 - installs its warning filter before ours, below
import typer
import uvicorn

from renkei.settings import Settings, SettingsError, check_settings

# authlib 1.9 announces its move to "httpx2", which renkei does not use yet: not the
# operator's concern on every start. authlib puts an "always" filter for its warnings in
# front when imported, so it is imported first and this filter goes in front of it.
warnings.filterwarnings("ignore", message="The httpx module is deprecated")

app = typer.Typer(help="renkei: card statements by issuer API, and a guided support assistant.")
token_app = typer.Typer(help="API tokens of members.")
keys_app = typer.Typer(help="Encryption keys of stored secrets.")
app.add_typer(token_app, name="token")
app.add_typer(keys_app, name="keys")
slack_app = typer.Typer(help="The Slack app.")
app.add_typer(slack_app, name="slack")
jobs_app = typer.Typer(help="Background work: syncs, webhook deliveries, scheduled syncs.")
app.add_typer(jobs_app, name="jobs")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    jobs: Annotated[
        bool,
        typer.Option(
            "--jobs/--no-jobs",
            help="Run background work in this process too; --no-jobs serves the web only "
            "(PostgreSQL, with `renkei worker` processes beside it).",
        ),
    ] = True,
) -> None:
    """Start renkei: API, sandbox issuers, job runner; SQLite in the data directory by default."""
    from renkei.bootstrap import SANDBOX_CONTROL_KEY_FILE, create_app, sandbox_control_key
    from renkei.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_format)
    if not jobs:
        settings = settings.model_copy(update={"run_jobs": False})
    if "public_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"public_url": f"http://{host}:{port}"})
    try:
        check_settings(settings)
    except SettingsError as exc:
        typer.echo(f"renkei cannot start: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"renkei on http://{host}:{port}  (data: {settings.data_dir})")
    typer.echo(f"database: {settings.resolved_database_url().split('@')[-1]}")
    if settings.sandbox_on:
        typer.echo(
            f"sandbox issuers at /sandbox/amex and /sandbox/jcb; control API key "
            f"(X-Sandbox-Key): {sandbox_control_key(settings)}  "
            f"(in {settings.data_dir / SANDBOX_CONTROL_KEY_FILE})"
        )
    # JSON lines: uvicorn's loggers go through the root's formatter instead of its own.
    log_config = None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", log_config=log_config)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
) -> None:
    """Run only the simulated Amex and JCB issuers."""
    from renkei.bootstrap import (
        SANDBOX_CONTROL_KEY_FILE,
        SANDBOX_STATE_FILE,
        sandbox_control_key,
    )
    from sandbox import create_app as create_sandbox

    settings = Settings()
    key = sandbox_control_key(settings)
    typer.echo(
        f"sandbox issuers on http://{host}:{port}; control API key (X-Sandbox-Key): {key}  "
        f"(in {settings.data_dir / SANDBOX_CONTROL_KEY_FILE})"
    )
    sandbox_app = create_sandbox(control_key=key, state_file=settings.data_dir / SANDBOX_STATE_FILE)
    uvicorn.run(sandbox_app, host=host, port=port, log_level="info")


@app.command()
def worker(
    name: Annotated[
        str | None, typer.Option(help="Shown in `renkei jobs list` and the logs.")
    ] = None,
) -> None:
    """Run background work (PostgreSQL): syncs, webhook deliveries, scheduled syncs.

    Start any number, on any machine that reaches the database; stop with SIGTERM.
    """
    import os
    import socket

    from renkei.bootstrap import run_worker
    from renkei.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_format)
    try:
        check_settings(settings)
        asyncio.run(run_worker(settings, name or f"{socket.gethostname()}-{os.getpid()}"))
    except SettingsError as exc:
        typer.echo(f"renkei cannot start: {exc}", err=True)
        raise typer.Exit(2) from exc


@jobs_app.command("list")
def jobs_list(
    status: Annotated[
        str | None,
        typer.Option(help="queued, running, done, failed or cancelled; all when omitted."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Newest first, at most this many.")] = 50,
) -> None:
    """The newest jobs: id, task, status, lock, attempts, when due, arguments."""
    from backend.db.job_store import STATUSES
    from renkei.bootstrap import job_admin

    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"status is one of {', '.join(STATUSES)}")

    async def run() -> list[Any]:
        async with job_admin(Settings()) as admin:
            return list(await admin.list_jobs(status, limit))

    for job in asyncio.run(run()):
        due = job.run_at.isoformat() if job.run_at else "-"
        typer.echo(
            f"{job.id}  {job.kind}  {job.status}  lock={job.lock or '-'}  "
            f"attempts={job.attempts}  due={due}  {job.args}"
        )


@jobs_app.command("retry")
def jobs_retry(job_id: Annotated[int, typer.Argument(help="The job's id.")]) -> None:
    """Run a failed job again, now."""
    from renkei.bootstrap import job_admin

    async def run() -> bool:
        async with job_admin(Settings()) as admin:
            return bool(await admin.requeue(job_id, dt.datetime.now(dt.UTC)))

    if not asyncio.run(run()):
        typer.echo(f"no failed job {job_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"job {job_id} queued again")


@jobs_app.command("cancel")
def jobs_cancel(job_id: Annotated[int, typer.Argument(help="The job's id.")]) -> None:
    """Keep a queued job from running (on PostgreSQL, a running one is asked to stop)."""
    from renkei.bootstrap import job_admin

    async def run() -> bool:
        async with job_admin(Settings()) as admin:
            return bool(await admin.cancel(job_id))

    if not asyncio.run(run()):
        typer.echo(f"no queued job {job_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"job {job_id} cancelled")


@app.command()
def migrate() -> None:
    """Apply the database migrations (renkei's and, on PostgreSQL, Procrastinate's)."""
    from backend.db.engine import make_engine
    from backend.db.engine import migrate as run_migrations

    async def run() -> None:
        engine = make_engine(Settings().resolved_database_url())
        await run_migrations(engine)
        await engine.dispose()

    asyncio.run(run())
    typer.echo("database is up to date")


@app.command()
def chat(
    office: Annotated[str | None, typer.Option(help="Office id to talk about.")] = None,
    locale: Annotated[str, typer.Option(help="ja or en.")] = "ja",
    user: Annotated[str | None, typer.Option(help="Member email.")] = None,
    url: Annotated[str | None, typer.Option(help="A remote renkei (with --token).")] = None,
    token: Annotated[str | None, typer.Option(help="Your API token for --url.")] = None,
    port: Annotated[int, typer.Option(help="Port of the embedded service.")] = 8000,
) -> None:
    """Talk to the assistant in this terminal: numbered choices, free text, issuer links."""
    from i18n import render
    from renkei.terminal_run import run_terminal_chat

    if locale not in ("ja", "en"):
        raise typer.BadParameter("locale is ja or en")
    if url is not None and (token is None or user is None):
        raise typer.BadParameter("--url needs --token and --user")
    try:
        status = asyncio.run(run_terminal_chat(url, token, user, locale, office, port))
    except KeyboardInterrupt:
        # Ctrl-C ends the chat at once, with a goodbye rather than a traceback.
        typer.echo("")
        typer.echo(render("terminal.bye", locale))
        raise typer.Exit(130) from None
    raise typer.Exit(status)


@app.command()
def diagrams(
    folder: Annotated[Path, typer.Option(help="Where to write the diagrams.")] = Path("docs/flows"),
) -> None:
    """Write a mermaid diagram of each guided flow, drawn from its machine definition."""
    from statemachine.diagrams import write_all
    from statemachine.flows import ALL_FLOWS

    for path in write_all(ALL_FLOWS, folder):
        typer.echo(str(path))


def parse_duration(text: str) -> dt.timedelta:
    """``90d``, ``12h``, ``30m`` (days, hours, minutes); a bare number is days."""
    text = text.strip().lower()
    units = {"d": "days", "h": "hours", "m": "minutes"}
    unit = units.get(text[-1:]) if text else None
    number = text[:-1] if unit else text
    try:
        value = float(number)
    except ValueError:
        raise typer.BadParameter("a duration like 90d, 12h or 30m") from None
    if not value > 0 or value > 3660 * (1 if unit in (None, "days") else 24 * 60):
        raise typer.BadParameter("a duration between a minute and ten years")
    return dt.timedelta(**{unit or "days": value})


async def _token_store() -> tuple[Any, Any]:
    from backend.db.engine import make_engine, make_sessions
    from backend.db.engine import migrate as run_migrations
    from backend.db.token_store import SqlTokenStore

    engine = make_engine(Settings().resolved_database_url())
    await run_migrations(engine)
    return engine, SqlTokenStore(make_sessions(engine))


@token_app.command("create")
def token_create(
    email: Annotated[str, typer.Argument(help="The member's email.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires_in: Annotated[
        str | None,
        typer.Option(
            help="Lifetime, e.g. 90d, 12h, 30m; without it the token lasts until revoked."
        ),
    ] = None,
) -> None:
    """Create an API token for a member; it is shown once."""
    lifetime = parse_duration(expires_in) if expires_in is not None else None

    async def run() -> str:
        engine, store = await _token_store()
        token: str = await store.create(email, name, expires_in=lifetime)
        await engine.dispose()
        return token

    typer.echo(asyncio.run(run()))


@token_app.command("list")
def token_list(email: Annotated[str, typer.Argument(help="The member's email.")]) -> None:
    """A member's tokens: id, name, created, expires, revoked (never the tokens)."""

    async def run() -> list[Any]:
        engine, store = await _token_store()
        records: list[Any] = await store.list_for(email)
        await engine.dispose()
        return records

    for r in asyncio.run(run()):
        expires = r.expires_at.isoformat() if r.expires_at else "never"
        revoked = r.revoked_at.isoformat() if r.revoked_at else "-"
        typer.echo(
            f"{r.id}  {r.name}  created {r.created_at.isoformat()}  "
            f"expires {expires}  revoked {revoked}"
        )


@token_app.command("revoke")
def token_revoke(
    token: Annotated[str, typer.Argument(help="The token's id (from `token list`), or the token.")],
) -> None:
    """Revoke an API token at once: by its id, or by the token itself when it leaked."""
    from backend.db.token_store import TOKEN_PREFIX

    async def run() -> Any:
        engine, store = await _token_store()
        if token.startswith(TOKEN_PREFIX):
            record = await store.revoke_token(token)
        else:
            record = await store.revoke(token.strip())
        await engine.dispose()
        return record

    record = asyncio.run(run())
    if record is None:
        typer.echo("no such token", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {record.id} ({record.email}, {record.name})")


@keys_app.command("rotate")
def keys_rotate(
    batch_size: Annotated[
        int, typer.Option(help="Secrets re-encrypted per committed batch.")
    ] = 500,
) -> None:
    """Seal new secrets with a new key, and re-encrypt every stored secret with it.

    Safe to stop and run again: it goes on with the same new key until it finishes.
    """
    from renkei.keys import RotationError, rotate_keys

    try:
        report = asyncio.run(rotate_keys(Settings(), batch_size=batch_size))
    except RotationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"re-encrypted {report.resealed} secrets under key {report.newest_key_id}")
    _echo_unreadable(report.unreadable)
    typer.echo("rotation finished: `renkei keys drop` now removes the older keys")


def _echo_unreadable(unreadable: list[Any]) -> None:
    if not unreadable:
        return
    typer.echo(
        f"warning: {len(unreadable)} secrets open with none of the keys (lost before this "
        "rotation); put back the key they were sealed with and rotate again, or link "
        "those accounts again:",
        err=True,
    )
    for item in unreadable:
        typer.echo(f"  {item.table}.{item.column} id {item.row_id}", err=True)


@keys_app.command("drop")
def keys_drop() -> None:
    """Remove the older keys, once a rotation has finished and no secret needs them."""
    from renkei.keys import RotationError, drop_old_keys

    settings = Settings()
    try:
        older = asyncio.run(drop_old_keys(settings))
    except RotationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if settings.secret_keys is not None:
        typer.echo(
            "no secret needs the older keys any more: keep only the first key in "
            "RENKEI_SECRET_KEYS of every process"
        )
    else:
        typer.echo(f"removed {len(older)} older keys from the key file")


@keys_app.command("status")
def keys_status() -> None:
    """The key new secrets are sealed with, and how many secrets are still under another."""
    from renkei.keys import RotationError, key_status

    try:
        status = asyncio.run(key_status(Settings()))
    except RotationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    state = status.state
    if state is None:
        typer.echo(f"never rotated; new secrets are sealed with key {status.key_ids[0]}")
    else:
        typer.echo(
            f"key version {state.version}: new secrets are sealed with key "
            f"{state.newest_key_id}; rotation {state.status}"
        )
    typer.echo(f"keys held here: {', '.join(status.key_ids)}")
    typer.echo(f"secrets under an older key: {status.found.old_total}")
    for name, count in sorted(status.found.old.items()):
        typer.echo(f"  {name}: {count}")
    _echo_unreadable(status.found.unreadable)


@slack_app.command("manifest")
def slack_manifest(
    url: Annotated[str, typer.Option(help="renkei's public https address, as Slack reaches it.")],
    socket_mode: Annotated[
        bool, typer.Option(help="Socket Mode (local use): Slack needs no request URL.")
    ] = False,
) -> None:
    """Print the Slack app manifest (JSON): paste it at api.slack.com/apps → From a manifest."""
    import json

    from bot.slack.manifest import manifest

    typer.echo(json.dumps(manifest(url, socket_mode=socket_mode), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    app()
