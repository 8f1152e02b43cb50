"""embedgate.js in a real headless Chromium against uvicorn, for resource-bound tokens and the
Superset SDK handover.

Metabase static embedding: tokens live 12 s; the iframe's src must carry a new token (loaded,
and verified, by a stand-in Metabase on the same loopback server) before the old one
expires, after a start-up call that only learned the page's token timing. There is no
session token: the page says so and the script never asks the endpoint for one.

Superset: the mount point is handed to the (fake) embedded SDK once, with the dashboard id,
the domain and the UI options, and its fetchGuestToken returns the session's token (the new
one after a refresh); without EMBEDGATE_SUPERSET_DASHBOARDS, the guest token bound to that
one dashboard instead."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import jwt
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import TEST_SECRET
from tests.resource_tokens.app import SUPERSET_DASHBOARD, SUPERSET_OTHER
from tests.resource_tokens.conftest import METABASE_SECRET
from tests.support.binaries import require_binary
from tests.support.net import PYTHON, free_port, run_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMING = {
    "EMBEDGATE_TTL": "12",
    "EMBEDGATE_MIN_REMAINING": "2",
    "EMBEDGATE_REFRESH_MARGIN": "5",
}


def distinct_in_order(items: list[str]) -> list[str]:
    """``items`` with repeats of the previous one dropped."""
    return [item for i, item in enumerate(items) if i == 0 or items[i - 1] != item]


SRC_OF_FRAME = "document.getElementById('mb').getAttribute('src')"
SESSIONLESS_BLOCK = {"token": None, "session": False, "endpoint": "/_embedgate/token"}
BLOCK = (
    "() => { const b = JSON.parse(document.getElementById('embedgate-token').textContent);"
    " delete b.bind; delete b.allow; return b; }"
)


def serve(settings: dict[str, str]) -> Iterator[str]:
    """tests.resource_tokens.app under uvicorn on 127.0.0.1; ``{url}`` in a setting is its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v.replace("{url}", url) for k, v in {**TIMING, **settings}.items()}
    argv = [PYTHON, "-m", "uvicorn", "--factory", "tests.resource_tokens.app:create"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with run_server(argv, port, env=env):
        yield url


@pytest.fixture(scope="module")
def metabase_server() -> Iterator[str]:
    yield from serve(
        {
            "EMBEDGATE_PROVIDER": "metabase",
            "EMBEDGATE_PROVIDER_URL": "{url}",  # the stand-in Metabase: nothing external
            "EMBEDGATE_SECRET": METABASE_SECRET,
        }
    )


@pytest.fixture(scope="module")
def superset_server() -> Iterator[str]:
    yield from serve(
        {
            "EMBEDGATE_PROVIDER": "superset",
            "EMBEDGATE_PROVIDER_URL": "{url}",
            "EMBEDGATE_SUPERSET_MODE": "local",
            "EMBEDGATE_SECRET": TEST_SECRET,
            "EMBEDGATE_SUPERSET_DASHBOARDS": f"{SUPERSET_DASHBOARD},{SUPERSET_OTHER}",
            "EMBEDGATE_SUPERSET_SDK_URL": "{url}/fake-sdk.js",
        }
    )


@pytest.fixture(scope="module")
def superset_per_dashboard_server() -> Iterator[str]:
    """No EMBEDGATE_SUPERSET_DASHBOARDS: a guest token per dashboard, no session token."""
    yield from serve(
        {
            "EMBEDGATE_PROVIDER": "superset",
            "EMBEDGATE_PROVIDER_URL": "{url}",
            "EMBEDGATE_SUPERSET_MODE": "local",
            "EMBEDGATE_SECRET": TEST_SECRET,
            "EMBEDGATE_SUPERSET_SDK_URL": "{url}/fake-sdk.js",
        }
    )


@pytest.fixture
def browser() -> Iterator[Browser]:
    chromium = require_binary("chromium")  # skips locally, fails in CI
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def log(server: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{server}/log").json()
    return answer


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def metabase_claims(src: str) -> tuple[str, dict[str, Any]]:
    """The token in a Metabase iframe URL, and its verified claims."""
    token = unquote(urlsplit(src).path.rsplit("/", 1)[1])
    claims: dict[str, Any] = jwt.decode(
        token, METABASE_SECRET, algorithms=["HS256"], audience="embedgate"
    )
    return token, claims


def test_the_metabase_iframe_gets_a_new_token_before_the_old_one_expires(
    browser: Browser, metabase_server: str
) -> None:
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{metabase_server}/")
    assert page.evaluate(BLOCK) == SESSIONLESS_BLOCK  # no session token, and none failed
    first_src: str = page.evaluate(f"() => {SRC_OF_FRAME}")
    first, first_claims = metabase_claims(first_src)
    assert first_src.endswith("#bordered=true&titled=false")  # the snippet's own options

    page.wait_for_function(f"old => {SRC_OF_FRAME} !== old", arg=first_src)
    assert time.time() < first_claims["exp"]
    second_src: str = page.evaluate(f"() => {SRC_OF_FRAME}")
    second, second_claims = metabase_claims(second_src)
    assert second_claims["exp"] > first_claims["exp"]
    assert second_claims["resource"] == first_claims["resource"] == {"dashboard": 42}
    assert second_src == first_src.replace(first, second)  # same URL, fragment kept

    # The stand-in Metabase served the new URL (a valid token) while the old one was valid.
    deadline = time.monotonic() + 10
    while digest(second) not in [f.get("digest") for f in log(metabase_server)["frames"]]:
        assert time.monotonic() < deadline, "the iframe never loaded the new URL"
        time.sleep(0.1)
    frames = log(metabase_server)["frames"]
    assert [f.get("digest") for f in frames] == [digest(first), digest(second)]
    assert frames[1]["at"] < first_claims["exp"]

    calls = log(metabase_server)["calls"]
    resource_calls = [c for c in calls if c["resource"] == "dashboard:42"]
    # Start-up: the page's own token (a cache hit), to learn when to refresh; once due, the
    # still-valid token again while the refresh runs beside the request; then the new one.
    assert {c["status"] for c in resource_calls} == {200}
    assert distinct_in_order([c["digest"] for c in resource_calls]) == [
        digest(first),
        digest(second),
    ]
    assert resource_calls[-1]["at"] < first_claims["exp"]
    # Static embedding has no session token: the script never asked for one (a call without
    # a body), not at start-up, not on waking up, not when page code asks for it.
    page.evaluate("() => window.dispatchEvent(new Event('focus'))")
    asked = page.evaluate("() => window.embedgate.getToken().then(() => 'token', e => e.code)")
    assert asked == "no_session_token"
    page.wait_for_timeout(500)
    calls = log(metabase_server)["calls"]
    assert [c for c in calls if c["resource"] is None] == []
    # Markup the page did not render through embed_snippet: never looked at, never asked for.
    assert not [c for c in calls if c["resource"] == "dashboard:77"]
    assert page.get_attribute("#forged", "data-t") is None
    # data-embedgate-refresh="none": never asked for, never touched.
    assert not [c for c in calls if c["resource"] == "dashboard:99"]
    assert page.get_attribute("#once", "src") == "about:blank"

    seen = page.evaluate("() => window.seen")
    assert [(d["token"], d["resource"]) for d in seen] == [
        (first, "dashboard:42"),
        (second, "dashboard:42"),
    ]
    assert all(isinstance(d["expiresAt"], int) for d in seen)
    assert page.evaluate("() => window.embedgate.current('dashboard:42').token") == second
    errors = page.evaluate("() => window.errors")
    assert errors == []
    page.close()


def session_token(page: Page) -> str:
    token: str = page.evaluate(
        "() => JSON.parse(document.getElementById('embedgate-token').textContent).token"
    )
    return token


def sdk_calls(page: Page) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = page.evaluate("() => window.supersetEmbeddedSdk.calls")
    return calls


def test_superset_mounts_are_handed_to_the_sdk_once_with_the_session_token(
    browser: Browser, superset_server: str
) -> None:
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{superset_server}/")
    page.wait_for_function("() => window.supersetEmbeddedSdk.calls.some(c => c.guestToken)")
    (call,) = sdk_calls(page)
    block = session_token(page)
    assert call == {
        "id": SUPERSET_DASHBOARD,
        "supersetDomain": superset_server,
        "mountId": "ss",
        "mountIsElement": True,
        "ui": {"hideTitle": True, "filters": {"visible": True, "expanded": False}},
        "guestToken": block,  # fetchGuestToken: the session's token
    }
    claims = jwt.decode(block, TEST_SECRET, algorithms=["HS256"], audience="embedgate")
    assert claims["type"] == "guest"
    assert SUPERSET_DASHBOARD in [r["id"] for r in claims["resources"]]
    assert page.locator("#ss iframe").count() == 1  # the SDK filled the mount point

    # A mount point the page's own script adds later (with the response's binding, copied
    # from the server's markup) is handed over too; nothing is handed over twice.
    page.evaluate(
        """id => {
          const el = document.createElement("div");
          el.id = "later";
          el.dataset.embedgateBind = document.getElementById("ss").dataset.embedgateBind;
          el.dataset.embedgateSdk = "superset";
          el.dataset.embedgateDashboard = id;
          el.dataset.embedgateDomain = location.origin;
          document.body.appendChild(el);
        }""",
        SUPERSET_OTHER,
    )
    page.wait_for_function("() => window.supersetEmbeddedSdk.calls.length === 2")
    page.wait_for_timeout(1000)
    calls = sdk_calls(page)
    assert [(c["id"], c["mountId"]) for c in calls] == [
        (SUPERSET_DASHBOARD, "ss"),
        (SUPERSET_OTHER, "later"),
    ]
    assert calls[1]["ui"] == {"hideTitle": False}

    # After the session's refresh, the SDK's fetchGuestToken gets the new token.
    page.wait_for_function("old => window.embedgate.current().token !== old", arg=block)
    refreshed = page.evaluate("() => window.supersetEmbeddedSdk.fetchers[0]()")
    assert refreshed == page.evaluate("() => window.embedgate.current().token") != block
    assert len(sdk_calls(page)) == 2
    page.close()


def test_the_handover_waits_for_an_sdk_the_page_loads_late(
    browser: Browser, superset_server: str
) -> None:
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{superset_server}/late", wait_until="domcontentloaded")
    # embedgate.js has run (deferred scripts run before DOMContentLoaded); the SDK not yet.
    assert page.evaluate("() => typeof window.embedgate.getToken") == "function"
    assert page.evaluate("() => window.supersetEmbeddedSdk === undefined")
    page.wait_for_function("() => window.supersetEmbeddedSdk?.calls?.[0]?.guestToken")
    page.wait_for_timeout(500)
    (call,) = sdk_calls(page)
    assert (call["id"], call["mountId"]) == (SUPERSET_DASHBOARD, "ss")
    assert call["guestToken"] == session_token(page)
    assert page.evaluate("() => window.errors") == []
    page.close()


def test_a_per_dashboard_superset_guest_token_is_fetched_by_its_dashboard(
    browser: Browser, superset_per_dashboard_server: str
) -> None:
    server = superset_per_dashboard_server
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{server}/")
    page.wait_for_function("() => window.supersetEmbeddedSdk.calls.some(c => c.guestToken)")
    assert page.evaluate(BLOCK) == SESSIONLESS_BLOCK
    assert page.get_attribute("#ss", "data-embedgate-resource") == SUPERSET_DASHBOARD
    (call,) = sdk_calls(page)
    assert (call["id"], call["mountId"]) == (SUPERSET_DASHBOARD, "ss")
    first = call["guestToken"]
    claims = jwt.decode(first, TEST_SECRET, algorithms=["HS256"], audience="embedgate")
    assert claims["type"] == "guest"
    assert claims["resources"] == [{"type": "dashboard", "id": SUPERSET_DASHBOARD}]
    # fetchGuestToken asked for the dashboard's token (the one its page render granted).
    calls = log(server)["calls"]
    assert [(c["resource"], c["status"], c["digest"]) for c in calls] == [
        (SUPERSET_DASHBOARD, 200, digest(first))
    ]

    # Once that token is due, the SDK's next fetchGuestToken gets a new one for the dashboard.
    deadline = time.monotonic() + 15
    second = first
    while second == first:
        assert time.monotonic() < deadline, "fetchGuestToken never returned a new token"
        page.wait_for_timeout(500)
        second = page.evaluate("() => window.supersetEmbeddedSdk.fetchers[0]()")
    renewed = jwt.decode(second, TEST_SECRET, algorithms=["HS256"], audience="embedgate")
    assert renewed["resources"] == claims["resources"]
    assert renewed["exp"] > claims["exp"]
    assert time.time() < claims["exp"]  # before the first one ran out
    calls = log(server)["calls"]
    # Once due, the still-valid token may come back while the refresh runs beside it.
    assert {(c["resource"], c["status"]) for c in calls} == {(SUPERSET_DASHBOARD, 200)}
    assert calls[-1]["digest"] == digest(second)
    assert distinct_in_order([c["digest"] for c in calls])[-1] == digest(second)
    assert page.evaluate(f"() => window.embedgate.current({SUPERSET_DASHBOARD!r}).token") == second
    assert page.evaluate("() => window.errors") == []
    assert len(sdk_calls(page)) == 1
    page.close()
