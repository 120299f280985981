"""The ``renkei`` command."""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from renkei.settings import Settings, SettingsError, check_settings

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
    from renkei.bootstrap import SANDBOX_CONTROL_KEY_FILE, create_app, sandbox_control_key

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
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
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
) -> None:
    """Run only the simulated Amex and JCB issuers."""
    from renkei.bootstrap import SANDBOX_CONTROL_KEY_FILE, sandbox_control_key
    from sandbox import create_app as create_sandbox

    settings = Settings()
    key = sandbox_control_key(settings)
    typer.echo(
        f"sandbox issuers on http://{host}:{port}; control API key (X-Sandbox-Key): {key}  "
        f"(in {settings.data_dir / SANDBOX_CONTROL_KEY_FILE})"
    )
    uvicorn.run(create_sandbox(control_key=key), host=host, port=port, log_level="info")


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
def keys_rotate() -> None:
    """Put a new encryption key first and re-encrypt every stored secret with it."""
    from renkei.keys import rotate_keys

    count = asyncio.run(rotate_keys(Settings()))
    typer.echo(f"re-encrypted {count} secrets")


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
