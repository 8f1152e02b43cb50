"""Starlette under a real uvicorn: claims in Starlette's session (as an Authlib Starlette
login leaves them), embedgate's ASGI middleware, and the back-channel logout route."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route

from embedgate import Engine
from embedgate.asgi import EmbedgateMiddleware
from embedgate.sso import (
    BackchannelLogout,
    LogoutTokenVerifier,
    OIDCProvider,
    SSOSessions,
    StarletteSSO,
    starlette_backchannel_route,
)
from tests.sso.conftest import EMBED_SECRET, page_token, token_claims
from tests.sso.idp import IdPClient, LocalIdP, running_idp
from tests.support.net import free_port, wait_for_port

CLIENT = "starlette-rp"


def build_app(idp: LocalIdP) -> tuple[Starlette, Engine]:
    engine = Engine.from_settings(
        environ={},
        mode="sso",
        secret=EMBED_SECRET,
        claim_mapping='{"tenant": "org", "attributes": {"region": "geo.region"}}',
    )
    sessions = SSOSessions(engine)
    sso = StarletteSSO(sessions)
    verifier = LogoutTokenVerifier(OIDCProvider(issuer=idp.issuer), CLIENT)

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><html><head></head><body>hi</body></html>")

    async def signed_in(request: Request) -> RedirectResponse:
        # What an Authlib Starlette callback stores after authorize_access_token().
        claims: dict[str, Any] = {
            "iss": idp.issuer,
            "sub": "carol",
            "sid": "idp-sid-1",
            "org": "initech",
            "geo": {"region": "apac"},
        }
        request.session["user"] = claims
        sso.login(request, claims)
        return RedirectResponse("/", status_code=303)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/signed-in", signed_in, methods=["POST"]),
            starlette_backchannel_route(BackchannelLogout(verifier, sessions)),
        ],
        middleware=[
            Middleware(SessionMiddleware, secret_key="s" * 32),  # outside embedgate's
            Middleware(
                EmbedgateMiddleware,
                engine=engine,
                user_resolver=sso.user,
                session_resolver=sso.session_id,
            ),
        ],
    )
    return app, engine


@pytest.fixture
def served() -> Iterator[tuple[str, LocalIdP, Engine]]:
    port = free_port()
    client = IdPClient(CLIENT, "secret", ["http://127.0.0.1:1/cb"])
    with running_idp(free_port(), users=[], clients=[client]) as idp:
        app, engine = build_app(idp)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            wait_for_port(port)
            yield f"http://127.0.0.1:{port}", idp, engine
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def test_starlette_session_claims_to_token_and_backchannel_logout(
    served: tuple[str, LocalIdP, Engine],
) -> None:
    base, idp, engine = served
    with httpx.Client(base_url=base, timeout=10) as browser:
        assert page_token(browser.get("/").text) is None  # anonymous: nothing injected
        page = browser.post("/signed-in", follow_redirects=True)
        payload = page_token(page.text)
        assert payload is not None
        claims = token_claims(payload["token"])
        assert (claims["sub"], claims["tenant"]) == ("carol", "initech")
        assert claims["attributes"] == {"region": "apac"}
        endpoint = browser.post(
            "/_embedgate/token", headers={"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}
        )
        assert endpoint.json()["token"] == payload["token"]

        token = idp.logout_token(CLIENT, sid="idp-sid-1")
        answer = httpx.post(f"{base}/backchannel-logout", data={"logout_token": token})
        assert answer.status_code == 200, answer.text
        assert len(engine.service.cache) == 0  # type: ignore[arg-type]
        assert page_token(browser.get("/").text) is None
        bad = httpx.post(f"{base}/backchannel-logout", data={"logout_token": "x.y.z"})
        assert bad.status_code == 400
