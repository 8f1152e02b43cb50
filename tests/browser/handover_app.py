"""The page of the SDK handover tests, served by uvicorn (``--factory``): a profile that
signs embedgate's own short-lived tokens locally and lets the script hand them to every
provider front end at once, so one page carries each handover's mount point or element.

The mount points are those the provider profiles render (same ``data-embedgate-*``
attributes); the SDK scripts are the providers' real CDN URLs, which the test routes to
stand-ins that record what they were given."""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from embedgate import Engine
from embedgate.asgi import EmbedgateMiddleware
from embedgate.providers.base import register_profile
from embedgate.providers.browser import BrowserPolicy
from embedgate.providers.generic import GenericProfile
from embedgate.providers.powerbi import SDK_URL as POWERBI_SDK
from embedgate.providers.preset import SDK_URL as PRESET_SDK
from embedgate.providers.thoughtspot import SDK_URL as THOUGHTSPOT_SDK
from embedgate.web.token_block import request_binding

TABLEAU_SDK = "https://embedding.tableauusercontent.com/tableau.embedding.3.latest.min.js"
TOUCAN_SDK = "https://cdn.toucantoco.com/embed/embed.js"
SDK_URLS = {
    "powerbi": POWERBI_SDK,
    "preset": PRESET_SDK,
    "thoughtspot": THOUGHTSPOT_SDK,
    "tableau": TABLEAU_SDK,
    "toucan": TOUCAN_SDK,
}


class HandoverProfile(GenericProfile):
    name = "handover-test"

    def browser_policy(self) -> BrowserPolicy:
        return BrowserPolicy(
            origins=("self", os.environ["HANDOVER_ORIGIN"]),  # where the mounts point
            attributes=("token", "auth-token"),
            sdks=("powerbi", "preset", "thoughtspot"),
        )


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>handovers</title></head>
<body>
<script src="{powerbi}"></script>
<div id="pbi" data-embedgate-sdk="powerbi" data-embedgate-report="r-1"
  data-embedgate-embed-url="{origin}/reportEmbed?reportId=r-1" {bind}></div>
<script src="{thoughtspot}"></script>
<div id="ts" data-embedgate-sdk="thoughtspot" data-embedgate-kind="liveboard"
  data-embedgate-object="lb-1" data-embedgate-domain="{origin}" {bind}></div>
<script src="{preset}"></script>
<div id="preset" data-embedgate-sdk="preset" data-embedgate-dashboard="d-1"
  data-embedgate-domain="{origin}" {bind}></div>
<script src="{tableau}"></script>
<tableau-viz id="viz" src="{origin}/views/sales" token="{token}" data-embedgate-token="token"
  {bind}></tableau-viz>
<script src="{toucan}"></script>
<tc-dashboard id="dash" auth-token="{token}" data-embedgate-token="auth-token" {bind}>
</tc-dashboard>
<tc-ai-assistant id="assistant" auth-token="{token}" data-embedgate-token="auth-token" {bind}>
</tc-ai-assistant>
</body></html>"""


def create() -> Any:
    register_profile(HandoverProfile())
    environ = {k: v for k, v in os.environ.items() if k.startswith("EMBEDGATE_")}
    engine = Engine.from_settings(environ={**environ, "EMBEDGATE_PROVIDER": "handover-test"})

    def page(request: Request) -> HTMLResponse:
        origin = f"{request.url.scheme}://{request.url.netloc}"
        bind = f'data-embedgate-bind="{request_binding(request.scope)}"'
        return HTMLResponse(PAGE.format(origin=origin, bind=bind, token="", **SDK_URLS))

    app = Starlette(routes=[Route("/", page)])

    def user(scope: Any) -> dict[str, str]:
        return {"sub": "alice"}

    return EmbedgateMiddleware(app, engine, user_resolver=user)
