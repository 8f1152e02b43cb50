"""Looker signed embed URLs: the documented string to sign, an independent HMAC, a fake
Looker that verifies each URL and accepts it once, and URLs never cached."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from embedgate import Config, ConfigurationError, Engine, Principal, Secret
from embedgate.providers.looker import LookerEmbed
from tests.providers.fakes.looker import FakeLooker
from tests.providers.fakes.server import serve
from tests.providers.test_toucan import elements

EMBED_SECRET = "9d15e0e2b42656ee4d70e10a9803953422face004d7557f430e2c783eb4d3413"

# Looker's help center ("What makes SSO embed URLs secure?") prints this string to sign.
DOCUMENTED_STRING_TO_SIGN = "\n".join(
    [
        "instance.looker.com",
        "/login/embed/embed%2Fdashboards%2F1527",
        '"ac786cbc06162b1edde3a8b35920a93e"',
        "1585244357",
        "3600",
        '"57"',
        '["access_data","see_user_dashboards"]',
        '["some_model","someother_model"]',
        "[]",
        '"test group space"',
        '{"can_see_stuff":"yes"}',
        "{}",
    ]
)

DOCUMENTED = LookerEmbed(
    host="instance.looker.com",
    embed_url="embed/dashboards/1527",
    nonce="ac786cbc06162b1edde3a8b35920a93e",
    time=1585244357,
    session_length=3600,
    external_user_id="57",
    permissions=("access_data", "see_user_dashboards"),
    models=("some_model", "someother_model"),
    group_ids=(),
    external_group_id="test group space",
    user_attributes={"can_see_stuff": "yes"},
    first_name="Chris",
    last_name="Embed",
)


def test_the_documented_string_to_sign_is_reproduced() -> None:
    assert DOCUMENTED.string_to_sign() == DOCUMENTED_STRING_TO_SIGN


def test_the_signature_matches_an_independent_hmac_sha1() -> None:
    expected = base64.b64encode(
        hmac.new(EMBED_SECRET.encode(), DOCUMENTED_STRING_TO_SIGN.encode(), hashlib.sha1).digest()
    ).decode()
    assert DOCUMENTED.signature(Secret(EMBED_SECRET)) == expected
    url = DOCUMENTED.url(Secret(EMBED_SECRET))
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "instance.looker.com",
        "/login/embed/embed%2Fdashboards%2F1527",
    )
    query = dict(parse_qsl(parts.query))
    assert query["signature"] == expected
    assert query["first_name"] == '"Chris"'
    assert query["external_user_id"] == '"57"'


def test_without_an_external_group_the_field_is_left_out_of_both() -> None:
    embed = LookerEmbed(
        host="h",
        embed_url="/embed/looks/1",
        nonce="n",
        time=1,
        session_length=60,
        external_user_id="u",
        permissions=(),
        models=("m",),
    )
    assert embed.string_to_sign().split("\n")[9:] == ["{}", "{}"]
    assert "external_group_id" not in embed.url(Secret(EMBED_SECRET))


@pytest.fixture
def looker() -> Iterator[tuple[FakeLooker, str]]:
    fake = FakeLooker(EMBED_SECRET)
    with serve(fake.app) as url:
        yield fake, url


def settings(url: str, **extra: str) -> dict[str, Any]:
    return {
        "EMBEDGATE_PROVIDER": "looker",
        "EMBEDGATE_PROVIDER_URL": url,
        "EMBEDGATE_SECRET": EMBED_SECRET,
        "EMBEDGATE_LOOKER_MODELS": "thelook,finance",
        **{f"EMBEDGATE_{k.upper()}": v for k, v in extra.items()},
    }


def engine(mapping: Mapping[str, Any]) -> Engine:
    return Engine(Config.load(mapping, environ={}), config_source=mapping, environ={})


def test_a_signed_url_opens_once_on_looker(
    looker: tuple[FakeLooker, str], principal: Principal
) -> None:
    fake, url = looker
    eng = engine(settings(url, looker_group_ids="4,5", looker_session_length="900"))
    token = eng.token_for(principal, "s", eng.profile.resource_for("dashboard", "12"))
    assert token is not None
    assert token.single_use
    assert token.url == token.token
    assert token.expires_at - token.issued_at == 900
    assert httpx.get(token.url).status_code == 200
    assert httpx.get(token.url).status_code == 403  # the nonce is spent
    session = fake.sessions[0]
    assert session["external_user_id"] == "ada"
    assert session["models"] == ["thelook", "finance"]
    assert session["group_ids"] == [4, 5]
    assert session["external_group_id"] == "acme"
    assert session["user_attributes"] == {"region": "EU", "level": 3, "teams": "north,south"}
    assert (session["first_name"], session["last_name"]) == ("Ada", "Lovelace")
    assert session["permissions"] == [
        "access_data",
        "see_user_dashboards",
        "see_lookml_dashboards",
        "see_looks",
    ]


def test_signed_urls_are_never_cached(looker: tuple[FakeLooker, str], principal: Principal) -> None:
    fake, url = looker
    eng = engine(settings(url))
    first = eng.token_for(principal, "s", "look:7")
    second = eng.token_for(principal, "s", "look:7")
    assert first is not None
    assert second is not None
    assert first.token != second.token
    assert first.jti != second.jti
    for token in (first, second):
        assert httpx.get(token.token).status_code == 200
    assert len(fake.used_nonces) == 2


def test_explores_and_a_tampered_url(looker: tuple[FakeLooker, str], principal: Principal) -> None:
    _, url = looker
    eng = engine(settings(url))
    token = eng.token_for(principal, "s", eng.profile.resource_for("explore", "thelook/orders"))
    assert token is not None
    assert "%2Fembed%2Fexplore%2Fthelook%2Forders" in token.token
    tampered = token.token.replace("%22ada%22", "%22admin%22")
    assert tampered != token.token
    assert httpx.get(tampered).status_code == 403
    assert httpx.get(token.token).status_code == 200


def test_snippet_and_endpoint_payload(principal: Principal) -> None:
    eng = engine(settings("https://looker.example.com"))
    token = eng.token_for(principal, "s", "dashboard:12")
    assert token is not None
    [(tag, attrs)] = elements(eng.profile.snippet("dashboard", "12", token, {"width": "100%"}))
    # No data-embedgate-token: the session outlives the URL, a new URL would reload it.
    assert (tag, attrs) == (
        "iframe",
        {
            "src": token.url,
            "data-embedgate-resource": "dashboard:12",
            "data-embedgate-refresh": "none",
            "frameborder": "0",
            "width": "100%",
        },
    )
    assert eng.profile.endpoint_payload(token, {"token": token.token})["url"] == token.url


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"looker_models": ""}, "EMBEDGATE_LOOKER_MODELS"),
        ({"looker_group_ids": "4,x"}, "EMBEDGATE_LOOKER_GROUP_IDS"),
        ({"looker_session_length": "10"}, "EMBEDGATE_LOOKER_SESSION_LENGTH"),
        ({"looker_host": "x"}, "EMBEDGATE_LOOKER_HOST"),
        ({"secret": "short"}, "EMBEDGATE_SECRET"),
    ],
)
def test_bad_looker_settings_name_the_setting(extra: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        engine(settings("https://looker.example.com", **extra))
    assert caught.value.setting == setting


@pytest.mark.parametrize(
    "resource", ["dashboard:1?x=2", "explore:noslash", "look:a/b", "dashboard:"]
)
def test_bad_resources_are_refused(principal: Principal, resource: str) -> None:
    with pytest.raises(ConfigurationError):
        engine(settings("https://looker.example.com")).token_for(principal, "s", resource)
