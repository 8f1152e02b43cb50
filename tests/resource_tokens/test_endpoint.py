"""POST /_embedgate/token with {"resource": ...}, through the ASGI and WSGI shells: a
resource the session's page embedded is refreshed (with its iframe URL for Metabase static
embedding and Looker), any other is 403, a bad body is 400/413/415, and the session's own
token is unaffected."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import jwt
import pytest

from embedgate import Engine, ManualClock
from tests.middleware.drivers import Result
from tests.middleware.shells import SAME_ORIGIN, SHELLS, Shell
from tests.resource_tokens.conftest import (
    METABASE_SECRET,
    METABASE_SITE,
    build,
    cache_size,
    generic_settings,
    looker_settings,
    metabase_settings,
    principal_of,
)

ALICE = {"sub": "alice"}

PATH = "/_embedgate/token"
DASHBOARD = "dashboard:42"
PAYLOAD_KEYS = {"token", "expires_at", "expires_in", "refresh_in", "server_time"}


@pytest.fixture(params=SHELLS, ids=lambda s: s.kind)
def shell(request: pytest.FixtureRequest) -> Shell:
    chosen: Shell = request.param
    return chosen


def _asgi_session(scope: Any) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-test-session":
            return str(value.decode())
    return None


def _wsgi_session(environ: Any) -> str | None:
    value = environ.get("HTTP_X_TEST_SESSION")
    return str(value) if value else None


def wrap(shell: Shell, engine: Engine) -> Any:
    """The shell's middleware; the session is the X-Test-Session header (the app's own)."""
    resolver = _asgi_session if shell.kind == "asgi" else _wsgi_session
    return shell.wrap(engine, session_resolver=resolver)


def ask(
    shell: Shell,
    app: Any,
    body: bytes | dict[str, Any] | None,
    *,
    user: str | None = "alice",
    session: str = "s1",
    content_type: str | None = "application/json",
    headers: tuple[tuple[str, str], ...] = SAME_ORIGIN,
) -> Result:
    """POST the endpoint as embedgate.js does, with a body read by the shell itself."""
    raw = json.dumps(body).encode() if isinstance(body, dict) else body or b""
    pairs = [*headers, ("X-Test-Session", session)]
    if raw:
        pairs.append(("Content-Length", str(len(raw))))
        if content_type:
            pairs.append(("Content-Type", content_type))
    if shell.kind == "asgi":
        return shell.call(app, "POST", PATH, pairs, user=user, body=raw)
    return shell.call(app, "POST", PATH, pairs, user=user, extra={"wsgi.input": io.BytesIO(raw)})


def grant(engine: Engine, resource: str = DASHBOARD, session: str = "s1") -> Any:
    """What a page rendering embed_snippet for ``resource`` does: get its token (for the
    user the shells see: X-Test-User alice)."""
    return engine.service.get_token(principal_of(engine, ALICE), session, resource)


def error(result: Result, status: int, code: str) -> dict[str, Any]:
    assert result.status == status, result.body
    assert result.header("content-type") == "application/json"
    assert result.header("cache-control") == "private, no-store"
    data: dict[str, Any] = result.json()
    assert data["error"] == code
    assert "token" not in data
    return data


# -- granted -----------------------------------------------------------------------------------


def test_a_granted_metabase_dashboard_is_answered_with_its_token_and_iframe_url(
    shell: Shell,
) -> None:
    engine = build(metabase_settings())
    page_token = grant(engine)
    result = ask(shell, wrap(shell, engine), {"resource": DASHBOARD})
    assert result.status == 200, result.body
    data = result.json()
    assert set(data) == PAYLOAD_KEYS | {"url", "resource"}
    assert data["resource"] == DASHBOARD
    assert data["token"] == page_token.token  # a cache hit: nothing minted for the start-up call
    assert data["url"] == (
        f"{METABASE_SITE}/embed/dashboard/{data['token']}#bordered=true&titled=true"
    )
    claims = jwt.decode(data["token"], METABASE_SECRET, algorithms=["HS256"], audience="embedgate")
    assert claims["resource"] == {"dashboard": 42}
    assert 0 < data["refresh_in"] < data["expires_in"] <= 300
    assert result.header("set-cookie") is None  # the app's session, no cookie of embedgate's


def test_once_due_a_granted_resource_gets_a_new_token(shell: Shell, clock: ManualClock) -> None:
    engine = build(metabase_settings(), clock)
    app = wrap(shell, engine)
    first = grant(engine)
    clock.advance(first.refresh_at - clock.now() + 1)
    # Served at once, the refresh runs beside the request; the next ask gets its result.
    assert ask(shell, app, {"resource": DASHBOARD}).json()["token"] == first.token
    assert engine.service.wait_idle()
    data = ask(shell, app, {"resource": DASHBOARD}).json()
    assert data["token"] != first.token
    assert data["expires_at"] > first.expires_at
    assert data["url"].startswith(f"{METABASE_SITE}/embed/dashboard/{data['token']}#")
    # ... and the grant carries on with the new token, past the first one's deadline.
    clock.advance(first.expires_at - clock.now())
    assert ask(shell, app, {"resource": DASHBOARD}).json()["token"] == data["token"]


def test_looker_one_time_urls_are_refreshed_through_their_grant(shell: Shell) -> None:
    engine = build(looker_settings())
    page_url = grant(engine).url
    app = wrap(shell, engine)
    first = ask(shell, app, {"resource": DASHBOARD})
    second = ask(shell, app, {"resource": DASHBOARD})
    urls = [first.json()["url"], second.json()["url"]]
    assert len({page_url, *urls}) == 3  # each answer a new one-time URL, never a cached one
    assert all(u.startswith("https://looker.example.com/login/embed/") for u in urls)
    error(ask(shell, app, {"resource": "dashboard:43"}), 403, "resource_not_granted")


# -- refused -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "session", "user"),
    [
        ("dashboard:43", "s1", "alice"),  # a dashboard the page did not embed
        ("question:42", "s1", "alice"),
        (DASHBOARD, "s2", "alice"),  # another session of the same user
        (DASHBOARD, "s1", "bob"),  # another user (on a session id he got hold of)
    ],
)
def test_a_resource_the_session_does_not_hold_is_403_and_mints_nothing(
    shell: Shell, resource: str, session: str, user: str
) -> None:
    engine = build(metabase_settings())
    grant(engine)
    app = wrap(shell, engine)
    data = error(
        ask(shell, app, {"resource": resource}, session=session, user=user),
        403,
        "resource_not_granted",
    )
    assert resource not in data["message"]
    bob = engine.principal_for({"sub": user})
    assert bob is not None
    assert not engine.service.holds(bob, session, resource)  # still not: nothing was minted


def test_a_new_session_holds_nothing_and_gets_its_cookie_with_the_403(shell: Shell) -> None:
    engine = build(metabase_settings())
    grant(engine)
    app = shell.wrap(engine)  # embedgate's own cookie session
    raw = json.dumps({"resource": DASHBOARD})
    pairs = [*SAME_ORIGIN, ("Content-Type", "application/json"), ("Content-Length", str(len(raw)))]
    if shell.kind == "asgi":
        result = shell.call(app, "POST", PATH, pairs, user="alice", body=raw.encode())
    else:
        extra = {"wsgi.input": io.BytesIO(raw.encode())}
        result = shell.call(app, "POST", PATH, pairs, user="alice", extra=extra)
    error(result, 403, "resource_not_granted")
    assert (result.header("set-cookie") or "").startswith("embedgate_session=")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_request"),
        (b'["dashboard:42"]', "application/json", 400, "invalid_request"),
        (b'{"resource": ""}', "application/json", 400, "invalid_request"),
        (b'{"resource": "dashboard:42"}', "text/plain", 415, "unsupported_media_type"),
        (b'{"resource": "' + b"d" * 2000 + b'"}', "application/json", 413, "body_too_large"),
    ],
)
def test_a_bad_body_is_refused_before_anything_is_looked_up(
    shell: Shell, body: bytes, content_type: str, status: int, code: str
) -> None:
    engine = build(metabase_settings())
    grant(engine)
    error(ask(shell, wrap(shell, engine), body, content_type=content_type), status, code)


def test_the_usual_checks_come_first_and_anonymous_is_401(shell: Shell) -> None:
    engine = build(metabase_settings())
    grant(engine)
    app = wrap(shell, engine)
    cross = (("X-Embedgate", "1"), ("Sec-Fetch-Site", "cross-site"))
    error(ask(shell, app, b"{not json", headers=cross), 403, "cross_origin")
    error(ask(shell, app, {"resource": DASHBOARD}, headers=()), 403, "missing_header")
    error(ask(shell, app, {"resource": DASHBOARD}, user=None), 401, "unauthenticated")


# -- the session token -------------------------------------------------------------------------


def test_the_session_token_is_unaffected_by_resource_requests(shell: Shell) -> None:
    engine = build(generic_settings())
    app = wrap(shell, engine)
    session = ask(shell, app, None).json()
    assert set(session) == PAYLOAD_KEYS  # no "resource", no "url"
    error(ask(shell, app, {"resource": "report:1"}), 403, "resource_not_granted")
    resource_token = grant(engine, "report:1").token
    answer = ask(shell, app, {"resource": "report:1"}).json()
    assert answer["token"] == resource_token != session["token"]
    assert answer["resource"] == "report:1"
    again = ask(shell, app, None).json()
    assert again["token"] == session["token"]  # the session's token, still the cached one
    assert "resource" not in again


@pytest.mark.parametrize("settings", [metabase_settings(), looker_settings()])
def test_a_provider_without_session_tokens_answers_404_and_mints_nothing(
    shell: Shell, settings: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    engine = build(settings)  # every token names its dashboard
    grant(engine)
    app = wrap(shell, engine)
    cached = cache_size(engine)
    caplog.clear()  # the grant's own mint is audited; only the 404 answer is under test
    with caplog.at_level(logging.DEBUG, logger="embedgate"):
        result = ask(shell, app, None)
    data = error(result, 404, "no_session_token")
    assert "resource" in data["message"]
    assert result.header("set-cookie") is None  # answered before any session is looked up
    assert cache_size(engine) == cached
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]  # no retry helps
    assert ask(shell, app, {"resource": DASHBOARD}).status == 200
