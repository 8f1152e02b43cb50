"""Header containers and framing: ASGI headers given as any iterable survive the
middleware in both directions; a rewritten response never has both Transfer-Encoding and
Content-Length."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import anyio
import pytest

from embedgate.asgi import EmbedgateMiddleware
from embedgate.wsgi import EmbedgateWSGIMiddleware
from tests.middleware.cases import PAGE, make_engine
from tests.middleware.checks import find_snippets
from tests.middleware.drivers import asgi_direct, wsgi_direct

Pairs = list[tuple[bytes, bytes]]

CONTAINERS: dict[str, Callable[[Pairs], Iterable[Any]]] = {
    "list": list,
    "tuple": tuple,
    "generator": lambda pairs: (p for p in pairs),
    "list-of-lists": lambda pairs: [list(p) for p in pairs],
    "tuple-of-tuples": lambda pairs: tuple(tuple(p) for p in pairs),
    "map": lambda pairs: map(tuple, pairs),
    "dict-items-view": lambda pairs: dict(pairs).items(),
}


def _user(scope: Any) -> dict[str, str] | None:
    for name, value in scope["headers"]:
        if bytes(name) == b"x-test-user":
            return {"sub": bytes(value).decode()}
    return None


def _page_app(container: Callable[[Pairs], Iterable[Any]], body: bytes, seen: list[Any]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append([tuple(p) for p in scope["headers"]])  # what the app sees of the request
        headers: Pairs = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"x-app", b"kept"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": container(headers)})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.mark.parametrize("response_kind", sorted(CONTAINERS))
@pytest.mark.parametrize("request_kind", sorted(CONTAINERS))
@pytest.mark.parametrize("user", [None, "alice"])
def test_asgi_headers_as_any_iterable(request_kind: str, response_kind: str, user: Any) -> None:
    seen: list[Any] = []
    app = EmbedgateMiddleware(
        _page_app(CONTAINERS[response_kind], PAGE, seen), make_engine(), user_resolver=_user
    )
    request_headers = [(b"host", b"testserver")] + (
        [(b"x-test-user", user.encode())] if user else []
    )

    async def run() -> Any:
        messages: list[Any] = []
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "root_path": "",
            "headers": CONTAINERS[request_kind](request_headers),
            "state": {},
        }

        async def receive() -> Any:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            messages.append(dict(message))

        await app(scope, receive, send)
        return messages

    messages = anyio.run(run)
    start = messages[0]
    headers = {bytes(n).lower(): bytes(v) for n, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in messages[1:])
    assert seen == [request_headers], "the app must see the request's headers"
    assert headers[b"x-app"] == b"kept"
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    assert int(headers[b"content-length"]) == len(body)
    assert len(find_snippets(body)) == (1 if user else 0)
    if not user:
        assert body == PAGE


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_rewritten_response_never_has_both_transfer_encoding_and_length(kind: str) -> None:
    engine = make_engine()
    if kind == "asgi":

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            headers = [(b"content-type", b"text/html"), (b"transfer-encoding", b"chunked")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": PAGE[:10], "more_body": True})
            await send({"type": "http.response.body", "body": PAGE[10:]})

        app: Any = EmbedgateMiddleware(asgi, engine, user_resolver=_user)
        result = asgi_direct(app, "GET", "/", [("X-Test-User", "alice")])
    else:

        def wsgi(environ: Any, start_response: Any) -> Iterable[bytes]:
            start_response(
                "200 OK", [("Content-Type", "text/html"), ("Transfer-Encoding", "chunked")]
            )
            return [PAGE[:10], PAGE[10:]]

        app = EmbedgateWSGIMiddleware(wsgi, engine, user_resolver=lambda e: {"sub": "alice"})
        result = wsgi_direct(app, "GET", "/")
    assert len(find_snippets(result.body)) == 1
    assert result.header("transfer-encoding") is None
    assert result.header("content-length") == str(len(result.body))


HEAD_PART = b"<html><head><title>t</title></head><body>"
TAIL_PART = b"<p>later</p></body></html>"


def test_asgi_stream_is_released_at_the_head_not_buffered_to_the_end() -> None:
    sent: list[dict[str, Any]] = []
    seen_before_second: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": HEAD_PART, "more_body": True})
        seen_before_second.append(len(sent))  # what reached the server so far
        await send({"type": "http.response.body", "body": TAIL_PART})

    middleware = EmbedgateMiddleware(app, make_engine(), user_resolver=lambda s: {"sub": "a"})

    async def run() -> None:
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/",
            "root_path": "",
            "scheme": "http",
            "query_string": b"",
            "headers": [(b"host", b"testserver")],
        }

        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        async def send(message: Any) -> None:
            sent.append(dict(message))

        await middleware(scope, receive, send)

    anyio.run(run)
    assert seen_before_second == [2], "start and the head must be sent before the rest exists"
    first = sent[1]["body"]
    assert len(find_snippets(first)) == 1
    assert first.endswith(b"</head><body>")
    names = {bytes(n).lower() for n, _ in sent[0]["headers"]}
    assert b"content-length" not in names
    assert b"transfer-encoding" not in names
    assert sent[2]["body"] == TAIL_PART


def test_wsgi_stream_is_released_at_the_head_not_buffered_to_the_end() -> None:
    asked_for_more: list[bool] = []

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        yield HEAD_PART
        asked_for_more.append(True)
        yield TAIL_PART

    middleware = EmbedgateWSGIMiddleware(app, make_engine(), user_resolver=lambda e: {"sub": "a"})
    started: list[Any] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    iterable = middleware(environ, lambda status, headers, exc_info=None: started.append(headers))
    parts = iter(iterable)
    first = next(parts)
    assert not asked_for_more, "the head must reach the server before the app makes the rest"
    assert started
    assert len(find_snippets(first)) == 1
    assert "content-length" not in {n.lower() for n, _ in started[0]}
    assert list(parts) == [TAIL_PART]
    iterable.close()  # type: ignore[attr-defined]


def test_declared_length_of_a_stream_grows_by_the_snippet() -> None:
    page = HEAD_PART + TAIL_PART

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response(
            "200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(page)))]
        )
        yield HEAD_PART
        yield TAIL_PART

    middleware = EmbedgateWSGIMiddleware(app, make_engine(), user_resolver=lambda e: {"sub": "a"})
    result = wsgi_direct(middleware, "GET", "/")
    assert len(find_snippets(result.body)) == 1
    assert result.header("content-length") == str(len(result.body))
