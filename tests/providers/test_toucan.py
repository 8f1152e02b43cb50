"""Toucan AI by configuration: the request Toucan receives, the answers it may give, the
cache and single-flight in front of it, and the web-component markup."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any

import anyio
import pytest

from embedgate import (
    Config,
    ConfigurationError,
    EmbedToken,
    Engine,
    IssuerError,
    ManualClock,
    Principal,
    ProductionRefusedError,
    Secret,
)
from embedgate.providers.toucan import ToucanMinter
from tests.providers.conftest import API_KEY, FAST, request_for
from tests.providers.fakes.toucan import FakeToucan, Plan


def settings(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "EMBEDGATE_PROVIDER": "toucan",
        "EMBEDGATE_PROVIDER_URL": url,
        "EMBEDGATE_API_KEY": API_KEY,
        "EMBEDGATE_TOUCAN_RETRIES": "1",
        "EMBEDGATE_TOUCAN_READ_TIMEOUT": "5",
        **{f"EMBEDGATE_{k.upper()}": v for k, v in extra.items()},
    }


def engine(mapping: Mapping[str, Any], clock: ManualClock | None = None) -> Engine:
    config = Config.load(mapping, environ={})
    if clock is None:
        return Engine(config, config_source=mapping, environ={})
    return Engine(config, config_source=mapping, environ={}, clock=clock)


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(markup)
    return parser.found


# -- what Toucan receives -------------------------------------------------------------------


def test_the_principal_becomes_toucans_user_payload(
    toucan: tuple[FakeToucan, str], principal: Principal
) -> None:
    fake, url = toucan
    eng = engine(settings(url, toucan_roles='{"analyst": "viewer"}'))
    token = eng.token_for(principal, "session-1")
    assert token is not None
    assert token.token.startswith("tc_1_ada")
    assert fake.seen[0].path == "/embed/generate-token"
    assert fake.seen[0].body == {
        "user": {
            "distinctId": "ada",
            "role": "viewer",
            "attributes": {
                "region": "EU",
                "level": 3,
                "teams": ["north", "south"],
                "tenant": "acme",
            },
        }
    }
    # Cached per session: the provider is asked once.
    assert eng.token_for(principal, "session-1") == token
    assert fake.calls == 1


def test_unmapped_roles_get_the_default_role(
    toucan: tuple[FakeToucan, str], principal: Principal
) -> None:
    fake, url = toucan
    eng = engine(settings(url, toucan_roles='{"admin": "editor"}', toucan_default_role="viewer"))
    eng.token_for(principal.replace(tenant=None), "s")
    assert fake.seen[0].body["user"]["role"] == "viewer"
    assert "tenant" not in fake.seen[0].body["user"]["attributes"]


def test_the_lifetime_comes_from_toucans_answer(
    toucan: tuple[FakeToucan, str], principal: Principal, clock: ManualClock
) -> None:
    fake, url = toucan
    fake.lifetime = 1800
    token = engine(settings(url), clock).token_for(principal, "s")
    assert token is not None
    assert token.expires_at == clock.now() + 1800


def test_a_token_without_expiry_lives_embedgate_ttl(
    toucan: tuple[FakeToucan, str], principal: Principal, clock: ManualClock
) -> None:
    fake, url = toucan
    fake.plan(Plan(body={"token": "tc_opaque"}))
    token = engine(settings(url, ttl="600"), clock).token_for(principal, "s")
    assert token is not None
    assert (token.token, token.expires_at) == ("tc_opaque", clock.now() + 600)


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"token": "t", "expiresIn": 3600}, ("t", NOW + 3600)),
        ({"embedToken": "t", "expires_in": "120"}, ("t", NOW + 120)),
        (
            {"authToken": "t", "expiresAt": "2027-01-15T08:00:00Z"},
            ("t", datetime(2027, 1, 15, 8, tzinfo=timezone.utc).timestamp()),
        ),
        ({"token": "t", "expiresAt": (NOW + 900) * 1000}, ("t", NOW + 900)),
        ({"token": "t", "exp": NOW + 60}, ("t", NOW + 60)),
        ({"data": {"token": "t", "expiresIn": 30}}, ("t", NOW + 30)),
        ({"token": "t"}, ("t", NOW + 300)),
    ],
    ids=[
        "expiresIn",
        "expires_in-string",
        "expiresAt-iso",
        "expiresAt-ms",
        "exp",
        "nested",
        "none",
    ],
)
def test_documented_answer_variants_are_read(
    principal: Principal, answer: dict[str, Any], expected: tuple[str, float]
) -> None:
    issuer = ToucanMinter(base_url="http://127.0.0.1:9", api_key=Secret(API_KEY), ttl=300)
    token = issuer.read_token(answer, request_for(principal, NOW))
    assert (token.token, token.expires_at) == expected
    assert token.subject == "ada"


@pytest.mark.parametrize(
    "answer", [{"token": "t", "expiresIn": "soon"}, {"token": "t", "expiresAt": "later"}]
)
def test_an_unreadable_expiry_is_malformed(principal: Principal, answer: dict[str, Any]) -> None:
    issuer = ToucanMinter(base_url="http://127.0.0.1:9", api_key=Secret(API_KEY), ttl=300)
    with pytest.raises(IssuerError) as caught:
        issuer.read_token(answer, request_for(principal, NOW))
    assert caught.value.code == "provider_malformed"


def test_an_already_expired_token_is_refused_by_the_service(
    toucan: tuple[FakeToucan, str], principal: Principal
) -> None:
    fake, url = toucan
    fake.plan(Plan(body={"token": "t", "expiresIn": 5}))
    with pytest.raises(IssuerError) as caught:
        engine(settings(url)).token_for(principal, "s")
    assert caught.value.code == "short_lived"


# -- settings -------------------------------------------------------------------------------


def test_unknown_toucan_settings_are_refused_by_full_name() -> None:
    with pytest.raises(ConfigurationError) as caught:
        engine(settings("http://127.0.0.1:9", toucan_rolez='{"a": "b"}'))
    assert caught.value.setting == "EMBEDGATE_TOUCAN_ROLEZ"


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"toucan_retries": "many"}, "EMBEDGATE_TOUCAN_RETRIES"),
        ({"toucan_read_timeout": "0"}, "EMBEDGATE_TOUCAN_READ_TIMEOUT"),
        ({"toucan_roles": '["viewer"]'}, "EMBEDGATE_TOUCAN_ROLES"),
        ({"toucan_token_path": "embed/generate-token"}, "EMBEDGATE_TOUCAN_TOKEN_PATH"),
        ({"provider_url": "ftp://toucan.example"}, "EMBEDGATE_PROVIDER_URL"),
    ],
)
def test_bad_settings_name_the_setting(extra: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        engine(settings("http://127.0.0.1:9", **extra))
    assert caught.value.setting == setting


def test_the_api_key_is_required_and_never_shown() -> None:
    mapping = settings("http://127.0.0.1:9")
    del mapping["EMBEDGATE_API_KEY"]
    with pytest.raises(ConfigurationError) as caught:
        engine(mapping)
    assert caught.value.setting == "EMBEDGATE_API_KEY"
    eng = engine(settings("http://127.0.0.1:9"))
    assert API_KEY not in repr(eng) + repr(eng.service) + repr(eng.profile)


def test_production_requires_https() -> None:
    with pytest.raises(ConfigurationError) as caught:
        engine(settings("http://toucan.example.com", env="production"))
    assert caught.value.setting == "EMBEDGATE_PROVIDER_URL"


def test_sandbox_mode_mints_for_anonymous_visitors_but_never_in_production(
    toucan: tuple[FakeToucan, str],
) -> None:
    fake, url = toucan
    token = engine(settings(url, mode="api_key")).token_for(None, "s")
    assert token is not None
    assert fake.seen[0].body["user"]["distinctId"] == "sandbox-developer"
    with pytest.raises(ProductionRefusedError):
        engine(settings(url.replace("http:", "https:"), mode="api_key", env="production"))


# -- single flight and the stale fallback ----------------------------------------------------


def test_concurrent_threads_refreshing_one_session_make_one_upstream_call(
    toucan: tuple[FakeToucan, str], principal: Principal
) -> None:
    fake, url = toucan
    fake.delay = 0.5
    eng = engine(settings(url))
    results: list[EmbedToken] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        token = eng.service.get_token(principal, "one-session")
        results.append(token)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(results) == 16
    assert fake.calls == 1
    assert len({token.token for token in results}) == 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_concurrent_tasks_refreshing_one_session_make_one_upstream_call(
    toucan: tuple[FakeToucan, str], principal: Principal, backend: str
) -> None:
    fake, url = toucan
    fake.delay = 0.5
    eng = engine(settings(url))
    results: list[str] = []

    async def one() -> None:
        results.append((await eng.service.aget_token(principal, "one-session")).token)

    async def scenario() -> None:
        async with anyio.create_task_group() as tasks:
            for _ in range(200):
                tasks.start_soon(one)

    anyio.run(scenario, backend=backend)
    assert len(results) == 200
    assert fake.calls == 1
    assert len(set(results)) == 1


def test_concurrent_refreshes_of_a_due_token_make_one_upstream_call(
    toucan: tuple[FakeToucan, str], principal: Principal, clock: ManualClock
) -> None:
    fake, url = toucan
    eng = engine(settings(url), clock)
    first = eng.service.get_token(principal, "one-session")
    clock.set(first.refresh_at + 1)  # due for refresh: the next calls go upstream
    fake.delay = 0.5
    results: list[EmbedToken] = []
    barrier = threading.Barrier(12)

    def worker() -> None:
        barrier.wait()
        results.append(eng.service.get_token(principal, "one-session"))

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    # Every caller got the still-valid token at once; one refresh ran beside them.
    assert {token.token for token in results} == {first.token}
    assert eng.service.wait_idle()
    assert fake.calls == 2  # the first mint and exactly one refresh
    assert eng.service.get_token(principal, "one-session").token == "tc_2_ada"


def test_a_cached_token_is_served_while_toucan_is_down(
    toucan: tuple[FakeToucan, str], principal: Principal, clock: ManualClock
) -> None:
    fake, url = toucan
    eng = engine(settings(url), clock)
    first = eng.token_for(principal, "s")
    assert first is not None
    clock.set(first.refresh_at + 1)  # due for refresh, still valid
    fake.plan(*(Plan(status=503, body={}, headers={"retry-after": "9"}) for _ in range(2)))
    assert eng.token_for(principal, "s") == first
    assert eng.service.wait_idle()
    served = eng.token_for(principal, "s")
    assert served is not None
    assert served.token == first.token
    assert served.refresh_at == clock.now() + 9  # the provider's Retry-After is the window
    # The first mint, then one try: no retry of an answered call, the window waits instead.
    assert fake.calls == 2
    clock.set(first.expires_at - 1)  # now too close to expiry to serve
    fake.plan(*(Plan(status=503, body={}) for _ in range(2)))
    with pytest.raises(IssuerError) as caught:
        eng.token_for(principal, "s")
    assert (caught.value.code, caught.value.status) == ("provider_unavailable", 503)


# -- markup ---------------------------------------------------------------------------------


def test_dashboard_snippet_is_a_tc_dashboard_with_the_token_attribute(
    toucan: tuple[FakeToucan, str], principal: Principal
) -> None:
    _, url = toucan
    eng = engine(settings(url))
    token = eng.token_for(principal, "s", eng.profile.resource_for("dashboard", "dash-42"))
    assert token is not None
    markup = eng.profile.snippet("dashboard", "dash-42", token, {"nonce": "n0nce", "theme": "dark"})
    (script_tag, script), (tag, attrs) = elements(markup)
    assert (script_tag, script) == (
        "script",
        {"type": "module", "src": f"{url}/embed/embed.js", "nonce": "n0nce"},
    )
    assert tag == "tc-dashboard"
    assert attrs["dashboard-id"] == "dash-42"
    assert attrs["auth-token"] == token.token
    assert attrs["server-url"] == f"{url}/api"
    assert attrs["data-theme"] == "dark"
    assert attrs["data-embedgate-token"] == "auth-token"


def test_assistant_snippet_and_bad_kinds(
    toucan: tuple[FakeToucan, str], principal: Principal
) -> None:
    _, url = toucan
    eng = engine(settings(url, toucan_script_url="https://cdn.example.com/tc.js"))
    token = EmbedToken(token="tc_x", expires_at=NOW + 60, issued_at=NOW, subject="ada")
    markup = eng.profile.snippet("assistant", None, token, {"script": "false", "id": "helper"})
    assert elements(markup) == [
        (
            "tc-ai-assistant",
            {
                "auth-token": "tc_x",
                "server-url": f"{url}/api",
                "data-embedgate-token": "auth-token",
                "id": "helper",
            },
        )
    ]
    with pytest.raises(ConfigurationError):
        eng.profile.snippet("chart", "x", token, {})
    with pytest.raises(ConfigurationError):
        eng.profile.snippet("dashboard", "x", token, {"colour": "red"})
    with pytest.raises(ConfigurationError):
        eng.profile.snippet("dashboard", None, token, {})


def test_a_minter_built_directly_honours_its_policy(
    toucan: tuple[FakeToucan, str], principal: Principal
) -> None:
    fake, url = toucan
    issuer = ToucanMinter(
        base_url=url, api_key=Secret(API_KEY), ttl=300, policy=FAST, roles={"analyst": "explorer"}
    )
    assert issuer.issue(request_for(principal, time.time())).subject == "ada"
    assert fake.seen[0].body["user"]["role"] == "explorer"
