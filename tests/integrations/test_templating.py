"""The framework-neutral template helpers (embedgate.web.templating) on a real engine."""

from __future__ import annotations

import logging
import time

import pytest

from embedgate import Engine, Principal
from embedgate.web.gate import WebGate
from embedgate.web.headers import Headers
from embedgate.web.templating import PageHelpers, page_injector, snippet_options
from embedgate.web.values import SessionDecision, WebRequest
from tests.integrations.helpers import blocks, claims, iframe_token
from tests.support.net import free_port

ALICE = Principal(subject="alice", tenant="acme", attributes={"region": "EU"})
API_KEY = "tc-live-do-not-log-4f1c9e2a"
URL = "/embedded#token={token}"


def request(cookie: str | None = None) -> WebRequest:
    headers = Headers([(b"host", b"app.example")])
    if cookie:
        headers.add(b"cookie", cookie)
    return WebRequest("GET", "/", "https", "app.example", headers)


def helpers(
    principal: Principal | None = ALICE, engine: Engine | None = None, nonce: str | None = None
) -> PageHelpers:
    gate = WebGate(engine or Engine.from_settings())
    return PageHelpers(gate, request(), principal=lambda: principal, nonce=lambda: nonce)


def unreachable_toucan() -> Engine:
    """A remote provider nobody answers for: every mint fails with an IssuerError."""
    return Engine.from_settings(
        {"EMBEDGATE_TOUCAN_RETRIES": "0", "EMBEDGATE_TOUCAN_CONNECT_TIMEOUT": "0.5"},
        provider="toucan",
        provider_url=f"http://127.0.0.1:{free_port()}",
        api_key=API_KEY,
    )


def test_anonymous_visitors_get_empty_strings_and_a_debug_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    page = helpers(principal=None)
    with caplog.at_level(logging.DEBUG, logger="embedgate"):
        rendered = (page.embed_token(), page.embed_snippet("iframe", url=URL), page.embed_script())
    assert rendered == ("", "", "")
    assert page.page_snippet(Headers()) is None
    assert page.page_headers(Headers(), 10, injected=False) is None
    assert "nobody is logged in" in caplog.text
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


def test_embed_token_is_the_users_token_and_the_session_is_looked_up_once() -> None:
    calls = []
    gate = WebGate(Engine.from_settings())

    def session() -> SessionDecision:
        calls.append(1)
        return gate.session(request())

    page = PageHelpers(gate, request(), principal=lambda: ALICE, session=session)
    token = page.embed_token()
    assert claims(token)["sub"] == "alice"
    assert claims(token)["attributes"] == {"region": "EU"}
    assert page.embed_token() == token
    assert page.page_snippet(Headers()) is not None
    assert len(calls) == 1


def test_embed_snippet_renders_the_profiles_markup_with_the_sessions_token() -> None:
    page = helpers()
    html = page.embed_snippet("iframe", "sales", url=URL, title='Q3 "sales" <b>', height=320)
    assert 'data-embedgate-token="src"' in html
    assert 'title="Q3 &quot;sales&quot; &lt;b&gt;"' in html  # the profile escaped it
    assert 'height="320"' in html
    assert page.carries_token
    # The profile asks for the session's one token (resource_for -> None): the one the
    # browser script refreshes, so the frame is not reloaded when the script starts.
    assert iframe_token(html) == page.embed_token()


@pytest.mark.parametrize(
    ("kind", "options", "logged"),
    [
        ("chart", {"url": URL}, "unknown kind 'chart'"),
        ("iframe", {"url": URL, "onload": "x"}, "option 'onload'"),
        ("iframe", {"url": "javascript:alert(1)#{token}"}, "option 'url'"),
    ],
)
def test_template_mistakes_render_nothing_and_are_logged(
    kind: str, options: dict[str, str], logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    page = helpers()
    with caplog.at_level(logging.ERROR, logger="embedgate"):
        assert page.embed_snippet(kind, "sales", **options) == ""
    assert logged in caplog.text
    assert not page.carries_token


def test_embed_script_renders_the_data_block_and_the_loader_with_the_nonce_once() -> None:
    page = helpers(nonce="r4nd0m")
    html = page.embed_script()
    (block,) = blocks(html)
    assert claims(block["token"])["sub"] == "alice"
    assert block["endpoint"] == "/_embedgate/token"
    # The same data the middleware injects: the browser corrects its clock with server_time.
    assert abs(block["server_time"] - time.time()) < 5
    assert 1 <= block["refresh_in"] < block["expires_at"] - block["server_time"]
    assert 'nonce="r4nd0m"' in html
    assert 'src="/_embedgate/embedgate.js?v=' in html
    assert page.embed_script() == ""  # one block per page


def test_page_headers_mark_the_page_private_and_set_a_new_session_cookie_once() -> None:
    page = helpers()
    page.embed_token()
    original = Headers([(b"content-type", b"text/html"), (b"etag", b'"x"'), (b"vary", b"Accept")])
    first = page.page_headers(original, 42, injected=False)
    assert first is not None
    assert first.get(b"cache-control") == b"private, no-store"
    assert first.get(b"vary") == b"Accept, Cookie"
    assert first.get(b"content-length") == b"42"
    assert b"etag" not in first
    (cookie,) = first.get_all(b"set-cookie")
    assert page.decision is not None
    assert cookie.startswith(f"embedgate_session={page.decision.session_id};".encode())
    again = page.page_headers(original, 42, injected=True)
    assert again is not None
    assert again.get_all(b"set-cookie") == []


def test_an_existing_session_cookie_is_reused_and_not_set_again() -> None:
    gate = WebGate(Engine.from_settings())
    sid = gate.session_ids.issue()  # only ids embedgate issued are reused
    page = PageHelpers(gate, request(f"embedgate_session={sid}"), principal=lambda: ALICE)
    page.embed_token()
    assert page.decision is not None
    assert page.decision.session_id == sid
    headers = page.page_headers(Headers(), 1, injected=False)
    assert headers is not None
    assert headers.get_all(b"set-cookie") == []


def test_a_failing_provider_never_raises_into_the_page_and_logs_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    page = helpers(engine=unreachable_toucan())
    with caplog.at_level(logging.DEBUG, logger="embedgate"):
        assert page.embed_token() == ""
        assert page.embed_snippet("dashboard", "d-1") == ""
        script = page.embed_script()
        snippet = page.page_snippet(Headers())
    # One line for the page, not one per helper; and one warning, the provider's change of
    # state (a page per request must not log a warning each).
    assert len([r for r in caplog.records if "rendered" in r.getMessage()]) == 1
    # The block is null: the browser script fetches a token once the provider is back.
    assert blocks(script) == [None]
    assert snippet is not None
    assert blocks(snippet) == [None]
    assert "the provider failed" in caplog.text
    assert API_KEY not in caplog.text
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_a_principal_refused_by_the_policy_gets_nothing(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine.from_settings(required_attributes="tenant")
    page = helpers(principal=Principal(subject="nobody"), engine=engine)
    with caplog.at_level(logging.WARNING, logger="embedgate"):
        assert page.embed_token() == ""
        assert page.embed_script() == ""
        assert page.page_snippet(Headers()) is None
    assert "principal refused (tenant)" in caplog.text


def test_snippet_options_are_strings_and_carry_the_nonce() -> None:
    options = snippet_options({"height": 320, "ratio": 1.5, "bordered": True, "id": "d"}, "n1")
    assert options == {
        "height": "320",
        "ratio": "1.5",
        "bordered": "true",
        "id": "d",
        "nonce": "n1",
    }
    assert snippet_options({"nonce": "mine"}, "n1") == {"nonce": "mine"}


@pytest.mark.parametrize(
    ("content_type", "body", "wanted"),
    [
        (b"text/html", b"<html><head></head><body></body></html>", True),
        (b"application/json", b"{}", False),
        (b"text/html", b'<head><script id="embedgate-token"></script></head>', False),
        (b"text/html", b"no insertion point", False),
        (b"text/html", b"<head></head>" + b"x" * 2_000_000, False),  # over the buffer limit
    ],
)
def test_page_injector_wants_only_html_pages_it_can_and_should_inject(
    content_type: bytes, body: bytes, wanted: bool
) -> None:
    gate = WebGate(Engine.from_settings())
    read = []

    def body_source() -> bytes:
        read.append(1)
        return body

    headers = Headers([(b"content-type", content_type)])
    injector = page_injector(gate, "GET", 200, headers, body_source)
    assert (injector is not None) is wanted
    assert read == ([] if content_type == b"application/json" else [1])
