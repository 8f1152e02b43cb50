"""A real SAML 2.0 identity provider on 127.0.0.1: pysaml2's ``saml2.server.Server`` behind a
small WSGI app, with its own RSA key and self-signed certificate made here.

- ``GET /metadata``: the IdP's metadata (entity id, signing certificate, SSO/SLO endpoints);
- ``GET /sso/redirect`` and ``POST /sso/post``: an AuthnRequest (HTTP-Redirect or HTTP-POST)
  shows the login form; ``POST /login`` answers with a signed assertion, HTTP-POST to the
  SP's assertion consumer service (an auto-submitting form);
- ``/slo/redirect`` and ``/slo/post``: the SP's LogoutRequest (answered with a signed
  LogoutResponse) or the SP's LogoutResponse to :meth:`LocalSAMLIdP.logout_request`.

:attr:`LocalSAMLIdP.options` shapes the next assertions (unsigned, expired, another
audience, tampered after signing) for the negative tests. Test use only: plain passwords.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import functools
import html
import re
import secrets
import threading
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.assertion import Policy
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.s_utils import UnknownPrincipal, UnsupportedBinding
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.samlp import LogoutResponse, response_from_string
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.support.binaries import require_binary

LOGIN_PAGE = """<!doctype html>
<html><head><title>Local SAML IdP: sign in</title></head>
<body>
<h1>Local SAML IdP</h1>
{error}
<form method="post" action="/login">
  <input type="hidden" name="ticket" value="{ticket}">
  <label>Username <input name="username" id="username"></label>
  <label>Password <input name="password" id="password" type="password"></label>
  <button id="sign-in">Sign in</button>
</form>
</body></html>
"""


@functools.cache
def _private_key(name: str) -> rsa.RSAPrivateKey:
    # One key per name and test session: RSA key generation dominates the set-up time.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_key_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """An RSA-2048 key and a self-signed certificate for it (PEM files in ``directory``)."""
    key = _private_key(name)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@dataclass
class SAMLUser:
    """A user of the IdP: its NameID (format and value) and the attributes it releases
    (keys are attribute names as sent; pysaml2 sends known friendly names such as ``mail``
    as their ``urn:oid:`` URI with the friendly name beside it)."""

    username: str
    password: str
    nameid: str
    nameid_format: str = NAMEID_FORMAT_PERSISTENT
    attributes: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class ResponseOptions:
    """How the IdP shapes its next assertions (the defaults are a correct one)."""

    sign: bool = True
    audience: str | None = None  # another SP's entity id: wrong audience
    lifetime_minutes: int = 5  # negative: expired on arrival
    tamper: bool = False  # change an attribute value after signing
    destination: str | None = None  # another ACS URL: wrong recipient
    wrap: str | None = None  # "before"/"after": a forged, unsigned assertion beside the signed one


@dataclass
class Pending:
    request_id: str
    sp_entity_id: str
    acs_url: str
    relay_state: str


class LocalSAMLIdP:
    """pysaml2's IdP on ``http://127.0.0.1:{port}`` trusting the SPs whose metadata it is
    given (:meth:`trust`)."""

    def __init__(self, port: int, directory: Path, users: Sequence[SAMLUser]) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.entity_id = f"{self.base_url}/metadata"
        self.key_file, self.cert_file = make_key_pair(directory, "idp")
        self.users = {user.username: user for user in users}
        self.options = ResponseOptions()
        self.sp_metadata: list[str] = []
        self.pending: dict[str, Pending] = {}
        self.sessions: dict[str, list[str]] = {}  # username -> session indexes
        self.logout_requests: list[str] = []  # NameIDs of the SP's LogoutRequests
        self.logout_responses: list[str] = []  # status codes of the SP's LogoutResponses
        self.last_response_xml = ""
        self.last_form: dict[str, str] = {}
        self.server = self._server()

    def _config(self) -> dict[str, Any]:
        base = self.base_url
        return {
            "entityid": self.entity_id,
            "service": {
                "idp": {
                    "name": "Local SAML IdP",
                    "endpoints": {
                        "single_sign_on_service": [
                            (f"{base}/sso/redirect", BINDING_HTTP_REDIRECT),
                            (f"{base}/sso/post", BINDING_HTTP_POST),
                        ],
                        "single_logout_service": [
                            (f"{base}/slo/redirect", BINDING_HTTP_REDIRECT),
                            (f"{base}/slo/post", BINDING_HTTP_POST),
                        ],
                    },
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_EMAILADDRESS],
                    "policy": {"default": {"lifetime": {"minutes": 5}}},
                    "sign_assertion": True,
                    "sign_response": False,
                    "want_authn_requests_signed": True,
                }
            },
            "key_file": str(self.key_file),
            "cert_file": str(self.cert_file),
            "xmlsec_binary": require_binary("xmlsec1"),
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "metadata": {"inline": list(self.sp_metadata)} if self.sp_metadata else {},
        }

    def _server(self) -> Server:
        config = IdPConfig()
        config.load(self._config())
        return Server(config=config)

    def metadata(self) -> str:
        return bytes(create_metadata_string(None, config=self.server.config, valid=None)).decode()

    def trust(self, sp_metadata: str) -> None:
        """Add a service provider's metadata."""
        self.sp_metadata.append(sp_metadata)
        self.server = self._server()

    # -- assertions ----------------------------------------------------------------------

    def authn_response(self, username: str, pending: Pending) -> str:
        """A SAMLResponse (base64) for ``username``, shaped by :attr:`options`."""
        user = self.users[username]
        options = self.options
        name_id = NameID(
            format=user.nameid_format,
            text=user.nameid,
            name_qualifier=self.entity_id,
            sp_name_qualifier=pending.sp_entity_id,
        )
        lifetime = {"default": {"lifetime": {"minutes": options.lifetime_minutes}}}
        self.server.config.setattr("idp", "policy", Policy(lifetime, self.server.metadata))
        response = self.server.create_authn_response(
            identity=user.attributes,
            in_response_to=pending.request_id,
            destination=options.destination or pending.acs_url,
            sp_entity_id=options.audience or pending.sp_entity_id,
            name_id=name_id,
            authn={
                "class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
                "authn_instant": None,
            },
            sign_assertion=options.sign,
            sign_response=False,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        xml = str(response)
        parsed = response_from_string(xml)
        for assertion in parsed.assertion:
            for statement in assertion.authn_statement:
                self.sessions.setdefault(username, []).append(statement.session_index)
        if options.tamper:
            value = next(iter(user.attributes.values()))[0]
            assert value in xml
            xml = xml.replace(value, value + "-tampered", 1)
        if options.wrap:
            xml = _wrap(xml, user.nameid, before=options.wrap == "before")
        self.last_response_xml = xml
        return base64.b64encode(xml.encode()).decode()

    # -- single logout -------------------------------------------------------------------

    def logout_request(self, username: str, sp_entity_id: str, binding: str) -> dict[str, Any]:
        """An IdP-initiated, signed LogoutRequest for ``username``'s sessions at the SP,
        ready to send with ``binding`` (pysaml2's ``apply_binding`` result: ``url`` for
        HTTP-Redirect, ``data``, an auto-submitting form, for HTTP-POST)."""
        user = self.users[username]
        destination = self.server.metadata.single_logout_service(sp_entity_id, binding, "spsso")
        location = destination[0]["location"]
        name_id = NameID(
            format=user.nameid_format,
            text=user.nameid,
            name_qualifier=self.entity_id,
            sp_name_qualifier=sp_entity_id,
        )
        sign_post = binding == BINDING_HTTP_POST
        _request_id, request = self.server.create_logout_request(
            location,
            self.entity_id,
            name_id=name_id,
            session_indexes=self.sessions.get(username, []),
            sign=sign_post,
        )
        info: dict[str, Any] = self.server.apply_binding(
            binding, str(request), location, "idp-logout", sign=not sign_post, sigalg=SIG_RSA_SHA256
        )
        return info

    # -- HTTP ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self._route(request)
        except Exception:  # the test's failure message shows why
            response = Response(traceback.format_exc(), status=500, content_type="text/plain")
        return response(environ, start_response)

    def _route(self, request: Request) -> Response:
        path = request.path
        if path == "/metadata":
            return Response(self.metadata(), content_type="application/samlmetadata+xml")
        if path in ("/sso/redirect", "/sso/post"):
            return self._sso(request, path)
        if path == "/login" and request.method == "POST":
            return self._login(request)
        if path in ("/slo/redirect", "/slo/post"):
            return self._slo(request, path)
        return Response("not found", status=404)

    def _sso(self, request: Request, path: str) -> Response:
        binding = BINDING_HTTP_REDIRECT if path.endswith("redirect") else BINDING_HTTP_POST
        values = request.args if binding == BINDING_HTTP_REDIRECT else request.form
        try:
            parsed = self.server.parse_authn_request(
                values["SAMLRequest"],
                binding,
                relay_state=values.get("RelayState"),
                sigalg=values.get("SigAlg"),
                signature=values.get("Signature"),
            )
        except Exception as exc:  # the IdP's own error page
            return Response(f"bad AuthnRequest: {exc}", status=400)
        message = parsed.message
        sp_entity_id = message.issuer.text
        acs_url = message.assertion_consumer_service_url
        known = self.server.metadata.assertion_consumer_service(sp_entity_id, BINDING_HTTP_POST)
        if acs_url is None:
            acs_url = known[0]["location"]
        elif acs_url not in [endpoint["location"] for endpoint in known]:
            return Response("unknown AssertionConsumerServiceURL", status=400)
        ticket = secrets.token_urlsafe(16)
        self.pending[ticket] = Pending(
            message.id, sp_entity_id, acs_url, values.get("RelayState", "")
        )
        return Response(LOGIN_PAGE.format(error="", ticket=ticket), content_type="text/html")

    def _login(self, request: Request) -> Response:
        ticket = request.form.get("ticket", "")
        pending = self.pending.get(ticket)
        if pending is None:
            return Response("unknown login ticket", status=400)
        user = self.users.get(request.form.get("username", ""))
        if user is None or not secrets.compare_digest(user.password, request.form["password"]):
            page = LOGIN_PAGE.format(error="<p>Wrong username or password</p>", ticket=ticket)
            return Response(page, status=401, content_type="text/html")
        del self.pending[ticket]
        saml_response = self.authn_response(user.username, pending)
        self.last_form = {"SAMLResponse": saml_response, "RelayState": pending.relay_state}
        return Response(post_form(pending.acs_url, self.last_form), content_type="text/html")

    def _slo(self, request: Request, path: str) -> Response:
        binding = BINDING_HTTP_REDIRECT if path.endswith("redirect") else BINDING_HTTP_POST
        values = request.args if binding == BINDING_HTTP_REDIRECT else request.form
        if "SAMLResponse" in values:
            parsed = self.server.parse_logout_request_response(values["SAMLResponse"], binding)
            assert isinstance(parsed.response, LogoutResponse)
            self.logout_responses.append(parsed.response.status.status_code.value)
            return Response("logged out", content_type="text/plain")
        try:
            parsed = self.server.parse_logout_request(
                values["SAMLRequest"],
                binding,
                relay_state=values.get("RelayState"),
                sigalg=values.get("SigAlg"),
                signature=values.get("Signature"),
            )
        except (UnknownPrincipal, UnsupportedBinding, Exception) as exc:
            return Response(f"bad LogoutRequest: {exc}", status=400)
        message = parsed.message
        self.logout_requests.append(message.name_id.text)
        for username, user in self.users.items():
            if user.nameid == message.name_id.text:
                self.sessions.pop(username, None)
        response = self.server.create_logout_response(message, [BINDING_HTTP_REDIRECT])
        info = self.server.response_args(message, [BINDING_HTTP_REDIRECT])
        sent = self.server.apply_binding(
            info["binding"],
            str(response),
            info["destination"],
            values.get("RelayState", ""),
            response=True,
            sign=True,
            sigalg=SIG_RSA_SHA256,
        )
        location = dict(sent["headers"])["Location"]
        return Response(status=302, headers={"Location": location})


def _wrap(xml: str, nameid: str, *, before: bool) -> str:
    """Signature wrapping: a copy of the signed assertion, its signature removed, another
    ID and the NameID ``mallory``, placed before or after the genuine one."""
    match = re.search(r"<(\w+:)?Assertion\b.*?</(\w+:)?Assertion>", xml, re.DOTALL)
    assert match is not None
    forged = re.sub(
        r"<(\w+:)?Signature\b.*?</(\w+:)?Signature>", "", match.group(0), flags=re.DOTALL
    )
    forged = re.sub(r'ID="[^"]+"', 'ID="id-forged-assertion"', forged, count=1)
    forged = forged.replace(f">{nameid}<", ">mallory<")
    at = match.start() if before else match.end()
    return xml[:at] + forged + xml[at:]


def post_form(action: str, fields: dict[str, str]) -> str:
    """An auto-submitting HTML form (the HTTP-POST binding)."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    return (
        '<!doctype html><html><body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(action)}">{inputs}'
        "<noscript><button>Continue</button></noscript></form></body></html>"
    )


FORM_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
FORM_ACTION = re.compile(r'<form[^>]* action="([^"]+)"')


def read_form(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of an auto-submitting form (pysaml2's or ours)."""
    action = FORM_ACTION.search(page)
    assert action is not None, page
    fields = {html.unescape(k): html.unescape(v) for k, v in FORM_FIELD.findall(page)}
    return html.unescape(action.group(1)), fields


@contextlib.contextmanager
def running_saml_idp(idp: LocalSAMLIdP) -> Iterator[LocalSAMLIdP]:
    """Serve ``idp`` on its port in a thread for the duration of the block."""
    server = make_server("127.0.0.1", idp.port, idp, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
