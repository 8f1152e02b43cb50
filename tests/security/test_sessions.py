"""The token endpoint's limits, attacked by a client that invents session ids.

Ids are issued by embedgate and carry a MAC: a made-up, altered, truncated or extended id
is replaced by a new session (a new cookie) that counts against the user, so rotating ids
buys nothing. Limits hold per user across sessions, so one user can neither spend another
user's quota nor push other users' tokens out of the in-process cache. Attacked through the
ASGI and WSGI shells and the Flask adapter here, Django over real servers below.
"""

from __future__ import annotations

import functools
import os
import secrets
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask import request as flask_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from embedgate import Engine, Principal
from embedgate.asgi import EmbedgateMiddleware
from embedgate.integrations.flask import EmbedGate
from embedgate.wsgi import EmbedgateWSGIMiddleware
from tests.conftest import TEST_SECRET
from tests.support.net import PYTHON, free_port, run_server

TOKEN = {"X-Embedgate": "1"}
COOKIE = "embedgate_session"
LIMITS = {"rate_limit": 4, "user_rate_limit": 10}
ID_CHARS = string.ascii_letters + string.digits + "-_"

# A driver posts to the token endpoint as ``user`` with the cookie value ``sid`` (or none)
# and returns (status, the session id of the Set-Cookie answered, or None).
Answer = tuple[int, str | None]
Driver = Callable[[str, str | None], Answer]


def _user(name: str | None) -> Principal | None:
    return Principal(subject=name, tenant="acme") if name else None


def _set_cookie(values: list[str]) -> str | None:
    for value in values:
        name, _, rest = value.partition("=")
        if name.strip() == COOKIE:
            return rest.split(";", 1)[0]
    return None


def _headers(user: str, sid: str | None) -> dict[str, str]:
    headers = {**TOKEN, "X-User": user}
    if sid is not None:
        headers["Cookie"] = f"{COOKIE}={sid}"
    return headers


def asgi_driver(**settings: Any) -> Driver:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        raise AssertionError("the endpoint answers before the app")

    def user(scope: Any) -> Principal | None:
        return _user(dict(scope["headers"]).get(b"x-user", b"").decode() or None)

    middleware = EmbedgateMiddleware(app, secret=TEST_SECRET, user_resolver=user, **settings)
    client = httpx.Client(transport=_SyncASGI(middleware), base_url="http://testserver")

    def post(who: str, sid: str | None) -> Answer:
        client.cookies.clear()  # only the cookie the test sends
        response = client.post("/_embedgate/token", headers=_headers(who, sid))
        return response.status_code, _set_cookie(response.headers.get_list("set-cookie"))

    return post


class _SyncASGI(httpx.BaseTransport):
    """httpx's ASGI transport driven from sync code (one event loop per request)."""

    def __init__(self, app: Any) -> None:
        self._transport = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import anyio

        async def run() -> httpx.Response:
            response = await self._transport.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return anyio.run(run)


def wsgi_driver(**settings: Any) -> Driver:
    def app(environ: Any, start_response: Any) -> list[bytes]:  # pragma: no cover
        raise AssertionError("the endpoint answers before the app")

    def user(environ: Any) -> Principal | None:
        return _user(environ.get("HTTP_X_USER"))

    client = Client(
        EmbedgateWSGIMiddleware(app, secret=TEST_SECRET, user_resolver=user, **settings),
        use_cookies=False,
    )

    def post(who: str, sid: str | None) -> Answer:
        response = client.post("/_embedgate/token", headers=_headers(who, sid))
        return response.status_code, _set_cookie(response.headers.getlist("Set-Cookie"))

    return post


def flask_driver(**settings: Any) -> Driver:
    app = Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY="flask-sessions-test")
    ext = EmbedGate(app, secret=TEST_SECRET, **settings)
    ext.user_loader(lambda: _user(flask_request.headers.get("X-User")))
    client = app.test_client(use_cookies=False)

    def post(who: str, sid: str | None) -> Answer:
        response = client.post("/_embedgate/token", headers=_headers(who, sid))
        return response.status_code, _set_cookie(response.headers.getlist("Set-Cookie"))

    return post


DRIVERS = {"asgi": asgi_driver, "wsgi": wsgi_driver, "flask": flask_driver}


@pytest.fixture(params=sorted(DRIVERS))
def make_driver(request: pytest.FixtureRequest) -> Callable[..., Driver]:
    return DRIVERS[request.param]


def invented() -> str:
    return "".join(secrets.choice(ID_CHARS) for _ in range(54))


def test_rotating_invented_ids_is_limited_like_dropping_the_cookie(
    make_driver: Callable[..., Driver],
) -> None:
    post = make_driver(**LIMITS)
    answers = [post("mallory", invented()) for _ in range(12)]
    granted = [a for a in answers if a[0] == 200]
    assert len(granted) == LIMITS["rate_limit"], answers
    assert {status for status, _ in answers} == {200, 429}
    # every invented id was replaced by one embedgate issued
    assert all(cookie is not None for _, cookie in answers)
    # ...which is then accepted as is (no new cookie), within its own limit
    status, cookie = post("bob", None)
    assert status == 200
    assert cookie is not None
    assert post("bob", cookie) == (200, None)


def test_altered_ids_are_never_accepted(make_driver: Callable[..., Driver]) -> None:
    post = make_driver(rate_limit=1000, user_rate_limit=1000)
    _, genuine = post("alice", None)
    assert genuine is not None
    flipped = [
        genuine[:i] + ("A" if genuine[i] != "A" else "B") + genuine[i + 1 :]
        for i in range(0, len(genuine), 5)
    ]
    forged = [*flipped, genuine[:-1], genuine + "A", genuine[:32], genuine[:32] + genuine[:22]]
    for sid in forged:
        status, cookie = post("alice", sid)
        assert status == 200
        assert cookie is not None
        assert cookie != sid, sid


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(ID_CHARS, min_size=32, max_size=128))
def test_no_well_formed_invented_id_is_trusted(sid: str) -> None:
    status, cookie = _shared_wsgi()("eve", sid)
    assert status in (200, 429)
    assert cookie is not None
    assert cookie != sid


@functools.cache
def _shared_wsgi() -> Driver:
    return wsgi_driver(rate_limit=1_000_000, user_rate_limit=1_000_000)


def test_one_user_cannot_spend_another_users_quota(make_driver: Callable[..., Driver]) -> None:
    post = make_driver(**LIMITS)
    sessions = [post("mallory", None)[1] for _ in range(LIMITS["rate_limit"])]
    assert all(sessions)
    spent = [post("mallory", sid)[0] for sid in sessions for _ in range(LIMITS["rate_limit"])]
    # every session still had quota; the user as a whole did not
    assert spent.count(200) == LIMITS["user_rate_limit"] - LIMITS["rate_limit"]
    # another user of the same tenant is untouched
    _, alice = post("alice", None)
    assert [post("alice", alice)[0] for _ in range(3)] == [200, 200, 200]


def test_one_user_cannot_push_other_users_out_of_the_cache() -> None:
    engine = Engine.from_settings(environ={}, secret=TEST_SECRET, cache_size=16, user_sessions=3)
    service = engine.service
    alice = Principal(subject="alice", tenant="acme")
    kept = service.get_token(alice, "alice-session-" + "7" * 20)
    for i in range(200):  # a user opening session after session
        service.get_token(
            Principal(subject="mallory", tenant="acme"), f"mallory-{i:04d}-" + "x" * 20
        )
    again = service.get_token(alice, "alice-session-" + "7" * 20)
    assert again.jti == kept.jti  # still cached: no new mint for alice
    cache = service.cache
    assert len(cache) <= 3 + 1  # type: ignore[arg-type]


# -- Django, over real servers --------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
SITE = "tests.security.django_site"
SERVERS = {
    "wsgi": ["-m", "gunicorn", f"{SITE}.wsgi:application", "--workers", "1", "-b"],
    "asgi": ["-m", "uvicorn", f"{SITE}.asgi:application", "--host", "127.0.0.1", "--port"],
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def django_server(request: pytest.FixtureRequest) -> Iterator[str]:
    env = {
        "DJANGO_SETTINGS_MODULE": f"{SITE}.settings",
        "EMBEDGATE_SECRET": TEST_SECRET,
        "EMBEDGATE_RATE_LIMIT": str(LIMITS["rate_limit"]),
        "EMBEDGATE_USER_RATE_LIMIT": str(LIMITS["user_rate_limit"]),
        "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)])),
    }
    port = free_port()
    argv = [PYTHON, *SERVERS[request.param]]
    argv.append(f"127.0.0.1:{port}" if request.param == "wsgi" else str(port))
    with run_server(argv, port, cwd=str(ROOT), env=env):
        yield f"http://127.0.0.1:{port}"


def test_django_replaces_invented_ids_and_limits_the_user(django_server: str) -> None:
    with httpx.Client(base_url=django_server, timeout=20) as client:

        def post(who: str, sid: str | None) -> Answer:
            client.cookies.clear()
            response = client.post("/_embedgate/token", headers=_headers(who, sid))
            return response.status_code, _set_cookie(response.headers.get_list("set-cookie"))

        answers = [post("mallory", invented()) for _ in range(12)]
        assert [a[0] for a in answers].count(200) == LIMITS["rate_limit"], answers
        assert all(cookie is not None for _, cookie in answers)
        status, cookie = post("bob", None)
        assert status == 200
        assert post("bob", cookie) == (200, None)
