"""Tableau connected apps (direct trust): the documented claim set, checked by an
independent JOSE implementation with Tableau's rules, and the <tableau-viz> markup."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

from embedgate import Config, ConfigurationError, Engine, ManualClock, Principal, PrincipalError

CLIENT_ID = "d65e7123-3736-4db5-8930-ef64c004531b"
SECRET_ID = "088ea0e7-0ea7-4228-a6e4-3672753bc269"
SECRET_VALUE = (
    "AJTGKx1yIWCEdrhAf/sIZryNyHZtDoxMo2TjS7Mde0c="  # Tableau secrets: 32 random bytes, base64
)


def settings(**extra: str) -> dict[str, Any]:
    return {
        "EMBEDGATE_PROVIDER": "tableau",
        "EMBEDGATE_PROVIDER_URL": "https://tableau.example.com/t/acme",
        "EMBEDGATE_SECRET": SECRET_VALUE,
        "EMBEDGATE_TABLEAU_CLIENT_ID": CLIENT_ID,
        "EMBEDGATE_TABLEAU_SECRET_ID": SECRET_ID,
        **{f"EMBEDGATE_{k.upper()}": v for k, v in extra.items()},
    }


def engine(mapping: Mapping[str, Any], clock: ManualClock) -> Engine:
    return Engine(Config.load(mapping, environ={}), config_source=mapping, environ={}, clock=clock)


def tableau_accepts(token: str, now: int) -> dict[str, Any]:
    """Tableau's documented checks on a direct-trust JWT, done with joserfc."""
    # Tableau's header carries "iss" (the client id), which RFC 7515 does not register.
    headers = JWSRegistry(
        header_registry={"iss": HeaderParameter("Connected app client id", "str", required=True)},
        algorithms=["HS256"],
    )
    decoded = jose_jwt.decode(token, OctKey.import_key(SECRET_VALUE), registry=headers)
    assert decoded.header["kid"] == SECRET_ID
    assert decoded.header["iss"] == CLIENT_ID
    registry = jose_jwt.JWTClaimsRegistry(
        now=now,
        iss={"essential": True, "value": CLIENT_ID},
        aud={"essential": True, "value": "tableau"},
        sub={"essential": True},
        jti={"essential": True},
        exp={"essential": True},
    )
    registry.validate(decoded.claims)
    assert decoded.claims["exp"] - now <= 600  # at most ten minutes ahead
    return dict(decoded.claims)


def test_the_documented_claim_set(clock: ManualClock) -> None:
    # Tableau's example: scp views+metrics embed, and a "Region": "East" user attribute.
    eng = engine(settings(tableau_scopes="tableau:views:embed,tableau:metrics:embed"), clock)
    principal = Principal(subject="fred.suzuki", attributes={"Region": "East"})
    token = eng.token_for(principal, "s")
    assert token is not None
    now = int(clock.now())
    claims = tableau_accepts(token.token, now)
    assert {k: claims[k] for k in ("iss", "aud", "sub", "scp", "Region")} == {
        "iss": CLIENT_ID,
        "aud": "tableau",
        "sub": "fred.suzuki",
        "scp": ["tableau:views:embed", "tableau:metrics:embed"],
        "Region": "East",
    }
    assert claims["exp"] == now + 300
    assert token.kid == SECRET_ID


def test_user_attributes_become_strings_and_default_scope_is_views_embed(
    principal: Principal, clock: ManualClock
) -> None:
    token = engine(settings(), clock).token_for(principal, "s")
    assert token is not None
    claims = tableau_accepts(token.token, int(clock.now()))
    assert claims["scp"] == ["tableau:views:embed"]
    assert (claims["region"], claims["level"], claims["teams"]) == ("EU", "3", ["north", "south"])
    assert "https://tableau.com/oda" not in claims


def test_on_demand_access_adds_the_oda_and_group_claims(
    principal: Principal, clock: ManualClock
) -> None:
    eng = engine(settings(tableau_on_demand_access="true", tableau_username="email"), clock)
    token = eng.token_for(principal, "s")
    assert token is not None
    claims = tableau_accepts(token.token, int(clock.now()))
    assert claims["https://tableau.com/oda"] == "true"
    assert claims["https://tableau.com/groups"] == ["finance"]
    assert claims["sub"] == "ada@example.com"


def test_a_ttl_over_ten_minutes_is_refused_at_start_up(clock: ManualClock) -> None:
    with pytest.raises(ConfigurationError) as caught:
        engine(settings(ttl="601"), clock)
    assert caught.value.setting == "EMBEDGATE_TTL"
    assert engine(settings(ttl="600"), clock) is not None


@pytest.mark.parametrize("name", ["scp", "exp", "https://tableau.com/groups"])
def test_attributes_cannot_override_tableau_claims(name: str, clock: ManualClock) -> None:
    eng = engine(settings(), clock)
    with pytest.raises(PrincipalError):
        eng.token_for(Principal(subject="x", attributes={name: "tableau:content:write"}), "s")


@pytest.mark.parametrize(
    ("drop", "setting"),
    [
        ("EMBEDGATE_TABLEAU_CLIENT_ID", "EMBEDGATE_TABLEAU_CLIENT_ID"),
        ("EMBEDGATE_TABLEAU_SECRET_ID", "EMBEDGATE_TABLEAU_SECRET_ID"),
        ("EMBEDGATE_SECRET", "EMBEDGATE_SECRET"),
    ],
)
def test_connected_app_settings_are_required(drop: str, setting: str, clock: ManualClock) -> None:
    mapping = settings()
    del mapping[drop]
    with pytest.raises(ConfigurationError) as caught:
        engine(mapping, clock)
    assert caught.value.setting == setting


def test_viz_snippet(principal: Principal, clock: ManualClock) -> None:
    from tests.providers.test_toucan import elements

    eng = engine(settings(), clock)
    token = eng.token_for(principal, "s", eng.profile.resource_for("viz", "Sales/Overview"))
    assert token is not None
    markup = eng.profile.snippet(
        "viz", "Sales/Overview", token, {"toolbar": "bottom", "hide_tabs": "true"}
    )
    (_, script), (tag, attrs) = elements(markup)
    assert (
        script["src"]
        == "https://tableau.example.com/t/acme/javascripts/api/tableau.embedding.3.latest.min.js"
    )
    assert tag == "tableau-viz"
    assert attrs == {
        "src": "https://tableau.example.com/t/acme/views/Sales/Overview",
        "token": token.token,
        "toolbar": "bottom",
        "hide-tabs": "",
        "data-embedgate-token": "token",
    }
    full = "https://eu-west-1a.online.tableau.com/t/acme/views/Sales/Overview"
    (_, _), (_, attrs) = elements(eng.profile.snippet("viz", full, token, {}))
    assert attrs["src"] == full
