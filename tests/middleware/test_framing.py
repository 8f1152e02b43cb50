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
