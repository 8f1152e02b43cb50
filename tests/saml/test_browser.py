"""The SAML flow once in a real Chromium: the AuthnRequest (HTTP-POST binding, an
auto-submitting form), the IdP's login form, the signed assertion posted back to the ACS,
and the page whose embed token carries the IdP's attributes; then an IdP-initiated logout
through the same browser."""

from __future__ import annotations

import json
import os

import pytest
from saml2 import BINDING_HTTP_REDIRECT

from tests.saml.conftest import SAMLStack, page_token, token_claims
from tests.support.browser import chromium

pytestmark = pytest.mark.browser


def test_chromium_signs_in_at_the_saml_idp_and_gets_the_embed_token(
    saml_stack: SAMLStack, output_dir: str
) -> None:
    idp = saml_stack.idp
    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{saml_stack.app_url}/")
        page.click("#login-post")
        page.wait_for_url(f"{idp.base_url}/sso/post")  # the form posted itself
        page.fill("#username", "alice")
        page.fill("#password", "alice-password")
        page.click("#sign-in")
        page.wait_for_url(f"{saml_stack.app_url}/")  # via the ACS, which redirected
        assert "Alice Analyst" in page.inner_text("#who")
        raw = page.text_content("#embedgate-token")
        page.screenshot(path=os.path.join(output_dir, "saml-page.png"))
        page.wait_for_function("() => !!(window.embedgate && window.embedgate.getToken)")
        from_script = page.evaluate("() => window.embedgate.getToken()")

        # IdP-initiated single logout through the browser (front channel, HTTP-Redirect).
        info = idp.logout_request("alice", saml_stack.entity_id, BINDING_HTTP_REDIRECT)
        page.goto(dict(info["headers"])["Location"])
        page.wait_for_url(f"{idp.base_url}/slo/redirect?**")
        page.goto(f"{saml_stack.app_url}/")
        assert "Not signed in." in page.inner_text("#who")
        assert page_token(page.content()) is None
    assert raw is not None
    payload = json.loads(raw)
    claims = token_claims(payload["token"])
    assert claims["sub"] == "AAdzZWNyZXQxvP9vJq3Xm0Jd6w"
    assert claims["tenant"] == "acme"
    assert claims["groups"] == ["analysts", "sales"]
    assert claims["attributes"] == {"region": "eu-west"}
    assert from_script == payload["token"]
    assert idp.logout_responses[-1] == "urn:oasis:names:tc:SAML:2.0:status:Success"
