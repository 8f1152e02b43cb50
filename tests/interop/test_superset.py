"""Apache Superset (PyPI apache-superset, pinned by `make interop`) accepts embedgate's guest
tokens, minted over its REST API by the superset profile and signed locally: for the
embedded dashboard they name and no other, with row-level security applied to the rows
POST /api/v1/chart/data returns."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from embedgate import Engine, Principal
from tests.interop.superset_peer import ADMIN, Superset, running_superset

# Setting Superset up (migrations, roles) takes minutes on this machine.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(900)]

SUPERSET_DEFAULT_AUDIENCE = "http://0.0.0.0:8080/"
ADA = Principal(subject="ada", name="Ada Lovelace", attributes={"region": "EU"})
GRACE = Principal(subject="grace", name="Grace Hopper", attributes={"region": "US"})


@pytest.fixture(scope="module")
def superset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Superset]:
    with running_superset(tmp_path_factory.mktemp("superset")) as running:
        yield running


def engine(superset: Superset, mode: str, **extra: str) -> Engine:
    settings: dict[str, Any] = {
        "EMBEDGATE_PROVIDER": "superset",
        "EMBEDGATE_PROVIDER_URL": superset.url,
        "EMBEDGATE_SUPERSET_RLS": '{"region": "region"}',
    }
    if mode == "api":
        settings.update(EMBEDGATE_SUPERSET_USERNAME=ADMIN[0], EMBEDGATE_SUPERSET_PASSWORD=ADMIN[1])
    else:
        settings.update(
            EMBEDGATE_SUPERSET_MODE="local",
            EMBEDGATE_SECRET=superset.guest_secret,
            EMBEDGATE_AUDIENCE=SUPERSET_DEFAULT_AUDIENCE,
        )
    settings.update(extra)
    return Engine.from_settings(settings, environ={})


def guest_token(engine: Engine, principal: Principal, embedded: str) -> str:
    token = engine.token_for(principal, f"session-{principal.subject}-{embedded}", embedded)
    assert token is not None
    return token.token


def regions(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text[:2000]
    return sorted(row["region"] for row in response.json()["result"][0]["data"])


def dashboard(superset: Superset, dashboard_id: int, token: str) -> httpx.Response:
    return httpx.get(
        f"{superset.url}/api/v1/dashboard/{dashboard_id}",
        headers={"X-GuestToken": token},
        timeout=60,
    )


def test_without_rls_the_chart_has_every_region(superset: Superset) -> None:
    with superset.admin() as admin:
        response = admin.post("/api/v1/chart/data", json=superset.query_context)
    assert regions(response) == ["APAC", "EU", "EU", "US"]


@pytest.mark.parametrize("mode", ["api", "local"])
def test_guest_tokens_open_their_embedded_dashboard_only_with_rls(
    superset: Superset, mode: str
) -> None:
    eng = engine(superset, mode)
    ada = guest_token(eng, ADA, superset.embedded)
    opened = dashboard(superset, superset.dashboard, ada)
    assert opened.status_code == 200, opened.text[:2000]
    assert opened.json()["result"]["id"] == superset.dashboard
    assert dashboard(superset, superset.other_dashboard, ada).status_code in (401, 403, 404)
    assert regions(superset.rows(ada)) == ["EU", "EU"]
    grace = guest_token(eng, GRACE, superset.embedded)
    assert regions(superset.rows(grace)) == ["US"]
    # A guest token for the other embedded dashboard cannot read this dashboard's chart.
    other = guest_token(eng, ADA, superset.other_embedded)
    assert dashboard(superset, superset.other_dashboard, other).status_code == 200
    assert superset.rows(other).status_code in (401, 403, 404)


def test_a_local_token_for_another_audience_is_refused_as_the_start_up_warning_says(
    superset: Superset, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="embedgate"):
        eng = engine(superset, "local", EMBEDGATE_AUDIENCE="embedgate")
    assert any("GUEST_TOKEN_JWT_AUDIENCE" in r.getMessage() for r in caplog.records)
    token = guest_token(eng, ADA, superset.embedded)
    assert dashboard(superset, superset.dashboard, token).status_code != 200
    assert superset.rows(token).status_code != 200
