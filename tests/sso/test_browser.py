"""The SSO flow once in a real Chromium: click through the IdP's login form to the
example's page, whose embed token carries the mapped claims."""

from __future__ import annotations

import json
import os

import pytest

from tests.sso.conftest import Stack, token_claims
from tests.support.browser import chromium

pytestmark = pytest.mark.browser


def test_chromium_logs_in_at_the_idp_and_gets_the_embed_token(
    stack: Stack, output_dir: str
) -> None:
    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{stack.app_url}/")
        page.click("#login")
        page.wait_for_url(f"{stack.idp.issuer}/login?**")
        page.fill("#username", "alice")
        page.fill("#password", "alice-password")
        page.click("#sign-in")
        page.wait_for_url(f"{stack.app_url}/")
        assert "Alice Analyst" in page.inner_text("#who")
        raw = page.text_content("#embedgate-token")
        page.screenshot(path=os.path.join(output_dir, "sso-page.png"))
        # embedgate.js loaded and took over the rendered token.
        page.wait_for_function("() => !!(window.embedgate && window.embedgate.getToken)")
        from_script = page.evaluate("() => window.embedgate.getToken()")
    assert raw is not None
    payload = json.loads(raw)
    claims = token_claims(payload["token"])
    assert claims["sub"] == "alice-0001"
    assert claims["tenant"] == "acme"
    assert claims["attributes"] == {"region": "eu-west"}
    assert from_script == payload["token"]
