"""A small Starlette app behind the ASGI middleware: one page, one user per request."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from embedgate import Engine, ManualClock, Principal
from embedgate.asgi import EmbedgateMiddleware
from embedgate.config import Config
from tests.conftest import TEST_SECRET

PAGE = "<html><head><title>t</title></head><body><h1>Sales</h1></body></html>"
TOKEN_HEADERS = {"X-Embedgate": "1"}
ALICE = Principal(subject="alice", tenant="acme", attributes={"region": "EU", "level": 3})


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


def engine(clock: ManualClock, **settings: Any) -> Engine:
    """An engine on ``clock`` (generic provider with the test secret unless told)."""
    settings.setdefault("secret", TEST_SECRET)
    mapping = {k: v for k, v in settings.items() if k.startswith("EMBEDGATE_")}
    overrides = {k: v for k, v in settings.items() if not k.startswith("EMBEDGATE_")}
    config = Config.load(mapping or None, environ={}, **overrides)
    return Engine(config, config_source=mapping or None, environ={}, clock=clock)


def app(engine: Engine, principal: Principal | None = ALICE) -> EmbedgateMiddleware:
    """The page app behind the middleware; every request is ``principal``'s."""
    inner = Starlette(routes=[Route("/", page)])
    return EmbedgateMiddleware(inner, engine, user_resolver=lambda scope: principal)
