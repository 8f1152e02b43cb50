# app.py — Flask with Flask-Login. EMBEDGATE_SECRET and the other EMBEDGATE_* settings come
# from app.config or, failing that, the environment.
from __future__ import annotations

from pathlib import Path

from flask import Flask, render_template
from flask_login import LoginManager, UserMixin, login_required

from embedgate import Principal
from embedgate.integrations.flask import EmbedGate

app = Flask(__name__, template_folder=Path(__file__).parent / "templates")
app.config["SECRET_KEY"] = "change-me"  # Flask's own sessions
app.config["EMBEDGATE_AUDIENCE"] = "analytics"
app.config["EMBEDGATE_PROVIDER_URL"] = "https://bi.example.com"  # where the iframes point
login_manager = LoginManager(app)

embedgate = EmbedGate(app)  # token endpoint, page injection, template helpers, logout purge


class User(UserMixin):
    def __init__(self, id: str, tenant: str, region: str) -> None:
        self.id, self.tenant, self.region = id, tenant, region

    def embed_principal(self) -> Principal:
        """What the embed token says about this user."""
        return Principal(subject=self.id, tenant=self.tenant, attributes={"region": self.region})


USERS = {"alice": User("alice", "acme", "EU")}


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return USERS.get(user_id)


@app.get("/")
@login_required
def dashboard() -> str:
    return render_template("dashboard.html")
