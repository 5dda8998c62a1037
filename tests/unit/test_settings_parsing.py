"""api/settings.py alone: variables in, one Settings or every problem out (no server)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.settings import DEV_SECRET_FILE, SettingsError, load_settings, with_dev_secret

PRODUCTION = {"APP_ENV": "production", "BETTER_AUTH_SECRET": "s" * 32, "DATABASE_URL": "postgresql://h/db"}


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as refused:
        load_settings(env)
    return refused.value.problems


def test_the_message_is_one_line_per_problem() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"DB_POOL_MAX_SIZE": "many", "ACCESS_LOG": "maybe"})
    assert str(refused.value) == (
        "Invalid configuration:\n"
        "  - DB_POOL_MAX_SIZE must be an integer (got 'many')\n"
        "  - ACCESS_LOG must be true or false (got 'maybe')"
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"JWT_LEEWAY_SECONDS": "1e3"}, "JWT_LEEWAY_SECONDS must be an integer (got '1e3')"),
        ({"JWKS_CACHE_SECONDS": "0"}, "JWKS_CACHE_SECONDS must be between 1 and 86400 (got 0)"),
        (
            {"JWKS_FETCH_TIMEOUT_SECONDS": "1e3"},
            "JWKS_FETCH_TIMEOUT_SECONDS must be between 0.1 and 60.0 (got 1000.0)",
        ),
        ({"LIVE_KEEPALIVE_SECONDS": "often"}, "LIVE_KEEPALIVE_SECONDS must be a number (got 'often')"),
        ({"APP_ENV": "Staging"}, "APP_ENV must be development, test or production (got 'staging')"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be text or json (got 'xml')"),
        ({"FAST_PATHS": "maybe"}, "FAST_PATHS must be true or false (got 'maybe')"),
        ({"JWT_JWKS_URL": "ftp://keys"}, "JWT_JWKS_URL must be an http(s) URL (got 'ftp://keys')"),
        # A value's braces are reported as they are, not read as a message template.
        ({"BETTER_AUTH_URL": "{line}"}, "BETTER_AUTH_URL must be an http(s) URL (got '{line}')"),
        (
            {"DB_POOL_MIN_SIZE": "5", "DB_POOL_MAX_SIZE": "2"},
            "DB_POOL_MIN_SIZE (5) must not exceed DB_POOL_MAX_SIZE (2)",
        ),
    ],
)
def test_each_bad_value_names_its_variable_and_value(env: dict[str, str], expected: str) -> None:
    assert problems(env) == [expected]


def test_bad_pool_sizes_are_not_also_compared() -> None:
    assert problems({"DB_POOL_MIN_SIZE": "500", "DB_POOL_MAX_SIZE": "2"}) == [
        "DB_POOL_MIN_SIZE must be between 0 and 100 (got 500)"
    ]


def test_each_bad_origin_is_its_own_line() -> None:
    assert problems({"CORS_ORIGINS": "https://ok.example, ftp://a, gopher://b"}) == [
        "CORS_ORIGINS entries must be http(s) origins or * (got 'ftp://a')",
        "CORS_ORIGINS entries must be http(s) origins or * (got 'gopher://b')",
    ]


def test_rules_across_settings_are_reported_with_the_bad_values() -> None:
    """The production rules are checked even when another variable is bad."""
    assert set(problems({"APP_ENV": "production", "LOG_FORMAT": "xml"})) == {
        "LOG_FORMAT must be text or json (got 'xml')",
        "APP_ENV=production needs DATABASE_URL (the embedded database is for development)",
        "APP_ENV=production needs BETTER_AUTH_URL (JWKS) or BETTER_AUTH_SECRET (HS256):"
        " refusing to start without a way to verify tokens",
    }


def test_a_bad_app_env_counts_as_development_for_the_other_rules() -> None:
    assert problems({"APP_ENV": "prod", "METRICS_TOKEN": "short"}) == [
        "APP_ENV must be development, test or production (got 'prod')"
    ]


def test_blank_values_take_the_default_and_values_are_trimmed() -> None:
    s = load_settings(
        {"DB_POOL_MAX_SIZE": "   ", "APP_ENV": "", "LOG_FORMAT": " JSON ", "FAST_PATHS": " No "}
    )
    assert (s.db_pool_max_size, s.app_env, s.log_format, s.fast_paths) == (10, "development", "json", False)


def test_variables_are_upper_case_and_derived_fields_are_not_variables() -> None:
    s = load_settings(
        {"db_pool_max_size": "5", "JWT_ISSUER_EXPLICIT": "true", "DEV_SECRET_GENERATED": "true"}
    )
    assert (s.db_pool_max_size, s.jwt_issuer_explicit, s.dev_secret_generated) == (10, False, False)


def test_fast_paths_default_on() -> None:
    assert load_settings({}).fast_paths is True
    assert load_settings({"FAST_PATHS": "false"}).fast_paths is False


def test_the_jwks_url_defaults_only_when_unset() -> None:
    base = {"BETTER_AUTH_URL": "https://auth.example"}
    assert load_settings(base).jwt_jwks_url == "https://auth.example/api/auth/jwks"
    assert problems({**base, "JWT_JWKS_URL": "nope"}) == ["JWT_JWKS_URL must be an http(s) URL (got 'nope')"]


def test_pasted_database_urls_are_translated() -> None:
    s = load_settings({"DATABASE_URL": "postgres://u:p@h/app?sslmode=require&channel_binding=require"})
    assert s.database_url is not None
    assert s.database_url.asyncpg_dsn == "postgresql://u:p@h/app?sslmode=require"
    assert problems({"DATABASE_URL": "postgresql://h/db?pgbouncer=maybe"}) == [
        "DATABASE_URL: pgbouncer must be true or false"
    ]


def test_settings_cannot_be_changed_in_place() -> None:
    s = load_settings({})
    with pytest.raises(ValidationError):
        s.db_pool_max_size = 99  # type: ignore[misc]
    assert s.model_copy(update={"db_pool_max_size": 99}).db_pool_max_size == 99
    assert s.db_pool_max_size == 10


def test_dev_secret_outside_production_only(tmp_path: Path) -> None:
    s = load_settings({"DATA_DIR": str(tmp_path)})
    with_secret = with_dev_secret(s)
    secret = (tmp_path / DEV_SECRET_FILE).read_text()
    assert (with_secret.better_auth_secret, with_secret.dev_secret_generated) == (secret, True)
    assert (s.better_auth_secret, s.dev_secret_generated) == (None, False)
    assert with_dev_secret(load_settings({"DATA_DIR": str(tmp_path)})).better_auth_secret == secret
    production = load_settings({**PRODUCTION, "DATA_DIR": str(tmp_path / "p")})
    assert with_dev_secret(production) is production


# -- The process environment and .env ---------------------------------------------------


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A private process environment without the service's variables, in an empty directory
    (load_dotenv writes into the environment: nothing leaks into the other tests)."""
    names = set(load_settings({}).model_dump()) | {"fast_paths"}
    env = {k: v for k, v in os.environ.items() if k.lower() not in names}
    monkeypatch.setattr(os, "environ", env)
    monkeypatch.chdir(tmp_path)
    return env


def test_a_given_mapping_is_read_alone(environ: dict[str, str]) -> None:
    environ["DB_POOL_MAX_SIZE"] = "7"
    assert load_settings().db_pool_max_size == 7
    assert load_settings({}).db_pool_max_size == 10


def test_dotenv_is_read_from_the_start_directory_or_above_and_the_environment_wins(
    environ: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("DB_POOL_MAX_SIZE=7\nLIVE_QUEUE_SIZE=16\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    environ["LIVE_QUEUE_SIZE"] = "32"
    assert load_settings(dotenv=False).db_pool_max_size == 10
    s = load_settings()
    assert (s.db_pool_max_size, s.live_queue_size) == (7, 32)
    assert environ["DB_POOL_MAX_SIZE"] == "7"  # exported: worker processes read it too


def test_a_bad_value_in_dotenv_is_reported(environ: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FAST_PATHS=perhaps\n")
    with pytest.raises(SettingsError, match=r"FAST_PATHS must be true or false \(got 'perhaps'\)"):
        load_settings()
