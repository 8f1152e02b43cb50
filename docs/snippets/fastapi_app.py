# app.py — FastAPI. EMBEDGATE_SECRET and the other EMBEDGATE_* settings come from the
# environment (or keyword arguments of add_middleware).
from __future__ import annotations

import os
import secrets
from collections.abc import MutableMapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from embedgate import Principal
from embedgate.asgi import EmbedgateMiddleware
from embedgate.integrations.fastapi import EmbedTokenDep, install_templates

USERS = {"alice": Principal(subject="alice", tenant="acme", attributes={"region": "EU"})}


def session_user(scope: MutableMapping[str, Any]) -> Principal | None:
    """Who gets tokens, on pages and on embedgate's endpoint (which runs before any route)."""
    return USERS.get(scope.get("session", {}).get("user", ""))


app = FastAPI()
app.add_middleware(
    EmbedgateMiddleware,
    user_resolver=session_user,
    provider_url="https://bi.example.com",  # where the iframes point
)
app.add_middleware(SessionMiddleware, secret_key=os.environ["SESSION_SECRET"])  # outermost
templates = install_templates(Jinja2Templates(directory=Path(__file__).parent / "templates"))


@app.post("/login")
def login(
    request: Request, username: Annotated[str, Form()], password: Annotated[str, Form()]
) -> RedirectResponse:
    if username not in USERS or not secrets.compare_digest(password, "demo"):  # your check
        raise HTTPException(401)
    request.session["user"] = username
    return RedirectResponse("/", 303)


@app.get("/", response_class=HTMLResponse)
def dashboard(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "dashboard.html")  # uses embed_snippet()


@app.get("/api/embed-token")
def api_token(token: EmbedTokenDep, response: Response) -> dict[str, object]:
    """For a single-page app: the token as JSON (401 when nobody is logged in)."""
    response.headers["Cache-Control"] = "no-store"
    return {"token": token.token, "expires_at": int(token.expires_at)}
