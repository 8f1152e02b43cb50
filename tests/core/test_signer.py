"""The local signer: registered claims, header, claim layout, size budget."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from embedgate import (
    ConfigurationError,
    IssueRequest,
    KeySet,
    LocalSigner,
    Principal,
    TokenTooLargeError,
    verify,
)
from embedgate.issuers.signer import generic_claims
from tests.core.conftest import ALL_ALGORITHMS, AUDIENCE, ISSUER, make_signer, signing_key

NOW = 1_800_000_000.25


def _request(principal: Principal, ttl: int = 300, resource: str | None = None) -> IssueRequest:
    return IssueRequest(principal=principal, now=NOW, ttl=ttl, resource=resource)


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_every_token_carries_the_registered_claims(algorithm: str, alice: Principal) -> None:
    signer = make_signer(algorithm)
    issued = signer.issue(IssueRequest(principal=alice, now=time.time(), ttl=300))
    claims = verify(issued.token, signer.keys, audience=AUDIENCE, issuer=ISSUER)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == "alice"
    assert isinstance(claims["iat"], int)
    assert claims["nbf"] == claims["iat"] - 5  # a little before iat, for clock skew
    assert claims["exp"] == claims["iat"] + 300
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 22
    header = jwt.get_unverified_header(issued.token)
    assert header == {"alg": algorithm, "kid": signer.keys.signing_key.kid, "typ": "JWT"}
    assert issued.subject == "alice"
    assert issued.kid == header["kid"]
    assert issued.jti == claims["jti"]
    assert issued.expires_at == claims["exp"]
    assert issued.issued_at == claims["iat"]
    assert not issued.single_use


def test_dates_are_integers_from_the_request_clock(alice: Principal) -> None:
    claims = _claims(make_signer().issue(_request(alice)).token)
    assert claims["iat"] == 1_800_000_000
    assert claims["exp"] == 1_800_000_300
    assert claims["nbf"] == 1_799_999_995


def test_jti_is_unique_per_token(alice: Principal) -> None:
    signer = make_signer()
    jtis = {signer.issue(_request(alice)).jti for _ in range(200)}
    assert len(jtis) == 200


def test_typ_header_is_configurable_and_can_be_left_out(alice: Principal) -> None:
    custom = make_signer(typ="at+jwt").issue(_request(alice)).token
    assert jwt.get_unverified_header(custom)["typ"] == "at+jwt"
    without = make_signer(typ=None).issue(_request(alice)).token
    assert "typ" not in jwt.get_unverified_header(without)


def test_claim_layout_puts_identity_on_top_and_attributes_underneath(alice: Principal) -> None:
    claims = _claims(make_signer().issue(_request(alice)).token)
    assert claims["email"] == "alice@example.com"
    assert claims["name"] == "Alice Liddell"
    assert claims["tenant"] == "acme"
    assert claims["roles"] == ["viewer", "analyst"]
    assert claims["groups"] == ["emea"]
    assert claims["permissions"] == {"dashboard:sales": ["view"]}
    assert claims["attributes"] == {"region": "EU", "countries": ["FR", "DE"], "level": 3}
    assert "region" not in claims
    assert "subject" not in claims
    assert set(claims) == {
        "iss", "aud", "sub", "iat", "nbf", "exp", "jti",
        "email", "name", "tenant", "roles", "groups", "permissions", "attributes",
    }  # fmt: skip


def test_attributes_named_like_registered_claims_cannot_override_them() -> None:
    sneaky = Principal(
        subject="alice", attributes={"sub": "admin", "exp": 9_999_999_999, "aud": "x"}
    )
    claims = _claims(make_signer().issue(_request(sneaky)).token)
    assert claims["sub"] == "alice"
    assert claims["exp"] == 1_800_000_300
    assert claims["aud"] == AUDIENCE
    assert claims["attributes"] == {"sub": "admin", "exp": 9_999_999_999, "aud": "x"}


def test_minimal_principal_gives_minimal_claims() -> None:
    claims = _claims(make_signer().issue(_request(Principal(subject="bob"))).token)
    assert set(claims) == {"iss", "aud", "sub", "iat", "nbf", "exp", "jti"}


def test_resource_is_a_claim_when_given(alice: Principal) -> None:
    token = make_signer().issue(_request(alice, resource="dashboard-7")).token
    assert _claims(token)["resource"] == "dashboard-7"


def test_layout_may_not_set_registered_claims(alice: Principal) -> None:
    def bad_layout(request: IssueRequest) -> dict[str, object]:
        return {**generic_claims(request), "sub": "admin"}

    with pytest.raises(ConfigurationError) as caught:
        make_signer(layout=bad_layout).issue(_request(alice))
    assert caught.value.setting == "layout"
    assert "'sub'" in str(caught.value)


def test_max_ttl_caps_the_lifetime(alice: Principal) -> None:
    token = make_signer(max_ttl=600).issue(_request(alice, ttl=3600)).token
    claims = _claims(token)
    assert claims["exp"] - claims["iat"] == 600


def test_audience_may_be_a_list(alice: Principal) -> None:
    signer = LocalSigner(KeySet([signing_key("HS256")]), issuer=ISSUER, audience=["a1", "a2"])
    token = signer.issue(IssueRequest(principal=alice, now=time.time(), ttl=300)).token
    assert _claims(token)["aud"] == ["a1", "a2"]
    assert verify(token, signer.keys, audience="a2", issuer=ISSUER)["sub"] == "alice"


@pytest.mark.parametrize("header", ["jwk", "jku", "x5u", "x5c", "alg"])
def test_key_carrying_headers_are_refused(header: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_signer(extra_headers={header: "https://attacker.example/keys"})
    assert repr(header) in str(caught.value)


def test_extra_headers_are_signed_in(alice: Principal) -> None:
    token = make_signer(extra_headers={"cty": "embed"}).issue(_request(alice)).token
    assert jwt.get_unverified_header(token)["cty"] == "embed"


@pytest.mark.parametrize(("setting", "kwargs"), [
    ("EMBEDGATE_ISSUER", {"issuer": "", "audience": "a"}),
    ("EMBEDGATE_AUDIENCE", {"issuer": "i", "audience": ""}),
    ("EMBEDGATE_AUDIENCE", {"issuer": "i", "audience": []}),
])  # fmt: skip
def test_issuer_and_audience_are_required(setting: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        LocalSigner(KeySet([signing_key("HS256")]), **kwargs)  # type: ignore[arg-type]
    assert caught.value.setting == setting


def _with_attributes(size: int) -> Principal:
    return Principal(subject="alice", attributes={f"a{i}": "x" * 90 for i in range(size)})


def test_token_over_the_size_budget_is_refused() -> None:
    big = _with_attributes(40)  # ~4.8 KB of JSON, more once base64-encoded
    with pytest.raises(TokenTooLargeError) as caught:
        make_signer().issue(_request(big))
    assert caught.value.budget == 4096
    assert caught.value.size > 4096
    assert "EMBEDGATE_TOKEN_SIZE_BUDGET" in str(caught.value)
    assert "xxxx" not in str(caught.value)


def test_size_budget_is_configurable_and_inclusive() -> None:
    signer = make_signer()
    token = signer.issue(_request(_with_attributes(5))).token
    exact = make_signer(size_budget=len(token))
    assert exact.issue(_request(_with_attributes(5))).token.count(".") == 2
    with pytest.raises(TokenTooLargeError):
        make_signer(size_budget=len(token) - 1).issue(_request(_with_attributes(5)))


def test_signer_repr_shows_no_key_material() -> None:
    signer = make_signer("HS256")
    text = repr(signer)
    assert "LocalSigner(name='generic'" in text
    assert signer.keys.signing_key.kid in text
    assert "secret" not in text
