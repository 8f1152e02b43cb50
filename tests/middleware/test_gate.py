"""The gate's fast paths give exactly what the reference rules of :mod:`embedgate.web`
give: the page decision (``should_inject``), the rewritten headers
(``response_headers_after_injection``), the snippet (``render_token_block``); and the
principal memo never confuses two claim sets."""

from __future__ import annotations

import itertools
import json

import pytest

from embedgate import ConfigurationError, EmbedToken, Principal
from embedgate.web.gate import WebGate
from embedgate.web.headers import Headers
from embedgate.web.injection import response_headers_after_injection, should_inject
from embedgate.web.page import headers_after_injection
from embedgate.web.token_block import render_token_block
from embedgate.web.values import WebRequest
from tests.middleware.cases import BUFFER_LIMIT, make_engine
from tests.middleware.checks import find_snippets
from tests.middleware.shells import Shell

TYPES = [
    "text/html", "text/html; charset=utf-8", "TEXT/HTML;charset=ISO-8859-1",
    "text/html; charset=utf-16", "text/html; charset=bogus", "application/xhtml+xml",
    "application/json", "text/event-stream", None,
]  # fmt: skip
EXTRAS = [
    (), (("content-encoding", "gzip"),), (("content-encoding", "identity"),),
    (("content-length", "10"),), (("content-length", str(BUFFER_LIMIT + 1)),),
    (("content-length", "x"),), (("content-length", "10"), ("content-length", "99999999")),
    (("cache-control", "public, no-transform"),), (("content-range", "bytes 0-1/2"),),
    (("content-disposition", "attachment; filename=a.html"),),
    (("content-disposition", "inline"),), (("Cache-Control", "no-store"),),
]  # fmt: skip


@pytest.mark.parametrize("method", ["GET", "HEAD", "post"])
@pytest.mark.parametrize("status", [200, 201, 204, 206, 301, 404, 500])
def test_page_plan_agrees_with_should_inject(method: str, status: int) -> None:
    gate = WebGate(make_engine())
    for content_type, extra in itertools.product(TYPES, EXTRAS):
        pairs = ([("content-type", content_type)] if content_type else []) + list(extra)
        raw = [(n.encode(), v.encode()) for n, v in pairs]
        expected = should_inject(method, status, Headers(raw), limit=BUFFER_LIMIT)
        for _ in range(2):  # the second answer comes from the cache
            assert (gate.page_plan(method, status, raw) is not None) == expected, (pairs, method)


HEADER_SETS = [
    [],
    [(b"Content-Type", b"text/html"), (b"Content-Length", b"5"), (b"ETag", b'"x"')],
    [(b"vary", b"Accept-Encoding"), (b"Vary", b"accept-encoding, Cookie"), (b"x-a", b"1")],
    [(b"vary", b"*"), (b"cache-control", b"public"), (b"cache-control", b"max-age=3")],
    [(b"Last-Modified", b"x"), (b"Digest", b"x"), (b"content-digest", b"x"),
     (b"Repr-Digest", b"x"), (b"Content-MD5", b"x"), (b"Accept-Ranges", b"bytes")],
    [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"link", b"</x>; rel=preload")],
]  # fmt: skip


def _canonical(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return sorted((n.lower(), v) for n, v in raw)


@pytest.mark.parametrize("raw", HEADER_SETS)
def test_headers_after_injection_agree_with_the_reference(raw: list[tuple[bytes, bytes]]) -> None:
    reference = response_headers_after_injection(Headers(raw), 1234).raw
    assert _canonical(headers_after_injection(raw, 1234)) == _canonical(reference)
    with_cookie = headers_after_injection(raw, 1234, b"sid=1")
    assert _canonical(with_cookie) == _canonical([*reference, (b"set-cookie", b"sid=1")])


@pytest.mark.parametrize(
    ("token", "nonce", "root"),
    [
        ("eyJhbGciOi.J9eyJzdWIiOi.Jzig", None, ""),
        ("eyJhbGciOi.J9eyJzdWIiOi.Jzig", "r4nd0m+/=", "/reports"),
        ('opaque</script><!--"\\&\u2028token', "abc", ""),  # an opaque provider token
        ("tok", "n0nce", '/a "b" &amp; <c> data-endpoint="x" null'),  # needs escaping
        ("tok", 'not"a-nonce<', ""),  # not a CSP nonce: escaped by render_token_block
    ],
)
def test_the_snippet_is_render_token_blocks(token: str, nonce: str | None, root: str) -> None:
    engine = make_engine()
    gate = WebGate(engine)
    now = engine.clock.now()
    minted = EmbedToken(
        token=token, expires_at=now + 300.5, issued_at=now, subject="a", refresh_at=now + 200.2
    )
    endpoint = f"{root}/_embedgate/token"
    script = gate.script_url(WebRequest("GET", "/", "http", "testserver", Headers(), root))
    payload = {
        "token": token,
        "expires_at": int(minted.expires_at),
        "refresh_in": 201,  # rounded up: the browser never comes back too early
        "server_time": int(now),
        "endpoint": endpoint,
    }
    binding = "b" * 22
    allow = {"origins": ["self"], "attributes": ["src", "*"], "sdks": []}
    payload.update(bind=binding, allow=allow)
    expected = render_token_block(payload, script, nonce, endpoint=endpoint)
    assert gate.snippet(root, minted, nonce, binding=binding) == expected
    failed = {"token": None, "endpoint": endpoint, "bind": binding, "allow": allow}
    assert gate.snippet(root, None, nonce, binding=binding) == render_token_block(
        failed, script, nonce, endpoint=endpoint
    )
    data = json.loads(expected.split(">", 1)[1].split("</script>", 1)[0])
    assert data["token"] == token


def test_the_principal_memo_keeps_json_types_apart() -> None:
    gate = WebGate(make_engine(claim_mapping={"attributes": {"level": "level"}}))
    seen = {}
    for value in (1, True, 1.0, "1", [1], None):
        principal = gate.principal_for({"sub": "alice", "level": value})
        assert principal is not None
        seen[repr(value)] = principal.attributes.get("level")
        assert gate.principal_for({"sub": "alice", "level": value}) is principal  # remembered
    assert seen == {"1": 1, "True": True, "1.0": 1.0, "'1'": "1", "[1]": 1, "None": None}
    assert type(seen["True"]) is bool
    assert type(seen["1.0"]) is float
    assert gate.principal_for({"sub": "bob", "level": 1}) != gate.principal_for(
        {"sub": "alice", "level": 1}
    )


def test_users_the_memo_cannot_key_are_mapped_each_time() -> None:
    gate = WebGate(make_engine())

    class User:
        username = "carol"

    assert gate.principal_for(User()) == Principal(subject="carol")
    odd = {"sub": "dave", "since": object()}  # not JSON: mapped, not remembered
    assert gate.principal_for(odd) == Principal(subject="dave")
    assert gate.principal_for(None) is None


def test_split_cookie_headers_are_read_together() -> None:
    """HTTP/2 lets a browser send its cookies as several headers (RFC 9113 8.2.3)."""
    shell = Shell("asgi")
    app = shell.wrap(make_engine())
    first = shell.call(app, "GET", "/case/html-head", user="alice")
    sid = first.all("set-cookie")[0].split(";")[0]
    again = shell.call(
        app, "GET", "/case/html-head", [("cookie", "theme=dark"), ("cookie", sid)], user="alice"
    )
    assert find_snippets(again.body)  # a logged-in page, injected...
    assert "set-cookie" not in again.names()  # ...under the session it already had


@pytest.mark.parametrize("name", ["", "bad name", "semi;colon", "a=b", "é"])
def test_a_cookie_name_that_cannot_be_one_is_refused_at_start(name: str) -> None:
    with pytest.raises(ConfigurationError, match="EMBEDGATE_COOKIE_NAME"):
        WebGate(make_engine(cookie_name=name))
