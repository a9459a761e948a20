import json

import pytest
from pydantic import ValidationError

from services.db import normalize_database_url
from web.settings import Settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///peerboard.db", "sqlite+aiosqlite:///peerboard.db"),
        ("sqlite+aiosqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_database_urls_are_normalized_to_async_drivers(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "nonsense", "sqlite+pysqlcipher:///x.db"])
def test_unsupported_databases_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"DATABASE_URL|unsupported"):
        normalize_database_url(url)


@pytest.mark.parametrize("secret", ["", "changethis", "secret", "short-but-not-placeholder"])
def test_production_refuses_placeholder_or_short_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="PEERBOARD_SECRET_KEY"):
        settings(PEERBOARD_ENV="production", PEERBOARD_SECRET_KEY=secret)


PROVIDER = {
    "name": "uni",
    "issuer": "https://login.uni.example",
    "client_id": "peerboard",
    "client_secret": "s3cret",
}


def test_production_accepts_a_real_secret_and_never_the_demo_identity_provider() -> None:
    good = settings(PEERBOARD_ENV="production", PEERBOARD_SECRET_KEY="k" * 40)
    assert good.secret_key == "k" * 40
    with pytest.raises(ValidationError, match="demo identity provider"):
        settings(
            PEERBOARD_ENV="production",
            PEERBOARD_SECRET_KEY="k" * 40,
            PEERBOARD_OIDC_PROVIDERS=json.dumps([PROVIDER]),
            PEERBOARD_DEMO_IDENTITY_PROVIDER="uni",
        )
    demo = settings(
        PEERBOARD_ENV="demo",
        PEERBOARD_OIDC_PROVIDERS=json.dumps([PROVIDER]),
        PEERBOARD_DEMO_IDENTITY_PROVIDER="uni",
    )
    assert demo.demo_identity_provider == "uni"


def test_providers_come_from_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PEERBOARD_OIDC_PROVIDERS",
        json.dumps([PROVIDER | {"groups_claim": "groups", "label": "University login"}]),
    )
    s = settings(PEERBOARD_ENV="development")
    (provider,) = s.oidc_providers
    assert provider.display_label == "University login"
    assert provider.client_secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)
    assert s.redirect_uri("uni") == "http://127.0.0.1:8000/auth/uni/callback"


@pytest.mark.parametrize(
    "providers",
    [
        "not json",
        json.dumps([PROVIDER | {"issuer": "http://login.uni.example"}]),  # http off loopback
        json.dumps([PROVIDER | {"name": "Bad Name"}]),
        json.dumps([PROVIDER | {"scopes": "email profile"}]),  # no openid
        json.dumps([PROVIDER, PROVIDER]),  # duplicate names
        json.dumps([{"name": "uni"}]),  # missing fields
    ],
)
def test_malformed_providers_are_refused(providers: str) -> None:
    with pytest.raises(ValidationError):
        settings(PEERBOARD_ENV="development", PEERBOARD_OIDC_PROVIDERS=providers)


def test_development_replaces_a_placeholder_secret_with_a_random_one() -> None:
    a = settings(PEERBOARD_ENV="development", PEERBOARD_SECRET_KEY="changethis")
    b = settings(PEERBOARD_ENV="development")
    assert len(a.secret_key) >= 32 and a.secret_key != b.secret_key


def test_the_default_is_production_and_sqlite() -> None:
    with pytest.raises(ValidationError):
        settings()
    s = settings(PEERBOARD_SECRET_KEY="k" * 40)
    assert s.environment.value == "production"
    assert s.database_url == "sqlite+aiosqlite:///peerboard.db"
    assert "localhost" not in s.trusted_hosts


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERBOARD_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/peerboard")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("PEERBOARD_BASE_URL", "https://board.example.edu/")
    monkeypatch.setenv("PEERBOARD_ALLOWED_HOSTS", "a.example.edu, b.example.edu")
    s = settings()
    assert s.database_url == "postgresql+asyncpg://db/peerboard"
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.base_url == "https://board.example.edu"
    assert s.is_https
    assert {"board.example.edu", "a.example.edu", "b.example.edu"} <= set(s.trusted_hosts)


@pytest.mark.parametrize(
    ("name", "value"),
    [("PEERBOARD_BASE_URL", "ftp://x"), ("PEERBOARD_BASE_URL", "/relative"),
     ("REDIS_URL", "http://redis"), ("PEERBOARD_MAX_BODY_BYTES", "10")],
)  # fmt: skip
def test_malformed_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValidationError):
        settings(PEERBOARD_ENV="development", **{name: value})
