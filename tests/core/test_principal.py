"""Principal: validation (errors name the field), freezing, fingerprints."""

from __future__ import annotations

import math
from typing import Any

import pytest

from embedgate import EmbedgateError, Principal, PrincipalError


@pytest.mark.parametrize("subject", ["", "   ", None, 42, b"alice"])
def test_subject_is_a_required_non_empty_string(subject: Any) -> None:
    with pytest.raises(PrincipalError) as caught:
        Principal(subject=subject)
    assert caught.value.field == "subject"
    assert str(caught.value).startswith("principal.subject:")
    assert isinstance(caught.value, EmbedgateError)


def test_valid_principal_keeps_every_field(alice: Principal) -> None:
    assert alice.subject == "alice"
    assert alice.email == "alice@example.com"
    assert alice.name == "Alice Liddell"
    assert alice.tenant == "acme"
    assert alice.roles == ("viewer", "analyst")
    assert alice.groups == ("emea",)
    assert dict(alice.permissions) == {"dashboard:sales": ("view",)}
    assert dict(alice.attributes) == {"region": "EU", "countries": ("FR", "DE"), "level": 3}


@pytest.mark.parametrize("field_name", ["email", "name", "tenant"])
def test_optional_strings_refuse_other_types(field_name: str) -> None:
    with pytest.raises(PrincipalError) as caught:
        Principal(subject="alice", **{field_name: 7})
    assert caught.value.field == field_name
    assert "must be a string, not int" in str(caught.value)


def test_empty_optional_strings_become_none() -> None:
    principal = Principal(subject="alice", email="", name="", tenant="")
    assert (principal.email, principal.name, principal.tenant) == (None, None, None)


@pytest.mark.parametrize("field_name", ["roles", "groups"])
def test_roles_and_groups_are_lists_of_non_empty_strings(field_name: str) -> None:
    one = Principal(subject="alice", **{field_name: "admin"})
    assert getattr(one, field_name) == ("admin",)
    deduped = Principal(subject="alice", **{field_name: ["b", "a", "b"]})
    assert getattr(deduped, field_name) == ("b", "a")  # order kept, duplicates dropped
    with pytest.raises(PrincipalError) as empty_item:
        Principal(subject="alice", **{field_name: ["ok", ""]})
    assert empty_item.value.field == f"{field_name}[1]"
    with pytest.raises(PrincipalError) as wrong_item:
        Principal(subject="alice", **{field_name: ["ok", 3]})
    assert wrong_item.value.field == f"{field_name}[1]"
    with pytest.raises(PrincipalError) as not_a_list:
        Principal(subject="alice", **{field_name: 12})
    assert not_a_list.value.field == field_name


def test_permissions_map_resources_to_actions() -> None:
    principal = Principal(subject="a", permissions={"dash:1": ["view", "export"], "dash:2": "view"})
    assert dict(principal.permissions) == {"dash:1": ("view", "export"), "dash:2": ("view",)}
    with pytest.raises(PrincipalError) as not_mapping:
        Principal(subject="a", permissions=["view"])  # type: ignore[arg-type]
    assert not_mapping.value.field == "permissions"
    with pytest.raises(PrincipalError) as bad_action:
        Principal(subject="a", permissions={"dash:1": ["view", 5]})  # type: ignore[dict-item]
    assert bad_action.value.field == "permissions.dash:1[1]"
    with pytest.raises(PrincipalError) as bad_resource:
        Principal(subject="a", permissions={"": ["view"]})
    assert bad_resource.value.field == "permissions"


def test_attribute_values_are_json_scalars_or_lists_of_scalars() -> None:
    principal = Principal(
        subject="a",
        attributes={
            "s": "x",
            "i": 1,
            "f": 1.5,
            "b": True,
            "n": None,
            "list": ["a", 1, None],
            "tuple": ("x",),
            "set": {"b", "a"},
        },
    )
    assert principal.attributes["list"] == ("a", 1, None)
    assert principal.attributes["tuple"] == ("x",)
    assert principal.attributes["set"] == ("a", "b")  # sets are sorted: one canonical order


@pytest.mark.parametrize(
    ("value", "field_name", "problem"),
    [
        ({"nested": "dict"}, "attributes.region", "not dict"),
        (object(), "attributes.region", "not object"),
        (b"bytes", "attributes.region", "not bytes"),
        (math.nan, "attributes.region", "finite"),
        (math.inf, "attributes.region", "finite"),
        (["EU", ["nested"]], "attributes.region[1]", "not list"),
        (["EU", {"x": 1}], "attributes.region[1]", "not dict"),
    ],
)
def test_bad_attribute_values_name_the_attribute(value: Any, field_name: str, problem: str) -> None:
    with pytest.raises(PrincipalError) as caught:
        Principal(subject="a", attributes={"region": value})
    assert caught.value.field == field_name
    assert problem in str(caught.value)
    assert str(caught.value).startswith(f"principal.{field_name}:")


def test_attribute_names_must_be_non_empty_strings() -> None:
    for bad in ("", 3):
        with pytest.raises(PrincipalError) as caught:
            Principal(subject="a", attributes={bad: "x"})  # type: ignore[dict-item]
        assert caught.value.field == "attributes"


def test_principal_is_frozen_and_detached_from_its_inputs() -> None:
    attributes: dict[str, Any] = {"region": "EU"}
    roles = ["viewer"]
    principal = Principal(subject="a", roles=roles, attributes=attributes)
    attributes["region"] = "US"
    attributes["extra"] = 1
    roles.append("admin")
    assert dict(principal.attributes) == {"region": "EU"}
    assert principal.roles == ("viewer",)
    with pytest.raises(TypeError):
        principal.attributes["region"] = "US"  # type: ignore[index]
    with pytest.raises(AttributeError):
        principal.subject = "mallory"  # type: ignore[misc]


def test_repr_keeps_attribute_values_and_email_out(alice: Principal) -> None:
    text = repr(alice)
    assert "alice" in text
    assert "region" in text  # attribute names help debugging ...
    assert "EU" not in text  # ... their values may be personal data
    assert "alice@example.com" not in text
    assert "Alice Liddell" not in text


def test_to_dict_leaves_empty_fields_out() -> None:
    assert Principal(subject="a").to_dict() == {"subject": "a"}
    full = Principal(subject="a", tenant="t", roles=["r"], attributes={"x": ("1", 2)})
    assert full.to_dict() == {
        "subject": "a",
        "tenant": "t",
        "roles": ["r"],
        "attributes": {"x": ["1", 2]},
    }


def test_fingerprint_changes_with_anything_that_reaches_a_token(alice: Principal) -> None:
    base = alice.fingerprint()
    assert alice.replace().fingerprint() == base
    changes: list[dict[str, Any]] = [
        {"subject": "alice2"},
        {"email": "other@example.com"},
        {"name": "A"},
        {"tenant": "other"},
        {"roles": ("viewer",)},
        {"groups": ()},
        {"permissions": {}},
        {"attributes": {**alice.attributes, "region": "US"}},
        {"attributes": {**alice.attributes, "extra": None}},
    ]
    prints = {alice.replace(**change).fingerprint() for change in changes}
    assert base not in prints
    assert len(prints) == len(changes)


def test_scalars_that_python_thinks_equal_stay_distinct() -> None:
    values: list[Any] = [1, True, 1.0, "1"]
    principals = [Principal(subject="a", attributes={"flag": v}) for v in values]
    assert len({p.fingerprint() for p in principals}) == 4
    # Equality follows what reaches the token, so it agrees with hash().
    assert principals[0] != principals[1]
    assert principals[0] == Principal(subject="a", attributes={"flag": 1})
    assert hash(principals[0]) == hash(Principal(subject="a", attributes={"flag": 1}))
    assert len(set(principals)) == 4


def test_replace_validates_again(alice: Principal) -> None:
    assert alice.replace(tenant="globex").tenant == "globex"
    with pytest.raises(PrincipalError) as caught:
        alice.replace(attributes={"region": {"bad": 1}})
    assert caught.value.field == "attributes.region"


def test_from_mapping_accepts_sub_and_names_unknown_fields() -> None:
    assert Principal.from_mapping({"sub": "bob", "tenant": "t"}).subject == "bob"
    assert Principal.from_mapping({"subject": "carol"}).subject == "carol"
    with pytest.raises(PrincipalError) as unknown:
        Principal.from_mapping({"subject": "bob", "region": "EU"})
    assert unknown.value.field == "region"
    with pytest.raises(PrincipalError) as missing:
        Principal.from_mapping({"tenant": "t"})
    assert missing.value.field == "subject"


def test_remembered_fingerprints_follow_the_json_of_the_claims() -> None:
    """Fingerprints are remembered per claim set: values equal in Python but not in JSON
    (1, 1.0, True; 0.0, -0.0; in lists too) never share one, and each is the digest."""
    from embedgate.canonical import digest

    values: list[object] = [1, 1.0, True, 0.0, -0.0, "1", None, [1], [1.0], [True], ["1"], []]
    seen: dict[str, object] = {}
    for _ in range(2):  # the second pass is served from memory
        for value in values:
            principal = Principal(subject="u", attributes={"a": value}, roles=("r",))
            fingerprint = principal.fingerprint()
            assert fingerprint == digest(principal.to_dict())
            assert seen.setdefault(fingerprint, repr(value)) == repr(value)
    changed = Principal(subject="u", attributes={"a": 1}, roles=("r", "s"))
    assert changed.fingerprint() not in seen
