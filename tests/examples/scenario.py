"""The scenario both example apps share, driven over HTTP with one cookie jar."""

from __future__ import annotations

import httpx

from tests.integrations.helpers import blocks, claims, iframe_token, page_token

TOKEN = {"X-Embedgate": "1"}
USERS = {
    "alice": {"tenant": "acme", "roles": ["analyst"], "region": "EU"},
    "bob": {"tenant": "globex", "roles": ["viewer"], "region": "US"},
    "carol": {"tenant": "acme", "roles": ["admin"], "region": None},
}


def check_anonymous(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert blocks(page.text) == []
    assert "<iframe" not in page.text
    assert client.post("/_embedgate/token", headers=TOKEN).status_code == 401


def log_in(client: httpx.Client, name: str, password: str = "demo") -> httpx.Response:
    return client.post("/login", data={"username": name, "password": password})


def run_scenario(base_url: str) -> None:
    """Each user in turn on one cookie jar: their own token on the page, in the iframe and
    from the endpoint; nothing after logout; never a previous user's token."""
    seen: list[str] = []
    with httpx.Client(base_url=base_url, timeout=10) as client:
        check_anonymous(client)
        assert log_in(client, "alice", "wrong").status_code == 401
        check_anonymous(client)
        for name, expected in USERS.items():
            assert log_in(client, name).status_code == 303
            page = client.get("/")
            assert page.headers["cache-control"] == "private, no-store"
            token = page_token(page.text)
            assert token is not None
            claim_set = claims(token)
            assert claim_set["sub"] == name
            assert claim_set["tenant"] == expected["tenant"]
            assert claim_set["roles"] == expected["roles"]
            assert claim_set.get("attributes", {}).get("region") == expected["region"]
            assert iframe_token(page.text) == token  # the embed carries the session's token
            answer = client.post("/_embedgate/token", headers=TOKEN)
            assert answer.status_code == 200
            assert answer.json()["token"] == token
            for old in seen:
                assert old not in page.text
                assert old != answer.json()["token"]
            seen.append(token)
            assert client.post("/logout").status_code == 303
            check_anonymous(client)
