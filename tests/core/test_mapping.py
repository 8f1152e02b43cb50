"""From the app's user (an object or OIDC/SAML claims) to a Principal."""

from __future__ import annotations

from typing import Any

import pytest
from flask_login import AnonymousUserMixin, UserMixin

from embedgate import ClaimMapping, Principal, PrincipalError, principal_from_user


class FlaskUser(UserMixin):
    """A Flask-Login user as apps write them: ``id`` plus columns."""

    def __init__(self, user_id: int, **columns: Any) -> None:
        self.id = user_id
        for name, value in columns.items():
            setattr(self, name, value)


class ExplicitUser:
    def __init__(self, principal: Any) -> None:
        self._principal = principal
        self.id = "ignored-id"

    def embed_principal(self) -> Any:
        return self._principal


class RelationManager:
    """Like Django's ``user.groups``: iterable only through a query, not a list."""

    def all(self) -> list[str]:
        return ["should-not-be-read"]


def test_no_user_and_anonymous_users_give_no_principal() -> None:
    assert principal_from_user(None) is None
    assert principal_from_user(AnonymousUserMixin()) is None


def test_a_principal_passes_through(alice: Principal) -> None:
    assert principal_from_user(alice) is alice


def test_flask_login_user_gives_subject_from_get_id_and_reads_columns() -> None:
    user = FlaskUser(
        42,
        email="bob@example.com",
        name="Bob",
        tenant="acme",
        roles=["viewer"],
        groups=("sales", "emea"),
        embed_attributes={"region": "EU", "level": 2},
    )
    principal = principal_from_user(user)
    assert principal is not None
    assert principal.subject == "42"  # get_id() is a string in Flask-Login
    assert principal.email == "bob@example.com"
    assert principal.name == "Bob"
    assert principal.tenant == "acme"
    assert principal.roles == ("viewer",)
    assert principal.groups == ("sales", "emea")
    assert dict(principal.attributes) == {"region": "EU", "level": 2}


def test_embed_principal_is_the_explicit_way(alice: Principal) -> None:
    assert principal_from_user(ExplicitUser(alice)) is alice
    assert principal_from_user(ExplicitUser(None)) is None
    with pytest.raises(PrincipalError) as caught:
        principal_from_user(ExplicitUser({"sub": "x"}))
    assert "embed_principal() must return a Principal" in str(caught.value)


def test_subject_falls_back_to_username_email_id_pk() -> None:
    class ByUsername:
        username = "carol"
        email = "carol@example.com"

    class ByPk:
        pk = 7

    by_username = principal_from_user(ByUsername())
    by_pk = principal_from_user(ByPk())
    assert by_username is not None
    assert by_username.subject == "carol"
    assert by_pk is not None
    assert by_pk.subject == "7"


def test_user_without_any_id_is_refused_with_a_hint() -> None:
    class Nameless:
        email = ""

    with pytest.raises(PrincipalError) as caught:
        principal_from_user(Nameless())
    assert caught.value.field == "subject"
    assert "Nameless" in str(caught.value)
    assert "embed_principal()" in str(caught.value)


def test_orm_relation_managers_are_not_read_as_lists() -> None:
    principal = principal_from_user(FlaskUser(1, groups=RelationManager()))
    assert principal is not None
    assert principal.groups == ()


def test_bad_user_attribute_names_the_attribute() -> None:
    with pytest.raises(PrincipalError) as caught:
        principal_from_user(FlaskUser(1, attributes={"region": {"nested": True}}))
    assert caught.value.field == "attributes.region"


def test_default_mapping_reads_standard_oidc_claims() -> None:
    claims = {
        "sub": "248289761001",
        "email": "jane@example.com",
        "name": "Jane Doe",
        "roles": ["viewer", "editor"],
        "groups": "sales emea",  # some IdPs send a space-separated string
        "iss": "https://idp.example.com",
    }
    principal = principal_from_user(claims)
    assert principal is not None
    assert principal.subject == "248289761001"
    assert principal.email == "jane@example.com"
    assert principal.roles == ("viewer", "editor")
    assert principal.groups == ("sales", "emea")
    assert dict(principal.attributes) == {}  # nothing is copied unless mapped


def test_dotted_paths_reach_nested_claims_and_literal_keys_win() -> None:
    mapping = ClaimMapping(
        tenant="org.id",
        roles="realm_access.roles",
        attributes={"region": "custom.region", "dept": "https://example.com/dept"},
    )
    claims = {
        "sub": "u1",
        "org": {"id": "acme"},
        "realm_access": {"roles": ["analyst"]},
        "custom": {"region": "EU"},
        "custom.region": "literal-wins",
        "https://example.com/dept": "finance",
    }
    principal = mapping.principal(claims)
    assert principal.tenant == "acme"
    assert principal.roles == ("analyst",)
    assert principal.attributes["region"] == "literal-wins"
    assert principal.attributes["dept"] == "finance"


def test_saml_style_multi_valued_attributes() -> None:
    mapping = ClaimMapping(
        subject="nameid",
        email="urn:oid:0.9.2342.19200300.100.1.3",
        roles="memberOf",
        attributes={"region": "region", "countries": "countries", "missing": "nope"},
    )
    claims = {
        "nameid": ["jdoe"],
        "urn:oid:0.9.2342.19200300.100.1.3": ["jdoe@example.com"],
        "memberOf": ["cn=analysts", "cn=viewers"],
        "region": ["EU"],
        "countries": ["FR", "DE"],
    }
    principal = mapping.principal(claims)
    assert principal.subject == "jdoe"
    assert principal.email == "jdoe@example.com"
    assert principal.roles == ("cn=analysts", "cn=viewers")
    assert principal.attributes["region"] == "EU"  # one value: a scalar
    assert principal.attributes["countries"] == ("FR", "DE")  # several: a list
    assert "missing" not in principal.attributes


def test_several_values_for_a_single_field_are_refused() -> None:
    mapping = ClaimMapping(email="mail")
    with pytest.raises(PrincipalError) as caught:
        mapping.principal({"sub": "u", "mail": ["a@example.com", "b@example.com"]})
    assert caught.value.field == "email"
    assert "expected one value, got 2" in str(caught.value)


@pytest.mark.parametrize("claims", [{}, {"sub": ""}, {"sub": None}, {"sub": []}])
def test_missing_subject_claim_is_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(PrincipalError) as caught:
        ClaimMapping().principal(claims)
    assert caught.value.field == "subject"


def test_numeric_subject_becomes_a_string() -> None:
    assert ClaimMapping().principal({"sub": 1234}).subject == "1234"


def test_claim_mapping_from_settings_names_unknown_fields() -> None:
    mapping = ClaimMapping.from_mapping({"subject": "uid", "attributes": {"region": "r"}})
    assert mapping.principal({"uid": "u9", "r": "EU"}).attributes["region"] == "EU"
    with pytest.raises(PrincipalError) as caught:
        ClaimMapping.from_mapping({"subjekt": "uid"})
    assert caught.value.field == "claim_mapping.subjekt"
