"""Providers whose tokens are all bound to a resource (Metabase static embedding, Looker,
Superset without EMBEDGATE_SUPERSET_DASHBOARDS) have no session token: no page and no
endpoint call mints one, pages say ``"session": false`` to embedgate.js and still carry its
loader (for the resource refreshes), and a session-token request is a 404, not a 500."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import pytest
from flask import Flask, g

from embedgate import ConfigurationError, Engine, Principal, PrincipalError
from embedgate.integrations.flask import EmbedGate
from embedgate.web.gate import WebGate
from embedgate.web.headers import Headers
from embedgate.web.templating import PageHelpers
from embedgate.web.token_block import render_token_block
from embedgate.web.values import SESSION_TOKEN, TokenAsk, WebRequest, WebResponse
from tests.conftest import TEST_SECRET
from tests.middleware.checks import find_snippets
from tests.middleware.shells import SAME_ORIGIN, SHELLS, Shell
from tests.resource_tokens.conftest import (
    build,
    cache_size,
    generic_settings,
    looker_settings,
    metabase_settings,
    principal_of,
)
from tests.support.blocks import without_binding

SUPERSET = "7a1b2c3d-0000-4000-8000-000000000001"
ENDPOINT = "/_embedgate/token"
SESSIONLESS_BLOCK = {"token": None, "session": False, "endpoint": ENDPOINT}


def superset_settings(**extra: str) -> dict[str, str]:
    return {
        "EMBEDGATE_PROVIDER": "superset",
        "EMBEDGATE_PROVIDER_URL": "https://superset.example.com",
        "EMBEDGATE_SUPERSET_MODE": "local",
        "EMBEDGATE_SECRET": TEST_SECRET,
        # What Superset checks by default: no start-up warning about the audience.
        "EMBEDGATE_AUDIENCE": "http://0.0.0.0:8080/",
        **{f"EMBEDGATE_{k.upper()}": v for k, v in extra.items()},
    }


SESSIONLESS = {
    "metabase-static": metabase_settings(),
    "looker": looker_settings(),
    "superset-per-dashboard": superset_settings(),
}
WITH_SESSION = {
    "generic": generic_settings(),
    "metabase-sso": metabase_settings(metabase_mode="sso"),
    "superset-listed": superset_settings(superset_dashboards=SUPERSET),
}


@pytest.fixture(params=SHELLS, ids=lambda s: s.kind)
def shell(request: pytest.FixtureRequest) -> Shell:
    chosen: Shell = request.param
    return chosen


def request(method: str = "POST", headers: Headers | None = None) -> WebRequest:
    return WebRequest(method, ENDPOINT, "https", "app.example", headers or Headers())


def data_block(snippet: str) -> Any:
    """The JSON of the snippet's data block."""
    start = snippet.index('id="embedgate-token">') + len('id="embedgate-token">')
    return without_binding(json.loads(snippet[start : snippet.index("</script>", start)]))


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- the capability ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [*((s, False) for s in SESSIONLESS.values()), *((s, True) for s in WITH_SESSION.values())],
    ids=[*SESSIONLESS, *WITH_SESSION],
)
def test_the_profile_says_whether_the_session_has_a_token(
    settings: dict[str, str], expected: bool
) -> None:
    engine = build(settings)
    assert engine.profile.session_tokens is expected
    assert WebGate(engine).session_tokens is expected
    # It agrees with what the profile asks the service for: a session token serves an embed.
    kind = engine.profile.snippet_kinds[0]
    resource = SUPERSET if engine.config.provider == "superset" else "42"
    assert (engine.profile.resource_for(kind, resource) is None) is expected


def test_the_superset_mount_names_its_dashboard_only_for_a_per_dashboard_token() -> None:
    for settings, named in ((superset_settings(), True), (WITH_SESSION["superset-listed"], False)):
        engine = build(settings)
        wanted = engine.profile.resource_for("dashboard", SUPERSET)
        token = engine.service.get_token(principal_of(engine), "s", wanted)
        markup = engine.profile.snippet("dashboard", SUPERSET, token, {"script": "false"})
        assert (f'data-embedgate-resource="{SUPERSET}"' in markup) is named
        assert token.token not in markup


# -- the gate's rules (sans I/O) ---------------------------------------------------------------


@pytest.mark.parametrize("settings", SESSIONLESS.values(), ids=list(SESSIONLESS))
def test_a_session_token_ask_is_a_404_and_a_resource_ask_goes_on(settings: dict[str, str]) -> None:
    gate = WebGate(build({**settings, "EMBEDGATE_ALLOW_GET": "true"}))
    for method, body in (("POST", b""), ("GET", b"")):
        refused = gate.token_ask(request(method), body)
        assert isinstance(refused, WebResponse)
        assert refused.status == 404
        assert json.loads(refused.body)["error"] == "no_session_token"
        assert refused.headers.get(b"cache-control") == b"private, no-store"
        assert b"set-cookie" not in refused.headers
    json_type = Headers([(b"content-type", b"application/json")])
    asked = gate.token_ask(request(headers=json_type), b'{"resource": "dashboard:42"}')
    assert asked == TokenAsk("dashboard:42")
    # A bad body is still a bad body (400), not a missing session token.
    bad = gate.token_ask(request(headers=json_type), b"[]")
    assert isinstance(bad, WebResponse)
    assert bad.status == 400


def test_a_provider_with_session_tokens_asks_for_it_as_before() -> None:
    gate = WebGate(build(generic_settings()))
    assert gate.token_ask(request(), b"") is SESSION_TOKEN


@pytest.mark.parametrize(("root", "nonce"), [("", None), ("/app", "r4nd0m+/="), ("", 'odd"nonce')])
def test_the_block_of_a_sessionless_page_says_so_and_holds_no_token(
    root: str, nonce: str | None
) -> None:
    engine = build(metabase_settings())
    gate = WebGate(engine)
    endpoint = root + ENDPOINT
    script = gate.script_url(WebRequest("GET", "/", "http", "t", Headers(), root))
    binding = "b" * 22
    allow = {"origins": ["https://metabase.example.com"], "attributes": ["src"], "sdks": []}
    block = {"token": None, "session": False, "endpoint": endpoint}
    expected = render_token_block(
        {**block, "bind": binding, "allow": allow}, script, nonce, endpoint=endpoint
    )
    assert gate.snippet(root, None, nonce, binding=binding) == expected
    # Whatever a caller passes, the block never carries a session token for such a provider.
    stray = engine.service.get_token(principal_of(engine), "s", "dashboard:42")
    assert gate.snippet(root, stray, nonce, binding=binding) == expected
    assert data_block(expected) == {"token": None, "session": False, "endpoint": endpoint}


def test_pages_mint_only_where_the_session_has_a_token() -> None:
    engine = build(metabase_settings())
    alice = principal_of(engine)
    assert WebGate(engine).needs_session_token(alice) is False
    assert WebGate(build(generic_settings())).needs_session_token(alice) is True


def test_a_principal_the_policy_refuses_is_refused_without_a_session_token_too() -> None:
    settings = metabase_settings(required_attributes="region")
    gate = WebGate(build(settings))
    with pytest.raises(PrincipalError) as caught:
        gate.needs_session_token(Principal(subject="alice"))
    assert caught.value.field == "attributes.region"
    assert (
        gate.needs_session_token(Principal(subject="alice", attributes={"region": "EU"})) is False
    )


def test_apis_handing_out_the_session_token_refuse_clearly() -> None:
    with pytest.raises(ConfigurationError) as caught:
        WebGate(build(metabase_settings())).check_session_tokens()
    assert caught.value.setting == "EMBEDGATE_PROVIDER"
    assert "metabase" in str(caught.value)
    WebGate(build(generic_settings())).check_session_tokens()  # no error


# -- the ASGI and WSGI shells ------------------------------------------------------------------


@pytest.mark.parametrize("settings", SESSIONLESS.values(), ids=list(SESSIONLESS))
def test_a_page_carries_the_loader_and_a_sessionless_block_without_any_warning(
    shell: Shell, settings: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    engine = build(settings)
    app = shell.wrap(engine)
    with caplog.at_level(logging.DEBUG, logger="embedgate"):
        page = shell.call(app, "GET", "/case/html-head", user="alice")
    assert page.status == 200
    (snippet,) = find_snippets(page.body)
    assert snippet.payload == SESSIONLESS_BLOCK
    assert snippet.attrs["src"].startswith("/_embedgate/embedgate.js?v=")
    assert snippet.attrs["data-endpoint"] == ENDPOINT
    assert warnings_of(caplog) == []  # no "no token injected, issuance failed"
    assert cache_size(engine) == 0  # nothing minted
    # The page starts the session its resource grants live in.
    assert (page.header("set-cookie") or "").startswith("embedgate_session=")
    assert page.header("cache-control") == "private, no-store"

    result = shell.token(app)
    assert result.status == 404
    assert result.header("content-type") == "application/json"
    assert result.json()["error"] == "no_session_token"
    assert cache_size(engine) == 0
    assert warnings_of(caplog) == []


def test_a_refused_principals_page_is_left_alone_as_with_any_provider(
    shell: Shell, caplog: pytest.LogCaptureFixture
) -> None:
    app = shell.wrap(build(metabase_settings(required_attributes="region")))
    page = shell.call(app, "GET", "/case/html-head", user="alice")
    assert page.status == 200
    assert find_snippets(page.body) == []
    assert "principal refused (attributes.region)" in caplog.text


def test_the_session_token_of_other_providers_is_still_injected(shell: Shell) -> None:
    engine = build(generic_settings())
    page = shell.call(shell.wrap(engine), "GET", "/case/html-head", user="alice")
    (snippet,) = find_snippets(page.body)
    assert snippet.payload is not None
    assert isinstance(snippet.payload["token"], str)
    assert "session" not in snippet.payload
    assert cache_size(engine) == 1


def test_the_endpoint_answers_404_to_a_user_and_401_to_nobody(shell: Shell) -> None:
    app = shell.wrap(build(looker_settings()))
    anonymous = shell.token(app, user=None)  # who asks is checked before what is asked
    assert (anonymous.status, anonymous.json()["error"]) == (401, "unauthenticated")
    refused = shell.token(app, headers=(("X-Embedgate", "1"), ("Sec-Fetch-Site", "cross-site")))
    assert (refused.status, refused.json()["error"]) == (403, "cross_origin")  # checks first
    assert shell.token(app, headers=SAME_ORIGIN).status == 404


# -- the template helpers ----------------------------------------------------------------------


def helpers(settings: dict[str, str], principal: Principal | None) -> PageHelpers:
    gate = WebGate(build(settings))
    web = WebRequest("GET", "/", "https", "app.example", Headers([(b"host", b"app.example")]))
    return PageHelpers(gate, web, principal=lambda: principal, nonce=lambda: "n0nce")


def test_template_helpers_render_no_session_token_quietly_but_keep_the_loader(
    caplog: pytest.LogCaptureFixture,
) -> None:
    page = helpers(metabase_settings(), Principal(subject="alice"))
    with caplog.at_level(logging.DEBUG, logger="embedgate"):
        assert page.embed_token() == ""
        assert not page.carries_token
        script = page.embed_script()
        frame = page.embed_snippet("dashboard", "42")
    assert data_block(script) == SESSIONLESS_BLOCK
    assert '<script src="/_embedgate/embedgate.js?v=' in script
    assert 'nonce="n0nce"' in script
    assert 'data-embedgate-resource="dashboard:42"' in frame  # resource embeds still work
    assert page.embed_script() == ""  # once per page
    assert warnings_of(caplog) == []
    injected = page.page_snippet(Headers())
    assert injected is not None
    assert data_block(injected) == SESSIONLESS_BLOCK
    assert cache_size(page.engine) == 1  # the dashboard's token only


def test_the_async_page_snippet_is_sessionless_too(caplog: pytest.LogCaptureFixture) -> None:
    page = helpers(looker_settings(), Principal(subject="alice"))
    snippet = anyio.run(page.apage_snippet, Headers())
    assert snippet is not None
    assert data_block(snippet) == SESSIONLESS_BLOCK
    assert cache_size(page.engine) == 0
    assert warnings_of(caplog) == []


def test_a_refused_principal_gets_no_loader_from_the_helpers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    page = helpers(metabase_settings(required_attributes="region"), Principal(subject="alice"))
    assert page.embed_script() == ""
    assert page.page_snippet(Headers()) is None
    assert "principal refused (attributes.region)" in caplog.text


def test_flasks_token_api_refuses_the_session_token_it_cannot_have() -> None:
    app = Flask(__name__)
    engine: Engine = build(metabase_settings())
    ext = EmbedGate()
    ext.init_app(app, engine=engine)
    with app.test_request_context("/"):
        g.user = {"sub": "alice"}
        with pytest.raises(ConfigurationError) as caught:
            ext.token()
        assert caught.value.setting == "EMBEDGATE_PROVIDER"
        bound = ext.token("dashboard:42")
        assert bound is not None
        assert bound.url is not None
