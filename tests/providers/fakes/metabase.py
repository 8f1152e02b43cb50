"""A fake Metabase, written from Metabase's static embedding and JWT SSO docs: it opens
``/embed/dashboard/{token}`` (and ``/embed/question/{token}``) when the token verifies with
the embedding secret, and ``/auth/sso?jwt=...&return_to=...`` when the JWT SSO token does."""

from __future__ import annotations

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

CORRUPT = "Message seems corrupt or manipulated."


class FakeMetabase:
    def __init__(self, *, embedding_secret: str, jwt_secret: str) -> None:
        self.embedding_secret = embedding_secret
        self.jwt_secret = jwt_secret
        self.opened: list[dict[str, object]] = []
        self.app = Starlette(
            routes=[
                Route("/embed/{kind}/{token}", self.embed, methods=["GET"]),
                Route("/auth/sso", self.sso, methods=["GET"]),
            ]
        )

    async def embed(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        try:
            claims = jwt.decode(
                request.path_params["token"],
                self.embedding_secret,
                algorithms=["HS256"],
                options={"require": ["exp"], "verify_aud": False},
            )
        except jwt.PyJWTError:
            return HTMLResponse(CORRUPT, status_code=400)
        resource = claims.get("resource")
        if kind not in ("dashboard", "question") or not isinstance(resource, dict):
            return HTMLResponse("Not found.", status_code=404)
        ident = resource.get(kind)
        if not isinstance(ident, int) or not isinstance(claims.get("params"), dict):
            return HTMLResponse(CORRUPT, status_code=400)
        self.opened.append(claims)
        return HTMLResponse(f'<div data-{kind}="{ident}">embedded</div>')

    async def sso(self, request: Request) -> Response:
        token = request.query_params.get("jwt", "")
        try:
            claims = jwt.decode(
                token,
                self.jwt_secret,
                algorithms=["HS256"],
                options={"require": ["exp"], "verify_aud": False},
            )
        except jwt.PyJWTError:
            return HTMLResponse("Invalid JWT", status_code=401)
        if not isinstance(claims.get("email"), str):
            return HTMLResponse("JWT is missing an email", status_code=400)
        self.opened.append(claims)
        return RedirectResponse(request.query_params.get("return_to", "/"), status_code=302)
