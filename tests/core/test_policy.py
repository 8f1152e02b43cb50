"""AttributePolicy: the allowlist drops attributes, required fields must be present."""

from __future__ import annotations

import pytest

from embedgate import AttributePolicy, Principal, PrincipalError


def test_no_policy_lets_everything_through(alice: Principal) -> None:
    assert AttributePolicy().apply(alice) is alice


def test_allowlist_drops_the_other_attributes(alice: Principal) -> None:
    policy = AttributePolicy(allowed=frozenset({"region", "not-present"}))
    admitted = policy.apply(alice)
    assert dict(admitted.attributes) == {"region": "EU"}
    # Identity fields are not attributes: they stay.
    assert (admitted.subject, admitted.tenant, admitted.roles) == ("alice", "acme", alice.roles)
    assert dict(alice.attributes) != dict(admitted.attributes)  # the original is untouched


def test_empty_allowlist_drops_every_attribute(alice: Principal) -> None:
    assert dict(AttributePolicy(allowed=frozenset()).apply(alice).attributes) == {}


def test_allowlist_that_keeps_everything_returns_the_same_principal(alice: Principal) -> None:
    policy = AttributePolicy(allowed=frozenset({"region", "countries", "level"}))
    assert policy.apply(alice) is alice


def test_required_attributes_are_kept_even_if_not_listed(alice: Principal) -> None:
    policy = AttributePolicy(allowed=frozenset(), required=frozenset({"level"}))
    assert dict(policy.apply(alice).attributes) == {"level": 3}


@pytest.mark.parametrize(
    ("required", "principal", "field_name"),
    [
        ("region", Principal("a"), "attributes.region"),
        ("region", Principal("a", attributes={"region": None}), "attributes.region"),
        ("region", Principal("a", attributes={"region": []}), "attributes.region"),
        ("tenant", Principal("a"), "tenant"),
        ("email", Principal("a", email=""), "email"),
        ("name", Principal("a"), "name"),
        ("roles", Principal("a"), "roles"),
        ("groups", Principal("a", groups=[]), "groups"),
    ],
)
def test_missing_required_field_is_refused_naming_it(
    required: str, principal: Principal, field_name: str
) -> None:
    with pytest.raises(PrincipalError) as caught:
        AttributePolicy(required=frozenset({required})).apply(principal)
    assert caught.value.field == field_name
    assert str(caught.value) == f"principal.{field_name}: is required by the attribute policy"


def test_falsy_but_present_values_satisfy_required() -> None:
    principal = Principal("a", attributes={"flag": False, "count": 0, "label": ""})
    policy = AttributePolicy(required=frozenset({"flag", "count", "label"}))
    assert policy.apply(principal) is principal
