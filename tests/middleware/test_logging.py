"""Over a full flow through each shell, the logs carry the jti, a
hash of the subject and the expiry of each token, and never a token, the secret, a session
id or a cookie."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from embedgate.canonical import short_hash
from embedgate.web.headers import Headers
from embedgate.web.values import SessionDecision, WebResponse
from tests.conftest import TEST_SECRET
from tests.middleware.cases import make_engine
from tests.middleware.checks import claims_of, find_snippets
from tests.middleware.shells import SAME_ORIGIN, Shell, cookie_value
from tests.middleware.test_endpoint import FailingSigner


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as any handler could render it: message, arguments, traceback."""
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        parts.append(repr(record.__dict__))
    return "\n".join(parts)


def test_a_full_flow_logs_token_facts_and_no_credential(
    shell: Shell, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    engine = make_engine(rate_limit=3)
    app = shell.wrap(engine)
    secrets: list[str] = [TEST_SECRET]
    tokens: list[str] = []

    # A page for a new session, then the endpoint under that session.
    page = shell.call(app, "GET", "/case/html-head", user="alice")
    session_id = cookie_value(page)
    secrets.append(session_id)
    (snippet,) = find_snippets(page.body)
    assert snippet.payload is not None
    tokens.append(snippet.payload["token"])
    cookie = ("Cookie", f"embedgate_session={session_id}")
    responses = [shell.token(app, headers=[cookie, *SAME_ORIGIN], user="alice") for _ in range(2)]
    # Another user in that browser session, then past the rate limit.
    bob = shell.token(app, headers=[cookie, *SAME_ORIGIN], user="bob")
    tokens.append(bob.json()["token"])
    responses.append(shell.token(app, headers=[cookie, *SAME_ORIGIN], user="bob"))
    assert [r.status for r in responses] == [200, 200, 429]
    # An anonymous call, a cross-site one.
    assert shell.token(app, user=None).status == 401
    assert shell.token(app, headers=[("X-Embedgate", "1"), ("Origin", "http://evil")]).status == 403

    # The provider goes down: the endpoint answers 503, pages go out with no token.
    signer: Any = engine.service.issuer
    engine.service.issuer = FailingSigner(signer.keys, issuer=signer.issuer, audience="x")
    down = shell.token(app, user="carol")
    assert down.status == 503
    secrets.append(cookie_value(down))
    page_down = shell.call(app, "GET", "/case/html-head", user="carol")
    assert page_down.status == 200
    secrets.append(cookie_value(page_down))

    logged = everything_logged(caplog)
    for value in tokens + secrets:
        assert value not in logged
    for token in tokens:
        claims = claims_of(engine, token)
        for part in (claims["jti"], short_hash(claims["sub"]), str(claims["exp"])):
            assert part in logged
        assert claims["sub"] not in logged  # the subject itself stays out too
    assert "upstream_unavailable" in logged  # failures say why, without the secrets


def test_the_web_values_never_show_credentials_in_their_repr(shell: Shell) -> None:
    engine = make_engine()
    app = shell.wrap(engine)
    answer = shell.token(app)
    token, session_id = answer.json()["token"], cookie_value(answer)
    decision = SessionDecision(session_id, f"embedgate_session={session_id}".encode())
    response = WebResponse(200, Headers([(b"set-cookie", b"x=" + session_id.encode())]), b"x")
    response.body = answer.body
    for value in (decision, response):
        assert session_id not in repr(value)
        assert token not in repr(value)
