"""Claim mapping for SSO: URI-named and nested claims, alternatives, transforms, presets,
and the attribute policy, from IdP claims to the token."""

from __future__ import annotations

import json
from typing import Any

import pytest

from embedgate import ClaimMapping, ConfigurationError, Engine, PrincipalError
from embedgate.sso import PRESETS, saml_claims
from tests.sso.conftest import EMBED_SECRET, token_claims

MS = "http://schemas.microsoft.com/identity/claims"
MS_WS = "http://schemas.microsoft.com/ws/2008/06/identity/claims"
XMLSOAP = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"

# What python3-saml's auth.get_attributes() returns for an Azure AD (Entra ID) login.
AZURE_ATTRIBUTES: dict[str, list[str]] = {
    f"{MS}/tenantid": ["72f988bf-86f1-41af-91ab-2d7cd011db47"],
    f"{MS}/objectidentifier": ["5a9e0c4f-1d2b-4c3e-9f8a-7b6c5d4e3f21"],
    f"{MS}/displayname": ["Jane Doe"],
    f"{MS}/identityprovider": ["https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"],
    f"{XMLSOAP}/emailaddress": ["jane.doe@contoso.com"],
    f"{XMLSOAP}/name": ["jane.doe@contoso.com"],
    f"{XMLSOAP}/givenname": ["Jane"],
    f"{XMLSOAP}/surname": ["Doe"],
    f"{MS_WS}/role": ["Analyst", "Exporter"],
    f"{MS_WS}/groups": ["0e4b1a2c-sales", "9f8d7c6b-emea"],
    "http://schemas.microsoft.com/claims/authnmethodsreferences": [
        "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"
    ],
    "https://contoso.com/claims/region": ["EU"],
}
# Okta with the urn:oid attribute name format (as its SAML apps send LDAP attributes).
OKTA_ATTRIBUTES: dict[str, list[str]] = {
    "urn:oid:0.9.2342.19200300.100.1.3": ["sam@globex.example"],
    "urn:oid:2.16.840.1.113730.3.1.241": ["Sam Smith"],
    "urn:oid:1.3.6.1.4.1.5923.1.5.1.1": ["Everyone", "Finance"],
    "department": ["Finance"],
    "costCenter": ["CC-1", "CC-2"],
}


def test_uri_named_claims_are_never_split_and_nested_ones_are_reached() -> None:
    mapping = ClaimMapping(
        tenant="https://embedgate.dev/claims.tenant",
        attributes={
            "region": "https://embedgate.dev/claims.geo.region",
            "plan": "https://embedgate.dev/plan",
        },
    )
    claims = {
        "sub": "u1",
        "https://embedgate.dev/claims": {"tenant": "acme", "geo": {"region": "eu-west"}},
        "https://embedgate.dev/plan": "gold",
    }
    principal = mapping.principal(claims)
    assert principal.tenant == "acme"
    assert principal.attributes == {"region": "eu-west", "plan": "gold"}


def test_a_literal_key_with_dots_wins_but_a_dead_end_falls_back_to_nesting() -> None:
    mapping = ClaimMapping(attributes={"r": "a.b.c"})
    # "a.b" exists but holds no "c": the walk backs off and finds a -> b -> c.
    claims = {"sub": "u", "a.b": {"x": 1}, "a": {"b": {"c": "nested"}}}
    assert mapping.principal(claims).attributes["r"] == "nested"
    assert mapping.principal({**claims, "a.b.c": "literal"}).attributes["r"] == "literal"


def test_alternatives_take_the_first_present_and_roles_merge_from_all() -> None:
    mapping = ClaimMapping(
        email=("email", "preferred_username", "upn"),
        roles=("roles", "realm_access.roles", "groups"),
        groups=None,
    )
    principal = mapping.principal(
        {
            "sub": "u",
            "email": "",
            "preferred_username": "u@example.com",
            "upn": "ignored@example.com",
            "roles": ["admin"],
            "realm_access": {"roles": ["admin", "viewer"]},
            "groups": "sales emea",
        }
    )
    assert principal.email == "u@example.com"
    assert principal.roles == ("admin", "viewer", "sales", "emea")
    assert principal.groups == ()


def test_transforms_pick_join_keep_lists_and_lower() -> None:
    mapping = ClaimMapping(
        email="mail",
        tenant="orgs",
        attributes={"cost": "costCenter", "dept": "department", "codes": "codes"},
        transforms={
            "email": "lower",
            "tenant": "first",
            "attributes.cost": "join",
            "attributes.dept": "list",
        },
    )
    principal = mapping.principal(
        {
            "sub": "u",
            "mail": ["Sam@Globex.Example"],
            "orgs": ["globex", "initech"],
            "costCenter": ["CC-1", "CC-2"],
            "department": ["Finance"],
            "codes": ["X"],
        }
    )
    assert principal.email == "sam@globex.example"
    assert principal.tenant == "globex"
    assert principal.attributes["cost"] == "CC-1,CC-2"
    assert principal.attributes["dept"] == ("Finance",)  # one value, still a list
    assert principal.attributes["codes"] == "X"  # untransformed single value: a scalar


def test_several_values_without_a_transform_name_the_fix() -> None:
    with pytest.raises(PrincipalError) as caught:
        ClaimMapping(tenant="orgs").principal({"sub": "u", "orgs": ["a", "b"]})
    assert caught.value.field == "tenant"
    assert "'first'" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"transforms": {"tenant": "upper"}}, "transforms.tenant: expected one of"),
        ({"transforms": {"attributes.nope": "first"}}, "transforms.attributes.nope"),
        ({"attributes": {"r": "r"}, "transforms": {"r": "first"}}, "transforms.r: not a"),
        ({"attributes": ["region"]}, "attributes: expected an object"),
        ({"email": 5}, "email: expected a claim name"),
        ({"attributes": {"r": []}}, "attributes.r: expected a claim name"),
        ({"preset": "okta-classic"}, "unknown preset 'okta-classic'"),
    ],
)
def test_bad_mappings_are_refused_at_start_up_naming_the_setting(
    data: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClaimMapping.from_mapping(data)
    assert caught.value.setting == "EMBEDGATE_CLAIM_MAPPING"
    assert fragment in str(caught.value)


def test_saml_preset_maps_azure_ad_attributes() -> None:
    mapping = ClaimMapping.from_mapping(
        {"preset": "azure-ad-saml", "attributes": {"region": "https://contoso.com/claims/region"}}
    )
    principal = mapping.principal(saml_claims(AZURE_ATTRIBUTES, "jane.doe@contoso.com"))
    assert principal.subject == "5a9e0c4f-1d2b-4c3e-9f8a-7b6c5d4e3f21"  # objectidentifier
    assert principal.tenant == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    assert principal.email == "jane.doe@contoso.com"
    assert principal.name == "Jane Doe"
    assert principal.roles == ("Analyst", "Exporter")
    assert principal.groups == ("0e4b1a2c-sales", "9f8d7c6b-emea")
    assert principal.attributes == {"region": "EU"}


def test_saml_preset_maps_okta_oid_attributes_and_the_nameid() -> None:
    mapping = ClaimMapping.from_mapping(
        {
            "preset": "saml",
            "attributes": {"department": "department", "cost_centers": "costCenter"},
        }
    )
    claims = saml_claims(OKTA_ATTRIBUTES, "00u1abcd2EFGH3ijk4x7", session_index="_a1b2c3")
    principal = mapping.principal(claims)
    assert principal.subject == "00u1abcd2EFGH3ijk4x7"
    assert principal.email == "sam@globex.example"
    assert principal.name == "Sam Smith"
    assert principal.groups == ("Everyone", "Finance")
    assert principal.attributes == {"department": "Finance", "cost_centers": ("CC-1", "CC-2")}


def test_preset_keys_can_be_overridden_and_every_preset_builds() -> None:
    for name in PRESETS:
        ClaimMapping.from_mapping({"preset": name})
    mapping = ClaimMapping.from_mapping({"preset": "keycloak", "tenant": "org"})
    principal = mapping.principal(
        {"sub": "k", "org": "acme", "realm_access": {"roles": ["offline_access", "analyst"]}}
    )
    assert principal.tenant == "acme"
    assert principal.roles == ("offline_access", "analyst")


def _engine(**settings: Any) -> Engine:
    return Engine.from_settings(environ={}, mode="sso", secret=EMBED_SECRET, **settings)


def test_engine_in_sso_mode_turns_saml_claims_into_a_token_under_the_policy() -> None:
    engine = _engine(
        claim_mapping=json.dumps(
            {
                "preset": "azure-ad-saml",
                "attributes": {
                    "region": "https://contoso.com/claims/region",
                    "idp": f"{MS}/identityprovider",
                },
            }
        ),
        allowed_attributes="region",
        required_attributes="tenant,region",
    )
    principal = engine.principal_for(saml_claims(AZURE_ATTRIBUTES, "jane.doe@contoso.com"))
    assert principal is not None
    token = engine.service.get_token(principal, "s" * 32)
    claims = token_claims(token.token)
    assert claims["sub"] == "5a9e0c4f-1d2b-4c3e-9f8a-7b6c5d4e3f21"
    assert claims["tenant"] == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    assert claims["attributes"] == {"region": "EU"}  # "idp" is not allowed: dropped


def test_a_required_claim_missing_is_a_clear_principal_error() -> None:
    engine = _engine(
        claim_mapping=json.dumps(
            {"preset": "saml", "attributes": {"region": "https://contoso.com/claims/region"}}
        ),
        required_attributes="region",
    )
    attributes = {k: v for k, v in AZURE_ATTRIBUTES.items() if "region" not in k}
    principal = engine.principal_for(saml_claims(attributes, "jane"))
    assert principal is not None
    with pytest.raises(PrincipalError) as caught:
        engine.service.get_token(principal, "s" * 32)
    assert caught.value.field == "attributes.region"
    assert "required" in str(caught.value)


def test_a_missing_subject_names_the_claims_it_looked_for() -> None:
    engine = _engine(claim_mapping='{"preset": "saml"}')
    with pytest.raises(PrincipalError) as caught:
        engine.principal_for(saml_claims({"email": ["x@example.com"]}))
    assert caught.value.field == "subject"
    assert "nameid" in str(caught.value)
