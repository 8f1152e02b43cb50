"""An SSO example: a Flask app that logs users in with OpenID Connect (Authlib's Flask
client: discovery, PKCE S256, ID-token verification) and hands them embed tokens with
embedgate in mode ``sso``, the IdP's claims mapped to the principal.

Settings come from the environment (or ``create_app(config)``):

- ``SSO_METADATA_URL``: the IdP's discovery document (``.../.well-known/openid-configuration``)
- ``SSO_CLIENT_ID`` / ``SSO_CLIENT_SECRET``: this app's registration at the IdP
- ``SECRET_KEY``: Flask's session key; ``EMBEDGATE_SECRET``: the embed-token HMAC secret
- any other ``EMBEDGATE_*`` setting (``EMBEDGATE_CLAIM_MAPPING`` overrides the one below)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask, redirect, render_template, session, url_for

from embedgate import Engine
from embedgate.sso import (
    BackchannelLogout,
    FlaskSSO,
    LogoutTokenVerifier,
    OIDCProvider,
    SSOSessions,
    authlib_session_claims,
    merge_userinfo,
)
from embedgate.wsgi import EmbedgateWSGIMiddleware

# The IdP's custom claims live under a namespace URI (Auth0 style): the mapping reaches
# into it with a dotted path, the URI matched as one literal key.
NAMESPACE = "https://embedgate.dev/claims"
CLAIM_MAPPING = {
    "subject": "sub",
    "tenant": f"{NAMESPACE}.tenant",
    "roles": "groups",
    "groups": None,
    "attributes": {
        "region": f"{NAMESPACE}.region",
        "employee_id": "employee_id",  # mapped, but not allowed below: dropped
    },
}

SETTINGS_FROM_ENV = ("SSO_METADATA_URL", "SSO_CLIENT_ID", "SSO_CLIENT_SECRET", "SECRET_KEY")
# The example's embedgate settings; the same EMBEDGATE_* names in the environment win.
DEFAULTS = {
    "EMBEDGATE_MODE": "sso",
    "EMBEDGATE_CLAIM_MAPPING": json.dumps(CLAIM_MAPPING),
    "EMBEDGATE_ALLOWED_ATTRIBUTES": "region",
    "EMBEDGATE_REQUIRED_ATTRIBUTES": "tenant",
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    # embedgate reads the environment only for names app.config does not set.
    app.config.update({k: v for k, v in DEFAULTS.items() if k not in os.environ})
    app.config.update({k: os.environ[k] for k in SETTINGS_FROM_ENV if k in os.environ})
    app.config.update(config or {})

    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=app.config["SSO_CLIENT_ID"],
        client_secret=app.config["SSO_CLIENT_SECRET"],
        server_metadata_url=app.config["SSO_METADATA_URL"],
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
    )

    engine = Engine.from_settings(app.config)
    sessions = SSOSessions(engine)
    verifier = LogoutTokenVerifier(
        OIDCProvider(app.config["SSO_METADATA_URL"]), app.config["SSO_CLIENT_ID"]
    )
    sso = FlaskSSO(app, sessions, backchannel=BackchannelLogout(verifier, sessions))
    app.extensions["embedgate"] = engine
    app.extensions["embedgate.sso"] = sso

    @app.get("/")
    def index() -> Any:
        claims = authlib_session_claims(session)
        return render_template("index.html", user=claims)

    @app.get("/login")
    def login() -> Any:
        return oauth.idp.authorize_redirect(url_for("callback", _external=True))

    @app.get("/callback")
    def callback() -> Any:
        token = oauth.idp.authorize_access_token()  # verifies the ID token (JWKS, nonce...)
        claims = dict(token["userinfo"])  # Authlib's name for the ID token's claims
        if oauth.idp.load_server_metadata().get("userinfo_endpoint"):
            # Many IdPs answer email/profile claims from UserInfo only, not in the ID token.
            claims = merge_userinfo(claims, oauth.idp.userinfo(token=token))
        session["user"] = claims
        sso.login(claims)
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout() -> Any:
        sso.logout()
        return redirect(url_for("index"))

    # The token endpoint is answered before Flask runs: the resolvers read Flask's
    # session cookie themselves.
    app.wsgi_app = EmbedgateWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, engine, user_resolver=sso.user, session_resolver=sso.session_id
    )
    return app
