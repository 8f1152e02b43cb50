"""Real protocol drivers, in process and over loopback, all answering one :class:`Result`.

In process: direct ASGI ``scope``/``receive``/``send`` calls (a server that offers the
``http.response.pathsend`` extension), ``httpx.ASGITransport``, a direct PEP 3333 loop
(``wsgiref``'s ``FileWrapper`` as ``wsgi.file_wrapper``) and ``werkzeug.test.Client``.
Over loopback: any server on 127.0.0.1, read with httpx without decoding the body.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from wsgiref.util import FileWrapper

import anyio
import httpx
from werkzeug.test import Client

HeaderPairs = Sequence[tuple[str, str]]


@dataclass
class Result:
    """A response as the client saw it. Header names are lower-cased, values strings."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    messages: list[dict[str, Any]] = field(default_factory=list)  # ASGI direct only
    iterable: object = None  # WSGI direct only: what the middleware returned
    parts: list[bytes] = field(default_factory=list)  # WSGI direct only: body pieces, in order

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name.lower()]

    def names(self) -> set[str]:
        return {n for n, _ in self.headers}

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def _split(target: str) -> tuple[str, bytes]:
    parts = urlsplit(target)
    return parts.path or "/", parts.query.encode("latin-1")


# -- ASGI --------------------------------------------------------------------------------------


async def asgi_request(
    app: Any,
    method: str,
    target: str,
    headers: HeaderPairs = (),
    *,
    scheme: str = "http",
    host: str = "testserver",
    pathsend: bool = True,
    root_path: str = "",
    body: bytes = b"",
) -> Result:
    """One request through ``app`` with direct ASGI calls; every message is recorded."""
    path, query = _split(target)
    raw = [(b"host", host.encode())] + [
        (n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers
    ]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "query_string": query,
        "root_path": root_path,
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
        "extensions": {"http.response.pathsend": {}} if pathsend else {},
    }
    done = anyio.Event()
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    messages: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        messages.append(dict(message))

    await app(scope, receive, send)
    done.set()
    return _from_messages(messages)


def _from_messages(messages: list[dict[str, Any]]) -> Result:
    starts = [m for m in messages if m["type"] == "http.response.start"]
    assert len(starts) == 1, f"expected one http.response.start, got {len(starts)}"
    assert messages.index(starts[0]) == 0 or all(
        m["type"] not in ("http.response.body", "http.response.pathsend")
        for m in messages[: messages.index(starts[0])]
    ), "body sent before http.response.start"
    body = b""
    finished = False
    for message in messages:
        if message["type"] == "http.response.body":
            assert not finished, "body message after the last one"
            body += message.get("body", b"")
            finished = not message.get("more_body", False)
        elif message["type"] == "http.response.pathsend":
            with open(message["path"], "rb") as handle:
                body += handle.read()
            finished = True
    assert finished, "the response never finished (no body with more_body=False)"
    start = starts[0]
    headers = [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in start["headers"]]
    return Result(start["status"], headers, body, messages=messages)


def asgi_direct(app: Any, method: str, target: str, headers: HeaderPairs = (), **kw: Any) -> Result:
    return anyio.run(lambda: asgi_request(app, method, target, headers, **kw))


def asgi_httpx(app: Any, method: str, target: str, headers: HeaderPairs = ()) -> Result:
    """Through ``httpx.ASGITransport`` (no pathsend extension); the body is read raw."""

    async def go() -> Result:
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
            client.stream(method, target, headers=list(headers)) as response,
        ):
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        return _from_httpx(response, body)

    return anyio.run(go)


def _from_httpx(response: httpx.Response, body: bytes) -> Result:
    headers = [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in response.headers.raw]
    return Result(response.status_code, headers, body)


# -- WSGI --------------------------------------------------------------------------------------


def wsgi_environ(
    method: str,
    target: str,
    headers: HeaderPairs = (),
    *,
    scheme: str = "http",
    host: str = "testserver",
    script_name: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    path, query = _split(target)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": host,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            environ["HTTP_" + key] = value
    environ.update(extra or {})
    return environ


def wsgi_run(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> Result:
    """A PEP 3333 server loop: headers go out with the first non-empty body bytes (or at the
    end), ``write()`` output precedes the iterable's, ``close()`` is always called."""
    state: dict[str, Any] = {"status": None, "headers": None, "sent": False}
    out: list[bytes] = []

    def write(data: bytes) -> None:
        assert state["status"] is not None, "write() before start_response"
        assert isinstance(data, bytes)
        if data:
            state["sent"] = True
        out.append(data)

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and state["sent"]:
            raise exc_info[1].with_traceback(exc_info[2])
        assert exc_info is not None or state["status"] is None, "start_response called twice"
        assert all(isinstance(n, str) and isinstance(v, str) for n, v in headers)
        state["status"], state["headers"] = status, headers
        return write

    iterable = app(environ, start_response)
    try:
        for chunk in iterable:
            assert isinstance(chunk, bytes)
            if chunk:
                assert state["status"] is not None, "body before start_response"
                state["sent"] = True
            out.append(chunk)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    assert state["status"] is not None, "start_response never called"
    headers = [(n.lower(), v) for n, v in state["headers"]]
    status = int(state["status"].split()[0])
    parts = [chunk for chunk in out if chunk]
    return Result(status, headers, b"".join(out), iterable=iterable, parts=parts)


def wsgi_direct(
    app: Callable[..., Iterable[bytes]],
    method: str,
    target: str,
    headers: HeaderPairs = (),
    **kw: Any,
) -> Result:
    return wsgi_run(app, wsgi_environ(method, target, headers, **kw))


def wsgi_werkzeug(
    app: Callable[..., Iterable[bytes]], method: str, target: str, headers: HeaderPairs = ()
) -> Result:
    """Through ``werkzeug.test.Client``, unbuffered (its buffered mode drops ``write()``
    output); closing the response closes the app's iterable."""
    response = Client(app).open(target, method=method, headers=list(headers))
    try:
        body = response.get_data()
        pairs = [(n.lower(), v) for n, v in response.headers.to_wsgi_list()]
        return Result(response.status_code, pairs, body)
    finally:
        response.close()


# -- over loopback -----------------------------------------------------------------------------


def http_request(
    client: httpx.Client, method: str, target: str, headers: HeaderPairs = ()
) -> Result:
    """A request to a real server, without cookies; the body is read raw (never decompressed)."""
    client.cookies.clear()
    with client.stream(method, target, headers=list(headers)) as response:
        body = b"".join(response.iter_raw())
    return _from_httpx(response, body)
