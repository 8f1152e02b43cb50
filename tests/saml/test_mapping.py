"""What a real IdP's assertion maps to: the claims `pysaml2_claims` reads from it (attribute
URIs, FriendlyNames, multi-valued attributes, NameID formats, the IdP session) and the embed
token the `saml` and `azure-ad-saml` presets make of them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from saml2 import BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT

from tests.saml.conftest import (
    ALICE_OID,
    MS,
    MS_ID,
    XMLSOAP,
    SAMLStack,
    login_page,
    page_token,
    token_claims,
)
from tests.saml.test_logout import assert_logout_response_to_idp, deliver_logout_request

SAME_ORIGIN = {"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}


def session_claims(stack: SAMLStack, cookies: Any) -> dict[str, Any]:
    """The claims the app keeps in its (signed cookie) session, read back through Flask."""
    app = stack.app
    with app.test_request_context(
        "/", headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    ):
        from flask import session

        claims: dict[str, Any] = dict(session["saml"])
    return claims


def test_claims_keep_the_attribute_uris_all_values_and_the_persistent_nameid(
    saml_stack: SAMLStack,
) -> None:
    app, _page = login_page(saml_stack, "alice", "alice-password")
    claims = session_claims(saml_stack, app.cookies)
    assert claims["nameid"] == "AAdzZWNyZXQxvP9vJq3Xm0Jd6w"
    assert claims["nameid_format"] == NAMEID_FORMAT_PERSISTENT
    assert claims["iss"] == saml_stack.idp.entity_id
    assert claims["session_index"] == saml_stack.idp.sessions["alice"][-1]
    assert claims[f"{MS}/groups"] == ["analysts", "sales"]
    assert claims[f"{MS_ID}/objectidentifier"] == [ALICE_OID]
    assert claims[f"{XMLSOAP}/emailaddress"] == ["alice@acme.example"]


def test_oid_named_attributes_arrive_under_uri_and_friendly_name_with_an_email_nameid(
    saml_stack: SAMLStack,
) -> None:
    app, page = login_page(saml_stack, "bob", "bob-password")
    claims = session_claims(saml_stack, app.cookies)
    assert claims["nameid_format"] == NAMEID_FORMAT_EMAILADDRESS
    assert claims["urn:oid:0.9.2342.19200300.100.1.3"] == ["bob@globex.example"]
    assert claims["mail"] == ["bob@globex.example"]  # the FriendlyName
    assert claims["urn:oid:2.16.840.1.113730.3.1.241"] == ["Bob Builder"]
    payload = page_token(page.text)
    assert payload is not None
    token = token_claims(payload["token"])
    assert token["sub"] == "bob@globex.example"  # the email NameID
    assert (token["email"], token["name"], token["tenant"]) == (
        "bob@globex.example",
        "Bob Builder",
        "globex",
    )
    assert token["groups"] == ["viewers"]  # memberOf
    assert token["attributes"] == {"region": "us-east"}


def test_the_saml_preset_maps_azure_claim_uris(saml_stack: SAMLStack) -> None:
    _app, page = login_page(saml_stack, "alice", "alice-password")
    payload = page_token(page.text)
    assert payload is not None
    token = token_claims(payload["token"])
    assert token["name"] == "Alice Analyst"  # .../identity/claims/displayname
    assert token["roles"] == ["Dashboard.Viewer"]  # .../claims/role
    assert token["groups"] == ["analysts", "sales"]
    assert "employee_id" not in json.dumps(token)


AZURE = {
    "EMBEDGATE_CLAIM_MAPPING": json.dumps(
        {"preset": "azure-ad-saml", "attributes": {"region": "region"}}
    )
}


@pytest.mark.parametrize("app_config", [AZURE], ids=["azure-ad-saml"])
def test_azure_preset_takes_subject_and_tenant_from_entra_claims_and_logout_still_purges(
    saml_stack: SAMLStack,
) -> None:
    app, page = login_page(saml_stack, "alice", "alice-password")
    payload = page_token(page.text)
    assert payload is not None
    token = token_claims(payload["token"])
    assert token["sub"] == ALICE_OID  # objectidentifier, not the NameID
    assert token["tenant"] == "acme"  # tenantid
    assert token["email"] == "alice@acme.example"
    # The IdP's LogoutRequest names the NameID: the session index still finds the session.
    response = deliver_logout_request(
        saml_stack.idp, app, "alice", saml_stack.entity_id, BINDING_HTTP_REDIRECT
    )
    assert_logout_response_to_idp(saml_stack.idp, response)
    assert (
        app.post(f"{saml_stack.app_url}/_embedgate/token", headers=SAME_ORIGIN).status_code == 401
    )
