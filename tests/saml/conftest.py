"""A SAML stack on 127.0.0.1: pysaml2's IdP (tests/saml/idp.py) and the SAML example app,
each a real threaded HTTP server, plus helpers to sign in through them with httpx."""

from __future__ import annotations

import base64
import importlib.util
import secrets
import sys
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from flask import Flask
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT
from saml2.samlp import authn_request_from_string
from werkzeug.serving import make_server

from embedgate import Engine
from tests.saml.idp import LocalSAMLIdP, SAMLUser, make_key_pair, read_form, running_saml_idp
from tests.sso.conftest import EMBED_SECRET, page_token, token_claims
from tests.support.binaries import require_binary
from tests.support.net import free_port

__all__ = ["EMBED_SECRET", "page_token", "token_claims"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "saml" / "app.py"
MS = "http://schemas.microsoft.com/ws/2008/06/identity/claims"
MS_ID = "http://schemas.microsoft.com/identity/claims"
XMLSOAP = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
ALICE_OID = "5f0c2d9e-4a51-4a8e-9d0b-2f3c1a7e6b42"


def load_example() -> ModuleType:
    """examples/saml/app.py as a module (it is not part of the package)."""
    name = "embedgate_saml_example"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # Flask finds the templates folder through it
    spec.loader.exec_module(module)
    return module


def saml_users() -> list[SAMLUser]:
    """alice: an Azure AD (Entra ID) shaped assertion, persistent NameID and claim URIs;
    bob: an LDAP/Shibboleth shaped one, email NameID and urn:oid names (pysaml2 sends
    ``mail`` and ``displayName`` as their OIDs with the FriendlyName beside them)."""
    return [
        SAMLUser(
            "alice",
            "alice-password",
            nameid="AAdzZWNyZXQxvP9vJq3Xm0Jd6w",
            nameid_format=NAMEID_FORMAT_PERSISTENT,
            attributes={
                f"{MS_ID}/objectidentifier": [ALICE_OID],
                f"{MS_ID}/tenantid": ["acme"],
                f"{XMLSOAP}/emailaddress": ["alice@acme.example"],
                f"{MS_ID}/displayname": ["Alice Analyst"],
                f"{MS}/groups": ["analysts", "sales"],
                f"{MS}/role": ["Dashboard.Viewer"],
                "tenant": ["acme"],
                "region": ["eu-west"],
                "employee_id": ["E-1001"],
            },
        ),
        SAMLUser(
            "bob",
            "bob-password",
            nameid="bob@globex.example",
            nameid_format=NAMEID_FORMAT_EMAILADDRESS,
            attributes={
                "mail": ["bob@globex.example"],
                "displayName": ["Bob Builder"],
                "memberOf": ["viewers"],
                "tenant": ["globex"],
                "region": ["us-east"],
            },
        ),
    ]


@dataclass
class SAMLStack:
    idp: LocalSAMLIdP
    app: Flask
    app_url: str

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.extensions["embedgate"]
        return engine

    @property
    def entity_id(self) -> str:
        return str(self.app.extensions["saml.client"].config.entityid)


def start_app(
    idp: LocalSAMLIdP, tmp: Path, port: int, extra: dict[str, Any] | None = None
) -> tuple[Flask, Any]:
    example = load_example()
    key_file, cert_file = make_key_pair(tmp, "sp")
    config = {
        "SECRET_KEY": secrets.token_hex(32),
        "EMBEDGATE_SECRET": EMBED_SECRET,
        "SAML_IDP_METADATA": idp.metadata(),
        "SAML_SP_BASE_URL": f"http://127.0.0.1:{port}",
        "SAML_SP_KEY_FILE": str(key_file),
        "SAML_SP_CERT_FILE": str(cert_file),
        **(extra or {}),
    }
    idp.trust(example.sp_metadata(config))
    app = example.create_app(config)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return app, (server, thread)


def stop_app(handle: Any) -> None:
    server, thread = handle
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Settings a test adds to the example app's (override with a fixture of this name)."""
    return {}


@pytest.fixture
def saml_stack(tmp_path: Path, app_config: dict[str, Any]) -> Iterator[SAMLStack]:
    require_binary("xmlsec1")
    idp = LocalSAMLIdP(free_port(), tmp_path, saml_users())
    port = free_port()
    with running_saml_idp(idp):
        app, handle = start_app(idp, tmp_path, port, app_config)
        try:
            yield SAMLStack(idp, app, f"http://127.0.0.1:{port}")
        finally:
            stop_app(handle)


def authn_request_id(location_or_form: str, binding: str) -> str:
    """The ID of the AuthnRequest in a redirect URL or (HTTP-POST) auto-submitting form."""
    if binding == "redirect":
        encoded = parse_qs(urlparse(location_or_form).query)["SAMLRequest"][0]
        xml = zlib.decompress(base64.b64decode(encoded), -15).decode()
    else:
        _action, fields = read_form(location_or_form)
        xml = base64.b64decode(fields["SAMLRequest"]).decode()
    request = authn_request_from_string(xml)
    assert request is not None
    return str(request.id)


def start_login(stack: SAMLStack, app: httpx.Client, binding: str = "redirect") -> httpx.Response:
    """GET /login at the app, then deliver the AuthnRequest to the IdP with ``binding``:
    the IdP's login form page."""
    response = app.get(f"{stack.app_url}/login", params={"binding": binding})
    idp = httpx.Client(timeout=10)
    if binding == "redirect":
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(f"{stack.idp.base_url}/sso/redirect?SAMLRequest=")
        form_page = idp.get(location)
    else:
        assert response.status_code == 200, response.text
        action, fields = read_form(response.text)
        assert action == f"{stack.idp.base_url}/sso/post"
        form_page = idp.post(action, data=fields)
    idp.close()
    assert form_page.status_code == 200, form_page.text
    return form_page


def login(
    stack: SAMLStack, username: str, password: str, *, binding: str = "redirect"
) -> tuple[httpx.Client, httpx.Response]:
    """Sign in through the real IdP; returns the app's client and the ACS's answer (a
    redirect to the page on success; the error page otherwise)."""
    app = httpx.Client(timeout=10)
    form_page = start_login(stack, app, binding)
    _action, fields = read_form(form_page.text)
    answer = httpx.post(
        f"{stack.idp.base_url}/login",
        data={"ticket": fields["ticket"], "username": username, "password": password},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    acs, saml_fields = read_form(answer.text)
    assert acs == f"{stack.app_url}/saml/acs"
    return app, app.post(acs, data=saml_fields)


def login_page(
    stack: SAMLStack, username: str, password: str, *, binding: str = "redirect"
) -> tuple[httpx.Client, httpx.Response]:
    """:func:`login`, then follow the ACS's redirect to the page."""
    app, response = login(stack, username, password, binding=binding)
    assert response.status_code == 302, response.text
    return app, app.get(f"{stack.app_url}{response.headers['location']}")
