"""The ``renkei`` command."""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from renkei.settings import Settings

# authlib 1.9 announces its move to "httpx2", which renkei does not use yet: not the
# operator's concern on every start.
warnings.filterwarnings("ignore", message="The httpx module is deprecated")

app = typer.Typer(help="renkei: card statements by issuer API, and a guided support assistant.")
token_app = typer.Typer(help="API tokens of members.")
keys_app = typer.Typer(help="Encryption keys of stored secrets.")
app.add_typer(token_app, name="token")
app.add_typer(keys_app, name="keys")
slack_app = typer.Typer(help="The Slack app.")
app.add_typer(slack_app, name="slack")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Start renkei: API, sandbox issuers, job runner; SQLite in the data directory by default."""
    from renkei.bootstrap import create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
    if "public_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"public_url": f"http://{host}:{port}"})
    typer.echo(f"renkei on http://{host}:{port}  (data: {settings.data_dir})")
    typer.echo(f"database: {settings.resolved_database_url().split('@')[-1]}")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
) -> None:
    """Run only the simulated Amex and JCB issuers."""
    from sandbox import create_app as create_sandbox

    uvicorn.run(create_sandbox(), host=host, port=port, log_level="info")


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
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
    from renkei.terminal_run import run_terminal_chat

    if locale not in ("ja", "en"):
        raise typer.BadParameter("locale is ja or en")
    if url is not None and (token is None or user is None):
        raise typer.BadParameter("--url needs --token and --user")
    asyncio.run(run_terminal_chat(url, token, user, locale, office, port))


@app.command()
def diagrams(
    folder: Annotated[Path, typer.Option(help="Where to write the diagrams.")] = Path("docs/flows"),
) -> None:
    """Write a mermaid diagram of each guided flow, drawn from its machine definition."""
    from statemachine.diagrams import write_all
    from statemachine.flows import ALL_FLOWS

    for path in write_all(ALL_FLOWS, folder):
        typer.echo(str(path))


@token_app.command("create")
def token_create(
    email: Annotated[str, typer.Argument(help="The member's email.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
) -> None:
    """Create an API token for a member; it is shown once."""
    from backend.db.engine import make_engine, make_sessions
    from backend.db.engine import migrate as run_migrations
    from backend.db.token_store import SqlTokenStore

    async def run() -> str:
        engine = make_engine(Settings().resolved_database_url())
        await run_migrations(engine)
        token = await SqlTokenStore(make_sessions(engine)).create(email, name)
        await engine.dispose()
        return token

    typer.echo(asyncio.run(run()))


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
