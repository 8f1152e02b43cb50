# app.py — a complete Flask + Flask-Login app. Only the lines marked `# embedgate` are
# embedgate's; the rest is the host app you already have.
from __future__ import annotations

import os
import secrets

from flask import Flask, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, login_required, login_user, logout_user

from embedgate import Principal  # embedgate
from embedgate.integrations.flask import EmbedGate  # embedgate

app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ["SESSION_SECRET"]  # Flask's session cookie
app.config["EMBEDGATE_AUDIENCE"] = "analytics"  # embedgate (EMBEDGATE_SECRET: environment)
app.config["EMBEDGATE_PROVIDER_URL"] = "https://bi.example.com"  # embedgate: the iframes' origin
login_manager = LoginManager(app)
login_manager.login_view = "login"

embedgate = EmbedGate(app)  # embedgate: endpoint, injection, template helpers, logout purge


class User(UserMixin):
    def __init__(self, id: str, tenant: str, region: str) -> None:
        self.id, self.tenant, self.region = id, tenant, region

    def embed_principal(self) -> Principal:  # embedgate: what the token says about the user
        return Principal(subject=self.id, tenant=self.tenant, attributes={"region": self.region})


USERS = {"alice": User("alice", "acme", "EU"), "bob": User("bob", "globex", "US")}


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return USERS.get(user_id)


@app.route("/login", methods=["GET", "POST"])
def login() -> object:
    if request.method == "POST":
        user = USERS.get(request.form.get("username", ""))
        if user and secrets.compare_digest(request.form.get("password", ""), "demo"):
            login_user(user)
            return redirect(url_for("dashboard"))
    return render_template("login.html")


@app.post("/logout")
def logout() -> object:
    logout_user()  # embedgate purges the session's tokens (also if you just clear the session)
    return redirect(url_for("login"))


@app.get("/")
@login_required
def dashboard() -> str:
    return render_template("dashboard.html")  # uses embed_snippet()
