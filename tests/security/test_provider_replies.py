"""Provider replies as a hostile or broken provider sends them, from a real server on
127.0.0.1: lifetimes of decades are capped by EMBEDGATE_MAX_TTL wherever a token comes from,
a reply without a usable expiry is refused, and a huge or endless body costs at most the
size cap (the rest is never read)."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from embedgate import Engine, IssuerError, Principal
from embedgate.issuers.remote import MAX_BODY
from tests.conftest import TEST_SECRET
from tests.security.servers import json_answer, serve

ALICE = Principal(subject="alice", tenant="acme")
MAX_TTL = 900


def toucan(url: str, **settings: Any) -> Engine:
    return Engine.from_settings(
        {"EMBEDGATE_TOUCAN_RETRIES": "0", "EMBEDGATE_TOUCAN_READ_TIMEOUT": "20"},
        environ={},
        secret=TEST_SECRET,
        provider="toucan",
        provider_url=url,
        api_key="tc-key-Zq8vJ3xK0pLmT7wR2nB5",
        max_ttl=MAX_TTL,
        **settings,
    )


@pytest.mark.parametrize(
    "reply",
    [
        {"token": "t", "expiresIn": 1e9},
        {"token": "t", "expires_in": "31536000"},
        {"token": "t", "expiresAt": 4_102_444_800},  # 2100-01-01
        {"token": "t", "expiresIn": 86_400 * 365 * 30},
    ],
)
@pytest.mark.anyio
async def test_a_providers_lifetime_is_capped_by_max_ttl(reply: dict[str, Any]) -> None:
    with serve(json_answer(json.dumps(reply).encode())) as provider:
        engine = toucan(provider.url)
        before = time.time()
        token = engine.service.get_token(ALICE, "session-" + "1" * 30)
        assert token.expires_at <= time.time() + MAX_TTL + 1
        assert token.refresh_at < token.expires_at
        assert token.expires_at >= before + MAX_TTL - 60  # capped, not refused
        again = await engine.service.aget_token(ALICE, "session-" + "2" * 30)
        assert again.expires_at <= time.time() + MAX_TTL + 1


class _Endless:
    """Writes a JSON-looking body forever (or ``declared`` bytes' worth), chunked."""

    def __init__(self, *, declared: int | None = None) -> None:
        self.declared = declared
        self.sent = 0

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if self.declared is not None:
            handler.send_header("Content-Length", str(self.declared))
        else:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        piece = b'{"token": "' + b"x" * 65_000
        limit = 1 << 30  # 1 GiB: what an unbounded reader would take in
        while self.sent < limit:
            data = piece if self.declared is not None else b"%x\r\n%s\r\n" % (len(piece), piece)
            handler.wfile.write(data)
            self.sent += len(piece)


@pytest.mark.parametrize("declared", [None, 1 << 30])
def test_a_huge_reply_costs_at_most_the_cap(declared: int | None) -> None:
    body = _Endless(declared=declared)
    with serve(body) as provider:
        engine = toucan(provider.url)
        with pytest.raises(IssuerError) as caught:
            engine.service.get_token(ALICE, "session-" + "3" * 30)
        assert caught.value.code == "provider_malformed"
        assert str(MAX_BODY) in str(caught.value)
    # The server could only push what the socket buffers held past the cap.
    assert body.sent < MAX_BODY + (32 << 20)


@pytest.mark.anyio
async def test_a_huge_reply_costs_at_most_the_cap_async() -> None:
    body = _Endless()
    with serve(body) as provider:
        engine = toucan(provider.url)
        with pytest.raises(IssuerError) as caught:
            await engine.service.aget_token(ALICE, "session-" + "4" * 30)
        assert caught.value.code == "provider_malformed"
    assert body.sent < MAX_BODY + (32 << 20)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
