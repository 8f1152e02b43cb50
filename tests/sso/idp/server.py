"""A real OpenID Provider on 127.0.0.1, in memory: discovery, JWKS, a login form, the
authorization code flow with PKCE (S256 required) and nonce, RS256 ID tokens, userinfo,
and back-channel logout (it POSTs signed logout tokens to the client).

Built from Authlib's server components: ``authlib.integrations.flask_oauth2``
``AuthorizationServer``, ``AuthorizationCodeGrant`` with the ``OpenIDCode`` and
``CodeChallenge`` extensions. For tests and local runs only: passwords are plain text.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify, redirect, render_template_string, request, session
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"

LOGIN_PAGE = """<!doctype html>
<html><head><title>Local IdP: sign in</title></head>
<body>
<h1>Local IdP</h1>
{% if error %}<p id="error">{{ error }}</p>{% endif %}
<form method="post" action="/login">
  <input type="hidden" name="next" value="{{ next }}">
  <label>Username <input name="username" id="username" autocomplete="username"></label>
  <label>Password <input name="password" id="password" type="password"></label>
  <button type="submit" id="sign-in">Sign in</button>
</form>
</body></html>
"""


@dataclass
class IdPUser:
    """A user of the IdP and the claims its ID tokens carry (``sub`` included)."""

    username: str
    password: str
    claims: dict[str, Any]

    @property
    def sub(self) -> str:
        return str(self.claims["sub"])


@dataclass
class IdPClient:
    """A registered relying party (confidential: client_secret_basic or _post)."""

    client_id: str
    client_secret: str
    redirect_uris: Sequence[str]
    backchannel_logout_uri: str | None = None
    scope: str = "openid email profile"

    # -- authlib ClientMixin ---------------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _Login:
    """An IdP session: who logged in, when, under which ``sid``."""

    user: IdPUser
    sid: str
    auth_time: int


@dataclass
class _Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    login: _Login
    code_challenge: str | None
    code_challenge_method: str | None
    created: float = field(default_factory=time.time)

    # -- authlib AuthorizationCodeMixin ----------------------------------------------
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.login.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]

    def is_expired(self) -> bool:
        return time.time() - self.created > 60


@dataclass
class _Token:
    access_token: str
    scope: str
    login: _Login
    expires_at: float

    def check_client(self, client: Any) -> bool:
        return True

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.expires_at - time.time())

    def is_expired(self) -> bool:
        return time.time() > self.expires_at

    def is_revoked(self) -> bool:
        return False


class LocalIdP:
    """The provider. ``issuer`` is ``http://127.0.0.1:<port>``; start it with
    :func:`running_idp` (or serve :attr:`app` any other way)."""

    def __init__(
        self,
        port: int,
        *,
        users: Sequence[IdPUser],
        clients: Sequence[IdPClient],
        host: str = "127.0.0.1",
        userinfo_only: Sequence[str] = (),
    ) -> None:
        self.issuer = f"http://{host}:{port}"
        # Claims left out of the ID token and answered by /userinfo only, as many IdPs
        # do for the email and profile scopes.
        self.userinfo_only = frozenset(userinfo_only)
        self.host, self.port = host, port
        self.users = {u.username: u for u in users}
        self.clients = {c.client_id: c for c in clients}
        self.key = RSAKey.generate_key(
            2048, parameters={"kid": f"idp-{uuid.uuid4().hex[:8]}", "use": "sig", "alg": "RS256"}
        )
        self.codes: dict[str, _Code] = {}
        self.tokens: dict[str, _Token] = {}
        self.logins: dict[str, _Login] = {}  # sid -> login
        self.lock = threading.Lock()
        self.app = self._build_app()

    # -- signing -------------------------------------------------------------------------

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def sign(self, claims: dict[str, Any], *, typ: str | None = "logout+jwt") -> str:
        header: dict[str, Any] = {"alg": "RS256", "kid": self.kid}
        if typ is not None:
            header["typ"] = typ
        return jwt.encode(header, claims, self.key)

    def logout_token(
        self,
        client_id: str,
        *,
        sid: str | None = None,
        sub: str | None = None,
        **overrides: Any,
    ) -> str:
        """A signed logout token for ``client_id`` naming ``sid`` and/or ``sub``;
        ``overrides`` change or (with None) remove claims, to build bad ones."""
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": client_id,
            "iat": int(time.time()),
            "exp": int(time.time()) + 120,
            "jti": uuid.uuid4().hex,
            "events": {BACKCHANNEL_EVENT: {}},
        }
        if sid is not None:
            claims["sid"] = sid
        if sub is not None:
            claims["sub"] = sub
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return self.sign(claims)

    def backchannel_logout(
        self, username: str, *, include_sub: bool = False, include_sid: bool = True
    ) -> list[httpx.Response]:
        """End every IdP session of ``username``: POST a logout token to each client that
        registered a ``backchannel_logout_uri``; returns their answers."""
        with self.lock:
            ended = [lg for lg in self.logins.values() if lg.user.username == username]
            for login in ended:
                self.logins.pop(login.sid, None)
        answers = []
        for login in ended:
            for client in self.clients.values():
                if client.backchannel_logout_uri is None:
                    continue
                token = self.logout_token(
                    client.client_id,
                    sid=login.sid if include_sid else None,
                    sub=login.user.sub if include_sub or not include_sid else None,
                )
                answers.append(
                    httpx.post(
                        client.backchannel_logout_uri, data={"logout_token": token}, timeout=10
                    )
                )
        return answers

    # -- the Flask app -------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("embedgate_test_idp")
        app.config.update(
            SECRET_KEY=secrets.token_hex(32),
            SESSION_COOKIE_NAME="idp_session",  # cookies ignore ports: not the RP's "session"
            OAUTH2_TOKEN_EXPIRES_IN={"authorization_code": 3600},
        )
        idp = self

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
                "client_secret_basic",
                "client_secret_post",
            ]

            def save_authorization_code(self, code: str, req: Any) -> None:
                data = req.payload.data
                with idp.lock:
                    idp.codes[code] = _Code(
                        code=code,
                        client_id=req.client.client_id,
                        redirect_uri=req.payload.redirect_uri or "",
                        scope=req.payload.scope,
                        nonce=data.get("nonce"),
                        login=req.user,
                        code_challenge=data.get("code_challenge"),
                        code_challenge_method=data.get("code_challenge_method"),
                    )

            def query_authorization_code(self, code: str, client: Any) -> _Code | None:
                with idp.lock:
                    found = idp.codes.get(code)
                if found and found.client_id == client.client_id and not found.is_expired():
                    return found
                return None

            def delete_authorization_code(self, authorization_code: _Code) -> None:
                with idp.lock:
                    idp.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: _Code) -> _Login:
                return authorization_code.login

        class OpenID(OpenIDCode):
            def exists_nonce(self, nonce: str, req: Any) -> bool:
                with idp.lock:
                    return any(c.nonce == nonce for c in idp.codes.values())

            def resolve_client_private_key(self, client: Any) -> RSAKey:
                return idp.key

            def get_client_algorithm(self, client: Any) -> str:
                return "RS256"

            def get_client_claims(self, client: Any) -> dict[str, Any]:
                return {"iss": idp.issuer, "aud": [client.get_client_id()]}

            def get_encode_header(self, client: Any) -> dict[str, Any]:
                return {"alg": "RS256", "kid": idp.kid, "typ": "JWT"}

            def generate_user_info(self, user: _Login, scope: str) -> UserInfo:
                claims = {
                    name: value
                    for name, value in user.user.claims.items()
                    if name not in idp.userinfo_only
                }
                return UserInfo({**claims, "sid": user.sid})

        def save_token(token: dict[str, Any], req: Any) -> None:
            with idp.lock:
                idp.tokens[token["access_token"]] = _Token(
                    token["access_token"],
                    token.get("scope", ""),
                    req.user,
                    time.time() + int(token.get("expires_in", 3600)),
                )

        server = AuthorizationServer(app, query_client=self.clients.get, save_token=save_token)
        server.register_grant(CodeGrant, [OpenID(require_nonce=True), CodeChallenge(required=True)])

        class Bearer(BearerTokenValidator):
            def authenticate_token(self, token_string: str) -> _Token | None:
                with idp.lock:
                    return idp.tokens.get(token_string)

        protect = ResourceProtector()
        protect.register_token_validator(Bearer())

        def current_login() -> _Login | None:
            sid = session.get("sid")
            with self.lock:
                return self.logins.get(sid) if sid else None

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            base = self.issuer
            return jsonify(
                issuer=base,
                authorization_endpoint=f"{base}/authorize",
                token_endpoint=f"{base}/token",
                userinfo_endpoint=f"{base}/userinfo",
                jwks_uri=f"{base}/jwks.json",
                response_types_supported=["code"],
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
                scopes_supported=["openid", "email", "profile"],
                token_endpoint_auth_methods_supported=[
                    "client_secret_basic",
                    "client_secret_post",
                ],
                code_challenge_methods_supported=["S256"],
                claims_supported=["sub", "email", "name", "groups", "sid"],
                backchannel_logout_supported=True,
                backchannel_logout_session_supported=True,
            )

        @app.get("/jwks.json")
        def jwks() -> Any:
            return jsonify(self.jwks())

        @app.route("/login", methods=["GET", "POST"])
        def login() -> Any:
            if request.method == "GET":
                return render_template_string(
                    LOGIN_PAGE, next=request.args.get("next", "/"), error=None
                )
            next_url = request.form.get("next", "/")
            user = self.users.get(request.form.get("username", ""))
            if user is None or not secrets.compare_digest(
                user.password, request.form.get("password", "")
            ):
                page = render_template_string(
                    LOGIN_PAGE, next=next_url, error="Wrong username or password"
                )
                return page, 401
            if not next_url.startswith("/authorize"):
                next_url = "/"
            sid = secrets.token_urlsafe(16)
            with self.lock:
                self.logins[sid] = _Login(user, sid, int(time.time()))
            session["sid"] = sid
            return redirect(next_url)

        @app.route("/authorize", methods=["GET"])
        def authorize() -> Any:
            login_ = current_login()
            if login_ is None:
                return redirect("/login?" + urlencode({"next": request.full_path}))
            try:
                grant = server.get_consent_grant(end_user=login_)
            except OAuth2Error as error:
                return jsonify(dict(error.get_body())), error.status_code
            # Consent is implied: every registered client is first-party here.
            return server.create_authorization_response(grant_user=login_, grant=grant)

        @app.post("/token")
        def token() -> Any:
            return server.create_token_response()

        @app.get("/userinfo")
        @protect("openid")
        def userinfo() -> Any:
            login_: _Login = current_token.login
            return jsonify({**login_.user.claims, "sid": login_.sid})

        @app.get("/")
        def home() -> Any:
            login_ = current_login()
            return jsonify(user=login_.user.username if login_ else None)

        return app


@contextlib.contextmanager
def running_idp(
    port: int,
    *,
    users: Sequence[IdPUser],
    clients: Sequence[IdPClient],
    userinfo_only: Sequence[str] = (),
) -> Iterator[LocalIdP]:
    """Serve a :class:`LocalIdP` on 127.0.0.1:``port`` in a thread (werkzeug, threaded)."""
    idp = LocalIdP(port, users=users, clients=clients, userinfo_only=userinfo_only)
    server = make_server("127.0.0.1", port, idp.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="local-idp", daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
