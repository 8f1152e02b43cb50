"""Readers: the claims SSO libraries leave behind, in the shapes those libraries use."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, session
from starlette.authentication import SimpleUser

from embedgate import Engine, PrincipalError
from embedgate.sso import (
    authlib_session_claims,
    django_user_claims,
    merge_userinfo,
    python3_saml_claims,
    saml_claims,
    saml_session_claims,
    starlette_session_claims,
    starlette_user_claims,
)
from tests.sso.conftest import EMBED_SECRET
from tests.sso.test_mapping import OKTA_ATTRIBUTES

USERINFO = {
    "iss": "https://idp.example.com",
    "aud": ["rp"],
    "sub": "248289761001",
    "email": "jane@example.com",
    "nonce": "n-0S6_WzA2Mj",
    "sid": "08a5019c-17e1-4977-8f42-65a12843ea02",
}


def test_authlib_claims_from_a_real_flask_session() -> None:
    app = Flask(__name__)
    app.secret_key = "k" * 32
    with app.test_request_context("/"):
        assert authlib_session_claims(session) is None
        session["user"] = USERINFO  # the usual `session["user"] = token["userinfo"]`
        assert authlib_session_claims(session) == USERINFO


def test_authlib_claims_from_the_whole_token_dict() -> None:
    token = {"access_token": "at", "id_token": "eyJ...", "userinfo": USERINFO}
    assert authlib_session_claims({"token": token}) == USERINFO
    # An ID token that Authlib never parsed (no "userinfo") is not trusted.
    assert authlib_session_claims({"token": {"id_token": "eyJ..."}}) is None
    assert authlib_session_claims({"user": "not-a-mapping"}) is None
    assert authlib_session_claims({"oidc": USERINFO}, key="oidc") == USERINFO


def test_starlette_session_and_user_readers_take_a_scope_or_a_request() -> None:
    from starlette.requests import Request

    scope: dict[str, Any] = {"type": "http", "session": {"user": USERINFO}}
    assert starlette_session_claims(scope) == USERINFO
    assert starlette_session_claims(Request(scope)) == USERINFO
    assert starlette_session_claims({"type": "http"}) is None

    assert starlette_user_claims({"user": SimpleUser("jdoe")}) == {"sub": "jdoe", "name": "jdoe"}

    class ClaimsUser(SimpleUser):
        claims = USERINFO

    assert starlette_user_claims({"user": ClaimsUser("jdoe")}) == USERINFO

    class Anonymous:
        is_authenticated = False

    assert starlette_user_claims({"user": Anonymous()}) is None


class _Groups:
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def values_list(self, field: str, *, flat: bool) -> list[str]:
        assert (field, flat) == ("name", True)
        return self.names


class _DjangoUser:
    """The part of django.contrib.auth's user these readers use."""

    is_authenticated = True
    email = "dj@example.com"

    def __init__(self, claims: dict[str, Any] | None = None) -> None:
        self.groups = _Groups(["analysts"])
        if claims is not None:
            self.sso_claims = claims

    def get_username(self) -> str:
        return "dj"

    def get_full_name(self) -> str:
        return "Django Reinhardt"


def test_django_user_claims_prefer_the_stored_sso_claims() -> None:
    assert django_user_claims(_DjangoUser(USERINFO)) == USERINFO
    assert django_user_claims(_DjangoUser(), accessor=lambda u: {"sub": "x"}) == {"sub": "x"}
    assert django_user_claims(_DjangoUser()) == {
        "sub": "dj",
        "email": "dj@example.com",
        "name": "Django Reinhardt",
        "groups": ["analysts"],
    }

    class Anonymous:
        is_authenticated = False

    assert django_user_claims(Anonymous()) is None
    assert django_user_claims(None) is None


def test_saml_claims_keep_uri_names_and_lists() -> None:
    claims = saml_claims(
        {"urn:oid:0.9.2342.19200300.100.1.3": "one@example.com", "bytes": [b"x"]},
        "nameid-1",
        nameid_format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        session_index="_idx",
    )
    assert claims == {
        "urn:oid:0.9.2342.19200300.100.1.3": ["one@example.com"],
        "bytes": ["x"],
        "nameid": "nameid-1",
        "nameid_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        "session_index": "_idx",
    }


class _Saml2Auth:
    """The accessors of python3-saml's OneLogin_Saml2_Auth after process_response()
    (python3-saml itself needs the xmlsec system library)."""

    def __init__(self, authenticated: bool) -> None:
        self.authenticated = authenticated

    def is_authenticated(self) -> bool:
        return self.authenticated

    def get_attributes(self) -> dict[str, list[str]]:
        return OKTA_ATTRIBUTES

    def get_nameid(self) -> str:
        return "00u1abcd2EFGH3ijk4x7"

    def get_nameid_format(self) -> str:
        return "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"

    def get_session_index(self) -> str:
        return "_be9967abd904ddcae3c0eb4189adbe3f71e327cf93"


def test_python3_saml_reader_and_session_reader_give_the_same_principal() -> None:
    engine = Engine.from_settings(
        environ={}, mode="sso", secret=EMBED_SECRET, claim_mapping='{"preset": "saml"}'
    )
    from_auth = python3_saml_claims(_Saml2Auth(True))
    assert python3_saml_claims(_Saml2Auth(False)) is None
    # python3-saml's demos keep the same data in the session under these keys.
    stored = {
        "samlUserdata": OKTA_ATTRIBUTES,
        "samlNameId": "00u1abcd2EFGH3ijk4x7",
        "samlNameIdFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
        "samlSessionIndex": "_be9967abd904ddcae3c0eb4189adbe3f71e327cf93",
    }
    from_session = saml_session_claims(stored)
    assert from_auth == from_session
    principal = engine.principal_for(from_session)
    assert principal is not None
    assert principal.subject == "00u1abcd2EFGH3ijk4x7"
    assert principal.email == "sam@globex.example"
    assert saml_session_claims({}) is None


def test_a_user_without_an_identity_is_refused() -> None:
    class Nameless:
        is_authenticated = True

    with pytest.raises(PrincipalError):
        starlette_user_claims({"user": Nameless()})
    with pytest.raises(PrincipalError):
        django_user_claims(Nameless(), accessor="nothing")


def test_userinfo_claims_merge_under_the_id_tokens_own() -> None:
    id_claims = {"sub": "alice", "iss": "https://idp.test", "name": "From ID token"}
    userinfo = {"sub": "alice", "email": "alice@example.test", "name": "From UserInfo"}
    merged = merge_userinfo(id_claims, userinfo)
    assert merged == {
        "sub": "alice",
        "iss": "https://idp.test",
        "name": "From ID token",
        "email": "alice@example.test",
    }
    assert merge_userinfo(id_claims, None) == id_claims
    with pytest.raises(PrincipalError):
        merge_userinfo(id_claims, {"sub": "mallory", "email": "m@example.test"})
