"""Configuration: three sources, precedence, validation that names the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from embedgate import Config, ConfigurationError, EmbedgateError, Engine, KeyConfigurationError
from embedgate.keys import keyset_from_config
from tests.conftest import TEST_SECRET
from tests.core.material import private_pem

# Settings and nothing else: tests never read the real environment.
NO_ENV: dict[str, str] = {}


def test_defaults() -> None:
    config = Config.load(environ=NO_ENV)
    assert (config.mode, config.env, config.provider) == ("token", "development", "generic")
    assert (config.ttl, config.max_ttl, config.min_remaining) == (300, 3600, 30)
    assert config.token_size_budget == 4096
    assert config.typ == "JWT"
    assert config.secret is None
    assert not config.is_production


def test_keyword_arguments() -> None:
    config = Config.load(environ=NO_ENV, ttl=600, audience="superset", secret=TEST_SECRET)
    assert (config.ttl, config.audience) == (600, "superset")
    assert config.secret is not None
    assert config.secret.reveal() == TEST_SECRET


def test_mapping_with_prefix_like_flask_app_config() -> None:
    app_config = {
        "SECRET_KEY": "flask's own, not ours",
        "DEBUG": True,
        "EMBEDGATE_TTL": "600",
        "EMBEDGATE_ALLOWED_ATTRIBUTES": "region, country",
        "EMBEDGATE_INJECT": "off",
        "EMBEDGATE_CLAIM_MAPPING": '{"tenant": "org"}',
        "EMBEDGATE_SUPERSET_USERNAME": "belongs to the superset profile",
    }
    config = Config.load(app_config, environ=NO_ENV)
    assert config.ttl == 600
    assert config.allowed_attributes == ("region", "country")
    assert config.inject is False
    assert config.claim_mapping == {"tenant": "org"}


def test_environment() -> None:
    environ = {
        "EMBEDGATE_TTL": " 120 ",
        "EMBEDGATE_MODE": "SSO",
        "EMBEDGATE_ENV": "Production",
        "EMBEDGATE_REFRESH_MARGIN": "45.5",
        "EMBEDGATE_COOKIE_SECURE": "auto",
        "EMBEDGATE_PREVIOUS_KEY_FILES": "/a.pem,/b.pem",
    }
    config = Config.load(environ=environ)
    assert (config.ttl, config.mode, config.env) == (120, "sso", "production")
    assert config.is_production
    assert config.refresh_margin == 45.5
    assert config.cookie_secure is None
    assert config.previous_key_files == ("/a.pem", "/b.pem")


@pytest.mark.parametrize(
    ("typo", "closest"),
    [
        ("EMBEDGATE_AUDIANCE", "EMBEDGATE_AUDIENCE"),
        ("EMBEDGATE_TTTL", "EMBEDGATE_TTL"),
        ("EMBEDGATE_SECRETS", "EMBEDGATE_SECRET"),
        ("EMBEDGATE_PRIVATE_KEYFILE", "EMBEDGATE_PRIVATE_KEY_FILE"),
    ],
)
@pytest.mark.parametrize("where", ["environment", "mapping"])
def test_an_unknown_setting_names_the_closest_real_one(typo: str, closest: str, where: str) -> None:
    source = {typo: "x", "EMBEDGATE_SECRET": "s" * 40}

    def load() -> Config:
        if where == "environment":
            return Config.load(environ=source)
        return Config.load(source, environ=NO_ENV)

    with pytest.raises(ConfigurationError) as caught:
        load()
    assert caught.value.setting == typo
    assert f"did you mean {closest}?" in str(caught.value)


def test_an_unknown_setting_far_from_any_still_fails() -> None:
    with pytest.raises(ConfigurationError, match=r"EMBEDGATE_ZZZZQQQ.*not an embedgate setting"):
        Config.load(environ={"EMBEDGATE_ZZZZQQQ": "1"})


def test_provider_settings_in_the_environment_are_the_profiles_to_check() -> None:
    environ = {"EMBEDGATE_SUPERSET_USERNAME": "svc", "EMBEDGATE_DEMO_ANYTHING": "1"}
    assert Config.load(environ=environ).ttl > 0


def test_precedence_keywords_then_mapping_then_environment() -> None:
    environ = {"EMBEDGATE_TTL": "100", "EMBEDGATE_AUDIENCE": "env", "EMBEDGATE_ISSUER": "env"}
    mapping = {"EMBEDGATE_TTL": "200", "EMBEDGATE_AUDIENCE": "mapping"}
    config = Config.load(mapping, environ=environ, ttl=300)
    assert config.ttl == 300
    assert config.audience == "mapping"
    assert config.issuer == "env"


def test_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDGATE_AUDIENCE", "from-os-environ")
    assert Config.load().audience == "from-os-environ"


@pytest.mark.parametrize(
    ("settings", "setting", "fragment"),
    [
        ({"EMBEDGATE_TTL": "five minutes"}, "EMBEDGATE_TTL", "expected a whole number"),
        ({"EMBEDGATE_TTL": "1.5"}, "EMBEDGATE_TTL", "expected a whole number"),
        ({"EMBEDGATE_TTL": True}, "EMBEDGATE_TTL", "got a boolean"),
        ({"EMBEDGATE_TTL": "0"}, "EMBEDGATE_TTL", "must lie between 1 and"),
        ({"EMBEDGATE_MODE": "jwt"}, "EMBEDGATE_MODE", "expected one of token, sso, api_key"),
        ({"EMBEDGATE_ENV": "prodution"}, "EMBEDGATE_ENV", "expected one of"),
        ({"EMBEDGATE_INJECT": "maybe"}, "EMBEDGATE_INJECT", "expected true or false"),
        ({"EMBEDGATE_REFRESH_MARGIN": "soon"}, "EMBEDGATE_REFRESH_MARGIN", "number of seconds"),
        ({"EMBEDGATE_CLAIM_MAPPING": "{tenant: org}"}, "EMBEDGATE_CLAIM_MAPPING", "JSON object"),
        ({"EMBEDGATE_CLAIM_MAPPING": "[1]"}, "EMBEDGATE_CLAIM_MAPPING", "got list"),
        ({"EMBEDGATE_ALGORITHM": "none"}, "EMBEDGATE_ALGORITHM", "never accepted"),
        ({"EMBEDGATE_PREFIX": "embed/"}, "EMBEDGATE_PREFIX", "starting with '/'"),
        ({"EMBEDGATE_MIN_REMAINING": "-1"}, "EMBEDGATE_MIN_REMAINING", "between 0 and"),
        ({"EMBEDGATE_SECRET": 1234}, "EMBEDGATE_SECRET", "expected a string, got int"),
        ({"EMBEDGATE_TTTL": "300"}, "EMBEDGATE_TTTL", "not an embedgate setting"),
        ({"EMBEDGATE_MODE": "api_key"}, "EMBEDGATE_API_KEY", "needs the provider's API key"),
        (
            {"EMBEDGATE_PRIVATE_KEY": "x", "EMBEDGATE_PRIVATE_KEY_FILE": "/k.pem"},
            "EMBEDGATE_PRIVATE_KEY",
            "not both",
        ),
    ],
)
def test_each_error_names_its_setting(
    settings: dict[str, Any], setting: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Config.load(settings, environ=NO_ENV)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(f"{setting}: ")
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, EmbedgateError)


def test_unknown_keyword_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Config.load(environ=NO_ENV, time_to_live=300)
    assert caught.value.setting == "time_to_live"
    assert "ttl" in str(caught.value)


def test_environment_errors_name_the_setting_too() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Config.load(environ={"EMBEDGATE_TTL": "abc"})
    assert caught.value.setting == "EMBEDGATE_TTL"


# Errors only the whole engine can see (keys, files, providers) come from one start-up call.
SECRET = {"EMBEDGATE_SECRET": TEST_SECRET}
ENGINE_ERRORS: list[tuple[dict[str, Any], str, str]] = [
    ({}, "EMBEDGATE_SECRET", "no signing key configured"),
    ({"EMBEDGATE_SECRET": "0123456789abcdef"}, "EMBEDGATE_SECRET", "at least 32 bytes, got 16"),
    (
        {**SECRET, "EMBEDGATE_ALGORITHM": "ES256"},
        "EMBEDGATE_ALGORITHM",
        "needs EMBEDGATE_PRIVATE_KEY",
    ),
    (
        {"EMBEDGATE_PRIVATE_KEY_FILE": "/nonexistent/key.pem"},
        "EMBEDGATE_PRIVATE_KEY_FILE",
        "cannot read the key file",
    ),
    ({"EMBEDGATE_PRIVATE_KEY": "not a pem"}, "EMBEDGATE_PRIVATE_KEY", "unencrypted PEM"),
    ({**SECRET, "EMBEDGATE_TTL": "7200"}, "EMBEDGATE_TTL", "at most EMBEDGATE_MAX_TTL"),
    ({**SECRET, "EMBEDGATE_PROVIDER": "grafana"}, "EMBEDGATE_PROVIDER", "unknown provider"),
    ({**SECRET, "EMBEDGATE_GENERIC_COLOR": "red"}, "EMBEDGATE_GENERIC_COLOR", "no such setting"),
    (
        {**SECRET, "EMBEDGATE_CLAIM_MAPPING": '{"subjekt": "uid"}'},
        "claim_mapping.subjekt",
        "not a mappable field",
    ),
]


@pytest.mark.parametrize(("settings", "setting", "fragment"), ENGINE_ERRORS)
def test_engine_start_up_errors_name_the_setting(
    settings: dict[str, Any], setting: str, fragment: str
) -> None:
    with pytest.raises(EmbedgateError) as caught:
        Engine.from_settings(settings, environ=NO_ENV)
    assert setting in str(caught.value)
    assert fragment in str(caught.value)


def test_private_key_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Engine.from_settings({"EMBEDGATE_PRIVATE_KEY_FILE": str(tmp_path)}, environ=NO_ENV)
    assert caught.value.setting == "EMBEDGATE_PRIVATE_KEY_FILE"


def test_mismatched_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(private_pem("RSA-2048"))
    with pytest.raises(KeyConfigurationError) as caught:
        Engine.from_settings(
            {"EMBEDGATE_PRIVATE_KEY_FILE": str(path), "EMBEDGATE_ALGORITHM": "ES256"},
            environ=NO_ENV,
        )
    assert caught.value.setting == "EMBEDGATE_PRIVATE_KEY_FILE"
    assert "needs an EC key on curve secp256r1, got an RSA key" in str(caught.value)


def test_algorithm_is_inferred_from_the_key(tmp_path: Path) -> None:
    for kind, algorithm in (("P-256", "ES256"), ("Ed25519", "EdDSA"), ("RSA-2048", "RS256")):
        path = tmp_path / f"{kind}.pem"
        path.write_bytes(private_pem(kind))
        keys = keyset_from_config(Config.load(environ={"EMBEDGATE_PRIVATE_KEY_FILE": str(path)}))
        assert keys.signing_key.algorithm == algorithm


def test_key_files_for_rotation(tmp_path: Path) -> None:
    paths = {}
    for name, kind in (("old", "P-384"), ("current", "P-256"), ("next", "Ed25519")):
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_bytes(private_pem(kind))
    config = Config.load(
        {
            "EMBEDGATE_PREVIOUS_KEY_FILES": str(paths["old"]),
            "EMBEDGATE_PRIVATE_KEY_FILE": str(paths["current"]),
            "EMBEDGATE_NEXT_KEY_FILE": str(paths["next"]),
            "EMBEDGATE_KEY_ID": "current-2024",
        },
        environ=NO_ENV,
    )
    keys = keyset_from_config(config)
    assert [(k.algorithm, k.active) for k in keys.keys] == [
        ("ES384", False), ("ES256", True), ("EdDSA", False),
    ]  # fmt: skip
    assert keys.signing_key.kid == "current-2024"
    assert len(keys.jwks()["keys"]) == 3


def test_previous_hmac_secrets_still_verify() -> None:
    old_secret = "retired-secret-0123456789abcdef-0123456789"
    config = Config.load(environ=NO_ENV, secret=TEST_SECRET, previous_secrets=f"{old_secret}, ")
    keys = keyset_from_config(config)
    assert [k.active for k in keys.keys] == [False, True]
    with pytest.raises(KeyConfigurationError) as caught:
        keyset_from_config(
            Config.load(environ=NO_ENV, secret=TEST_SECRET, previous_secrets="short")
        )
    assert caught.value.setting == "EMBEDGATE_PREVIOUS_SECRETS"


def test_the_typed_settings_name_every_config_field() -> None:
    from dataclasses import fields

    from embedgate.config import Config
    from embedgate.settings import Settings

    assert set(Settings.__annotations__) == {f.name for f in fields(Config)}
