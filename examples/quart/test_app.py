"""This app's own tests, as a host app writes them with embedgate's pytest plugin
(installed with embedgate): run ``pytest`` in this folder.

``assert_embed_token`` reads the token a page or the endpoint handed out, verifies it with
the app's keys and checks what it says; ``embedgate_audit_events`` records the audit trail.
"""

from __future__ import annotations

import asyncio
from typing import Any

import app as example
import pytest

from embedgate.testing import assert_embed_token, embed_data, extract_token

TOKEN_REQUEST = {"X-Embedgate": "1"}


class Client:
    """Quart's async test client, driven from sync tests (one event loop per test)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = example.app.test_client()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        async def go() -> Any:
            response = await self.client.open(path, method=method, **kw)
            await response.get_data()
            return response

        return self.loop.run_until_complete(go())


class Answer:
    """A Quart response as embedgate.testing reads responses (text, json(), headers)."""

    def __init__(self, client: Client, response: Any) -> None:
        loop = client.loop
        self.status_code = response.status_code
        self.headers = response.headers
        self.text = loop.run_until_complete(response.get_data(as_text=True))
        self._json = loop.run_until_complete(response.get_json(silent=True))

    def json(self) -> Any:
        return self._json


@pytest.fixture
def client() -> Any:
    made = Client()
    yield made
    made.loop.close()


def get(client: Client, path: str) -> Answer:
    return Answer(client, client.request("GET", path))


def token(client: Client) -> Answer:
    return Answer(client, client.request("POST", "/_embedgate/token", headers=TOKEN_REQUEST))


def log_in(client: Client, name: str) -> None:
    form = {"username": name, "password": "demo"}
    assert client.request("POST", "/login", form=form).status_code == 303


def test_each_user_gets_their_own_token(client: Client) -> None:
    log_in(client, "alice")
    page = get(client, "/")
    assert_embed_token(
        page, sub="alice", tenant="acme", attributes={"region": "EU"}, app=example.app
    )
    log_in(client, "bob")
    assert_embed_token(get(client, "/"), sub="bob", attributes={"region": "US"}, app=example.app)


def test_the_endpoint_answers_the_pages_token(client: Client) -> None:
    log_in(client, "carol")
    page = get(client, "/")
    answer = token(client)
    assert extract_token(answer) == extract_token(page)
    claims = assert_embed_token(answer, sub="carol", roles=["admin"], app=example.app)
    assert "region" not in claims.get("attributes", {})


def test_anonymous_visitors_get_no_token(client: Client) -> None:
    with pytest.raises(AssertionError, match="no embedgate token block"):
        embed_data(get(client, "/"))
    assert token(client).status_code == 401


def test_logout_purges_the_sessions_tokens(
    client: Client, embedgate_audit_events: list[dict[str, Any]]
) -> None:
    log_in(client, "alice")
    get(client, "/")
    client.request("POST", "/logout")
    assert [e["event"] for e in embedgate_audit_events] == ["token_issued", "tokens_purged"]
    assert embedgate_audit_events[1]["count"] == 1
