"""The models' pages: one FastAPI app per model, mounted at the model's path, each with its
own :class:`~embedgate.asgi.EmbedgateMiddleware` over the shared login session.

The page asks for the token with embedgate's async FastAPI dependency; the template's
``embed_token()`` and ``embed_script()`` then reuse it. For the sandbox this matters: its
token comes from an HTTP call to the provider, which is mounted in this very server, so it
must be awaited (the sync face would block the event loop that has to answer the call).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..asgi import EmbedgateMiddleware
from ..integrations.fastapi import EmbedTokenDep, OptionalEmbedTokenDep
from ..token import EmbedToken
from .login import Logins, host_principal, session_id, session_user, sso_claims, sso_user
from .models import SSO_CLAIM_MAPPING, AuthModel, Timing
from .sso_login import TrustedIdP, add_sso_routes
from .users import CLAIMS_NAMESPACE, DemoUser

UserResolver = Callable[[MutableMapping[str, Any]], Any]


class LoginRequired(Exception):
    """Raised by a page's auth dependency: answered with a redirect to the login form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class Site:
    """What every page shares: templates, the models (the switch), timing, logins."""

    templates: Jinja2Templates
    models: Sequence[AuthModel]
    timing: Timing
    logins: Logins

    def render(
        self,
        request: Request,
        model: AuthModel,
        template: str = "dashboard.html",
        **context: Any,
    ) -> HTMLResponse:
        context.update(
            models=self.models, model=model, timing=self.timing, server_time=int(time.time())
        )
        response: HTMLResponse = self.templates.TemplateResponse(request, template, context)
        return response


def user_badge(user: DemoUser) -> dict[str, str]:
    return {"id": user.id, "name": user.name, "detail": user.describe()}


def claims_badge(claims: Mapping[str, Any]) -> dict[str, str]:
    tenant = claims.get(f"{CLAIMS_NAMESPACE}/tenant", "?")
    region = claims.get(f"{CLAIMS_NAMESPACE}/region")
    groups = ", ".join(str(g) for g in claims.get("groups") or ())
    where = f"region {region}" if region else "every region"
    return {
        "id": str(claims.get("sub", "?")),
        "name": str(claims.get("name", "")),
        "detail": f"tenant {tenant}, {where}, groups {groups or '-'} (from the IdP)",
    }


def _with_embedgate(
    app: FastAPI, model: AuthModel, user_resolver: UserResolver
) -> EmbedgateMiddleware:
    # Wrapped by hand rather than with app.add_middleware(), whose typing (Starlette's
    # middleware factory protocol) mypy --strict does not match with EmbedgateMiddleware.
    return EmbedgateMiddleware(
        app, model.engine, user_resolver=user_resolver, session_resolver=session_id
    )


def _new_app() -> FastAPI:
    return FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


def current_user(request: Request) -> DemoUser:
    """The pages' auth dependency: the logged-in user, else a redirect to the login."""
    user = session_user(request.session)
    if user is None:
        raise LoginRequired(f"{request.scope.get('root_path', '')}/")
    return user


CurrentUser = Annotated[DemoUser, Depends(current_user)]


async def _to_login(request: Request, exc: Exception) -> Response:
    next_path = exc.next_path if isinstance(exc, LoginRequired) else "/"
    return RedirectResponse(f"/login?next={next_path}", 303)


def host_model_app(site: Site, model: AuthModel) -> EmbedgateMiddleware:
    """The token-based and sandbox models: the host's own login decides who the user is."""
    app = _new_app()
    app.add_exception_handler(LoginRequired, _to_login)

    @app.get("/", response_class=HTMLResponse)
    async def dashboard(
        request: Request,
        user: CurrentUser,  # first: strangers are sent to the login before any token is made
        token: EmbedTokenDep,
    ) -> HTMLResponse:
        return site.render(request, model, who=user_badge(user), token=_describe(token))

    return _with_embedgate(app, model, host_principal)


def sso_model_app(site: Site, model: AuthModel, idp: TrustedIdP) -> EmbedgateMiddleware:
    """The SSO model: the identity provider's claims decide who the user is."""
    app = _new_app()
    add_sso_routes(app, idp, site.logins, site.templates, model.path)

    @app.get("/", response_class=HTMLResponse)
    async def dashboard(request: Request, token: OptionalEmbedTokenDep) -> HTMLResponse:
        claims = sso_claims(request.session)
        if token is None or claims is None:
            user = session_user(request.session)
            who = user_badge(user) if user else None
            return site.render(request, model, "sso_signin.html", who=who)
        return site.render(
            request,
            model,
            who=claims_badge(claims),
            token=_describe(token),
            claims=json.dumps(claims, indent=2, sort_keys=True),
            mapping=json.dumps(SSO_CLAIM_MAPPING, indent=2),
        )

    return _with_embedgate(app, model, sso_user)


def _describe(token: EmbedToken) -> dict[str, Any]:
    """What the page says about the token at render time (never the token itself: the
    template gets that from ``embed_token()``)."""
    return {"jti": token.jti, "expires_at": int(token.expires_at), "kid": token.kid}
