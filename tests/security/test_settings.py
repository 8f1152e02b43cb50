"""Settings as an attacker (or a careless deploy) gives them: credentials in URLs must
never be shown, numbers must be finite and bounded, HMAC secrets must be random."""

from __future__ import annotations

import math
import secrets
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from embedgate import ConfigurationError, Engine
from embedgate.config import Config, env_name
from tests.conftest import TEST_SECRET

PASSWORD = "hunter2-Sup3rS3cret-pw"
NO_ENV: dict[str, str] = {}

# -- credentials in URLs -------------------------------------------------------------------

URLS = [
    f"redis://:{PASSWORD}@cache.internal:6379/0",
    f"rediss://default:{PASSWORD}@cache.internal:6380",
    f"redis://cache.internal:6379/0?password={PASSWORD}",
    f"unix://user:{PASSWORD}@/run/redis.sock?db=1",
]


@pytest.mark.parametrize("url", URLS)
def test_a_redis_url_password_never_shows_in_reprs(url: str) -> None:
    config = Config.load({"EMBEDGATE_REDIS_URL": url, "EMBEDGATE_SECRET": TEST_SECRET}, environ={})
    for text in (repr(config), str(config)):
        assert PASSWORD not in text
        assert "cache.internal" in text or "run/redis" in text  # still useful to read
    engine = Engine(config)  # the Redis client connects lazily: nothing listens here
    assert PASSWORD not in repr(engine)
    assert PASSWORD not in str(engine)


def test_a_provider_url_with_credentials_is_refused_without_quoting_them() -> None:
    url = f"ftp://admin:{PASSWORD}@bi.example.com"
    with pytest.raises(ConfigurationError) as caught:
        Engine.from_settings(environ={}, secret=TEST_SECRET, provider="metabase", provider_url=url)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)


@given(
    st.sampled_from(["redis", "rediss", "http", "https", "unix"]),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.~!$&'()*+,;=", min_size=6, max_size=20),
)
def test_any_userinfo_password_is_redacted(scheme: str, password: str) -> None:
    secret = "S3cr" + password
    config = Config(secret=TEST_SECRET, redis_url=f"{scheme}://u:{secret}@h:1/0")
    assert secret not in repr(config)


# -- numbers -----------------------------------------------------------------------------

# Every numeric setting and its documented bound (README configuration reference).
NUMERIC_BOUNDS = {
    "ttl": (1, 86_400),
    "max_ttl": (1, 86_400),
    "min_remaining": (0, 3600),
    "refresh_margin": (0, 86_400),
    "leeway": (0, 300),
    "token_size_budget": (64, 1_048_576),
    "cache_size": (1, 10_000_000),
    "max_inject_bytes": (1, 1 << 30),
    "rate_limit": (1, 1_000_000),
    "user_rate_limit": (1, 1_000_000),
    "user_sessions": (1, 100_000),
}
ABSURD = ["nan", "NaN", "inf", "-inf", "1e12", "-1", "1e308", "9" * 30]


@pytest.mark.parametrize("name", sorted(NUMERIC_BOUNDS))
@pytest.mark.parametrize("value", ABSURD)
def test_every_number_is_finite_and_bounded_from_the_environment(name: str, value: str) -> None:
    low, high = NUMERIC_BOUNDS[name]
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if math.isfinite(number) and low <= number <= high:
        pytest.skip("within the bound")
    env = {"EMBEDGATE_SECRET": TEST_SECRET, env_name(name): value}
    with pytest.raises(ConfigurationError) as caught:
        Config.load(environ=env)
    assert caught.value.setting == env_name(name)


@pytest.mark.parametrize("name", sorted(NUMERIC_BOUNDS))
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e12, -1.0, 10**15])
def test_every_number_is_finite_and_bounded_as_a_keyword(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Config.load(environ=NO_ENV, secret=TEST_SECRET, **{name: value})
    assert caught.value.setting == env_name(name)
    if math.isfinite(value):
        low, high = NUMERIC_BOUNDS[name]
        assert f"{low:g}" in str(caught.value)
        assert f"{high:g}" in str(caught.value)


def test_leeway_of_1e12_no_longer_lets_verify_accept_a_1970_token() -> None:
    with pytest.raises(ConfigurationError, match="EMBEDGATE_LEEWAY: must lie between 0 and 300"):
        Config.load(environ={"EMBEDGATE_LEEWAY": "1e12"})


@pytest.mark.parametrize("value", ["nan", "inf", "1e12", "31536000"])
def test_provider_numbers_are_finite_and_bounded(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Engine.from_settings(
            {
                "EMBEDGATE_SUPERSET_USERNAME": "embedder",
                "EMBEDGATE_SUPERSET_PASSWORD": "pw-" + secrets.token_urlsafe(12),
                "EMBEDGATE_SUPERSET_GUEST_TOKEN_TTL": value,
            },
            environ={},
            secret=TEST_SECRET,
            provider="superset",
            provider_url="http://127.0.0.1:9",
        )
    assert caught.value.setting == "EMBEDGATE_SUPERSET_GUEST_TOKEN_TTL"


# -- weak secrets -------------------------------------------------------------------------

WEAK = [
    "a" * 32,
    "changeme" * 4,
    "secretsecretsecretsecretsecret12",
    "0123456789abcdef0123456789abcdef",
    "abcdefghijklmnopqrstuvwxyz012345",
    "mysecretkey-mysecretkey-mysecretkey",
    "password" * 8,
    "ab" * 32,
    "qwertyuiqwertyuiqwertyuiqwertyui",
]


@pytest.mark.parametrize("secret", WEAK)
def test_weak_secrets_of_the_right_length_are_refused(secret: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Engine.from_settings(environ={}, secret=secret)
    assert caught.value.setting == "EMBEDGATE_SECRET"
    assert "embedgate keygen" in str(caught.value)
    assert secret not in str(caught.value)
    # while what `embedgate keygen` and the usual generators make is accepted
    for make in (secrets.token_urlsafe, secrets.token_hex, secrets.token_bytes):
        for size in (32, 48):
            Engine.from_settings(environ={}, secret=make(size))


@pytest.mark.parametrize("secret", WEAK[:3])
def test_weak_previous_secrets_are_refused_too(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="embedgate keygen"):
        Engine.from_settings(environ={}, secret=TEST_SECRET, previous_secrets=secret)


@given(st.binary(min_size=32, max_size=32))
def test_random_pattern_repetitions_are_refused(unit: bytes) -> None:
    for size in (1, 2, 4, 8):
        secret = (unit[:size] * 64)[:40]
        with pytest.raises(ConfigurationError):
            Engine.from_settings(environ={}, secret=secret)
