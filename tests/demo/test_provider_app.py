"""The provider app's other faces: clock-driven expiry, static files, its page, mounting,
and the factory's checks."""

from __future__ import annotations

import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from embedgate import ConfigurationError, LocalSigner, ManualClock, Secret
from embedgate.demo.provider import create_provider_app
from tests.demo.conftest import (
    API_KEY,
    AUDIENCE,
    ISSUER,
    USERS,
    Host,
    make_keys,
    serve,
    toucan_user,
)


@pytest.fixture
def hs_host() -> Host:
    keys = make_keys("HS256")
    return Host(keys, LocalSigner(keys, issuer=ISSUER, audience=AUDIENCE))


def test_tokens_expire_on_the_provider_clock(hs_host: Host) -> None:
    clock = ManualClock(start=float(int(time.time())))
    app = create_provider_app(
        keys=hs_host.keys,
        audience=AUDIENCE,
        issuer=ISSUER,
        api_key=Secret(API_KEY),
        token_ttl=120,
        clock=clock,
    )
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        minted = client.post(
            "/embed/generate-token",
            headers={"x-api-key": API_KEY},
            json={"user": toucan_user(USERS["bob"])},
        ).json()
        assert minted["expiresAt"] == int(clock.now()) + 120
        host_token = hs_host.token(USERS["alice"], ttl=300, now=clock.now())

        def status(token: str) -> tuple[int, str | None]:
            r = client.get("/api/dashboard/sales", headers={"Authorization": f"Bearer {token}"})
            return r.status_code, r.json().get("error")

        assert status(minted["token"]) == (200, None)
        remaining = client.get(
            "/api/dashboard/sales", headers={"Authorization": f"Bearer {host_token}"}
        ).json()["identity"]["expires_in"]
        assert remaining == 300
        clock.advance(119)
        assert status(minted["token"]) == (200, None)
        clock.advance(1)
        assert status(minted["token"]) == (401, "expired")
        assert status(host_token) == (200, None)
        clock.advance(300 - 120 + 10 + 1)  # past exp plus the 10 s leeway
        assert status(host_token) == (401, "expired")


def test_a_token_minted_by_another_provider_instance_is_rejected(hs_host: Host) -> None:
    def app() -> Starlette:
        return create_provider_app(
            keys=hs_host.keys, audience=AUDIENCE, issuer=ISSUER, api_key=Secret(API_KEY)
        )

    with serve(app()) as first, serve(app()) as second:
        token = httpx.post(
            f"{first}/embed/generate-token",
            headers={"x-api-key": API_KEY},
            json={"user": toucan_user(USERS["alice"])},
        ).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{first}/api/dashboard/sales", headers=auth).status_code == 200
        other = httpx.get(f"{second}/api/dashboard/sales", headers=auth)
        assert other.status_code == 401
        assert other.json()["error"] == "bad_signature"


def test_static_files_page_and_mounting(hs_host: Host) -> None:
    provider = create_provider_app(
        keys=hs_host.keys, audience=AUDIENCE, issuer=ISSUER, api_key=Secret(API_KEY)
    )
    host_app = Starlette(routes=[Mount("/provider", app=provider)])
    with serve(host_app) as url, httpx.Client(base_url=url, timeout=10) as client:
        js = client.get("/provider/static/demo-dashboard.js")
        assert js.status_code == 200
        assert js.headers["content-type"].split(";")[0] in (
            "text/javascript",
            "application/javascript",
        )
        assert js.headers["x-content-type-options"] == "nosniff"
        assert 'customElements.define("demo-dashboard"' in js.text
        css = client.get("/provider/static/demo-dashboard.css")
        assert css.headers["content-type"].startswith("text/css")
        assert ":host" in css.text
        for missing in ("/provider/static/provider.py", "/provider/static/..%2Fprovider.py"):
            assert client.get(missing).status_code == 404
        page = client.get("/provider/")
        assert page.headers["content-type"].startswith("text/html")
        assert 'src="/provider/static/demo-dashboard.js"' in page.text
        assert "POST /provider/embed/generate-token" in page.text
        assert API_KEY not in page.text
        token = hs_host.token(USERS["bob"])
        body = client.get(
            "/provider/api/dashboard/sales", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert {r["tenant"] for r in body["table"]["rows"]} == {"globex"}


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"api_key": Secret("")}, "api_key"),
        ({"token_ttl": 0}, "token_ttl"),
        ({"audience": ""}, "audience"),
        ({"issuer": ""}, "issuer"),
    ],
)
def test_the_factory_refuses_bad_settings(
    hs_host: Host, overrides: dict[str, object], setting: str
) -> None:
    kwargs: dict[str, object] = {
        "keys": hs_host.keys,
        "audience": AUDIENCE,
        "issuer": ISSUER,
        "api_key": Secret(API_KEY),
        **overrides,
    }
    with pytest.raises(ConfigurationError) as info:
        create_provider_app(**kwargs)  # type: ignore[arg-type]
    assert info.value.setting == setting
