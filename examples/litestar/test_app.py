"""This app's own tests, as a host app writes them with embedgate's pytest plugin
(installed with embedgate): run ``pytest`` in this folder.

``assert_embed_token`` reads the token a page or the endpoint handed out, verifies it with
the app's keys and checks what it says; ``embedgate_clock`` moves embedgate's clock;
``embedgate_fake_toucan`` is a Toucan that answers in process, without network.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import app as example
import pytest
from litestar.testing import TestClient

from embedgate import ManualClock
from embedgate.testing import FakeToucan, assert_embed_token, embed_data, extract_token

TOKEN_REQUEST = {"X-Embedgate": "1"}


@pytest.fixture
def client() -> TestClient:
    return TestClient(example.app)


def log_in(client: TestClient, name: str) -> None:
    answer = client.post(
        "/login", data={"username": name, "password": "demo"}, follow_redirects=False
    )
    assert answer.status_code == 303


def test_each_user_gets_their_own_token(client: TestClient) -> None:
    log_in(client, "alice")
    page = client.get("/")
    assert_embed_token(page, sub="alice", tenant="acme", attributes={"region": "EU"}, app=client)
    log_in(client, "bob")
    assert_embed_token(client.get("/"), sub="bob", attributes={"region": "US"}, app=client)


def test_the_endpoint_answers_the_pages_token(client: TestClient) -> None:
    log_in(client, "carol")
    page = client.get("/")
    answer = client.post("/_embedgate/token", headers=TOKEN_REQUEST)
    assert extract_token(answer) == extract_token(page)
    claims = assert_embed_token(answer, sub="carol", roles=["admin"], app=client)
    assert "region" not in claims.get("attributes", {})


def test_anonymous_visitors_get_no_token(client: TestClient) -> None:
    with pytest.raises(AssertionError, match="no embedgate token block"):
        embed_data(client.get("/"))
    assert client.post("/_embedgate/token", headers=TOKEN_REQUEST).status_code == 401


def test_a_refresh_after_the_refresh_time(client: TestClient, embedgate_clock: ManualClock) -> None:
    log_in(client, "alice")
    first = client.post("/_embedgate/token", headers=TOKEN_REQUEST).json()
    embedgate_clock.advance(first["refresh_in"] + 1)
    # Due: the still-valid token comes back at once, the refresh runs beside the request
    # and lands for a following one.
    second = client.post("/_embedgate/token", headers=TOKEN_REQUEST)
    deadline = time.monotonic() + 10
    while extract_token(second) == first["token"] and time.monotonic() < deadline:
        time.sleep(0.01)
        second = client.post("/_embedgate/token", headers=TOKEN_REQUEST)
    assert extract_token(second) != first["token"]
    assert_embed_token(second, sub="alice", app=client)


def test_logout_purges_the_sessions_tokens(
    client: TestClient, embedgate_audit_events: list[dict[str, Any]]
) -> None:
    log_in(client, "alice")
    client.get("/")
    client.post("/logout", follow_redirects=False)
    assert [e["event"] for e in embedgate_audit_events] == ["token_issued", "tokens_purged"]
    assert embedgate_audit_events[1]["count"] == 1


@pytest.fixture
def toucan_example(embedgate_fake_toucan: FakeToucan) -> Iterator[ModuleType]:
    """This app as configured for Toucan (the fake's settings are in the environment)."""
    sys.modules.pop("app", None)
    module = importlib.import_module("app")
    embedgate_fake_toucan.install(module.app)
    yield module
    sys.modules["app"] = example


def test_with_toucan_in_process(
    toucan_example: ModuleType, embedgate_fake_toucan: FakeToucan
) -> None:
    client = TestClient(toucan_example.app)
    log_in(client, "bob")
    page = client.get("/")
    assert_embed_token(page, sub="bob", attributes={"region": "US"}, provider=embedgate_fake_toucan)
    assert "<tc-dashboard" in page.text
