"""embedgate with Quart and Quart-Auth: three demo users, a dashboard embedded with the
``embed_snippet`` template global, and the token injected into every page for the browser
script to keep fresh.

Run from this folder: ``hypercorn app:app``. Every ``EMBEDGATE_*`` setting comes from the
environment (``EMBEDGATE_PROVIDER`` picks the provider; default generic);
``EXAMPLE_EMBED_KIND``, ``EXAMPLE_EMBED_RESOURCE`` and ``EXAMPLE_EMBED_OPTIONS`` (a JSON
object) choose what the page embeds; ``SESSION_SECRET`` signs Quart-Auth's cookie.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from quart import Quart, redirect, render_template, request
from quart_auth import AuthUser, QuartAuth, current_user, login_user, logout_user
from werkzeug.wrappers import Response as WerkzeugResponse

from embedgate import Principal
from embedgate.integrations.quart import EmbedGate
from embedgate.workers import require_fixed

logging.basicConfig(level=logging.INFO)
log = logging.getLogger("example")

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


class ExampleUser(AuthUser):
    """Quart-Auth's user (its ``auth_id`` is the user name) saying who it is to embedgate."""

    @property
    def user(self) -> User | None:
        return USERS.get(self.auth_id or "")

    def embed_principal(self) -> Principal | None:
        user = self.user
        return user.principal() if user else None


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


app = Quart(__name__)
app.secret_key = session_secret()
# Plain http on 127.0.0.1 here: a Secure cookie would never come back. Keep it on in production.
app.config["QUART_AUTH_COOKIE_SECURE"] = os.environ.get("EXAMPLE_SECURE_COOKIES") == "1"
auth = QuartAuth(app)
auth.user_class = ExampleUser
embedgate = EmbedGate(app, **development_settings())
EMBED = embed_settings(app.extensions["embedgate"].engine.profile)


@app.get("/")
async def index() -> str:
    user = current_user.user if await current_user.is_authenticated else None  # type: ignore[attr-defined]
    return await render_template("index.html", user=user, embed=EMBED)


@app.get("/login")
async def login_form() -> str:
    return await render_template("login.html", error=None)


@app.post("/login")
async def login() -> Any:
    form = await request.form
    user = USERS.get(form.get("username", ""))
    password = form.get("password", "").encode()
    if user is None or not secrets.compare_digest(password, PASSWORD.encode()):
        page = await render_template("login.html", error="Unknown user or wrong password.")
        return page, 401
    login_user(ExampleUser(user.id))
    return redirect("/", 303)


@app.post("/logout")
async def logout() -> WerkzeugResponse:
    await embedgate.logout()  # purge this session's embed tokens
    logout_user()
    return redirect("/", 303)


@app.get("/embedded")
async def embedded() -> str:
    """Stands in for the provider's embed page (the token travels in the URL fragment)."""
    return await render_template("embedded.html")
