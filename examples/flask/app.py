"""embedgate with Flask and Flask-Login: three demo users, a dashboard embedded with the
``embed_snippet`` template helper, and the token injected into every page for the browser
script to keep fresh.

Run from this folder: ``gunicorn app:app`` (or ``flask run``). Every ``EMBEDGATE_*``
setting comes from the environment (``EMBEDGATE_PROVIDER`` picks the provider; default
generic); ``EXAMPLE_EMBED_KIND``, ``EXAMPLE_EMBED_RESOURCE`` and ``EXAMPLE_EMBED_OPTIONS``
(a JSON object) choose what the page embeds; ``EXAMPLE_SERVED_BY=1`` adds an
``X-Served-By: <pid>`` header to every response, to see which worker answered.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, redirect, render_template, request, url_for
from flask_login import LoginManager, current_user, login_user, logout_user
from werkzeug.wrappers import Response

from embedgate import Principal
from embedgate.integrations.flask import EmbedGate
from embedgate.workers import require_fixed

logging.basicConfig(level=logging.INFO)
log = logging.getLogger("example")

PASSWORD = "demo"


@dataclass(frozen=True)
class User:
    """A demo user (Flask-Login's user protocol, and what the embed token says)."""

    id: str
    tenant: str
    role: str
    attributes: dict[str, str] = field(default_factory=dict)
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return self.id

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


app = Flask(__name__)
app.config.from_prefixed_env()  # FLASK_SECRET_KEY -> SECRET_KEY
if not app.config.get("SECRET_KEY"):
    require_fixed(["FLASK_SECRET_KEY"])
    log.warning("FLASK_SECRET_KEY is not set: sessions use a random key (development only)")
    app.config["SECRET_KEY"] = secrets.token_urlsafe(32)
app.config["SESSION_COOKIE_SAMESITE"] = "Lax"

login_manager = LoginManager(app)
login_manager.login_view = "login"
embedgate = EmbedGate(app, **development_settings())
EMBED = embed_settings(app.extensions["embedgate"].engine.profile)

if os.environ.get("EXAMPLE_SERVED_BY"):

    @app.after_request
    def served_by(response: Response) -> Response:
        response.headers["X-Served-By"] = str(os.getpid())
        return response


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return USERS.get(user_id)


@app.get("/")
def index() -> str:
    user = current_user if current_user.is_authenticated else None
    return render_template("index.html", user=user, embed=EMBED)


@app.get("/login")
def login_form() -> str:
    return render_template("login.html", error=None)


@app.post("/login")
def login() -> Response | tuple[str, int]:
    user = USERS.get(request.form.get("username", ""))
    password = request.form.get("password", "")
    if user is None or not secrets.compare_digest(password.encode(), PASSWORD.encode()):
        return render_template("login.html", error="Unknown user or wrong password."), 401
    login_user(user)
    return redirect(url_for("index"), 303)


@app.post("/logout")
def logout() -> Response:
    logout_user()  # Flask-Login's signal makes embedgate purge this session's tokens
    return redirect(url_for("index"), 303)


@app.get("/embedded")
def embedded() -> str:
    """Stands in for the provider's embed page (the token travels in the URL fragment)."""
    return render_template("embedded.html")
