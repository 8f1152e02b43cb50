"""The session a token is cached under. embedgate's own cookie, set
on the first response that needs it, or the app's session through a resolver; a user never
receives a token minted for someone else in the same browser."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.middleware.cases import make_engine
from tests.middleware.checks import claims_of, find_snippets
from tests.middleware.drivers import Result
from tests.middleware.shells import SAME_ORIGIN, Shell, cookie_value

PAGE = "/case/html-head"


def page_token(result: Result) -> str:
    (snippet,) = find_snippets(result.body)
    assert snippet.payload is not None
    token: str = snippet.payload["token"]
    return token


def attributes(set_cookie: str) -> dict[str, str]:
    parts = [p.strip() for p in set_cookie.split(";")[1:]]
    return {k.lower(): v for k, _, v in (p.partition("=") for p in parts)}


def test_the_cookie_is_random_httponly_lax_and_lives_for_the_browser_session(shell: Shell) -> None:
    app = shell.wrap(make_engine())
    values = set()
    for _ in range(20):
        result = shell.call(app, "GET", PAGE, user="alice")
        (cookie,) = result.all("set-cookie")
        assert attributes(cookie) == {"path": "/", "httponly": "", "samesite": "Lax"}
        value = cookie_value(result)
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        assert len(raw) * 8 >= 128
        values.add(value)
    assert len(values) == 20


def test_the_cookie_is_secure_on_https(shell: Shell) -> None:
    result = shell.call(shell.wrap(make_engine()), "GET", PAGE, user="alice", scheme="https")
    (cookie,) = result.all("set-cookie")
    assert "secure" in attributes(cookie)


def test_the_cookie_name_is_a_setting(shell: Shell) -> None:
    app = shell.wrap(make_engine(cookie_name="analytics_sid"))
    first = shell.call(app, "GET", PAGE, user="alice")
    sid = cookie_value(first, "analytics_sid")
    again = shell.call(
        app, "GET", PAGE, [("Cookie", f"other=1; analytics_sid={sid}")], user="alice"
    )
    assert "set-cookie" not in again.names()
    assert page_token(again) == page_token(first)


def test_the_cookie_is_set_only_by_responses_that_need_it(shell: Shell) -> None:
    app = shell.wrap(make_engine())
    for target, user in (("/case/json", "alice"), ("/case/gzip", "alice"), (PAGE, None)):
        assert "set-cookie" not in shell.call(app, "GET", target, user=user).names()
    assert "set-cookie" not in shell.call(app, "GET", "/_embedgate/embedgate.js").names()
    assert "set-cookie" not in shell.token(app, user=None).names()  # 401


def test_one_session_one_token_across_pages_and_the_endpoint(shell: Shell) -> None:
    app = shell.wrap(make_engine())
    first = shell.call(app, "GET", PAGE, user="alice")
    cookie = ("Cookie", f"embedgate_session={cookie_value(first)}")
    second = shell.call(app, "GET", PAGE, [cookie], user="alice")
    assert "set-cookie" not in second.names()
    assert page_token(second) == page_token(first)
    endpoint = shell.token(app, headers=[cookie, *SAME_ORIGIN], user="alice")
    assert endpoint.json()["token"] == page_token(first)
    assert "set-cookie" not in endpoint.names()
    other = shell.call(app, "GET", PAGE, user="alice")  # another browser
    assert page_token(other) != page_token(first)


@pytest.mark.parametrize("junk", ["short", "a" * 200, "bad$chars" * 5, ""])
def test_a_malformed_cookie_starts_a_new_session(shell: Shell, junk: str) -> None:
    result = shell.call(
        shell.wrap(make_engine()), "GET", PAGE, [("Cookie", f"embedgate_session={junk}")], user="a"
    )
    assert cookie_value(result) != junk


def test_another_user_in_the_same_browser_session_never_gets_the_previous_token(
    shell: Shell,
) -> None:
    engine = make_engine()
    app = shell.wrap(engine)
    alice = shell.call(app, "GET", PAGE, user="alice")
    cookie = ("Cookie", f"embedgate_session={cookie_value(alice)}")
    # Alice logs out of the app, Bob logs in; the browser keeps embedgate's cookie.
    bob_page = shell.call(app, "GET", PAGE, [cookie], user="bob")
    bob_endpoint = shell.token(app, headers=[cookie, *SAME_ORIGIN], user="bob")
    for token in (page_token(bob_page), bob_endpoint.json()["token"]):
        assert token != page_token(alice)
        assert claims_of(engine, token)["sub"] == "bob"


def test_the_app_session_resolver_replaces_the_cookie(shell: Shell) -> None:
    def app_session(request: Any) -> str | None:
        if shell.kind == "asgi":
            headers = dict(request["headers"])
            value = headers.get(b"x-app-session")
            return value.decode() if value else None
        return request.get("HTTP_X_APP_SESSION")  # type: ignore[no-any-return]

    app = shell.wrap(make_engine(), session_resolver=app_session)
    one = shell.call(app, "GET", PAGE, [("X-App-Session", "app-session-1")], user="alice")
    assert "set-cookie" not in one.names()
    again = shell.call(app, "GET", PAGE, [("X-App-Session", "app-session-1")], user="alice")
    other = shell.call(app, "GET", PAGE, [("X-App-Session", "app-session-2")], user="alice")
    assert page_token(again) == page_token(one) != page_token(other)
    # Without an app session (not logged in to the app yet), embedgate's cookie steps in.
    assert cookie_value(shell.call(app, "GET", PAGE, user="alice"))


def test_a_mounted_app_scopes_the_cookie_and_the_endpoint_to_its_root(shell: Shell) -> None:
    app = shell.wrap(make_engine())
    if shell.kind == "asgi":
        result = shell.call(app, "GET", PAGE, user="alice", root_path="/reports")
    else:
        result = shell.call(app, "GET", PAGE, user="alice", script_name="/reports")
    assert attributes(result.all("set-cookie")[0])["path"] == "/reports"
    (snippet,) = find_snippets(result.body)
    assert snippet.payload is not None
    assert snippet.payload["endpoint"] == "/reports/_embedgate/token"
    assert snippet.attrs["src"].startswith("/reports/_embedgate/embedgate.js?v=")
