"""The testing toolkit a host app's suite uses (embedgate.testing, a pytest plugin):
token extraction and checks through each framework's test client, the manual clock, the
in-process fake providers and the plugin's fixtures."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_login import LoginManager, login_user
from starlette.testclient import TestClient

from embedgate import Engine, IssueRequest, ManualClock, Principal
from embedgate.config import Config
from embedgate.integrations.flask import EmbedGate
from embedgate.testing import (
    FakeSuperset,
    FakeToucan,
    assert_embed_token,
    embed_data,
    extract_token,
    find_engine,
    token_claims,
)
from tests.conftest import TEST_SECRET
from tests.ops.apps import ALICE, PAGE, TOKEN_HEADERS, app, engine

ROOT = Path(__file__).resolve().parents[2]


def now() -> ManualClock:
    """A manual clock at the real time (keys= checks expiry against the real time)."""
    return ManualClock(time.time())


def test_starlette_page_and_endpoint() -> None:
    client = TestClient(app(engine(now(), audience="analytics")))
    page = client.get("/")
    claims = assert_embed_token(page, sub="alice", attributes={"region": "EU"}, app=client)
    assert claims["aud"] == "analytics"
    answer = client.post("/_embedgate/token", headers=TOKEN_HEADERS)
    assert extract_token(answer) == extract_token(page)
    assert_embed_token(answer, sub="alice", tenant="acme", keys=TEST_SECRET, audience="analytics")
    data = embed_data(page)
    assert data is not None
    assert data["endpoint"] == "/_embedgate/token"


def test_failures_say_what_differs() -> None:
    client = TestClient(app(engine(now())))
    page = client.get("/")
    with pytest.raises(AssertionError, match=r"sub is 'alice', expected 'bob'"):
        assert_embed_token(page, sub="bob", app=client)
    with pytest.raises(AssertionError, match=r"attribute 'region' is 'EU', expected 'US'"):
        assert_embed_token(page, attributes={"region": "US"}, app=client)
    with pytest.raises(AssertionError, match=r"attribute 'team' is missing"):
        assert_embed_token(page, attributes={"team": "x"}, app=client)
    with pytest.raises(AssertionError, match="does not verify"):
        assert_embed_token(page, keys="another-secret-0123456789abcdef-01234")
    with pytest.raises(AssertionError, match="no embedgate token block"):
        extract_token("<html><body>nothing</body></html>")
    anonymous = TestClient(app(engine(now()), principal=None))
    with pytest.raises(AssertionError, match="no embedgate token block"):
        extract_token(anonymous.get("/"))
    with pytest.raises(AssertionError, match="carries no token"):
        extract_token(anonymous.post("/_embedgate/token", headers=TOKEN_HEADERS))


def test_a_null_block_when_issuance_failed() -> None:
    fake = FakeToucan()
    eng = Engine(Config.load(fake.settings(), environ={}), config_source=fake.settings())
    fake.install(eng)
    fake.fail(503, times=10)
    page = TestClient(app(eng)).get("/")
    data = embed_data(page)
    assert data is None or data["token"] is None
    with pytest.raises(AssertionError, match="issuance failed"):
        extract_token(page)


@dataclass
class FlaskUser:
    id: str
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        return self.id

    def embed_principal(self) -> Principal:
        return Principal(subject=self.id, attributes={"region": "EU"})


def flask_app(**settings: Any) -> Flask:
    flask = Flask(__name__)
    flask.config.update(SECRET_KEY="toolkit-test", TESTING=True)
    LoginManager(flask).user_loader(FlaskUser)
    EmbedGate(flask, **settings)

    @flask.get("/")
    def index() -> str:
        return PAGE

    @flask.post("/login/<name>")
    def login(name: str) -> str:
        login_user(FlaskUser(name))
        return "ok"

    return flask


def test_flask_test_client() -> None:
    flask = flask_app(secret=TEST_SECRET)
    client = flask.test_client()
    client.post("/login/alice")
    page = client.get("/")
    assert_embed_token(page, sub="alice", attributes={"region": "EU"}, app=flask)
    answer = client.post("/_embedgate/token", headers=TOKEN_HEADERS)
    assert_embed_token(answer, sub="alice", app=client)
    assert find_engine(client) is find_engine(flask)


def test_django_test_client() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.ops.django_app"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "django ok\n"


def test_the_manual_clock_expires_and_refreshes(embedgate_clock: ManualClock) -> None:
    eng = Engine.from_settings(environ={}, secret=TEST_SECRET, ttl=300)
    client = TestClient(app(eng))
    first = client.post("/_embedgate/token", headers=TOKEN_HEADERS).json()
    assert_embed_token(first["token"], sub="alice", keys=TEST_SECRET)
    embedgate_clock.advance(first["refresh_in"] + 1)
    # Due: the still-valid token at once; the refresh runs beside the request.
    due = client.post("/_embedgate/token", headers=TOKEN_HEADERS).json()
    assert due["token"] == first["token"]
    assert eng.service.wait_idle()
    second = client.post("/_embedgate/token", headers=TOKEN_HEADERS).json()
    assert second["token"] != first["token"]
    assert second["server_time"] == int(embedgate_clock.now())
    embedgate_clock.advance(400)  # both past exp on embedgate's clock
    with pytest.raises(AssertionError, match="expired"):
        token_claims(second["token"], keys=TEST_SECRET)


def test_fake_toucan_in_process(embedgate_fake_toucan: FakeToucan) -> None:
    fake = embedgate_fake_toucan
    client = TestClient(app(Engine.from_settings()))  # the fixture's settings, from the env
    fake.install(client)
    page = client.get("/")
    claims = assert_embed_token(page, sub="alice", attributes={"region": "EU"}, provider=fake)
    assert claims["role"] == "explorer"
    assert claims["tenant"] == "acme"
    fake.fail(503, times=5)
    client.cookies.clear()
    answer = client.post("/_embedgate/token", headers=TOKEN_HEADERS)
    assert answer.status_code == 503
    with pytest.raises(AssertionError, match="did not issue"):
        assert_embed_token("not-a-token-from-the-fake", provider=fake)


def test_fake_superset_in_process(embedgate_fake_superset: FakeSuperset) -> None:
    fake = embedgate_fake_superset
    client = TestClient(app(Engine.from_settings()))
    fake.install(client)
    claims = assert_embed_token(client.get("/"), sub="alice", provider=fake)
    assert claims["resources"] == [{"type": "dashboard", "id": "fake-dashboard"}]
    assert claims["type"] == "guest"
    assert len(fake.guest_bodies) == 1


async def _async_mint(eng: Engine) -> str:
    return (await eng.service.aget_token(ALICE, "s")).token


def test_fakes_serve_the_async_face_too() -> None:
    import anyio

    fake = FakeToucan()
    eng = Engine(Config.load(fake.settings(), environ={}), config_source=fake.settings())
    fake.install(eng)
    token = anyio.run(_async_mint, eng)
    assert fake.claims_of(token) is not None


def test_install_refuses_another_provider() -> None:
    with pytest.raises(ValueError, match="not 'toucan'"):
        FakeToucan().install(engine(now()))


def test_audit_events_fixture(embedgate_audit_events: list[dict[str, Any]]) -> None:
    TestClient(app(engine(now()))).get("/")
    (event,) = embedgate_audit_events
    assert event["event"] == "token_issued"
    assert event["reason"] == "first_page"


HOST_SUITE = """
from embedgate.testing import assert_embed_token


def test_uses_the_plugin(embedgate_clock, embedgate_fake_toucan, embedgate_audit_events):
    before = embedgate_clock.now()
    embedgate_clock.advance(60)
    assert embedgate_clock.now() == before + 60
    assert embedgate_fake_toucan.settings()["EMBEDGATE_PROVIDER"] == "toucan"
"""


def test_the_plugin_is_registered(tmp_path: Path) -> None:
    (tmp_path / "test_host.py").write_text(textwrap.dedent(HOST_SUITE))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_no_app_named_uses_the_keys_of_the_apps_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EMBEDGATE_SECRET", "EMBEDGATE_PRIVATE_KEY", "EMBEDGATE_PRIVATE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    own = Engine.from_settings(environ={}, secret="an-app-of-its-own-0123456789abcdef-x")
    client = TestClient(app(own))
    page = client.get("/")
    assert_embed_token(page, sub="alice", attributes={"region": "EU"})
    stranger = Engine.from_settings(environ={}, secret="nobody-knows-this-0123456789abcdef")
    forged = stranger.service.issuer.issue(IssueRequest(ALICE, time.time(), 60)).token
    del stranger  # no longer alive: its keys are not a candidate
    gc.collect()
    with pytest.raises(AssertionError, match="does not verify"):
        assert_embed_token(forged, sub="alice")


def test_attributes_among_the_top_level_claims() -> None:
    """Provider layouts (Tableau, Metabase SSO) carry user attributes as top-level claims."""
    import jwt

    from embedgate import KeySet, SigningKey

    key = SigningKey.hmac(TEST_SECRET)
    now = int(time.time())
    claims = {"sub": "alice", "region": "EU", "aud": "embedgate", "iss": "embedgate"}
    claims |= {"iat": now, "nbf": now, "exp": now + 60, "jti": "j1"}
    token = jwt.encode(claims, TEST_SECRET, algorithm="HS256", headers={"kid": key.kid})
    assert_embed_token(token, sub="alice", attributes={"region": "EU"}, keys=KeySet([key]))
    with pytest.raises(AssertionError, match="attribute 'region' is 'EU', expected 'US'"):
        assert_embed_token(token, attributes={"region": "US"}, keys=KeySet([key]))
