"""The one settings class: ``RENKEI_*`` environment variables and ``DATABASE_URL``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "renkei"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RENKEI_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "RENKEI_DATABASE_URL")
    )
    admin_token: SecretStr | None = None
    service_token: SecretStr | None = None  # the assistant's own; a file in the data dir if unset
    public_url: str = "http://127.0.0.1:8000"
    secret_keys: SecretStr | None = None  # comma-separated Fernet keys, newest first
    key_check_seconds: float = 2.0  # how often a process asks which key seals new secrets
    # Demo data and the demo sign-in. Unset: on exactly when the sandbox is.
    seed_demo: bool | None = None
    # Mount the simulated issuers under /sandbox. Unset: on exactly when no issuer URL is
    # configured, so a production setup never serves them by default.
    sandbox: bool | None = None
    run_jobs: bool = True  # run background work inside `serve` (off: `serve --no-jobs`)
    sync_interval_minutes: float = 360  # every account is synced at least this often
    sync_lease_seconds: float = Field(default=600, gt=0)  # a dead sync's account waits this long
    # Workers on PostgreSQL (Procrastinate): heartbeat, when a silent worker counts as
    # dead (its jobs run again), how often that is checked,
    # and how many jobs one worker process runs side by side (cron: six fields, seconds last).
    worker_heartbeat_seconds: float = Field(default=10, gt=0)
    worker_stalled_seconds: float = Field(default=30, gt=0)
    worker_recover_cron: str = "* * * * * */15"
    worker_concurrency: int = Field(default=4, gt=0)
    log_format: Literal["text", "json"] = "text"  # json: one object a line, for a collector

    amex_member_site_url: str | None = None  # default: the sandbox's member site
    jcb_member_site_url: str | None = None
    amex_base_url: str | None = None
    amex_client_id: str = "renkei-demo"
    amex_client_secret: SecretStr = SecretStr("renkei-demo-secret")
    amex_webhook_secret: SecretStr | None = None
    jcb_base_url: str | None = None
    jcb_client_id: str = "renkei-demo"
    jcb_client_secret: SecretStr = SecretStr("renkei-demo-secret")
    jcb_webhook_secret: SecretStr | None = None

    # Request limits: bodies are counted while they stream in and refused with 413.
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0)  # a statement file
    max_upload_rows: int = Field(default=20_000, gt=0)  # rows of one statement file
    max_webhook_bytes: int = Field(default=1024 * 1024, gt=0)  # issuer, assistant, Slack
    max_json_bytes: int = Field(default=1024 * 1024, gt=0)  # any other request body
    max_json_depth: int = Field(default=32, gt=0)  # nesting of objects and arrays
    max_json_keys: int = Field(default=1000, gt=0)  # object members in one body, all levels

    issuer_timeout: float = 10.0  # seconds per issuer request
    issuer_max_retries: int = 3  # retries of a transient issuer failure, with backoff
    issuer_backoff: float = 0.5  # first backoff delay in seconds, doubled per retry

    # Rate limits (a `limits` expression such as "120/minute" or "5/second;100/hour"; "off"
    # turns one off), per token and per client address. memory:// counts in this process;
    # redis://HOST:PORT shares the counts between every process of a scale-out.
    rate_limit_storage_url: str = "memory://"
    rate_limit_conversations: str = "120/minute"  # POST /api/v1/conversations
    rate_limit_consents: str = "60/minute"  # authorization starts: API accounts, switch, reauth
    rate_limit_uploads: str = "60/minute"  # statement file uploads
    rate_limit_demo_sessions: str = "30/minute"  # POST /chat/demo-session
    rate_limit_sandbox_pages: str = "600/minute"  # the sandbox issuers' pages, per address
    rate_limit_namespace: str = "renkei"  # prefix of the counters in a shared Redis

    # Slack (no RENKEI_ prefix, as Slack's own tools name them)
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_SIGNING_SECRET"
    )
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")
    slack_client_id: str | None = Field(default=None, validation_alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_CLIENT_SECRET"
    )
    slack_support_channel: str | None = Field(
        default=None, validation_alias="RENKEI_SLACK_SUPPORT_CHANNEL"
    )

    webhook_urls: str = ""  # comma-separated subscribers of renkei's own webhooks
    webhook_secret: SecretStr | None = None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'renkei.sqlite3'}"

    def issuer_base_url(self, issuer: str) -> str:
        explicit = self.amex_base_url if issuer == "amex" else self.jcb_base_url
        return explicit or f"{self.public_url.rstrip('/')}/sandbox/{issuer}"

    def member_site_url(self, issuer: str) -> str:
        explicit = self.amex_member_site_url if issuer == "amex" else self.jcb_member_site_url
        return explicit or f"{self.issuer_base_url(issuer)}/member"

    @property
    def sandbox_on(self) -> bool:
        if self.sandbox is not None:
            return self.sandbox
        return not (self.amex_base_url or self.jcb_base_url)

    @property
    def demo_on(self) -> bool:
        return self.sandbox_on if self.seed_demo is None else self.seed_demo

    def uses_sandbox(self, issuer: str) -> bool:
        # The sandbox never runs beside a real issuer (check_settings refuses the mix).
        return self.sandbox_on

    @property
    def oauth_redirect_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/api/v1/oauth/callback"

    @property
    def subscriber_urls(self) -> list[str]:
        return [u.strip() for u in self.webhook_urls.split(",") if u.strip()]


class SettingsError(ValueError):
    """Settings renkei refuses to start with; the message names the setting to change."""


_ISSUER_NAMES = {"amex": "AMEX", "jcb": "JCB"}


def check_settings(settings: Settings) -> None:
    """Refuse a setup where the simulated issuers could act for, or beside, a real one."""
    for issuer, name in _ISSUER_NAMES.items():
        base_url = getattr(settings, f"{issuer}_base_url")
        if settings.sandbox_on and base_url:
            raise SettingsError(
                f"RENKEI_{name}_BASE_URL names a real issuer while RENKEI_SANDBOX is on: the "
                "simulated issuers never run beside a real one. Set RENKEI_SANDBOX=false "
                f"for production, or unset RENKEI_{name}_BASE_URL for a demo."
            )
        if not settings.sandbox_on and not base_url:
            raise SettingsError(
                f"RENKEI_{name}_BASE_URL is not set and the sandbox is off: set it to the "
                "issuer's API address (or RENKEI_SANDBOX=true for a demo)."
            )
        if settings.sandbox_on:
            # The sandbox is handed the client's secrets; it must never hold a real one.
            for field in ("webhook_secret", "client_secret"):
                if f"{issuer}_{field}" in settings.model_fields_set:
                    raise SettingsError(
                        f"RENKEI_{name}_{field.upper()} is set while the sandbox plays the "
                        "issuer: the sandbox never holds a real secret. Unset it for a demo "
                        "(the sandbox's own is made in the data directory), or set "
                        f"RENKEI_SANDBOX=false and RENKEI_{name}_BASE_URL for production."
                    )
    if settings.demo_on and not settings.sandbox_on:
        # The demo's cards live at the sandbox, and its sign-in makes an office admin.
        raise SettingsError(
            "RENKEI_SEED_DEMO is on while the issuers are real: the demo data and its "
            "sign-in are for the sandbox only. Set RENKEI_SEED_DEMO=false."
        )
    amex, jcb = settings.amex_webhook_secret, settings.jcb_webhook_secret
    if amex is not None and jcb is not None and amex.get_secret_value() == jcb.get_secret_value():
        raise SettingsError(
            "RENKEI_AMEX_WEBHOOK_SECRET and RENKEI_JCB_WEBHOOK_SECRET are the same: each "
            "issuer signs with its own secret, or one issuer could speak for the other."
        )
