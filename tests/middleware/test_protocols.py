"""The corners of each protocol a shell must respect, beyond the table: PEP 3333's
``close()``, ``exc_info`` and ``write()``; ASGI's other scopes, extension messages,
trailers and request bodies."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any

import anyio
import pytest

from embedgate.asgi import EmbedgateMiddleware
from embedgate.wsgi import EmbedgateWSGIMiddleware
from tests.middleware.cases import PAGE, WSGICaseApp, make_engine
from tests.middleware.checks import find_snippets
from tests.middleware.drivers import asgi_direct, asgi_request, wsgi_environ, wsgi_run

HTML = [("Content-Type", "text/html; charset=utf-8")]
ERROR_PAGE = b"<html><head></head><body>it broke</body></html>"


def logged_in(app: Any) -> Any:
    def wrapped(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["embedgate.user"] = {"sub": "alice"}
        return app(environ, start_response)  # type: ignore[no-any-return]

    return wrapped


# -- WSGI --------------------------------------------------------------------------------------


def test_closing_the_response_unread_closes_the_apps_iterable() -> None:
    """A server drops a response it never iterated (the client went away): the app's
    iterable must still be closed (PEP 3333), whether the page was being injected or not."""
    app = WSGICaseApp()
    middleware = EmbedgateWSGIMiddleware(app, make_engine())
    for target in ("/case/html-head", "/case/json", "/case/html-head?style=write"):
        response = middleware(wsgi_environ("GET", target), lambda *a: lambda data: None)
        close = getattr(response, "close", None)
        assert close is not None
        close()
    assert app.closed == ["html-head", "json", "html-head"]


def test_an_error_while_buffering_propagates_and_still_closes() -> None:
    closed = []

    class Failing:
        def __iter__(self) -> Iterator[bytes]:
            yield PAGE[:20]
            raise ValueError("database went away")

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", HTML)
        return Failing()

    middleware = EmbedgateWSGIMiddleware(logged_in(app), make_engine())
    with pytest.raises(ValueError, match="database went away"):
        wsgi_run(middleware, wsgi_environ("GET", "/"))
    assert closed == [True]


def test_an_error_page_after_exc_info_replaces_the_held_page() -> None:
    """The app started an HTML page, failed before its first byte, and starts again with
    exc_info (what frameworks' error handlers do): the error page is sent, uninjected."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", HTML)
        try:
            raise RuntimeError("template failed")
        except RuntimeError:
            start_response("500 Internal Server Error", HTML, sys.exc_info())
        return [ERROR_PAGE]

    result = wsgi_run(
        EmbedgateWSGIMiddleware(logged_in(app), make_engine()), wsgi_environ("GET", "/")
    )
    assert (result.status, result.body) == (500, ERROR_PAGE)
    assert "set-cookie" not in result.names()


def test_exc_info_after_the_headers_went_out_is_reraised() -> None:
    """PEP 3333: once headers are sent, start_response(..., exc_info) must re-raise."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first part"
        try:
            raise KeyError("late failure")
        except KeyError:
            start_response("500 Internal Server Error", HTML, sys.exc_info())
        yield b"never"

    with pytest.raises(KeyError, match="late failure"):
        wsgi_run(EmbedgateWSGIMiddleware(logged_in(app), make_engine()), wsgi_environ("GET", "/"))


def test_write_and_the_iterable_keep_their_order_when_injected() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        write = start_response("200 OK", HTML)
        write(PAGE[:30])
        write(PAGE[30:60])
        return [PAGE[60:]]

    result = wsgi_run(
        EmbedgateWSGIMiddleware(logged_in(app), make_engine()), wsgi_environ("GET", "/")
    )
    (snippet,) = find_snippets(result.body)
    assert result.body[: snippet.start] + result.body[snippet.end :] == PAGE
    assert result.header("content-length") == str(len(result.body))


def test_an_app_that_never_starts_the_response_is_an_error() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return [b"no headers"]

    with pytest.raises(RuntimeError, match="start_response"):
        wsgi_run(EmbedgateWSGIMiddleware(app, make_engine()), wsgi_environ("GET", "/"))


# -- ASGI --------------------------------------------------------------------------------------


def test_other_scopes_reach_the_app_untouched() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "lifespan.startup.complete"})

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> dict[str, str]:
        return {"type": "lifespan.startup"}

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    anyio.run(EmbedgateMiddleware(app, make_engine()), scope, receive, send)
    assert seen == [scope]
    assert seen[0] is scope
    assert sent == [{"type": "lifespan.startup.complete"}]


def test_extension_messages_and_trailers_pass_through_an_injected_page() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["state"]["embedgate_user"] = {"sub": "alice"}
        await send({"type": "http.response.debug", "info": {"template": "page.html"}})
        await send(
            {"type": "http.response.start", "status": 200, "trailers": True,
             "headers": [(b"content-type", b"text/html")]}
        )  # fmt: skip
        await send({"type": "http.response.body", "body": PAGE[:50], "more_body": True})
        await send({"type": "http.response.body", "body": PAGE[50:], "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")]})

    result = asgi_direct(EmbedgateMiddleware(app, make_engine()), "GET", "/")
    kinds = [m["type"] for m in result.messages]
    assert kinds == [
        "http.response.debug",
        "http.response.start",
        "http.response.body",
        "http.response.trailers",
    ]
    assert result.messages[1]["trailers"] is True
    assert len(find_snippets(result.body)) == 1


def test_the_request_body_is_left_to_the_app() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["body"][::-1]})

    result = anyio.run(
        lambda: asgi_request(EmbedgateMiddleware(app, make_engine()), "POST", "/", body=b"abc")
    )
    assert result.body == b"cba"


def test_an_app_failing_after_a_held_start_sends_nothing() -> None:
    """The server then answers 500 itself: no half-sent page, no stray cookie."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": PAGE[:10], "more_body": True})
        raise LookupError("view failed")

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "state": {}}
    with pytest.raises(LookupError):
        anyio.run(EmbedgateMiddleware(app, make_engine()), scope, receive, send)
    assert sent == []
