"""The host's side of the SSO model: send the visitor to the IdP, verify what comes back.

``GET /sso/login`` starts a sign-in with a fresh ``state`` and ``nonce`` kept in the
session; the IdP's page posts a signed ID token to ``POST /sso/callback``, where the host
checks the state, the signature (the IdP's key), issuer, audience, expiry and nonce, then
keeps the identity claims in its session. The SSO model's engine maps those claims to the
principal. A real app does the same with Authlib (OIDC) or python3-saml.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..errors import VerificationError
from ..keys import KeySet
from ..verify import REQUIRED_CLAIMS, verify
from .login import Logins, session_user
from .users import USERS

PENDING_KEY: Final = "sso_pending"
# Protocol claims: checked here, not kept in the session.
PROTOCOL_CLAIMS: Final = frozenset({"aud", "exp", "iat", "nbf", "nonce", "auth_time", "jti"})


@dataclass(frozen=True)
class TrustedIdP:
    """What the host knows of its IdP. A real app reads the issuer and endpoints from the
    IdP's discovery document and the keys from its JWKS; here they share the process."""

    issuer: str
    keys: KeySet
    authorize_url: str
    client_id: str


def check_response(
    idp: TrustedIdP, id_token: str, state: str, pending: Any, leeway: float = 10.0
) -> dict[str, Any]:
    """The ID token's claims, if it answers the sign-in this session started; raises
    :class:`VerificationError` (whose message never holds the token)."""
    if not isinstance(pending, Mapping) or not isinstance(pending.get("state"), str):
        raise VerificationError("no sign-in was started in this session", code="no_pending_login")
    if not state or not secrets.compare_digest(state, pending["state"]):
        raise VerificationError("the state does not match this session's sign-in", code="bad_state")
    if not id_token:
        raise VerificationError("the IdP sent no ID token", code="missing_token")
    claims = verify(
        id_token,
        idp.keys,
        audience=idp.client_id,
        issuer=idp.issuer,
        leeway=leeway,
        require=(*REQUIRED_CLAIMS, "nonce"),
    )
    if not secrets.compare_digest(str(claims["nonce"]), str(pending.get("nonce", ""))):
        raise VerificationError("the nonce does not match this session's sign-in", code="bad_nonce")
    return claims


def add_sso_routes(
    app: FastAPI, idp: TrustedIdP, logins: Logins, templates: Jinja2Templates, mount: str
) -> None:
    """``GET {mount}/login`` and ``POST {mount}/callback`` on the SSO model's app."""

    @app.get("/login")
    async def start(request: Request) -> RedirectResponse:
        pending = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24)}
        request.session[PENDING_KEY] = pending
        origin = f"{request.url.scheme}://{request.url.netloc}"
        params = {
            "client_id": idp.client_id,
            "redirect_uri": f"{origin}{mount}/callback",
            "response_type": "id_token",
            "response_mode": "form_post",
            "scope": "openid",
            **pending,
        }
        user = session_user(request.session)
        if user is not None:
            params["login_hint"] = user.id
        return RedirectResponse(f"{idp.authorize_url}?{urlencode(params)}", 303)

    @app.post("/callback", response_model=None)
    async def callback(
        request: Request,
        id_token: Annotated[str, Form()] = "",
        state: Annotated[str, Form()] = "",
    ) -> Response:
        pending = request.session.pop(PENDING_KEY, None)  # one use, replays fail
        try:
            claims = check_response(idp, id_token, state, pending)
            user = USERS.get(claims["sub"])
            if user is None:
                raise VerificationError("the IdP's user is unknown here", code="unknown_user")
        except VerificationError as error:
            context = {"title": "Sign-in failed", "message": f"{error} ({error.code})"}
            return templates.TemplateResponse(request, "message.html", context, status_code=400)
        identity = {k: v for k, v in claims.items() if k not in PROTOCOL_CLAIMS}
        await logins.log_in(request, user, identity)
        return RedirectResponse(f"{mount}/", 303)
