"""Metabase: static embedding tokens and their iframe URL (opened on a fake Metabase), and
JWT SSO tokens answered as {"jwt": ...} for the SDK."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import jwt
import pytest

from embedgate import Config, ConfigurationError, Engine, ManualClock, Principal, PrincipalError
from tests.providers.fakes.metabase import FakeMetabase
from tests.providers.fakes.server import serve
from tests.providers.test_toucan import elements

EMBEDDING_SECRET = "3ace80c8efdce0349dee4627f3366757002b818121c8d9050d9095a639f4db0e"
JWT_SECRET = "metabase-jwt-shared-secret-0123456789abcdef"
# Check the signature only: these tokens are dated by a manual clock.
SIGNATURE_ONLY = {
    "verify_aud": False,
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
}


@pytest.fixture
def metabase() -> Iterator[tuple[FakeMetabase, str]]:
    fake = FakeMetabase(embedding_secret=EMBEDDING_SECRET, jwt_secret=JWT_SECRET)
    with serve(fake.app) as url:
        yield fake, url


def settings(url: str, **extra: str) -> dict[str, Any]:
    return {
        "EMBEDGATE_PROVIDER": "metabase",
        "EMBEDGATE_PROVIDER_URL": url,
        "EMBEDGATE_SECRET": EMBEDDING_SECRET,
        **{f"EMBEDGATE_{k.upper()}": v for k, v in extra.items()},
    }


def engine(mapping: Mapping[str, Any], clock: ManualClock | None = None) -> Engine:
    config = Config.load(mapping, environ={})
    if clock is None:
        return Engine(config, config_source=mapping, environ={})
    return Engine(config, config_source=mapping, environ={}, clock=clock)


def test_static_token_claims_and_the_documented_iframe_url(
    principal: Principal, clock: ManualClock
) -> None:
    eng = engine(
        settings(
            "https://metabase.example.com", metabase_params='{"org": "tenant", "region": "region"}'
        ),
        clock,
    )
    token = eng.token_for(principal, "s", eng.profile.resource_for("dashboard", "12"))
    assert token is not None
    claims = jwt.decode(token.token, EMBEDDING_SECRET, algorithms=["HS256"], options=SIGNATURE_ONLY)
    assert claims["resource"] == {"dashboard": 12}
    assert claims["params"] == {"org": "acme", "region": "EU"}
    assert claims["exp"] == int(clock.now()) + 300
    # Metabase's documented form: {site}/embed/dashboard/{token}#bordered=true&titled=true
    assert (
        token.url
        == f"https://metabase.example.com/embed/dashboard/{token.token}#bordered=true&titled=true"
    )
    assert eng.profile.endpoint_payload(token, {"token": token.token}) == {
        "token": token.token,
        "url": token.url,
    }


def test_the_iframe_url_opens_on_metabase(
    metabase: tuple[FakeMetabase, str], principal: Principal
) -> None:
    fake, url = metabase
    eng = engine(settings(url))
    for kind, ident in (("dashboard", "12"), ("question", "7")):
        token = eng.token_for(principal, "s", eng.profile.resource_for(kind, ident))
        assert token is not None
        markup = eng.profile.snippet(kind, ident, token, {"titled": "false", "height": "600"})
        [(tag, attrs)] = elements(markup)
        assert tag == "iframe"
        assert attrs["data-embedgate-token"] == "src"
        assert attrs["data-embedgate-resource"] == f"{kind}:{ident}"  # a resource-bound token
        template = attrs["data-embedgate-url-template"]
        assert template == f"{url}/embed/{kind}/{{token}}#bordered=true&titled=false"
        assert attrs["src"] == template.replace("{token}", token.token)
        response = httpx.get(attrs["src"] or "")
        assert response.status_code == 200
        assert f'data-{kind}="{ident}"' in response.text
    assert [c["resource"] for c in fake.opened] == [{"dashboard": 12}, {"question": 7}]


def test_a_tampered_static_token_is_refused_by_metabase(
    metabase: tuple[FakeMetabase, str], principal: Principal
) -> None:
    _, url = metabase
    eng = engine(settings(url))
    token = eng.token_for(principal, "s", "dashboard:12")
    assert token is not None
    assert token.url is not None
    header, payload, signature = token.token.split(".")
    forged = token.url.replace(token.token, f"{header}.{payload}.{signature[::-1]}")
    assert httpx.get(forged).status_code == 400


def test_a_locked_parameter_without_its_attribute_fails_closed(principal: Principal) -> None:
    eng = engine(settings("https://metabase.example.com", metabase_params='{"plan": "plan"}'))
    with pytest.raises(PrincipalError) as caught:
        eng.token_for(principal, "s", "dashboard:12")
    assert caught.value.field == "attributes.plan"


@pytest.mark.parametrize("resource", ["chart:1", "dashboard:../admin", None])
def test_bad_static_resources_are_refused(principal: Principal, resource: str | None) -> None:
    eng = engine(settings("https://metabase.example.com"))
    with pytest.raises(ConfigurationError):
        eng.token_for(principal, "s", resource)


def test_sso_tokens_carry_identity_groups_and_attributes(
    metabase: tuple[FakeMetabase, str], principal: Principal
) -> None:
    fake, url = metabase
    eng = engine({**settings(url, metabase_mode="sso"), "EMBEDGATE_SECRET": JWT_SECRET})
    assert eng.profile.resource_for("dashboard", "12") is None  # one token for every dashboard
    token = eng.token_for(principal, "s")
    assert token is not None
    claims = jwt.decode(
        token.token, JWT_SECRET, algorithms=["HS256"], options={"verify_aud": False}
    )
    assert {
        k: claims[k]
        for k in ("email", "first_name", "last_name", "groups", "region", "level", "teams")
    } == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "groups": ["finance"],
        "region": "EU",
        "level": 3,
        "teams": ["north", "south"],
    }
    assert {"exp", "iat", "jti"} <= set(claims)
    # What the SDK's auth endpoint must answer.
    assert eng.profile.endpoint_payload(token, {"token": token.token})["jwt"] == token.token
    # Interactive embedding: /auth/sso?jwt=...&return_to=... logs the user in once.
    [(_, attrs)] = elements(eng.profile.snippet("dashboard", "12", token, {}))
    assert "data-embedgate-token" not in attrs
    response = httpx.get(attrs["src"] or "", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (302, "/dashboard/12")
    assert fake.opened[-1]["email"] == "ada@example.com"


def test_sso_needs_an_email_and_refuses_clashing_attributes(principal: Principal) -> None:
    eng = engine(settings("https://metabase.example.com", metabase_mode="sso"))
    with pytest.raises(PrincipalError) as caught:
        eng.token_for(principal.replace(email=None), "s")
    assert caught.value.field == "email"
    with pytest.raises(PrincipalError) as caught:
        eng.token_for(principal.replace(attributes={"groups": "admins"}), "s")
    assert caught.value.field == "attributes.groups"


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"metabase_mode": "interactive"}, "EMBEDGATE_METABASE_MODE"),
        ({"metabase_resource_type": "card"}, "EMBEDGATE_METABASE_RESOURCE_TYPE"),
        ({"metabase_params": '{"org": 1}'}, "EMBEDGATE_METABASE_PARAMS"),
        (
            {"metabase_mode": "sso", "metabase_params": '{"org": "tenant"}'},
            "EMBEDGATE_METABASE_PARAMS",
        ),
        ({"metabase_secret_key": "x"}, "EMBEDGATE_METABASE_SECRET_KEY"),
    ],
)
def test_bad_metabase_settings_name_the_setting(extra: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        engine(settings("https://metabase.example.com", **extra))
    assert caught.value.setting == setting


def test_snippet_options_are_checked(principal: Principal) -> None:
    eng = engine(settings("https://metabase.example.com"))
    token = eng.token_for(principal, "s", "dashboard:12")
    assert token is not None
    with pytest.raises(ConfigurationError):
        eng.profile.snippet("dashboard", "12", token, {"bordered": "yes&theme=x"})
    with pytest.raises(ConfigurationError):
        eng.profile.snippet("dashboard", '12"><script>', token, {})
    markup = eng.profile.snippet("dashboard", "12", token, {"theme": "night"})
    assert "#bordered=true&amp;titled=true&amp;theme=night" in markup


def test_a_long_ttl_for_url_borne_tokens_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    engine(settings("https://metabase.example.com", ttl="1800"))
    assert "EMBEDGATE_TTL=1800" in caplog.text
    caplog.clear()
    engine(settings("https://metabase.example.com", ttl="300"))
    assert "EMBEDGATE_TTL" not in caplog.text
