"""Validated settings, read from the environment (and an optional `.env` file).

No module-level singleton: `load_settings()` builds one when asked, so tests pass their own.
Unsafe values are refused outside development-like environments rather than warned about.
"""

from __future__ import annotations

import json
import secrets
from email.utils import parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.db import normalize_database_url
from services.mail import SmtpConfig
from web.ratelimit import check_overrides

PLACEHOLDER_SECRETS = frozenset({"", "changethis", "change-me", "changeme", "secret", "dev"})
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///peerboard.db"


class Environment(StrEnum):
    production = "production"
    development = "development"
    demo = "demo"
    test = "test"

    @property
    def is_development_like(self) -> bool:
        return self is not Environment.production


PROVIDER_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"


def _is_local_host(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")


class OIDCProviderSettings(BaseModel):
    """One institution's OpenID provider, from PEERBOARD_OIDC_PROVIDERS (a JSON list)."""

    name: str = Field(pattern=PROVIDER_NAME_PATTERN, description="used in /auth/{name}/...")
    issuer: str = Field(min_length=8, max_length=255)
    client_id: str = Field(min_length=1, max_length=255)
    client_secret: SecretStr
    scopes: str = "openid email profile"
    groups_claim: str | None = None
    label: str | None = None

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("issuer must be an absolute https URL")
        if parts.scheme == "http" and not _is_local_host(parts.hostname):
            raise ValueError("issuer must use https (plain http only for localhost)")
        if parts.query or parts.fragment:
            raise ValueError("issuer must not have a query or fragment")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: str) -> str:
        if "openid" not in value.split():
            raise ValueError("scopes must include openid")
        return value

    @property
    def display_label(self) -> str:
        return self.label or self.name.replace("-", " ").title()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    environment: Environment = Field(
        default=Environment.production, validation_alias=AliasChoices("PEERBOARD_ENV")
    )
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL, validation_alias=AliasChoices("DATABASE_URL")
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL"))
    # {"post": ["3 per minute", "10 per minute"]}: per person, per address (web/ratelimit.py).
    rate_limits: dict[str, list[str]] = Field(
        default_factory=dict, validation_alias=AliasChoices("PEERBOARD_RATE_LIMITS")
    )
    secret_key: str = Field(default="", validation_alias=AliasChoices("PEERBOARD_SECRET_KEY"))
    base_url: str = Field(
        default="http://127.0.0.1:8000", validation_alias=AliasChoices("PEERBOARD_BASE_URL")
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("PEERBOARD_ALLOWED_HOSTS")
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        validation_alias=AliasChoices("PEERBOARD_MAX_BODY_BYTES"),
    )
    max_upload_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=64 * 1024,
        le=256 * 1024 * 1024,
        validation_alias=AliasChoices("PEERBOARD_MAX_UPLOAD_BYTES"),
    )
    oidc_providers: Annotated[list[OIDCProviderSettings], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("PEERBOARD_OIDC_PROVIDERS")
    )
    session_idle_minutes: int = Field(
        default=12 * 60,
        ge=5,
        le=30 * 24 * 60,
        validation_alias=AliasChoices("PEERBOARD_SESSION_IDLE_MINUTES"),
    )
    session_max_hours: int = Field(
        default=7 * 24,
        ge=1,
        le=90 * 24,
        validation_alias=AliasChoices("PEERBOARD_SESSION_MAX_HOURS"),
    )
    phase_tick_seconds: int = Field(
        default=60, ge=0, le=3600, validation_alias=AliasChoices("PEERBOARD_PHASE_TICK_SECONDS")
    )
    # Outgoing mail: unset = mail off (the outbox still fills; nothing is sent).
    smtp_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("PEERBOARD_SMTP_URL")
    )
    mail_from: str = Field(default="", validation_alias=AliasChoices("PEERBOARD_MAIL_FROM"))
    mail_tick_seconds: int = Field(
        default=30, ge=1, le=3600, validation_alias=AliasChoices("PEERBOARD_MAIL_TICK_SECONDS")
    )
    # Webhook endpoints must resolve to public addresses (SSRF) unless this allows private and
    # loopback ones (tests, closed networks); it also allows plain http.
    webhooks_allow_private: bool = Field(
        default=False, validation_alias=AliasChoices("PEERBOARD_WEBHOOKS_ALLOW_PRIVATE")
    )
    webhook_tick_seconds: int = Field(
        default=10, ge=0, le=3600, validation_alias=AliasChoices("PEERBOARD_WEBHOOK_TICK_SECONDS")
    )
    # LTI Advantage: how often the roster and grades job runs (0: never), and how often each
    # course's roster is read from its LMS when nobody asks (a stale launch, the button).
    lti_tick_seconds: int = Field(
        default=30, ge=0, le=3600, validation_alias=AliasChoices("PEERBOARD_LTI_TICK_SECONDS")
    )
    lti_roster_sync_hours: int = Field(
        default=12, ge=1, le=24 * 30,
        validation_alias=AliasChoices("PEERBOARD_LTI_ROSTER_SYNC_HOURS"),
    )  # fmt: skip
    # Set by `peerboard demo` for the local one-click identity provider it starts; refused
    # outside demo and development (see the validator).
    demo_identity_provider: str | None = Field(
        default=None, validation_alias=AliasChoices("PEERBOARD_DEMO_IDENTITY_PROVIDER")
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return check_overrides(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("REDIS_URL must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        SmtpConfig.parse(value.get_secret_value())  # raises ValueError with the reason
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        value = value.strip()
        if value and "@" not in parseaddr(value)[1]:
            raise ValueError("PEERBOARD_MAIL_FROM must be an address: Name <mail@host>")
        if any(c in value for c in "\r\n"):
            raise ValueError("PEERBOARD_MAIL_FROM must be one line")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("PEERBOARD_BASE_URL must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("PEERBOARD_BASE_URL must not have a query or fragment")
        return value.strip().rstrip("/")

    @field_validator("oidc_providers", mode="before")
    @classmethod
    def _providers_json(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return []
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"PEERBOARD_OIDC_PROVIDERS is not valid JSON: {exc}") from None
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _allowed_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_outside_development(self) -> Self:
        if self.environment.is_development_like:
            if self.secret_key.strip().lower() in PLACEHOLDER_SECRETS:
                # A fresh random key per process: fine for a demo, and nothing to leak.
                self.secret_key = secrets.token_urlsafe(32)
            return self
        if self.secret_key.strip().lower() in PLACEHOLDER_SECRETS or len(self.secret_key) < 32:
            raise ValueError(
                "PEERBOARD_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production (for example: python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')"
            )
        if self.demo_identity_provider:
            raise ValueError(
                "the demo identity provider signs anyone in with one click: it is for demo and "
                "development only (PEERBOARD_ENV=demo or development)"
            )
        return self

    @model_validator(mode="after")
    def _unique_provider_names(self) -> Self:
        names = [p.name for p in self.oidc_providers]
        if len(names) != len(set(names)):
            raise ValueError("PEERBOARD_OIDC_PROVIDERS: provider names must be unique")
        if self.demo_identity_provider and self.demo_identity_provider not in names:
            raise ValueError("the demo identity provider must be one of the configured providers")
        return self

    def provider(self, name: str) -> OIDCProviderSettings | None:
        return next((p for p in self.oidc_providers if p.name == name), None)

    def redirect_uri(self, provider: str) -> str:
        return f"{self.base_url}/auth/{provider}/callback"

    @property
    def smtp(self) -> SmtpConfig | None:
        return SmtpConfig.parse(self.smtp_url.get_secret_value()) if self.smtp_url else None

    @property
    def sender(self) -> str:
        """The From of every mail: PEERBOARD_MAIL_FROM, else peerboard@ the base URL's host."""
        return self.mail_from or f"Peerboard <peerboard@{urlsplit(self.base_url).hostname}>"

    @property
    def is_https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def trusted_hosts(self) -> list[str]:
        hosts = [urlsplit(self.base_url).hostname or "", *self.allowed_hosts]
        if self.environment.is_development_like:
            hosts += ["127.0.0.1", "localhost", "[::1]", "testserver"]
        return sorted(set(filter(None, hosts)))

    @property
    def sqlite_path(self) -> Path | None:
        if not self.database_url.startswith("sqlite"):
            return None
        rest = self.database_url.split("://", 1)[1]
        path = rest[1:] if rest.startswith("/") else rest
        return None if path in ("", ":memory:") else Path(path)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and `.env`, with explicit overrides winning."""
    return Settings(**overrides)  # type: ignore[arg-type]
