"""A small demo identity provider, mounted at ``/idp`` next to the host.

It speaks just enough OpenID Connect to show the SSO model: an authorization request
(``response_type=id_token``, ``response_mode=form_post``, with ``state`` and ``nonce``)
shows a page where the visitor picks who they are (no password: a real IdP authenticates
them), then the browser posts a signed ID token (EdDSA, a key generated at start) back to
the client's registered redirect URI. ``/idp/jwks.json`` publishes the public key and
``/idp/.well-known/openid-configuration`` describes all this.

A real deployment uses a real IdP through OIDC (Authlib) or SAML: see ``examples/sso``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from ..errors import EmbedgateError
from ..keys import KeySet, SigningKey, generate_private_pem
from .users import USERS

ID_TOKEN_TTL: Final = 300
MAX_PARAM_LENGTH: Final = 256
_NO_STORE: Final = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class AuthorizationError(EmbedgateError, ValueError):
    """An authorization request the IdP refuses; ``field`` names the offending parameter."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class AuthRequest:
    """A validated authorization request."""

    client_id: str
    redirect_uri: str
    state: str
    nonce: str
    login_hint: str | None = None

    def fields(self) -> dict[str, str]:
        """The parameters the login form carries over to its POST."""
        return {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "id_token",
            "response_mode": "form_post",
            "scope": "openid",
            "state": self.state,
            "nonce": self.nonce,
        }


class DemoIdP:
    """The IdP's keys, its registered clients (client id -> redirect path) and its tokens."""

    def __init__(self, issuer: str, clients: Mapping[str, str]) -> None:
        self.issuer = issuer
        self.keys = KeySet([SigningKey.private(generate_private_pem("EdDSA"), "EdDSA")])
        self._clients = dict(clients)

    def parse(self, params: Mapping[str, str], origin: str) -> AuthRequest:
        """Validate an authorization request; the redirect URI must be the client's
        registered path on this very origin (host and IdP share it in the demo)."""

        def param(name: str) -> str:
            value = params.get(name, "")
            if not value:
                raise AuthorizationError(name, "is required")
            if len(value) > MAX_PARAM_LENGTH:
                raise AuthorizationError(name, f"is longer than {MAX_PARAM_LENGTH} characters")
            return value

        client_id = param("client_id")
        if client_id not in self._clients:
            raise AuthorizationError("client_id", "is not a registered client")
        redirect_uri = param("redirect_uri")
        parts = urlsplit(redirect_uri)
        if f"{parts.scheme}://{parts.netloc}" != origin or parts.path != self._clients[client_id]:
            raise AuthorizationError("redirect_uri", "is not registered for this client")
        if parts.query or parts.fragment:
            raise AuthorizationError("redirect_uri", "must not carry a query or a fragment")
        if param("response_type") != "id_token":
            raise AuthorizationError("response_type", "only id_token is supported")
        if params.get("response_mode", "form_post") != "form_post":
            raise AuthorizationError("response_mode", "only form_post is supported")
        if "openid" not in param("scope").split():
            raise AuthorizationError("scope", "must include openid")
        return AuthRequest(
            client_id=client_id,
            redirect_uri=redirect_uri,
            state=param("state"),
            nonce=param("nonce"),
            login_hint=params.get("login_hint") or None,
        )

    def id_token(self, user_id: str, request: AuthRequest, now: float | None = None) -> str:
        """A signed ID token for a known user, bound to the request's client and nonce."""
        user = USERS.get(user_id)
        if user is None:
            raise AuthorizationError("user", "is not a user of this IdP")
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": request.client_id,
            "iat": issued,
            "auth_time": issued,
            "exp": issued + ID_TOKEN_TTL,
            "nonce": request.nonce,
            **user.id_token_claims(),
        }
        key = self.keys.signing_key
        return jwt.encode(
            claims, key.signing_material(), algorithm=key.algorithm, headers={"kid": key.kid}
        )

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "jwks_uri": f"{self.issuer}/jwks.json",
            "response_types_supported": ["id_token"],
            "response_modes_supported": ["form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.keys.signing_key.algorithm],
            "scopes_supported": ["openid"],
        }


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def create_idp_app(idp: DemoIdP, templates: Jinja2Templates) -> Starlette:
    """The IdP's pages and documents as an ASGI app."""

    def refuse(request: Request, error: AuthorizationError) -> Response:
        context = {"title": "Sign-in request refused", "message": str(error)}
        return templates.TemplateResponse(request, "message.html", context, status_code=400)

    async def authorize_form(request: Request) -> Response:
        try:
            auth = idp.parse(request.query_params, _origin(request))
        except AuthorizationError as error:
            return refuse(request, error)
        context = {"auth": auth, "users": list(USERS.values())}
        return templates.TemplateResponse(request, "idp_login.html", context, headers=_NO_STORE)

    async def authorize(request: Request) -> Response:
        form = await request.form()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        try:
            auth = idp.parse(params, _origin(request))
            token = idp.id_token(params.get("user", ""), auth)
        except AuthorizationError as error:
            return refuse(request, error)
        # OAuth 2.0 Form Post Response Mode: the browser posts the ID token to the client.
        context = {"action": auth.redirect_uri, "id_token": token, "state": auth.state}
        return templates.TemplateResponse(request, "idp_post.html", context, headers=_NO_STORE)

    async def home(request: Request) -> Response:
        return templates.TemplateResponse(request, "idp_home.html", {"issuer": idp.issuer})

    async def jwks(request: Request) -> Response:
        return JSONResponse(idp.keys.jwks())

    async def discovery(request: Request) -> Response:
        return JSONResponse(idp.discovery())

    return Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/authorize", authorize_form, methods=["GET"]),
            Route("/authorize", authorize, methods=["POST"]),
            Route("/jwks.json", jwks, methods=["GET"]),
            Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
        ]
    )
