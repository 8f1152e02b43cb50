"""Superset guest tokens: through the REST API of a fake Superset (login, CSRF with its
cookie, guest token), or signed locally exactly as Superset's security manager expects."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import anyio
import jwt
import pytest

from embedgate import (
    Config,
    ConfigurationError,
    EmbedToken,
    Engine,
    IssuerError,
    Principal,
    PrincipalError,
)
from tests.conftest import TEST_SECRET
from tests.providers.fakes.server import serve
from tests.providers.fakes.superset import FakeSuperset
from tests.providers.test_toucan import elements

PASSWORD = "superset-service-password-SECRET"
RLS = '{"region": "region", "tenant": {"column": "org_id", "dataset": 7}}'
DASHBOARD = "0d5e4b6c-64a1-4c1e-9b8e-5f0a3a2b7c11"


@pytest.fixture
def superset() -> Iterator[tuple[FakeSuperset, str]]:
    fake = FakeSuperset(username="embedder", password=PASSWORD, guest_secret=TEST_SECRET)
    with serve(fake.app) as url:
        yield fake, url


def api_settings(url: str, **extra: str) -> dict[str, Any]:
    return {
        "EMBEDGATE_PROVIDER": "superset",
        "EMBEDGATE_PROVIDER_URL": url,
        "EMBEDGATE_SUPERSET_USERNAME": "embedder",
        "EMBEDGATE_SUPERSET_PASSWORD": PASSWORD,
        "EMBEDGATE_SUPERSET_RLS": RLS,
        "EMBEDGATE_SUPERSET_RETRIES": "0",
        **{f"EMBEDGATE_{k.upper()}": v for k, v in extra.items()},
    }


def engine(mapping: Mapping[str, Any]) -> Engine:
    return Engine(Config.load(mapping, environ={}), config_source=mapping, environ={})


def test_the_api_exchange_yields_a_guest_token_superset_accepts(
    superset: tuple[FakeSuperset, str], principal: Principal
) -> None:
    fake, url = superset
    eng = engine(api_settings(url))
    token = eng.token_for(principal, "s", DASHBOARD)
    assert token is not None
    assert (fake.logins, fake.csrf_calls, fake.guest_calls) == (1, 1, 1)
    assert fake.guest_bodies[0] == {
        "user": {"username": "ada", "first_name": "Ada", "last_name": "Lovelace"},
        "resources": [{"type": "dashboard", "id": DASHBOARD}],
        "rls": [{"clause": "region = 'EU'"}, {"clause": "org_id = 'acme'", "dataset": 7}],
    }
    claims = jwt.decode(token.token, TEST_SECRET, algorithms=["HS256"], audience="superset")
    assert claims["type"] == "guest"
    assert abs(token.expires_at - claims["exp"]) < 1  # the lifetime is read from the token


def test_the_access_token_is_reused_and_renewed_after_a_401(
    superset: tuple[FakeSuperset, str], principal: Principal
) -> None:
    fake, url = superset
    eng = engine(api_settings(url))
    eng.token_for(principal, "s1", DASHBOARD)
    eng.token_for(principal, "s2", DASHBOARD)
    assert (fake.logins, fake.guest_calls) == (1, 2)
    fake.revoke()
    token = eng.token_for(principal, "s3", DASHBOARD)
    assert token is not None
    assert fake.logins == 2  # logged in again after the 401
    assert fake.guest_calls == 3


def test_an_access_token_near_its_expiry_is_renewed_before_use(principal: Principal) -> None:
    fake = FakeSuperset(
        username="embedder", password=PASSWORD, guest_secret=TEST_SECRET, access_lifetime=20
    )
    with serve(fake.app) as url:
        eng = engine(api_settings(url))
        eng.token_for(principal, "s1", DASHBOARD)
        eng.token_for(principal, "s2", DASHBOARD)
    assert fake.logins == 2  # 20 s of life is inside the 30 s renewal margin
    assert fake.csrf_calls == 2  # and never a 401 on the way


def test_wrong_credentials_are_rejected_without_retry(
    superset: tuple[FakeSuperset, str], principal: Principal
) -> None:
    fake, url = superset
    eng = engine(api_settings(url, superset_password="wrong-password", superset_retries="2"))
    with pytest.raises(IssuerError) as caught:
        eng.token_for(principal, "s", DASHBOARD)
    error = caught.value
    assert (error.code, error.status, error.provider) == ("provider_rejected", 401, "superset")
    assert "EMBEDGATE_SUPERSET_PASSWORD" in str(error)
    assert "wrong-password" not in str(error) + repr(error)
    assert fake.logins == 1


def test_async_face_runs_the_same_exchange(
    superset: tuple[FakeSuperset, str], principal: Principal
) -> None:
    fake, url = superset
    eng = engine(api_settings(url))

    async def scenario() -> EmbedToken:
        return await eng.service.aget_token(principal, "s", DASHBOARD)

    token = anyio.run(scenario, backend="trio")
    assert (
        jwt.decode(token.token, TEST_SECRET, algorithms=["HS256"], audience="superset")["user"][
            "username"
        ]
        == "ada"
    )
    assert (fake.logins, fake.csrf_calls, fake.guest_calls) == (1, 1, 1)


def test_a_principal_missing_an_rls_attribute_gets_no_token(
    superset: tuple[FakeSuperset, str], principal: Principal
) -> None:
    fake, url = superset
    with pytest.raises(PrincipalError):
        engine(api_settings(url)).token_for(principal.replace(attributes={}), "s", DASHBOARD)
    assert fake.guest_calls == 0


def test_a_dashboard_is_required(superset: tuple[FakeSuperset, str], principal: Principal) -> None:
    _, url = superset
    with pytest.raises(ConfigurationError) as caught:
        engine(api_settings(url)).token_for(principal, "s")
    assert caught.value.setting == "EMBEDGATE_SUPERSET_DASHBOARDS"
    token = engine(api_settings(url, superset_dashboards=DASHBOARD)).token_for(principal, "s")
    assert token is not None


@pytest.mark.parametrize(
    ("drop", "setting"),
    [
        ("EMBEDGATE_SUPERSET_USERNAME", "EMBEDGATE_SUPERSET_USERNAME"),
        ("EMBEDGATE_SUPERSET_PASSWORD", "EMBEDGATE_SUPERSET_PASSWORD"),
        ("EMBEDGATE_PROVIDER_URL", "EMBEDGATE_PROVIDER_URL"),
    ],
)
def test_api_mode_settings_are_required(drop: str, setting: str) -> None:
    mapping = api_settings("http://127.0.0.1:9")
    del mapping[drop]
    with pytest.raises(ConfigurationError) as caught:
        engine(mapping)
    assert caught.value.setting == setting
    assert PASSWORD not in str(caught.value)


# -- local signing ---------------------------------------------------------------------------


def local_settings(**extra: str) -> dict[str, Any]:
    return {
        "EMBEDGATE_PROVIDER": "superset",
        "EMBEDGATE_PROVIDER_URL": "https://superset.example.com",
        "EMBEDGATE_SUPERSET_MODE": "local",
        "EMBEDGATE_SECRET": TEST_SECRET,
        "EMBEDGATE_AUDIENCE": "superset.example.com",
        "EMBEDGATE_SUPERSET_RLS": '{"region": "region"}',
        **{f"EMBEDGATE_{k.upper()}": v for k, v in extra.items()},
    }


def test_local_tokens_pass_supersets_own_checks(principal: Principal) -> None:
    token = engine(local_settings()).token_for(principal, "s", DASHBOARD)
    assert token is not None
    # What parse_jwt_guest_token and get_guest_user_from_request do, in Superset's words.
    claims = jwt.decode(
        token.token, TEST_SECRET, algorithms=["HS256"], audience="superset.example.com"
    )
    assert claims["user"] == {"username": "ada", "first_name": "Ada", "last_name": "Lovelace"}
    assert claims["resources"] == [{"type": "dashboard", "id": DASHBOARD}]
    assert claims["rls_rules"] == [{"clause": "region = 'EU'"}]
    assert claims["type"] == "guest"
    assert isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] == 300
    # The wrong audience (another Superset) must refuse it.
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token.token, TEST_SECRET, algorithms=["HS256"], audience="other.example.com")


def test_local_mode_needs_an_hmac_secret_and_no_api_settings() -> None:
    mapping = local_settings()
    del mapping["EMBEDGATE_SECRET"]
    with pytest.raises(ConfigurationError) as caught:
        engine(mapping)
    assert caught.value.setting == "EMBEDGATE_SECRET"
    with pytest.raises(ConfigurationError) as caught:
        engine(local_settings(superset_username="someone"))
    assert caught.value.setting == "EMBEDGATE_SUPERSET_USERNAME"


def test_snippet_is_a_mount_point_without_the_token(principal: Principal) -> None:
    eng = engine(local_settings())
    token = eng.token_for(principal, "s", eng.profile.resource_for("dashboard", DASHBOARD))
    assert token is not None
    markup = eng.profile.snippet(
        "dashboard", DASHBOARD, token, {"nonce": "abc", "hide_title": "true"}
    )
    assert token.token not in markup
    (_script_tag, script), (tag, attrs) = elements(markup)
    assert script == {"src": "https://unpkg.com/@superset-ui/embedded-sdk", "nonce": "abc"}
    assert tag == "div"
    assert attrs == {
        "data-embedgate-sdk": "superset",
        "data-embedgate-dashboard": DASHBOARD,
        "data-embedgate-domain": "https://superset.example.com",
        "data-embedgate-hide-title": "true",
        # No EMBEDGATE_SUPERSET_DASHBOARDS: a guest token per dashboard, asked for by name.
        "data-embedgate-resource": DASHBOARD,
    }
    assert eng.profile.endpoint_payload(token, {"token": token.token}) == {"token": token.token}


def test_unknown_superset_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        engine(local_settings(superset_guest_secret="x"))
    assert caught.value.setting == "EMBEDGATE_SUPERSET_GUEST_SECRET"


def test_listed_dashboards_share_the_sessions_token(principal: Principal) -> None:
    other = "7a1b2c3d-0000-4000-8000-000000000002"
    eng = engine(local_settings(superset_dashboards=f"{DASHBOARD},{other}"))
    assert eng.profile.resource_for("dashboard", DASHBOARD) is None
    token = eng.token_for(principal, "s")  # what embedgate.getToken() refreshes
    assert token is not None
    claims = jwt.decode(
        token.token, TEST_SECRET, algorithms=["HS256"], audience="superset.example.com"
    )
    assert [r["id"] for r in claims["resources"]] == [DASHBOARD, other]
    with pytest.raises(ConfigurationError) as caught:
        eng.profile.resource_for("dashboard", "not-listed")
    assert caught.value.setting == "EMBEDGATE_SUPERSET_DASHBOARDS"


@pytest.mark.parametrize("audience", [None, "superset.example.com", "http://0.0.0.0:8088/"])
def test_local_mode_warns_at_start_up_when_superset_would_refuse_the_audience(
    caplog: pytest.LogCaptureFixture, audience: str | None
) -> None:
    mapping = local_settings()
    if audience is None:
        del mapping["EMBEDGATE_AUDIENCE"]  # embedgate's own default: "embedgate"
    else:
        mapping["EMBEDGATE_AUDIENCE"] = audience
    with caplog.at_level(logging.WARNING, logger="embedgate"):
        engine(mapping)
    (record,) = [r for r in caplog.records if "GUEST_TOKEN_JWT_AUDIENCE" in r.getMessage()]
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert "http://0.0.0.0:8080/" in message
    assert "EMBEDGATE_AUDIENCE" in message
    assert repr(audience or "embedgate") in message
    assert TEST_SECRET not in message


def test_local_mode_with_supersets_default_audience_does_not_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="embedgate"):
        engine(local_settings(audience="http://0.0.0.0:8080/"))
    assert not [r for r in caplog.records if "GUEST_TOKEN_JWT_AUDIENCE" in r.getMessage()]
