"""embedgate.js in a real headless Chromium against uvicorn.

Tokens live 12 s, so the refresher must fetch a new one within seconds: the page receives
the injected token, the marked element's attribute follows each new token, the new token
arrives before the old one expires (the due call gets the still-valid token while the
server refreshes beside it, the next call the new one), and a second tab of the same
browser session does not call the endpoint again (counted server-side)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from playwright.sync_api import Browser, Page

from tests.conftest import TEST_SECRET
from tests.support.browser import chromium
from tests.support.net import PYTHON, free_port, run_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

TTL = 12
SETTINGS = {
    "EMBEDGATE_SECRET": TEST_SECRET,
    "EMBEDGATE_TTL": str(TTL),
    "EMBEDGATE_MIN_REMAINING": "2",
    "EMBEDGATE_REFRESH_MARGIN": "5",
}
ATTRIBUTE = "document.getElementById('dashboard').getAttribute('auth-token')"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    argv = [PYTHON, "-m", "uvicorn", "--factory", "tests.browser.app:create"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with run_server(argv, port, env=SETTINGS):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def calls(server: str) -> list[dict[str, Any]]:
    """The token endpoint's answers so far, as the server saw them."""
    answered: list[dict[str, Any]] = httpx.get(f"{server}/calls").json()
    return answered


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        token, TEST_SECRET, algorithms=["HS256"], audience="embedgate", issuer="embedgate"
    )
    return decoded


def open_dashboard(page: Page, server: str) -> str:
    """Load the page; the token the element carries once the script has taken over."""
    page.set_default_timeout(20_000)
    page.goto(f"{server}/")
    page.wait_for_function(f"() => !!{ATTRIBUTE}")
    token: str = page.evaluate(f"() => {ATTRIBUTE}")
    return token


def next_token(page: Page, old: str) -> str:
    page.wait_for_function(f"old => {ATTRIBUTE} !== old", arg=old, timeout=20_000)
    token: str = page.evaluate(f"() => {ATTRIBUTE}")
    return token


def test_the_refresher_replaces_the_token_before_it_expires(browser: Browser, server: str) -> None:
    before = len(calls(server))
    page = browser.new_page()
    first = open_dashboard(page, server)
    assert first == page.text_content("#embedgate-token").split('"token":"')[1].split('"')[0]  # type: ignore[union-attr]
    assert len(calls(server)) == before  # the page carried its token: no endpoint call
    old = claims(first)

    second = next_token(page, first)
    new = claims(second)
    assert new["jti"] != old["jti"]
    assert new["exp"] > old["exp"]
    assert new["sub"] == "alice"
    made = calls(server)[before:]
    # Two calls, no more: at the refresh time the server answers the still-valid token at
    # once and refreshes beside the request; the script comes back once for the new one.
    assert [c.get("jti") for c in made] == [old["jti"], new["jti"]]
    assert made[1]["at"] < old["exp"]  # fetched while the old token was still valid
    assert page.evaluate("() => window.embedgate.current().token") == second
    assert page.evaluate("() => window.seen") == [first, second]
    page.close()


def test_a_second_tab_reuses_the_first_tabs_refresh(browser: Browser, server: str) -> None:
    context = browser.new_context()  # one cookie jar: one embedgate session
    try:
        first_tab = context.new_page()
        start = open_dashboard(first_tab, server)
        second_tab = context.new_page()
        assert open_dashboard(second_tab, server) == start  # same session, same cached token
        before = len(calls(server))
        started = time.time()
        old = claims(start)

        refreshed = next_token(first_tab, start)
        assert next_token(second_tab, start) == refreshed
        # Let both tabs' timers run out: only one tab may have asked the server.
        first_tab.wait_for_timeout(3000)
        made = calls(server)[before:]
        # The due call got the still-valid token (refreshed beside it), the next the new
        # one: one tab's calls, the other tab took the token from it.
        assert [c.get("jti") for c in made] == [old["jti"], claims(refreshed)["jti"]]
        assert made[1]["at"] < old["exp"]
        assert time.time() - started < 20
    finally:
        context.close()
