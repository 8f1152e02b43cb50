"""The page the browser tests load, served by uvicorn: a Starlette app behind
EmbedgateMiddleware (settings from the test's ``EMBEDGATE_*`` variables), with a
``<tc-dashboard>`` whose ``auth-token`` the refresher keeps current.

An outer ASGI layer records every call of the token endpoint (when, which jti, which expiry)
and serves that record at ``/calls`` (loopback test server only)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from embedgate import Engine
from embedgate.asgi import EmbedgateMiddleware
from embedgate.web.token_block import request_binding

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Sales dashboard</title></head>
<body>
<h1>Sales</h1>
<tc-dashboard id="dashboard" data-embedgate-token="auth-token" data-embedgate-bind="{bind}">
</tc-dashboard>
<script>
  window.seen = [];
  window.addEventListener("embedgate:token", function (e) { window.seen.push(e.detail.token); });
</script>
</body></html>
"""


async def page(request: Request) -> Response:
    # Written by hand: it carries this response's binding, or the script leaves it alone.
    return HTMLResponse(PAGE.replace("{bind}", request_binding(request.scope)))


class CallLog:
    """Outermost layer: notes each token endpoint answer; ``GET /calls`` lists them."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/_embedgate/token":
            if scope["type"] == "http" and scope["path"] == "/calls":
                await JSONResponse(self.calls)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def record(message: Any) -> None:
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    self._note(bytes(body))
            await send(message)

        await self.app(scope, receive, record)

    def _note(self, body: bytes) -> None:
        entry: dict[str, Any] = {"at": time.time()}
        data = json.loads(body)
        if "token" in data:
            claims = jwt.decode(data["token"], options={"verify_signature": False})
            entry.update(jti=claims["jti"], exp=claims["exp"])
        else:
            entry["error"] = data.get("error")
        self.calls.append(entry)


SETTINGS = (
    "EMBEDGATE_SECRET",
    "EMBEDGATE_TTL",
    "EMBEDGATE_MIN_REMAINING",
    "EMBEDGATE_REFRESH_MARGIN",
)


def create() -> CallLog:
    """uvicorn ``--factory`` entry point; settings from the test's environment only."""
    app = Starlette(routes=[Route("/", page)])
    engine = Engine.from_settings(environ={k: os.environ[k] for k in SETTINGS if k in os.environ})

    def user(scope: Any) -> dict[str, str]:
        # Every visitor is alice here: the endpoint answers before the app's routes run.
        return {"sub": "alice", "email": "alice@example.com"}

    return CallLog(EmbedgateMiddleware(app, engine, user_resolver=user))
