"""The tiny apps behind the middleware, as real servers import them (uvicorn ``--factory``,
gunicorn ``module:function()``). Settings are the tests' own, whatever the environment."""

from __future__ import annotations

from embedgate.asgi import EmbedgateMiddleware
from embedgate.wsgi import EmbedgateWSGIMiddleware
from tests.middleware.cases import WSGICaseApp, asgi_app, make_engine


def asgi() -> EmbedgateMiddleware:
    return EmbedgateMiddleware(asgi_app, make_engine())


def wsgi() -> EmbedgateWSGIMiddleware:
    return EmbedgateWSGIMiddleware(WSGICaseApp(), make_engine())
