"""`embedgate demo` in a real Chromium: the command runs as a subprocess on 127.0.0.1 with
15 s tokens; each test logs in like a visitor, checks what the dashboard shows, and saves a
screenshot under test-output/<test name>/."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.demo.test_demo_http import EXPECTED, running_demo
from tests.support.browser import chromium

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

TTL = 15
VIEWPORT = {"width": 1280, "height": 900}
# Every embedgate:token event the page sees: [token, expiresAt, local time in seconds].
RECORD_TOKENS = """
window.tokens = [];
document.addEventListener("embedgate:token", (e) =>
  window.tokens.push([e.detail.token, e.detail.expiresAt, Date.now() / 1000]));
window.loads = 0;
document.addEventListener("demo-dashboard:load", () => { window.loads += 1; });
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with running_demo(TTL) as (url, _):
        yield url


@pytest.fixture
def page(browser: Browser, base: str) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, base_url=base)
    context.add_init_script(RECORD_TOKENS)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    try:
        yield tab
    finally:
        context.close()


def log_in(page: Page, user: str) -> None:
    page.goto("/login")
    form = page.locator("#login-form")
    form.locator("input[name=username]").fill(user)
    form.locator("input[name=password]").fill("demo")
    form.locator("button[type=submit]").click()
    expect(page.locator("#who")).to_have_text(user)


def ready(page: Page) -> None:
    expect(page.locator("#dashboard")).to_have_attribute("data-state", "ready")


def shown_rows(page: Page) -> tuple[set[str], set[str], str]:
    """Tenants and regions in the dashboard's table (its shadow DOM), and its caption."""
    board = page.locator("#dashboard")
    tenants = set(board.locator("td[data-col=tenant]").all_text_contents())
    regions = set(board.locator("td[data-col=region]").all_text_contents())
    return tenants, regions, board.locator("caption").text_content() or ""


def assert_rows_of(page: Page, user: str) -> None:
    tenants, regions, total = EXPECTED[user]
    shown_tenants, shown_regions, caption = shown_rows(page)
    assert caption.startswith(f"Top 25 of {total} sales")
    assert shown_tenants <= tenants
    assert shown_regions <= regions
    if total < 100:  # one tenant and region: every visible row is exactly that
        assert (shown_tenants, shown_regions) == (tenants, regions)
    else:
        assert len(shown_tenants) > 1  # carol's top sales span several tenants
    expect(page.locator("#dashboard [data-field=subject]")).to_have_text(user)


def tokens_seen(page: Page) -> list[list[Any]]:
    seen: list[list[Any]] = page.evaluate("() => window.tokens")
    return seen


def shot(page: Page, output_dir: str, name: str) -> None:
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.screenshot(path=os.path.join(output_dir, f"{name}.png"), full_page=True)


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
def test_token_model_shows_each_user_their_rows(page: Page, user: str, output_dir: str) -> None:
    log_in(page, user)
    assert page.url.endswith("/token/")
    ready(page)
    assert_rows_of(page, user)
    expect(page.locator("#dashboard [data-field=source]")).to_have_text("host (signed JWT)")
    token = page.locator("#dashboard").get_attribute("auth-token") or ""
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    expect(page.locator("#token-panel")).to_have_attribute("data-token-id", jti)
    expect(page.locator("#token-kind")).to_have_text("JWT · EdDSA · signed by the host")
    shot(page, output_dir, f"token-{user}")


def test_the_token_is_refreshed_before_it_expires_and_the_dashboard_reloads(
    page: Page, output_dir: str
) -> None:
    log_in(page, "alice")
    ready(page)
    first, first_exp, _ = tokens_seen(page)[0]
    assert page.locator("#dashboard").get_attribute("auth-token") == first
    left = int((page.locator("#token-expires").text_content() or "0").split()[0])
    page.wait_for_timeout(1500)
    assert int((page.locator("#token-expires").text_content() or "0").split()[0]) < left

    # The refresh is due ~5 s before expiry: within TTL seconds of the page load.
    page.wait_for_function("() => window.tokens.length >= 2", timeout=TTL * 1000)
    second, second_exp, fetched_at = tokens_seen(page)[1]
    assert second != first
    assert second_exp > first_exp
    assert fetched_at < first_exp  # fetched while the first token was still valid
    old, new = (jwt.decode(t, options={"verify_signature": False}) for t in (first, second))
    assert new["jti"] != old["jti"]
    assert new["sub"] == "alice"
    expect(page.locator("#token-refreshes")).to_have_text("1")
    expect(page.locator("#token-panel")).to_have_attribute("data-token-id", new["jti"])
    expect(page.locator("#dashboard")).to_have_attribute("auth-token", second)
    page.wait_for_function("() => window.loads >= 2")  # loaded again with the new token

    # Past the first token's expiry the dashboard still shows the data.
    page.wait_for_timeout(max(0.0, first_exp + 1 - time.time()) * 1000)
    ready(page)
    assert_rows_of(page, "alice")
    assert page.locator("#token-expires").text_content() != "expired"
    shot(page, output_dir, "refreshed")


def test_the_sandbox_mints_through_the_provider(page: Page, output_dir: str) -> None:
    log_in(page, "alice")
    page.locator("a[data-model=sandbox]").click()
    expect(page.locator("a[data-model=sandbox]")).to_have_attribute("aria-current", "page")
    expect(page.locator("#dev-only")).to_be_visible()
    expect(page.locator("#dev-only")).to_contain_text("DEVELOPMENT ONLY")
    ready(page)
    assert_rows_of(page, "alice")
    expect(page.locator("#dashboard [data-field=source]")).to_have_text("provider (API key)")
    expect(page.locator("#token-kind")).to_contain_text("opaque")
    first = page.locator("#dashboard").get_attribute("auth-token") or ""
    assert first.startswith("demo.")

    page.wait_for_function("() => window.tokens.length >= 2", timeout=TTL * 1000)
    second = tokens_seen(page)[1][0]
    assert second != first
    assert second.startswith("demo.")
    expect(page.locator("#dashboard")).to_have_attribute("auth-token", second)
    page.wait_for_function("() => window.loads >= 2")
    ready(page)
    assert_rows_of(page, "alice")
    expect(page.locator("#token-refreshes")).to_have_text("1")
    shot(page, output_dir, "sandbox-alice")


def test_sso_signs_in_at_the_demo_idp(page: Page, output_dir: str) -> None:
    page.goto("/sso/")
    expect(page.locator("a[data-model=sso]")).to_have_attribute("aria-current", "page")
    page.locator("#sso-start").click()
    expect(page.locator("button[data-user=alice]")).to_be_visible()
    shot(page, output_dir, "idp")
    page.locator("button[data-user=alice]").click()  # the IdP posts the ID token back

    expect(page.locator("#who")).to_have_text("alice")
    expect(page.locator("#who-detail")).to_contain_text("(from the IdP)")
    assert page.url.endswith("/sso/")
    ready(page)
    assert_rows_of(page, "alice")
    page.locator("#sso-details summary").click()
    expect(page.locator("#sso-claims")).to_contain_text('"https://demo.embedgate/tenant": "acme"')
    page.locator("#token-details summary").click()
    expect(page.locator("#token-claims")).to_contain_text('"tenant": "acme"')
    shot(page, output_dir, "sso-alice")


def test_logging_out_ends_the_session(page: Page) -> None:
    log_in(page, "bob")
    ready(page)
    page.locator("#logout").click()
    expect(page.locator("#flash")).to_contain_text("1 cached embed token of your session purged")
    page.goto("/token/")
    assert page.url.endswith("/login?next=/token/")


def test_the_page_loads_nothing_from_elsewhere(browser: Browser, base: str) -> None:
    context = browser.new_context(base_url=base)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    try:
        tab = context.new_page()
        log_in(tab, "carol")
        ready(tab)
        assert requested
        assert all(url.startswith(base) for url in requested)
    finally:
        context.close()
