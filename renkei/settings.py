"""The one settings class: ``RENKEI_*`` environment variables and ``DATABASE_URL``."""

from __future__ import annotations

import os
from pathlib import Path

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
    seed_demo: bool = True
    sandbox: bool = True  # mount the simulated issuers under /sandbox
    run_jobs: bool = True  # run the in-process job runner in `serve`
    sync_interval_minutes: float = 360  # every account is synced at least this often

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

    issuer_timeout: float = 10.0  # seconds per issuer request
    issuer_max_retries: int = 3  # retries of a transient issuer failure, with backoff
    issuer_backoff: float = 0.5  # first backoff delay in seconds, doubled per retry

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

    def uses_sandbox(self, issuer: str) -> bool:
        explicit = self.amex_base_url if issuer == "amex" else self.jcb_base_url
        return self.sandbox and not explicit

    @property
    def oauth_redirect_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/api/v1/oauth/callback"

    @property
    def subscriber_urls(self) -> list[str]:
        return [u.strip() for u in self.webhook_urls.split(",") if u.strip()]
