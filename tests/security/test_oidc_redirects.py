"""The OIDC helper's JSON fetch (discovery, JWKS, and so the back-channel logout keys)
follows no redirect to another origin or scheme: a compromised or spoofed path on the
IdP's host must not hand out keys from elsewhere, and an https document is never read
over http. Real servers on 127.0.0.1, one over TLS with a certificate the test trusts."""

from __future__ import annotations

import json
import ssl
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from embedgate import VerificationError
from embedgate.sso import OIDCProvider
from embedgate.sso.provider import fetch_json
from tests.security.servers import json_answer, redirect_answer, self_signed, serve

JWKS = json.dumps({"keys": [{"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}]}).encode()


@pytest.fixture
def trusted_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server TLS context whose certificate this process trusts (SSL_CERT_FILE)."""
    context, cert = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return context


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_no_redirect_to_another_origin(status: int) -> None:
    with (
        serve(json_answer(JWKS)) as elsewhere,
        serve(redirect_answer(elsewhere.url, status)) as idp,
    ):
        with pytest.raises(VerificationError) as caught:
            fetch_json(idp.url + "/jwks.json", timeout=5)
        assert caught.value.code == "keys_unavailable"
        assert elsewhere.hits == []


def test_no_redirect_from_https_to_http(trusted_tls: ssl.SSLContext) -> None:
    with serve(json_answer(JWKS)) as plain:
        https_origin = serve(redirect_answer(plain.url), tls=trusted_tls)
        with https_origin as idp, pytest.raises(VerificationError):
            fetch_json(idp.url + "/jwks.json", timeout=5)
        assert plain.hits == []

    # while a redirect within the origin is still followed
    def answer(handler: BaseHTTPRequestHandler) -> None:
        if handler.path == "/old":
            redirect_answer("/new", keep_path=False)(handler)
        else:
            json_answer(JWKS)(handler)

    with serve(answer, tls=trusted_tls) as idp:
        assert fetch_json(idp.url + "/old", timeout=5)["keys"][0]["kid"] == "k1"
        assert idp.hits == ["/old", "/new"]


def test_discovery_and_jwks_refuse_cross_origin_redirects() -> None:
    with serve(json_answer(JWKS)) as elsewhere:
        with serve(redirect_answer(elsewhere.url)) as idp:
            provider = OIDCProvider(issuer=idp.url, jwks_uri=idp.url + "/jwks.json")
            with pytest.raises(VerificationError):
                provider.key("k1", "HS256")
            discovered = OIDCProvider(idp.url + "/.well-known/openid-configuration")
            with pytest.raises(VerificationError):
                discovered.metadata()
        assert elsewhere.hits == []


def test_an_https_discovery_document_cannot_send_the_jwks_over_http(
    trusted_tls: ssl.SSLContext,
) -> None:
    with serve(json_answer(JWKS)) as plain:
        document = json.dumps({"issuer": "x", "jwks_uri": plain.url + "/jwks.json"}).encode()
        with serve(json_answer(document), tls=trusted_tls) as idp:
            provider = OIDCProvider(idp.url + "/.well-known/openid-configuration")
            assert provider.metadata()["jwks_uri"].startswith("http://")
            with pytest.raises(VerificationError):
                provider.key("k1", "HS256")
        assert plain.hits == []
