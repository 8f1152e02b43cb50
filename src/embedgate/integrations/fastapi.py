"""FastAPI: the Starlette adapter plus ready-made ``Annotated`` dependencies.

::

    app.add_middleware(EmbedgateMiddleware)
    install_templates(templates)

    @app.get("/api/embed-token")
    async def token(user: CurrentUser, token: EmbedTokenDep) -> dict[str, str]: ...

List your auth dependency (which sets ``request.state.embedgate_user``) first: FastAPI
resolves a route's dependencies in order.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ..asgi import EmbedgateMiddleware
from ..token import EmbedToken
from .starlette import (
    embed_token,
    engine_for,
    finish_response,
    install_templates,
    logout,
    middleware_for,
    optional_embed_token,
    page_helpers,
)

EmbedTokenDep = Annotated[EmbedToken, Depends(embed_token)]
"""The current user's token; 401 when anonymous, 403 when refused, 503 when the provider fails."""

OptionalEmbedTokenDep = Annotated[EmbedToken | None, Depends(optional_embed_token)]
"""The current user's token, or None when anonymous."""

__all__ = [
    "EmbedTokenDep",
    "EmbedgateMiddleware",
    "OptionalEmbedTokenDep",
    "embed_token",
    "engine_for",
    "finish_response",
    "install_templates",
    "logout",
    "middleware_for",
    "optional_embed_token",
    "page_helpers",
]
