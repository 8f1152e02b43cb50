# app.py — a complete FastAPI app with a session login. Only the lines marked `# embedgate`
# are embedgate's; the rest is the host app you already have.
from __future__ import annotations

import os
import secrets
from collections.abc import MutableMapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from embedgate import Principal  # embedgate
from embedgate.asgi import EmbedgateMiddleware  # embedgate
from embedgate.integrations.fastapi import EmbedTokenDep, install_templates  # embedgate

BI = "https://bi.example.com"  # the analytics provider the iframes point at
USERS = {
    "alice": Principal(subject="alice", tenant="acme", attributes={"region": "EU"}),
    "bob": Principal(subject="bob", tenant="globex", attributes={"region": "US"}),
}


def session_user(scope: MutableMapping[str, Any]) -> Principal | None:  # embedgate
    """Who gets tokens, on pages and on the token endpoint (which runs before any route)."""
    return USERS.get(scope.get("session", {}).get("user", ""))


app = FastAPI()
app.add_middleware(EmbedgateMiddleware, user_resolver=session_user, provider_url=BI)  # embedgate
# Added last, so outermost: it runs first and embedgate sees the session (Starlette's rule).
app.add_middleware(SessionMiddleware, secret_key=os.environ["SESSION_SECRET"])
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
install_templates(templates)  # embedgate: embed_token(), embed_snippet(), embed_script()


@app.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html")


@app.post("/login")
def login(
    request: Request, username: Annotated[str, Form()], password: Annotated[str, Form()]
) -> RedirectResponse:
    if username not in USERS or not secrets.compare_digest(password, "demo"):  # your check
        return RedirectResponse("/login", 303)
    request.session["user"] = username
    return RedirectResponse("/", 303)


@app.post("/logout")
def logout(request: Request) -> RedirectResponse:
    request.session.clear()  # embedgate purges the session's tokens when its user is gone
    return RedirectResponse("/login", 303)


@app.get("/", response_class=HTMLResponse)
def dashboard(request: Request) -> Response:
    if session_user(request.scope) is None:
        return RedirectResponse("/login", 303)
    return templates.TemplateResponse(request, "dashboard.html")  # uses embed_snippet()


@app.get("/api/embed-token")
def api_token(token: EmbedTokenDep, response: Response) -> dict[str, object]:  # embedgate
    """For a single-page app: the token as JSON (401 when nobody is logged in)."""
    response.headers["Cache-Control"] = "no-store"
    return {"token": token.token, "expires_at": int(token.expires_at)}
