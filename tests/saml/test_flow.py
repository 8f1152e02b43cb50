"""SP-initiated SAML sign-in over real HTTP: the example app (pysaml2 SP) and pysaml2's IdP
on 127.0.0.1; the page after the signed assertion carries an embed token whose claims come
from the IdP's attributes."""

from __future__ import annotations

import pytest

from tests.saml.conftest import SAMLStack, login_page, page_token, token_claims

SAME_ORIGIN = {"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}


@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_login_ends_on_a_page_whose_token_carries_the_idp_attributes(
    saml_stack: SAMLStack, binding: str
) -> None:
    app, page = login_page(saml_stack, "alice", "alice-password", binding=binding)
    assert page.status_code == 200, page.text
    assert "Signed in as" in page.text
    payload = page_token(page.text)
    assert payload is not None
    claims = token_claims(payload["token"])
    assert claims["sub"] == "AAdzZWNyZXQxvP9vJq3Xm0Jd6w"  # the persistent NameID
    assert claims["tenant"] == "acme"
    assert claims["attributes"] == {"region": "eu-west"}  # employee_id: not allowed
    assert claims["email"] == "alice@acme.example"
    assert claims["groups"] == ["analysts", "sales"]  # multi-valued, whole
    app.close()
