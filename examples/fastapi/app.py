"""embedgate with FastAPI: three demo users behind a signed session cookie, a dashboard
embedded with the ``embed_snippet`` template helper, and the token injected into every
page for the browser script to keep fresh.

Run from this folder: ``uvicorn app:app``. Every ``EMBEDGATE_*`` setting comes from the
environment (``EMBEDGATE_PROVIDER`` picks the provider; default generic);
``EXAMPLE_EMBED_KIND``, ``EXAMPLE_EMBED_RESOURCE`` and ``EXAMPLE_EMBED_OPTIONS`` (a JSON
object) choose what the page embeds; ``SESSION_SECRET`` signs the session cookie;
``EXAMPLE_SERVED_BY=1`` adds an ``X-Served-By: <pid>`` header to every response, to see
which worker answered.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Send

from embedgate import Engine, Principal
from embedgate.asgi import EmbedgateMiddleware, Scope, scope_user
from embedgate.integrations.fastapi import install_templates, logout
from embedgate.workers import require_fixed

logging.basicConfig(level=logging.INFO)
log = logging.getLogger("example")

HERE = Path(__file__).parent
PASSWORD = "demo"


@dataclass(frozen=True)
class User:
    """A demo user, and what the embed token says about them."""

    id: str
    tenant: str
    role: str
    attributes: dict[str, str] = field(default_factory=dict)

    def principal(self) -> Principal:
        return Principal(
            subject=self.id, tenant=self.tenant, roles=(self.role,), attributes=self.attributes
        )


USERS = {
    "alice": User("alice", "acme", "analyst", {"region": "EU"}),
    "bob": User("bob", "globex", "viewer", {"region": "US"}),
    "carol": User("carol", "acme", "admin"),  # no region: sees every region
}


def development_settings() -> dict[str, Any]:
    """A random HMAC secret when the generic provider has no key configured."""
    keyed = ("EMBEDGATE_SECRET", "EMBEDGATE_PRIVATE_KEY", "EMBEDGATE_PRIVATE_KEY_FILE")
    generic = os.environ.get("EMBEDGATE_PROVIDER", "generic").lower() == "generic"
    if not generic or any(os.environ.get(name) for name in keyed):
        return {}
    require_fixed(["EMBEDGATE_SECRET"])  # several workers: one random secret each would fail
    log.warning(
        "EMBEDGATE_SECRET is not set: signing with a random secret made at start-up. "
        "FOR DEVELOPMENT ONLY: tokens die with the process and no provider can verify them."
    )
    return {"secret": secrets.token_urlsafe(32)}


def embed_settings(profile: Any) -> dict[str, Any]:
    """What the page embeds: kind, resource and snippet options (from the environment)."""
    kinds = tuple(getattr(profile, "snippet_kinds", ())) or ("iframe",)
    default_options = (
        {"url": "/embedded#token={token}", "title": "Sales dashboard", "height": "320"}
        if profile.name == "generic"
        else {}
    )
    options = json.loads(os.environ.get("EXAMPLE_EMBED_OPTIONS") or "null") or default_options
    return {
        "kind": os.environ.get("EXAMPLE_EMBED_KIND") or kinds[0],
        "resource": os.environ.get("EXAMPLE_EMBED_RESOURCE") or "sales",
        "options": options,
    }


def session_secret() -> str:
    secret = os.environ.get("SESSION_SECRET")
    if secret:
        return secret
    require_fixed(["SESSION_SECRET"])
    log.warning("SESSION_SECRET is not set: sessions use a random key (development only)")
    return secrets.token_urlsafe(32)


engine = Engine.from_settings(**development_settings())
EMBED = embed_settings(engine.profile)


def session_user(session: Mapping[str, Any]) -> User | None:
    return USERS.get(session.get("user", ""))


def current_user(request: Request) -> User | None:
    """The routes' auth dependency; it hands the user to embedgate in ``request.state``."""
    user = session_user(request.session)
    request.state.embedgate_user = user.principal() if user else None
    return user


def embed_user(scope: Scope) -> Any:
    """Who embedgate issues for: what a route's dependency handed over, else the session's
    user. embedgate's token endpoint answers before any route (or dependency) runs."""
    handed = scope_user(scope)
    if handed is not None:
        return handed
    user = session_user(scope.get("session") or {})
    return user.principal() if user else None


class ServedBy:
    """Pure ASGI middleware: ``X-Served-By: <pid>`` on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                pid = (b"x-served-by", str(os.getpid()).encode())
                message = {**message, "headers": [*message.get("headers", ()), pid]}
            await send(message)

        await self.app(scope, receive, send_with_pid)


app = FastAPI()
app.add_middleware(EmbedgateMiddleware, engine=engine, user_resolver=embed_user)
# Added last, so outermost: the session is in the scope before embedgate runs.
app.add_middleware(SessionMiddleware, secret_key=session_secret(), same_site="lax")
if os.environ.get("EXAMPLE_SERVED_BY"):
    app.add_middleware(ServedBy)  # outermost: it sees embedgate's own answers too
templates = install_templates(Jinja2Templates(directory=HERE / "templates"))


CurrentUser = Annotated[User | None, Depends(current_user)]


@app.get("/", response_class=HTMLResponse)
def index(request: Request, user: CurrentUser) -> HTMLResponse:
    return templates.TemplateResponse(request, "index.html", {"user": user, "embed": EMBED})


@app.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"error": None})


@app.post("/login", response_model=None)
def login(
    request: Request, username: Annotated[str, Form()], password: Annotated[str, Form()]
) -> HTMLResponse | RedirectResponse:
    user = USERS.get(username)
    if user is None or not secrets.compare_digest(password.encode(), PASSWORD.encode()):
        context = {"error": "Unknown user or wrong password."}
        return templates.TemplateResponse(request, "login.html", context, status_code=401)
    request.session.clear()
    request.session["user"] = user.id
    return RedirectResponse("/", 303)


@app.post("/logout")
async def logout_route(request: Request) -> RedirectResponse:
    await logout(request)  # purge this session's embed tokens
    request.session.clear()
    return RedirectResponse("/", 303)


@app.get("/embedded", response_class=HTMLResponse)
def embedded(request: Request) -> HTMLResponse:
    """Stands in for the provider's embed page (the token travels in the URL fragment)."""
    return templates.TemplateResponse(request, "embedded.html")
