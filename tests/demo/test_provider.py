"""The demo provider over real HTTP (uvicorn on 127.0.0.1): token API, data API, RLS."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from embedgate import IssueRequest, LocalSigner, Principal, SigningKey
from embedgate.demo.dataset import generate_rows
from tests.demo.conftest import API_KEY, AUDIENCE, ISSUER, USERS, Host, toucan_user


@pytest.fixture(scope="module")
def client(provider_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=provider_url, timeout=10) as c:
        yield c


def mint(client: httpx.Client, user: dict[str, Any]) -> str:
    response = client.post(
        "/embed/generate-token", headers={"x-api-key": API_KEY}, json={"user": user}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def data(client: httpx.Client, token: str, dashboard: str = "sales", **params: Any) -> Any:
    return client.get(
        f"/api/dashboard/{dashboard}",
        headers={"Authorization": f"Bearer {token}"},
        params=params,
    )


def expected_rows(tenant: str | None, regions: set[str] | None) -> list[tuple[Any, ...]]:
    """The rows a viewer may see, computed from the seed data without SQL."""
    return sorted(
        (r.date, r.tenant, r.region, r.product, r.units, round(r.amount_cents / 100, 2))
        for r in generate_rows()
        if (tenant is None or r.tenant == tenant) and (regions is None or r.region in regions)
    )


def row_tuples(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (r["date"], r["tenant"], r["region"], r["product"], r["units"], r["amount"])
        for r in body["table"]["rows"]
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def flip(segment: str) -> str:
    """Change one base64url character in the middle (the last one may only carry padding)."""
    i = len(segment) // 2
    return segment[:i] + ("A" if segment[i] != "A" else "B") + segment[i + 1 :]


# --- generate-token -------------------------------------------------------------------------


def test_generate_token_with_the_api_key_mints_an_opaque_token(client: httpx.Client) -> None:
    user = toucan_user(USERS["bob"])
    before = time.time()
    response = client.post(
        "/embed/generate-token", headers={"x-api-key": API_KEY}, json={"user": user}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expiresIn", "expiresAt"}
    assert body["expiresIn"] == 600
    assert before - 1 <= body["expiresAt"] - 600 <= time.time() + 1
    assert response.headers["cache-control"] == "no-store"
    token = body["token"]
    # Opaque to the host: not a JWT, and the attributes are not readable in it.
    with pytest.raises(jwt.DecodeError):
        jwt.get_unverified_header(token)
    raw = base64.urlsafe_b64decode(token.split(".", 1)[1] + "==")
    assert b"globex" not in raw
    assert "globex" not in token
    # ... and the provider itself accepts it.
    assert data(client, token).json()["identity"]["subject"] == "bob"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"x-api-key": ""}, "missing_api_key"),
        ({"x-api-key": API_KEY[:-1] + "X"}, "invalid_api_key"),
        ({"x-api-key": API_KEY + "X"}, "invalid_api_key"),
        ({"authorization": f"Bearer {API_KEY}"}, "missing_api_key"),
    ],
)
def test_generate_token_refuses_a_missing_or_wrong_api_key(
    client: httpx.Client, headers: dict[str, str], code: str
) -> None:
    response = client.post(
        "/embed/generate-token", headers=headers, json={"user": {"distinctId": "bob"}}
    )
    assert response.status_code == 401
    assert response.json()["error"] == code
    assert "token" not in response.json()
    assert API_KEY not in response.text


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        (b"\xff\xfe", 400, None),
        (b"[]", 422, "body"),
        (b"{}", 422, "user"),
        (b'{"user": "bob"}', 422, "user"),
        (b'{"user": {}}', 422, "user.distinctId"),
        (b'{"user": {"distinctId": "  "}}', 422, "user.distinctId"),
        (b'{"user": {"distinctId": 7}}', 422, "user.distinctId"),
        (b'{"user": {"distinct_id": "bob"}}', 422, "user.distinct_id"),
        (b'{"user": {"distinctId": "bob", "role": ["admin"]}}', 422, "user.role"),
        (b'{"user": {"distinctId": "bob", "attributes": []}}', 422, "user.attributes"),
        (
            b'{"user": {"distinctId": "bob", "attributes": {"region": {"a": 1}}}}',
            422,
            "user.attributes.region",
        ),
        (b'{"user": {"distinctId": "bob"}, "extra": 1}', 422, "extra"),
    ],
)
def test_generate_token_rejects_malformed_bodies_with_a_clear_error(
    client: httpx.Client, body: bytes, status: int, field: str | None
) -> None:
    response = client.post(
        "/embed/generate-token",
        headers={"x-api-key": API_KEY, "content-type": "application/json"},
        content=body,
    )
    assert response.status_code == status
    error = response.json()
    assert error["error"] == ("invalid_json" if status == 400 else "invalid_body")
    assert error["message"]
    if field is not None:
        assert error["field"] == field
        assert error["message"].startswith(f"{field}:")


def test_generate_token_refuses_an_oversized_body(client: httpx.Client) -> None:
    attributes = {"blob": "x" * 20_000}
    response = client.post(
        "/embed/generate-token",
        headers={"x-api-key": API_KEY},
        json={"user": {"distinctId": "bob", "attributes": attributes}},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_generate_token_only_answers_post(client: httpx.Client) -> None:
    assert client.get("/embed/generate-token", headers={"x-api-key": API_KEY}).status_code == 405


def test_generate_token_defaults_the_role_to_viewer(client: httpx.Client) -> None:
    token = mint(client, {"distinctId": "dave", "attributes": {"tenant": "initech"}})
    body = data(client, token, limit=500).json()
    assert body["identity"]["roles"] == ["viewer"]
    assert {r["tenant"] for r in body["table"]["rows"]} == {"initech"}


# --- row-level security ---------------------------------------------------------------------


VISIBLE: dict[str, tuple[str | None, set[str] | None]] = {
    "alice": ("acme", {"EU"}),
    "bob": ("globex", {"US"}),
    "carol": (None, None),  # admin: everything
}


@pytest.mark.parametrize("source", ["host", "provider"])
@pytest.mark.parametrize("name", ["alice", "bob", "carol"])
def test_each_user_sees_exactly_their_rows(
    client: httpx.Client, host: Host, name: str, source: str
) -> None:
    principal = USERS[name]
    token = host.token(principal) if source == "host" else mint(client, toucan_user(principal))
    response = data(client, token, limit=500)
    assert response.status_code == 200, response.text
    body = response.json()
    tenant, regions = VISIBLE[name]
    rows = body["table"]["rows"]
    if tenant is not None:
        assert all(r["tenant"] == tenant for r in rows)
    if regions is not None:
        assert all(r["region"] in regions for r in rows)
    assert row_tuples(body) == expected_rows(tenant, regions)
    assert body["totals"]["rows"] == len(rows)
    assert body["identity"]["subject"] == name
    assert body["identity"]["source"] == source
    assert body["identity"]["tenant"] == principal.tenant
    # The chart aggregates the same rows the table lists.
    chart_total = sum(p["value"] for p in body["chart"]["points"])
    assert chart_total == pytest.approx(body["totals"]["amount"])
    assert token not in response.text


def test_alice_and_bob_see_48_rows_and_carol_all_432(client: httpx.Client, host: Host) -> None:
    bodies = {name: data(client, host.token(p), limit=500).json() for name, p in USERS.items()}
    assert bodies["alice"]["totals"]["rows"] == 48
    assert bodies["bob"]["totals"]["rows"] == 48
    assert bodies["carol"]["totals"]["rows"] == 432
    carol_rows = bodies["carol"]["table"]["rows"]
    assert {r["tenant"] for r in carol_rows} == {"acme", "globex", "initech"}
    assert {r["region"] for r in carol_rows} == {"EU", "US", "APAC"}


def test_the_applied_filter_is_reported(client: httpx.Client, host: Host) -> None:
    alice = data(client, host.token(USERS["alice"])).json()["filter"]
    assert alice == {
        "rule": "tenant+region",
        "unrestricted": False,
        "denied": False,
        "tenant": "acme",
        "regions": ["EU"],
        "sql": "tenant = ? AND region IN (?)",
        "reason": "tenant acme, region EU",
    }
    carol = data(client, host.token(USERS["carol"])).json()["filter"]
    assert carol["rule"] == "unrestricted"
    assert carol["unrestricted"] is True


def test_a_tenant_without_region_sees_every_region_of_that_tenant(
    client: httpx.Client, host: Host
) -> None:
    token = host.token(Principal("erin", tenant="initech", roles=("analyst",)))
    body = data(client, token, limit=500).json()
    assert body["filter"]["rule"] == "tenant"
    assert row_tuples(body) == expected_rows("initech", None)


def test_a_region_list_allows_each_listed_region(client: httpx.Client, host: Host) -> None:
    token = host.token(Principal("fay", tenant="acme", attributes={"region": ("EU", "APAC")}))
    body = data(client, token, limit=500).json()
    assert row_tuples(body) == expected_rows("acme", {"EU", "APAC"})


@pytest.mark.parametrize(
    "principal",
    [
        Principal("nobody", roles=("analyst",), attributes={"region": "EU"}),
        Principal("odd", tenant="acme", attributes={"region": 7}),
        Principal("empty", tenant="acme", attributes={"region": ()}),
    ],
    ids=["no-tenant", "numeric-region", "empty-region-list"],
)
def test_a_non_admin_without_a_usable_filter_sees_nothing(
    client: httpx.Client, host: Host, principal: Principal
) -> None:
    body = data(client, host.token(principal), limit=500).json()
    assert body["filter"]["denied"] is True
    assert body["table"]["rows"] == []
    assert body["totals"] == {"rows": 0, "amount": 0.0}
    assert body["chart"]["points"] == []


INJECTIONS = ["EU' OR '1'='1", "EU' OR 1=1 --", "x'); DROP TABLE sales; --"]


@pytest.mark.parametrize("value", INJECTIONS)
def test_sql_injection_in_an_attribute_returns_no_rows(
    client: httpx.Client, host: Host, value: str
) -> None:
    by_region = host.token(Principal("mallory", tenant="acme", attributes={"region": value}))
    by_tenant = host.token(Principal("mallory", tenant=value, attributes={"region": "EU"}))
    minted = mint(
        client, {"distinctId": "mallory", "attributes": {"tenant": "acme", "region": value}}
    )
    for token in (by_region, by_tenant, minted):
        body = data(client, token, limit=500).json()
        assert body["totals"]["rows"] == 0
        assert body["table"]["rows"] == []
    # The table is still there for everyone else.
    assert data(client, host.token(USERS["carol"])).json()["totals"]["rows"] == 432


def test_a_token_for_another_dashboard_is_refused(client: httpx.Client, host: Host) -> None:
    token = host.token(USERS["alice"], resource="products")
    refused = data(client, token, "sales")
    assert refused.status_code == 403
    assert refused.json()["error"] == "wrong_resource"
    allowed = data(client, token, "products")
    assert allowed.status_code == 200
    assert allowed.json()["dashboard"]["group_by"] == "product"
    assert [p["label"] for p in allowed.json()["chart"]["points"]] == [
        "Anvils",
        "Gadgets",
        "Rockets",
        "Widgets",
    ]


def test_unknown_dashboard_and_bad_limit(client: httpx.Client, host: Host) -> None:
    token = host.token(USERS["alice"])
    assert data(client, token, "nope").status_code == 404
    assert data(client, "garbage", "nope").status_code == 401  # authentication comes first
    for limit in ("0", "501", "-1", "ten"):
        response = data(client, token, limit=limit)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_limit"
    assert len(data(client, token, limit="5").json()["table"]["rows"]) == 5
    assert len(data(client, token).json()["table"]["rows"]) == 25


def test_data_responses_are_not_cached(client: httpx.Client, host: Host) -> None:
    response = data(client, host.token(USERS["alice"]))
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "access-control-allow-origin" not in response.headers


# --- rejected tokens ------------------------------------------------------------------------


def assert_rejected(response: httpx.Response, *codes: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] in codes, body
    assert "table" not in body
    assert response.headers["www-authenticate"].startswith("Bearer")
    sent = response.request.headers.get("authorization", "").partition(" ")[2]
    if len(sent) > 8:
        assert sent not in response.text  # the token is never echoed back


def test_missing_or_non_bearer_authorization(client: httpx.Client) -> None:
    assert_rejected(client.get("/api/dashboard/sales"), "missing_token")
    basic = client.get("/api/dashboard/sales", headers={"Authorization": "Basic YTpi"})
    assert_rejected(basic, "missing_token")
    assert_rejected(data(client, "not-a-token"), "malformed")
    assert_rejected(data(client, "x" * 9000), "malformed")


def test_expired_host_token(client: httpx.Client, host: Host) -> None:
    token = host.token(USERS["alice"], ttl=60, now=time.time() - 600)
    assert_rejected(data(client, token), "expired")


def test_host_token_flipped_signature_byte(client: httpx.Client, host: Host) -> None:
    head, payload, signature = host.token(USERS["alice"]).split(".")
    assert_rejected(data(client, f"{head}.{payload}.{flip(signature)}"), "bad_signature")


def test_host_token_flipped_payload_byte(client: httpx.Client, host: Host) -> None:
    head, payload, signature = host.token(USERS["alice"]).split(".")
    assert_rejected(data(client, f"{head}.{flip(payload)}.{signature}"), "bad_signature")


def test_host_token_with_a_rewritten_tenant(client: httpx.Client, host: Host) -> None:
    head, payload, signature = host.token(USERS["alice"]).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["admin"]
    forged = f"{head}.{b64(json.dumps(claims).encode())}.{signature}"
    assert_rejected(data(client, forged), "bad_signature")


def test_wrong_audience_and_wrong_issuer(client: httpx.Client, host: Host) -> None:
    other_aud = LocalSigner(host.keys, issuer=ISSUER, audience="someone-else")
    other_iss = LocalSigner(host.keys, issuer="evil-host", audience=AUDIENCE)
    assert_rejected(
        data(client, Host(host.keys, other_aud).token(USERS["alice"])), "wrong_audience"
    )
    assert_rejected(data(client, Host(host.keys, other_iss).token(USERS["alice"])), "wrong_issuer")


def test_alg_none_is_rejected(client: httpx.Client, host: Host) -> None:
    _, payload, _ = host.token(USERS["carol"]).split(".")
    kid = host.keys.signing_key.kid
    with_kid = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    without_kid = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    assert_rejected(data(client, f"{with_kid}.{payload}."), "algorithm_mismatch")
    assert_rejected(data(client, f"{without_kid}.{payload}."), "missing_kid")


def test_a_token_from_another_key_is_rejected(client: httpx.Client, host: Host) -> None:
    kid = host.keys.signing_key.kid
    # Same kid, another secret (and, for an EdDSA key set, HS256: algorithm confusion).
    rogue = SigningKey.hmac("another-secret-0123456789-abcdefghij", kid=kid)
    claims = LocalSigner(host.keys, issuer=ISSUER, audience=AUDIENCE).claims(
        IssueRequest(USERS["carol"], now=time.time(), ttl=300)
    )
    forged = jwt.encode(claims, rogue.signing_material(), algorithm="HS256", headers={"kid": kid})
    expected = "bad_signature" if host.keys.signing_key.is_symmetric else "algorithm_mismatch"
    assert_rejected(data(client, forged), expected)
    unknown = jwt.encode(claims, rogue.signing_material(), algorithm="HS256", headers={"kid": "x"})
    assert_rejected(data(client, unknown), "unknown_key")


def test_provider_token_tampering_is_rejected(client: httpx.Client) -> None:
    token = mint(client, toucan_user(USERS["alice"]))
    prefix, sealed = token.split(".", 1)
    assert_rejected(data(client, f"{prefix}.{flip(sealed)}"), "bad_signature")
    assert_rejected(data(client, f"{prefix}.{sealed[:-10]}"), "bad_signature")
    assert_rejected(data(client, "demo.not-base64!"), "bad_signature")
