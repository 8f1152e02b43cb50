"""The demo host: one FastAPI app holding everything ``embedgate demo`` serves.

::

    /login, /logout        the host's own login (alice, bob, carol; password "demo")
    /token/                model 1: JWTs the host signs            (EmbedgateMiddleware)
    /sandbox/              model 2: API-key sandbox, DEV ONLY       (EmbedgateMiddleware)
    /sso/                  model 3: claims from an identity provider (EmbedgateMiddleware)
    /idp/                  the demo identity provider
    /provider/             the demo analytics provider (data API, <demo-dashboard>)
    /assets/               the host's CSS and page script

Keys, the API key and the session secret are generated at start-up; tokens are cached in
memory; nothing is downloaded.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from ..integrations.fastapi import install_templates
from ..issuers.remote import RemoteMinter
from ..keys import generate_private_pem, keyset_from_config
from ..secret import Secret
from .idp import DemoIdP, create_idp_app
from .login import FLASH_KEY, Logins, session_user
from .models import (
    HOST_ISSUER,
    PROVIDER_AUDIENCE,
    AuthModel,
    Timing,
    sandbox_model,
    sso_model,
    token_model,
)
from .pages import Site, host_model_app, sso_model_app
from .provider import create_provider_app
from .sso_login import TrustedIdP
from .users import PASSWORD, USERS

TEMPLATES: Final = Path(__file__).parent / "templates"
SESSION_COOKIE: Final = "embedgate_demo_session"
SSO_CLIENT_ID: Final = "embedgate-demo-host"
ASSETS: Final = {
    "demo-host.css": "text/css; charset=utf-8",
    "demo-host.js": "text/javascript; charset=utf-8",
}


def _assets() -> dict[str, bytes]:
    folder = resources.files("embedgate.demo").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in ASSETS}


def create_demo_app(base_url: str, ttl: int = 60) -> FastAPI:
    """The whole demo as one ASGI app. ``base_url`` is where this server reaches itself
    (the sandbox's provider URL, the IdP's issuer), e.g. ``http://127.0.0.1:8000``."""
    timing = Timing.for_ttl(ttl)
    host_key = Secret(generate_private_pem("EdDSA"))
    api_key = Secret(secrets.token_urlsafe(32))
    token, sandbox, sso = (
        token_model(timing, host_key),
        sandbox_model(timing, f"{base_url}/provider", api_key),
        sso_model(timing, host_key),
    )
    models = (token, sandbox, sso)
    logins = Logins([m.engine for m in models])
    templates = install_templates(Jinja2Templates(directory=TEMPLATES))
    site = Site(templates, models, timing, logins)
    idp = DemoIdP(f"{base_url}/idp", {SSO_CLIENT_ID: f"{sso.path}/callback"})
    trusted = TrustedIdP(idp.issuer, idp.keys, "/idp/authorize", SSO_CLIENT_ID)
    # The provider trusts the host's key (a real one would fetch /token/_embedgate/jwks.json).
    provider = create_provider_app(
        keys=keyset_from_config(token.engine.config),
        audience=PROVIDER_AUDIENCE,
        issuer=HOST_ISSUER,
        api_key=api_key,
        token_ttl=ttl,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        issuer = sandbox.engine.service.issuer
        if isinstance(issuer, RemoteMinter):
            await issuer.aclose()

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    _add_login_routes(app, site, token)
    assets = _assets()

    @app.get("/assets/{name}")
    async def asset(name: str) -> Response:
        if name not in assets:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(
            assets[name], media_type=ASSETS[name], headers={"Cache-Control": "no-cache"}
        )

    app.mount(token.path, host_model_app(site, token))
    app.mount(sandbox.path, host_model_app(site, sandbox))
    app.mount(sso.path, sso_model_app(site, sso, trusted))
    app.mount("/idp", create_idp_app(idp, templates))
    app.mount("/provider", provider)
    # Outermost: every mount (and its embedgate middleware) sees the login session.
    app.add_middleware(
        SessionMiddleware,
        secret_key=secrets.token_urlsafe(32),
        session_cookie=SESSION_COOKIE,
        same_site="lax",
    )
    return app


def _safe_next(site: Site, value: str | None, default: AuthModel) -> str:
    """Only the models' own pages: never an open redirect."""
    wanted = {f"{m.path}/" for m in site.models}
    return value if value in wanted else f"{default.path}/"


def _add_login_routes(app: FastAPI, site: Site, default: AuthModel) -> None:
    templates = site.templates

    def login_page(
        request: Request, next_path: str, error: str | None = None, status: int = 200
    ) -> HTMLResponse:
        context: dict[str, Any] = {
            "users": list(USERS.values()),
            "password": PASSWORD,
            "next": next_path,
            "error": error,
            "flash": request.session.pop(FLASH_KEY, None),
        }
        response: HTMLResponse = templates.TemplateResponse(
            request, "login.html", context, status_code=status
        )
        return response

    @app.get("/")
    async def index(request: Request) -> RedirectResponse:
        user = session_user(request.session)
        return RedirectResponse(f"{default.path}/" if user else "/login", 303)

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(
        request: Request, next_path: Annotated[str | None, Query(alias="next")] = None
    ) -> HTMLResponse:
        return login_page(request, _safe_next(site, next_path, default))

    @app.post("/login", response_model=None)
    async def login(
        request: Request,
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        next_path: Annotated[str, Form(alias="next")] = "",
    ) -> Response:
        target = _safe_next(site, next_path, default)
        user = USERS.get(username.strip().lower())
        if user is None or not secrets.compare_digest(password.encode(), PASSWORD.encode()):
            return login_page(request, target, "Unknown user or wrong password.", 401)
        await site.logins.log_in(request, user)
        return RedirectResponse(target, 303)

    @app.post("/logout")
    async def logout(request: Request) -> RedirectResponse:
        purged = await site.logins.log_out(request)
        request.session[FLASH_KEY] = (
            f"Logged out. {purged} cached embed token{'' if purged == 1 else 's'} "
            "of your session purged."
        )
        return RedirectResponse("/login", 303)
