"""A SAML example: a Flask service provider (pysaml2) that signs users in at a SAML 2.0
identity provider and hands them embed tokens with embedgate in mode ``sso``, the
assertion's attributes mapped to the principal by the ``saml`` claim-mapping preset.

Settings come from the environment (or ``create_app(config)``):

- ``SAML_IDP_METADATA``: the IdP's metadata: a URL, a file path or the XML itself
- ``SAML_SP_BASE_URL``: where this app is reached (``http://127.0.0.1:8000``); the entity
  id is ``{base}/saml/metadata`` unless ``SAML_SP_ENTITY_ID`` says otherwise
- ``SAML_SP_KEY_FILE`` / ``SAML_SP_CERT_FILE``: this SP's key and certificate (PEM), to
  sign its LogoutRequests/Responses
- ``SAML_XMLSEC_BINARY``: the ``xmlsec1`` binary (found on ``PATH`` by default)
- ``SECRET_KEY``: Flask's session key; ``EMBEDGATE_SECRET``: the embed-token HMAC secret;
  ``EMBEDGATE_REDIS_URL`` shares tokens, sessions and replay state between workers
- any other ``EMBEDGATE_*`` setting (``EMBEDGATE_CLAIM_MAPPING`` overrides the one below)
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, abort, redirect, render_template, request, session, url_for
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NameID
from saml2.samlp import response_from_string
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from embedgate import Engine
from embedgate.sso import (
    FlaskSSO,
    RedisSessionIndex,
    SAMLRequestState,
    SSOSessions,
    diagnose_response,
    pysaml2_claims,
    saml_error_code,
    saml_logout,
)
from embedgate.wsgi import EmbedgateWSGIMiddleware

# The saml preset reads the NameID as the subject, mail/displayName/groups by their URIs
# or friendly names; the tenant and region are plain custom attributes.
CLAIM_MAPPING = {
    "preset": "saml",
    "tenant": "tenant",
    "attributes": {"region": "region"},
}
SETTINGS_FROM_ENV = (
    "SAML_IDP_METADATA",
    "SAML_SP_BASE_URL",
    "SAML_SP_ENTITY_ID",
    "SAML_SP_KEY_FILE",
    "SAML_SP_CERT_FILE",
    "SAML_XMLSEC_BINARY",
    "SECRET_KEY",
)
SESSION_CLAIMS = "saml"
BROWSER_COOKIE = "embedgate_saml_request"
BINDINGS = {"redirect": BINDING_HTTP_REDIRECT, "post": BINDING_HTTP_POST}

REASONS = {
    "unsigned": "the identity provider's assertion is not signed",
    "bad_signature": "the assertion's signature does not verify against the identity "
    "provider's certificate",
    "expired": "the assertion has expired",
    "not_yet_valid": "the assertion is not valid yet",
    "wrong_audience": "the assertion is meant for another service provider (audience)",
    "wrong_recipient": "the assertion is addressed to another URL (recipient)",
    "unsolicited": "the response answers no sign-in this app started, or was already used",
    "replayed": "the assertion was already used",
    "invalid": "the response is not a valid SAML response",
}


def _metadata_source(value: str) -> dict[str, Any]:
    value = value.strip()
    if value.startswith("<"):
        return {"inline": [value]}
    if value.startswith(("https://", "http://")):
        return {"remote": [{"url": value}]}
    return {"local": [value]}


def sp_config(config: Mapping[str, Any]) -> SPConfig:
    """pysaml2's SP configuration: signed assertions required, no unsolicited responses."""
    base = config["SAML_SP_BASE_URL"].rstrip("/")
    settings: dict[str, Any] = {
        "entityid": config.get("SAML_SP_ENTITY_ID") or f"{base}/saml/metadata",
        "service": {
            "sp": {
                "name": "embedgate SAML example",
                "endpoints": {
                    "assertion_consumer_service": [(f"{base}/saml/acs", BINDING_HTTP_POST)],
                    "single_logout_service": [
                        (f"{base}/saml/slo", BINDING_HTTP_REDIRECT),
                        (f"{base}/saml/slo", BINDING_HTTP_POST),
                    ],
                },
                "want_assertions_signed": True,
                "want_response_signed": False,
                "allow_unsolicited": False,
                "authn_requests_signed": True,
                "logout_requests_signed": True,
                "want_logout_requests_signed": True,
            }
        },
        "key_file": config["SAML_SP_KEY_FILE"],
        "cert_file": config["SAML_SP_CERT_FILE"],
        "xmlsec_binary": config.get("SAML_XMLSEC_BINARY") or shutil.which("xmlsec1"),
        "allow_unknown_attributes": True,
        "accepted_time_diff": 60,
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
    }
    if config.get("SAML_IDP_METADATA"):
        settings["metadata"] = _metadata_source(config["SAML_IDP_METADATA"])
    sp = SPConfig()
    sp.load(settings)
    # pysaml2 checks the signature of incoming requests (the IdP's LogoutRequest: the
    # HTTP-Redirect SigAlg/Signature, the HTTP-POST XML signature) only when this IdP-side
    # flag is set; without it an unsigned LogoutRequest would end anyone's session.
    sp.setattr("idp", "want_authn_requests_signed", True)
    return sp


def sp_metadata(config: Mapping[str, Any]) -> str:
    """This SP's metadata XML (for the IdP)."""
    return bytes(create_metadata_string(None, config=sp_config(config), valid=None)).decode()


def _safe_next(value: str | None) -> str:
    # Only local paths: the relay state must not become an open redirect.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        EMBEDGATE_MODE="sso",
        EMBEDGATE_CLAIM_MAPPING=json.dumps(CLAIM_MAPPING),
        EMBEDGATE_ALLOWED_ATTRIBUTES="region",
        EMBEDGATE_REQUIRED_ATTRIBUTES="tenant",
    )
    app.config.update({k: os.environ[k] for k in SETTINGS_FROM_ENV if k in os.environ})
    app.config.update(config or {})

    client = Saml2Client(config=sp_config(app.config))
    idp_entity_id = next(iter(client.metadata.identity_providers()))
    engine = Engine.from_settings(app.config)
    redis_client = None
    if engine.config.redis_url:
        import redis

        redis_client = redis.Redis.from_url(engine.config.redis_url)
    state = SAMLRequestState(redis=redis_client)
    # With Redis, the login index is shared: a logout reaching one worker ends the
    # sessions every worker opened.
    index = RedisSessionIndex(redis_client) if redis_client is not None else None
    sessions = SSOSessions(engine, index=index, issuer=idp_entity_id)
    sso = FlaskSSO(app, sessions, reader=lambda s: s.get(SESSION_CLAIMS))
    app.extensions.update(
        {"embedgate": engine, "embedgate.sso": sso, "saml.client": client, "saml.state": state}
    )

    acs_url = f"{app.config['SAML_SP_BASE_URL'].rstrip('/')}/saml/acs"

    def diagnose(encoded: str) -> str:
        xml = base64.b64decode(encoded)
        return diagnose_response(xml, acs_url=acs_url, entity_id=client.config.entityid)

    def failed(code: str, status: int = 400) -> Any:
        return render_template("error.html", reason=REASONS.get(code, code), code=code), status

    @app.get("/")
    def index() -> Any:
        claims = session.get(SESSION_CLAIMS)
        # The page shows who the token is for: the principal the claim mapping makes.
        principal = engine.principal_for(claims) if claims else None
        return render_template("index.html", user=principal)

    @app.get("/saml/metadata")
    def metadata() -> Any:
        return sp_metadata(app.config), 200, {"content-type": "application/samlmetadata+xml"}

    @app.get("/login")
    def login() -> Any:
        """SP-initiated login; ``?binding=post`` sends the AuthnRequest with HTTP-POST."""
        binding = BINDINGS.get(request.args.get("binding", "redirect"))
        if binding is None:
            abort(400)
        request_id, info = client.prepare_for_authenticate(
            entityid=idp_entity_id,
            binding=binding,
            relay_state="embedgate",
            sigalg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        # The response must come back to this browser: a secret in a cookie scoped to the
        # ACS binds the request to it (the IdP's POST is cross-site: SameSite=None needs
        # HTTPS; over plain HTTP, Lax works while the IdP is on the same site).
        browser = secrets.token_urlsafe(24)
        state.add(request_id, _safe_next(request.args.get("next")), browser=browser)
        if binding == BINDING_HTTP_REDIRECT:
            response = redirect(dict(info["headers"])["Location"])
        else:
            response = app.make_response(
                (info["data"], 200, {"content-type": "text/html; charset=utf-8"})
            )
        response.set_cookie(
            BROWSER_COOKIE,
            browser,
            max_age=600,
            path="/saml/acs",
            httponly=True,
            secure=request.is_secure,
            samesite="None" if request.is_secure else "Lax",
        )
        return response

    @app.post("/saml/acs")
    def acs() -> Any:
        """The assertion consumer service (HTTP-POST): verify, map, open the session."""
        encoded = request.form.get("SAMLResponse", "")
        try:
            in_response_to = response_from_string(base64.b64decode(encoded)).in_response_to
        except Exception:
            return failed("invalid")
        # Taken once, by the browser that asked: a second response to the same request (a
        # replay), or one posted from another browser (login CSRF), finds nothing.
        browser = request.cookies.get(BROWSER_COOKIE)
        next_url = state.take(in_response_to, browser=browser) if in_response_to else None
        if next_url is None:
            return failed("unsolicited")
        try:
            response = client.parse_authn_request_response(
                encoded, BINDING_HTTP_POST, outstanding={in_response_to: next_url}
            )
        except Exception as error:
            app.logger.warning("SAML response refused: %s", type(error).__name__)
            code = saml_error_code(error)
            return failed(code if code != "invalid" else diagnose(encoded))
        if response is None or response.assertion is None:
            # pysaml2 refuses some responses by returning None: say why from the XML.
            return failed(diagnose(encoded))
        # Remembered while the assertion is valid (pysaml2 sets not_on_or_after, epoch s).
        valid_for = float(getattr(response, "not_on_or_after", 0) or 0) - time.time() + 60
        if not state.first_use(response.assertion.id, ttl=max(state.ttl, valid_for)):
            return failed("replayed")
        claims = pysaml2_claims(response)
        session.clear()
        session[SESSION_CLAIMS] = claims
        sso.login(claims)
        response = redirect(next_url)
        response.delete_cookie(BROWSER_COOKIE, path="/saml/acs")
        return response

    @app.route("/saml/slo", methods=["GET", "POST"])
    def slo() -> Any:
        """Single logout: the IdP's LogoutRequest, or its LogoutResponse to ours."""
        binding = BINDING_HTTP_POST if request.method == "POST" else BINDING_HTTP_REDIRECT
        values = request.form if request.method == "POST" else request.args
        if "SAMLResponse" in values:
            # The IdP's answer to our LogoutRequest: the local logout already happened.
            try:
                client.parse_logout_request_response(values["SAMLResponse"], binding)
            except Exception as error:
                app.logger.warning("SAML LogoutResponse refused: %s", type(error).__name__)
            return redirect(url_for("index"))
        if "SAMLRequest" not in values:
            abort(400)
        try:
            parsed = client.parse_logout_request(
                values["SAMLRequest"],
                binding,
                relay_state=values.get("RelayState"),
                sigalg=values.get("SigAlg"),
                signature=values.get("Signature"),
            )
        except Exception as error:
            app.logger.warning("SAML LogoutRequest refused: %s", type(error).__name__)
            return failed(saml_error_code(error))
        message = parsed.message if parsed is not None else None
        if message is None or (message.signature is None and "Signature" not in values):
            return failed("unsigned")
        if message.issuer is None or message.issuer.text != idp_entity_id:
            return failed("invalid")
        if not state.first_use(f"logout:{message.id}"):
            return failed("replayed")
        name_id = message.name_id.text if message.name_id is not None else None
        saml_logout(
            sessions,
            issuer=idp_entity_id,
            name_id=name_id,
            session_indexes=[index.text for index in message.session_index or ()],
        )
        if name_id and (session.get(SESSION_CLAIMS) or {}).get("nameid") == name_id:
            session.clear()
        response = client.create_logout_response(message, [BINDING_HTTP_REDIRECT])
        info = client.response_args(message, [BINDING_HTTP_REDIRECT])
        sent = client.apply_binding(
            info["binding"],
            str(response),
            info["destination"],
            values.get("RelayState", ""),
            response=True,
            sign=True,
            sigalg=SIG_RSA_SHA256,
        )
        return redirect(dict(sent["headers"])["Location"])

    @app.post("/logout")
    def logout() -> Any:
        """SP-initiated logout: purge locally, then tell the IdP (HTTP-Redirect)."""
        claims = session.get(SESSION_CLAIMS) or {}
        sso.logout()
        if not claims.get("nameid"):
            return redirect(url_for("index"))
        destination = client.metadata.single_logout_service(
            idp_entity_id, BINDING_HTTP_REDIRECT, "idpsso"
        )[0]["location"]
        name_id = NameID(
            text=claims["nameid"],
            format=claims.get("nameid_format"),
            name_qualifier=idp_entity_id,
            sp_name_qualifier=client.config.entityid,
        )
        index = claims.get("session_index")
        _request_id, logout_request = client.create_logout_request(
            destination,
            idp_entity_id,
            name_id=name_id,
            session_indexes=[index] if index else None,
            sign=False,
        )
        info = client.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(logout_request),
            destination,
            "logout",
            sign=True,
            sigalg=SIG_RSA_SHA256,
        )
        return redirect(dict(info["headers"])["Location"])

    # The token endpoint is answered before Flask runs: the resolvers read Flask's
    # session cookie themselves.
    app.wsgi_app = EmbedgateWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, engine, user_resolver=sso.user, session_resolver=sso.session_id
    )
    return app
