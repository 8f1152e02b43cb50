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


def litestar() -> object:
    """The tiny ASGI app mounted in a Litestar app, behind :class:`EmbedGatePlugin`."""
    from litestar import Litestar, asgi

    from embedgate.integrations.litestar import EmbedGatePlugin

    @asgi("/case", is_mount=True, copy_scope=True)
    async def cases(scope: object, receive: object, send: object) -> None:
        scope["path"] = scope["raw_path"].decode().split("?")[0]  # type: ignore[index]
        await asgi_app(scope, receive, send)  # type: ignore[arg-type]

    return Litestar([cases], plugins=[EmbedGatePlugin(engine=make_engine())])


def quart() -> object:
    from tests.middleware.quart_cases import quart_app

    return quart_app()
