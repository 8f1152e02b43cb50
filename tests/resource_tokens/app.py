"""The app the resource browser tests load, served by uvicorn: Starlette behind
EmbedgateMiddleware, pages rendered with ``embed_snippet``, settings from the test's
``EMBEDGATE_*`` variables. It also plays the provider, on the same loopback server:

* Metabase (``EMBEDGATE_PROVIDER=metabase``, ``EMBEDGATE_PROVIDER_URL`` = this server):
  ``/embed/dashboard/{token}`` verifies the token the iframe loads and notes it;
* Superset (``EMBEDGATE_PROVIDER=superset``, ``EMBEDGATE_SUPERSET_SDK_URL`` =
  ``/fake-sdk.js`` here): a stand-in for ``@superset-ui/embedded-sdk`` that records each
  ``embedDashboard`` call and the guest token its ``fetchGuestToken`` returns.

``GET /log`` lists the token endpoint's answers (resource asked, status, a digest of the token)
and the frames the fake Metabase served (loopback test server only)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from typing import Any

import jwt
from jinja2 import DictLoader, Environment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from embedgate import Engine
from embedgate.asgi import EmbedgateMiddleware
from embedgate.integrations.starlette import install_templates

SUPERSET_DASHBOARD = "7a1b2c3d-0000-4000-8000-000000000001"
SUPERSET_OTHER = "7a1b2c3d-0000-4000-8000-000000000002"

RECORDER = """<script>
  window.seen = []; window.errors = [];
  window.addEventListener("embedgate:token", function (e) { window.seen.push(e.detail); });
  window.addEventListener("embedgate:error", function (e) { window.errors.push(e.detail); });
</script>"""
PAGES = {
    "metabase.html": "<!doctype html><html><head><title>Sales</title></head><body>"
    + RECORDER
    + "{{ embed_snippet('dashboard', '42', id='mb', titled=false) }}"
    # Written by hand, not rendered by embed_snippet: the session holds no token for it.
    '<div id="forged" data-embedgate-resource="dashboard:77" data-embedgate-token="data-t">'
    "</div>"
    # Left alone by the script (what the Looker snippet says of its one-time URLs).
    '<iframe id="once" data-embedgate-resource="dashboard:99" data-embedgate-refresh="none"'
    ' src="about:blank"></iframe></body></html>',
    "superset.html": "<!doctype html><html><head><title>Sales</title></head><body>"
    + RECORDER
    + "{{ embed_snippet('dashboard', dashboard, id='ss', hide_title=true, filters='collapsed') }}"
    "</body></html>",
    # The page loads the SDK itself, late and asynchronously: the script must wait for it.
    "late.html": "<!doctype html><html><head><title>Sales</title></head><body>"
    + RECORDER
    + "{{ embed_snippet('dashboard', dashboard, id='ss', script=false) }}"
    '<script async src="/fake-sdk.js?delay=1.5"></script></body></html>',
}

FAKE_SDK = """
window.supersetEmbeddedSdk = {
  calls: [],
  fetchers: [],
  embedDashboard: function (options) {
    var sdk = window.supersetEmbeddedSdk;
    var call = {
      id: options.id,
      supersetDomain: options.supersetDomain,
      mountId: options.mountPoint && options.mountPoint.id,
      mountIsElement: options.mountPoint instanceof HTMLElement,
      ui: options.dashboardUiConfig,
      guestToken: null,
    };
    sdk.calls.push(call);
    sdk.fetchers.push(options.fetchGuestToken);
    return Promise.resolve(options.fetchGuestToken()).then(function (token) {
      call.guestToken = token;
      var frame = document.createElement("iframe");
      frame.title = "superset " + options.id;
      options.mountPoint.appendChild(frame);
      return { unmount: function () {} };
    });
  },
};
"""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class Recorder:
    """Outermost layer: notes each token endpoint answer; serves ``GET /log``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: list[dict[str, Any]] = []
        self.frames: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/log":
            await JSONResponse({"calls": self.calls, "frames": self.frames})(scope, receive, send)
            return
        if scope["type"] != "http" or scope["path"] != "/_embedgate/token":
            await self.app(scope, receive, send)
            return
        sent = bytearray()
        asked = bytearray()
        status = 0

        async def tap_receive() -> Any:
            message = await receive()
            asked.extend(message.get("body", b""))
            return message

        async def tap_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    self._note(bytes(asked), status, bytes(sent))
            await send(message)

        await self.app(scope, tap_receive, tap_send)

    def _note(self, asked: bytes, status: int, answer: bytes) -> None:
        data = json.loads(answer)
        resource = json.loads(asked)["resource"] if asked else None
        token = data.get("token")
        self.calls.append(
            {
                "at": time.time(),
                "resource": resource,
                "status": status,
                "digest": _digest(token) if token else None,
                "error": data.get("error"),
            }
        )


def create() -> Recorder:
    """uvicorn ``--factory`` entry point; settings from the test's environment only."""
    environ = {k: v for k, v in os.environ.items() if k.startswith("EMBEDGATE_")}
    engine = Engine.from_settings(environ=environ)
    provider = engine.config.provider
    pages = install_templates(
        Jinja2Templates(env=Environment(loader=DictLoader(PAGES), autoescape=True))
    )
    recorder: Recorder

    def page(request: Request) -> Response:
        name = "late.html" if request.url.path == "/late" else f"{provider}.html"
        return pages.TemplateResponse(request, name, {"dashboard": SUPERSET_DASHBOARD})

    def metabase_frame(request: Request) -> Response:
        """The fake Metabase: opens a dashboard only for a valid, unexpired static token."""
        token = request.path_params["token"]
        secret = environ["EMBEDGATE_SECRET"]
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"], audience="embedgate")
        except jwt.InvalidTokenError as error:
            recorder.frames.append({"at": time.time(), "error": type(error).__name__})
            return HTMLResponse("<p>invalid token</p>", status_code=400)
        recorder.frames.append(
            {"at": time.time(), "digest": _digest(token), "resource": claims["resource"]}
        )
        return HTMLResponse("<!doctype html><p>dashboard</p>")

    async def fake_sdk(request: Request) -> Response:
        await asyncio.sleep(float(request.query_params.get("delay", "0")))
        return Response(FAKE_SDK, media_type="text/javascript")

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/late", page),
            Route("/embed/dashboard/{token}", metabase_frame),
            Route("/fake-sdk.js", fake_sdk),
        ]
    )

    def user(scope: Any) -> dict[str, str]:
        # Every visitor is alice here: the endpoint answers before the app's routes run.
        return {"sub": "alice", "email": "alice@example.com"}

    recorder = Recorder(EmbedgateMiddleware(app, engine, user_resolver=user))
    return recorder
