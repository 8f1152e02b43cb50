"""The token request body, parsed once in the gate (a pure function), and read bounded by the
ASGI and WSGI shells."""

from __future__ import annotations

import io
import json
from typing import Any

import anyio
import pytest

from embedgate.asgi import read_body as asgi_read_body
from embedgate.web.gate import WebGate
from embedgate.web.headers import Headers
from embedgate.web.token_request import MAX_BODY, MAX_RESOURCE, parse_token_body
from embedgate.web.values import SESSION_TOKEN, TokenAsk, WebRequest, WebResponse
from embedgate.wsgi import read_body as wsgi_read_body
from tests.resource_tokens.conftest import build, generic_settings

JSON = "application/json"


def parse(body: bytes | str, content_type: str | None = JSON, **headers: str) -> Any:
    pairs = [] if content_type is None else [(b"content-type", content_type.encode())]
    pairs += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    raw = body.encode() if isinstance(body, str) else body
    return parse_token_body(Headers(pairs), raw)


def error_of(answer: Any, status: int) -> dict[str, Any]:
    """The JSON error of a refused body, checked for the endpoint's usual headers."""
    assert isinstance(answer, WebResponse), answer
    assert answer.status == status
    headers = answer.headers
    assert headers.get(b"content-type") == b"application/json"
    assert headers.get(b"cache-control") == b"private, no-store"
    assert headers.get(b"x-content-type-options") == b"nosniff"
    data: dict[str, Any] = json.loads(answer.body)
    return data


# -- accepted ----------------------------------------------------------------------------------


def test_no_body_asks_for_the_session_token_whatever_the_content_type() -> None:
    assert parse(b"") is SESSION_TOKEN
    assert parse(b"", None) == TokenAsk(None)
    assert parse(b"", "text/plain") == TokenAsk(None)


@pytest.mark.parametrize(
    ("body", "content_type", "resource"),
    [
        ('{"resource": "dashboard:42"}', JSON, "dashboard:42"),
        ('{"resource":"question:7"}', "application/json; charset=utf-8", "question:7"),
        ('  {"resource": "x"}\n', "Application/JSON; charset=UTF-8", "x"),
        ('{"resource": "Z\\u00fcrich sales"}', JSON, "Zürich sales"),  # printable, not ASCII
        (json.dumps({"resource": "r" * MAX_RESOURCE}), JSON, "r" * MAX_RESOURCE),
    ],
)
def test_a_resource_is_read_from_a_json_object(body: str, content_type: str, resource: str) -> None:
    assert parse(body, content_type) == TokenAsk(resource)


def test_a_body_of_exactly_the_limit_is_accepted() -> None:
    body = b'{"resource": "dashboard:1"}'
    body += b" " * (MAX_BODY - len(body))
    assert len(body) == MAX_BODY
    assert parse(body, Content_Length=str(MAX_BODY)) == TokenAsk("dashboard:1")


# -- refused -----------------------------------------------------------------------------------


def test_a_larger_body_is_413_whether_declared_or_read() -> None:
    over = b'{"resource": "dashboard:1"}' + b" " * MAX_BODY
    assert error_of(parse(over[: MAX_BODY + 1]), 413)["error"] == "body_too_large"
    # The shell read nothing (or little) of a body its Content-Length says is too large.
    declared = parse(b"", Content_Length=str(MAX_BODY + 1))
    assert error_of(declared, 413)["error"] == "body_too_large"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                     "application/json; charset=latin-1", "application/jsonx"],
)  # fmt: skip
def test_another_content_type_is_415(content_type: str | None) -> None:
    data = error_of(parse('{"resource": "dashboard:1"}', content_type), 415)
    assert data["error"] == "unsupported_media_type"
    assert "Content-Type" in data["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"{",  # not JSON
        b"\xff\xfe{}",  # not UTF-8
        b'{"resource": "a", "resource": "b"}',  # ambiguous: refused, not "last one wins"
        b"[]",
        b'"dashboard:1"',
        b"42",
        b"null",
        b'{"resource": "dashboard:1", "user": "admin"}',  # nothing else may be asked for
    ],
)
def test_a_body_that_is_not_the_expected_object_is_400_naming_the_body(body: bytes) -> None:
    data = error_of(parse(body), 400)
    assert (data["error"], data["field"]) == ("invalid_request", "body")
    assert data["message"].startswith("body: ")


@pytest.mark.parametrize(
    "value",
    ["", "r" * (MAX_RESOURCE + 1), "dash\nboard", "dash\x00board", "\u2028", None, 7, True,
     ["dashboard:1"], {"dashboard": 1}],
)  # fmt: skip
def test_a_bad_resource_is_400_naming_the_field(value: object) -> None:
    data = error_of(parse(json.dumps({"resource": value})), 400)
    assert (data["error"], data["field"]) == ("invalid_request", "resource")
    assert data["message"].startswith("resource: ")
    if isinstance(value, str) and value:
        assert value not in data["message"]  # the value is not echoed back


def test_an_empty_object_asks_for_the_session_token() -> None:
    assert parse(b"{}") == SESSION_TOKEN
    assert parse(b" { } ") == SESSION_TOKEN


def test_only_a_post_carries_a_body() -> None:
    gate = WebGate(build(generic_settings(allow_get="true")))

    def request(method: str) -> WebRequest:
        headers = Headers([(b"content-type", b"application/json")])
        return WebRequest(method, "/_embedgate/token", "http", "testserver", headers)

    body = b'{"resource": "dashboard:1"}'
    assert gate.token_ask(request("post"), body) == TokenAsk("dashboard:1")
    assert gate.token_ask(request("GET"), body) is SESSION_TOKEN
    assert error_of(gate.token_ask(request("POST"), b"[]"), 400)["field"] == "body"


# -- bounded reads in the shells ---------------------------------------------------------------


def test_the_asgi_shell_stops_receiving_past_the_limit() -> None:
    received = 0

    async def endless() -> dict[str, Any]:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": b"x" * 100, "more_body": True}

    body = anyio.run(asgi_read_body, endless)
    assert body == b"x" * (MAX_BODY + 1)
    assert received == 11  # ceil(1025 / 100): not one message more


def test_the_asgi_shell_reads_a_chunked_body_and_stops_at_a_disconnect() -> None:
    messages = iter(
        [
            {"type": "http.request", "body": b'{"resource":', "more_body": True},
            {"type": "http.request", "body": b' "d:1"}', "more_body": False},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    assert anyio.run(asgi_read_body, receive) == b'{"resource": "d:1"}'

    async def gone() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    assert anyio.run(asgi_read_body, gone) == b""


class Unreadable(io.BytesIO):
    """A wsgi.input that must not be read (PEP 3333: no Content-Length, no body)."""

    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("read without a Content-Length")


def test_the_wsgi_shell_reads_no_more_than_the_limit_and_never_past_content_length() -> None:
    big = io.BytesIO(b"y" * 5000)
    assert wsgi_read_body({"wsgi.input": big, "CONTENT_LENGTH": "5000"}) == b"y" * (MAX_BODY + 1)
    assert big.tell() == MAX_BODY + 1  # the rest was never read
    small = io.BytesIO(b'{"resource": "d:1"}TRAILING')
    assert wsgi_read_body({"wsgi.input": small, "CONTENT_LENGTH": "19"}) == b'{"resource": "d:1"}'
    for length in (None, "", "abc", "-3"):
        environ: dict[str, Any] = {"wsgi.input": Unreadable()}
        if length is not None:
            environ["CONTENT_LENGTH"] = length
        assert wsgi_read_body(environ) == b""
    assert wsgi_read_body({"wsgi.input": Unreadable(), "CONTENT_LENGTH": "0"}) == b""
    # A server that marks its input terminated (chunked uploads) may be read to the limit.
    chunked = {"wsgi.input": io.BytesIO(b"z" * 3000), "wsgi.input_terminated": True}
    assert wsgi_read_body(chunked) == b"z" * (MAX_BODY + 1)
