"""embedgate with Litestar: three demo users behind a cookie session, a dashboard embedded
with the ``embed_snippet`` template callable, and the token injected into every page for the
browser script to keep fresh.

Run from this folder: ``uvicorn app:app``. Every ``EMBEDGATE_*`` setting comes from the
environment (``EMBEDGATE_PROVIDER`` picks the provider; default generic);
``EXAMPLE_EMBED_KIND``, ``EXAMPLE_EMBED_RESOURCE`` and ``EXAMPLE_EMBED_OPTIONS`` (a JSON
object) choose what the page embeds; ``SESSION_SECRET`` (at least 16 bytes, hex) signs the
session cookie.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from litestar import Litestar, Request, get, post
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.params import Body
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from embedgate import Engine, Principal
from embedgate.integrations.litestar import EmbedGatePlugin, logout
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

    def embed_principal(self) -> Principal:
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


def session_secret() -> bytes:
    secret = os.environ.get("SESSION_SECRET")
    if secret:
        return bytes.fromhex(secret)[:32].ljust(16, b"\0")
    require_fixed(["SESSION_SECRET"])
    log.warning("SESSION_SECRET is not set: sessions use a random key (development only)")
    return secrets.token_bytes(16)


class SessionUser(AbstractAuthenticationMiddleware):
    """The app's authentication: the session's user becomes ``request.user`` (None when
    nobody is logged in; pages then show the login link)."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Any:
        name = connection.session.get("user") if "session" in connection.scope else None
        return AuthenticationResult(user=USERS.get(name or ""), auth=None)


engine = Engine.from_settings(**development_settings())
EMBED = embed_settings(engine.profile)


@get("/", sync_to_thread=False)
def index(request: Request[User | None, Any, Any]) -> Template:
    return Template("index.html", context={"user": request.user, "embed": EMBED})


@get("/login", sync_to_thread=False)
def login_form() -> Template:
    return Template("login.html", context={"error": None})


@post("/login", status_code=303)
async def login(
    request: Request[Any, Any, Any],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template | Redirect:
    user = USERS.get(data.get("username", ""))
    password = data.get("password", "").encode()
    if user is None or not secrets.compare_digest(password, PASSWORD.encode()):
        context = {"error": "Unknown user or wrong password."}
        return Template("login.html", context=context, status_code=401)
    request.clear_session()
    request.set_session({"user": user.id})
    return Redirect("/", status_code=303)


@post("/logout", status_code=303)
async def logout_route(request: Request[Any, Any, Any]) -> Redirect:
    await logout(request)  # purge this session's embed tokens
    request.clear_session()
    return Redirect("/", status_code=303)


@get("/embedded", sync_to_thread=False)
def embedded() -> Template:
    """Stands in for the provider's embed page (the token travels in the URL fragment)."""
    return Template("embedded.html")


sessions = CookieBackendConfig(secret=session_secret(), samesite="lax")
app = Litestar(
    [index, login_form, login, logout_route, embedded],
    # Session first (outermost), then the app's authentication; the plugin appends
    # embedgate's middleware after them, so its token endpoint sees request.user.
    middleware=[sessions.middleware, DefineMiddleware(SessionUser)],
    plugins=[EmbedGatePlugin(engine=engine)],
    template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
)
