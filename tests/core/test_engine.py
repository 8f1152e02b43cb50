"""The engine: settings in, tokens out, by mode (token, sso, api_key)."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import jwt
import pytest
from flask_login import AnonymousUserMixin, UserMixin

from embedgate import (
    Config,
    Engine,
    KeyConfigurationError,
    PrincipalError,
    ProductionRefusedError,
    TokenTooLargeError,
)
from tests.conftest import TEST_SECRET
from tests.core.material import private_pem

NO_ENV: dict[str, str] = {}
API_KEY = "tc-live-api-key-0123456789abcdef-0123456789"


class User(UserMixin):
    def __init__(self, user_id: str, **columns: Any) -> None:
        self.id = user_id
        for name, value in columns.items():
            setattr(self, name, value)


def _decode(token: str, secret: str = TEST_SECRET, audience: str = "embedgate") -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"], audience=audience)
    return claims


def test_token_mode_signs_for_the_logged_in_user() -> None:
    engine = Engine.from_settings(
        {"EMBEDGATE_SECRET": TEST_SECRET, "EMBEDGATE_TTL": "600", "EMBEDGATE_AUDIENCE": "cube"},
        environ=NO_ENV,
    )
    token = engine.token_for(User("7", tenant="acme", embed_attributes={"region": "EU"}), "s1")
    assert token is not None
    claims = _decode(token.token, audience="cube")
    assert (claims["sub"], claims["tenant"], claims["attributes"]) == (
        "7",
        "acme",
        {"region": "EU"},
    )
    assert claims["exp"] - claims["iat"] == 600
    assert engine.token_for(AnonymousUserMixin(), "s1") is None
    assert engine.token_for(None, "s1") is None
    assert engine.jwks() is None  # HMAC: nothing to publish


def test_async_and_logout() -> None:
    engine = Engine.from_settings({"EMBEDGATE_SECRET": TEST_SECRET}, environ=NO_ENV)
    user = User("7")

    async def scenario() -> tuple[str, str, str]:
        first = await engine.atoken_for(user, "s1")
        again = await engine.atoken_for(user, "s1")
        assert await engine.alogout("s1") == 1
        fresh = await engine.atoken_for(user, "s1")
        assert first is not None
        assert again is not None
        assert fresh is not None
        return first.token, again.token, fresh.token

    first, again, fresh = anyio.run(scenario)
    assert first == again != fresh
    assert engine.logout("s1") == 1
    assert engine.logout("s1") == 0


def test_asymmetric_engine_publishes_its_jwks() -> None:
    engine = Engine.from_settings(
        {"EMBEDGATE_PRIVATE_KEY": private_pem("P-256").decode()}, environ=NO_ENV
    )
    jwks = engine.jwks()
    assert jwks is not None
    assert [k["alg"] for k in jwks["keys"]] == ["ES256"]
    token = engine.token_for(User("7"), "s")
    assert token is not None
    assert jwt.get_unverified_header(token.token)["kid"] == jwks["keys"][0]["kid"]


def test_empty_typ_leaves_the_header_out() -> None:
    engine = Engine.from_settings(
        {"EMBEDGATE_SECRET": TEST_SECRET, "EMBEDGATE_TYP": ""}, environ=NO_ENV
    )
    token = engine.token_for(User("7"), "s")
    assert token is not None
    assert "typ" not in jwt.get_unverified_header(token.token)


def test_attribute_policy_from_settings() -> None:
    engine = Engine.from_settings(
        {
            "EMBEDGATE_SECRET": TEST_SECRET,
            "EMBEDGATE_ALLOWED_ATTRIBUTES": "region",
            "EMBEDGATE_REQUIRED_ATTRIBUTES": "region,tenant",
        },
        environ=NO_ENV,
    )
    attributes = {"region": "EU", "salary": 100_000, "ssn": "123-45-6789"}
    token = engine.token_for(User("7", tenant="acme", embed_attributes=attributes), "s")
    assert token is not None
    assert _decode(token.token)["attributes"] == {"region": "EU"}
    assert "salary" not in token.token
    assert "ssn" not in jwt.decode(token.token, options={"verify_signature": False})
    with pytest.raises(PrincipalError) as no_region:
        engine.token_for(User("8", tenant="acme"), "s")
    assert no_region.value.field == "attributes.region"
    with pytest.raises(PrincipalError) as no_tenant:
        engine.token_for(User("9", embed_attributes={"region": "EU"}), "s")
    assert no_tenant.value.field == "tenant"


def test_size_budget_from_settings() -> None:
    engine = Engine.from_settings(
        {"EMBEDGATE_SECRET": TEST_SECRET, "EMBEDGATE_TOKEN_SIZE_BUDGET": "300"}, environ=NO_ENV
    )
    with pytest.raises(TokenTooLargeError) as caught:
        engine.token_for(User("7", embed_attributes={"notes": "n" * 200}), "s")
    assert caught.value.budget == 300


def test_sso_mode_maps_claims_through_the_claim_mapping() -> None:
    engine = Engine.from_settings(
        {
            "EMBEDGATE_MODE": "sso",
            "EMBEDGATE_SECRET": TEST_SECRET,
            "EMBEDGATE_CLAIM_MAPPING": (
                '{"subject": "preferred_username", "tenant": "org.id", '
                '"roles": "realm_access.roles", "attributes": {"region": "custom.region"}}'
            ),
        },
        environ=NO_ENV,
    )
    session_claims = {
        "sub": "f:1234",
        "preferred_username": "jdoe",
        "org": {"id": "acme"},
        "realm_access": {"roles": ["analyst"]},
        "custom": {"region": ["EU"]},
        "email": "jdoe@example.com",
    }
    principal = engine.principal_for(session_claims)
    assert principal is not None
    assert (principal.subject, principal.tenant, principal.roles) == ("jdoe", "acme", ("analyst",))
    token = engine.token_for(session_claims, "s")
    assert token is not None
    claims = _decode(token.token)
    assert claims["sub"] == "jdoe"
    assert claims["attributes"] == {"region": "EU"}
    assert claims["email"] == "jdoe@example.com"


# -- api_key mode: a sandbox that refuses production ------------------------------------------


def test_api_key_mode_refuses_production_by_setting() -> None:
    with pytest.raises(ProductionRefusedError) as caught:
        Engine.from_settings(
            {
                "EMBEDGATE_MODE": "api_key",
                "EMBEDGATE_API_KEY": API_KEY,
                "EMBEDGATE_ENV": "production",
            },
            environ=NO_ENV,
        )
    assert caught.value.setting == "EMBEDGATE_MODE"
    assert API_KEY not in str(caught.value)


@pytest.mark.parametrize("env", ["prod", "live", "production"])
def test_api_key_mode_refuses_every_production_name(env: str) -> None:
    with pytest.raises(ProductionRefusedError):
        Engine.from_settings(
            {"EMBEDGATE_MODE": "api_key", "EMBEDGATE_API_KEY": API_KEY},
            environ={"EMBEDGATE_ENV": env},
        )


def test_api_key_mode_refuses_a_host_that_says_production() -> None:
    config = Config.load(environ=NO_ENV, mode="api_key", api_key=API_KEY)
    with pytest.raises(ProductionRefusedError):
        Engine(config, production=True, environ=NO_ENV)
    # token mode in production is fine
    Engine(Config.load(environ=NO_ENV, secret=TEST_SECRET, env="production"), production=True)


def test_api_key_mode_warns_loudly_and_never_shows_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        engine = Engine.from_settings(
            {"EMBEDGATE_MODE": "api_key", "EMBEDGATE_API_KEY": API_KEY}, environ=NO_ENV
        )
        token = engine.token_for(None, "anonymous-visitor")  # the sandbox principal
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings
    assert "SANDBOX" in warnings[0].getMessage()
    assert "Never use it in production" in warnings[0].getMessage()
    assert token is not None
    claims = _decode(token.token, secret=API_KEY)
    assert claims["sub"] == "sandbox-developer"
    for text in (caplog.text, repr(engine), str(engine.config), repr(engine.service)):
        assert API_KEY not in text
        assert token.token not in text


def test_api_key_mode_refuses_a_short_key() -> None:
    with pytest.raises(KeyConfigurationError) as caught:
        Engine.from_settings(
            {"EMBEDGATE_MODE": "api_key", "EMBEDGATE_API_KEY": "short-key"}, environ=NO_ENV
        )
    assert caught.value.setting == "EMBEDGATE_API_KEY"
    assert "short-key" not in str(caught.value)


def test_tokens_are_fresh_from_the_real_clock() -> None:
    engine = Engine.from_settings({"EMBEDGATE_SECRET": TEST_SECRET}, environ=NO_ENV)
    token = engine.token_for(User("7"), "s")
    assert token is not None
    assert abs(token.issued_at - time.time()) < 5
