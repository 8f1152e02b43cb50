"""What a first visit to `embedgate demo` looks like in a real Chromium: a phone-width page
without horizontal scrolling, a chart with axes and values, one countdown, and a signed-out
state (not the last user's rows) once the session ended in another tab."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.demo.test_demo_browser import log_in, ready
from tests.demo.test_demo_http import running_demo
from tests.support.browser import chromium

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with running_demo(60) as (url, _):
        yield url


def new_page(browser: Browser, base: str, width: int = 1280, height: int = 900) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=base)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


@pytest.mark.parametrize("path", ["/login", "/token/", "/sandbox/", "/sso/", "/idp/"])
def test_no_horizontal_scroll_at_390_px(browser: Browser, base: str, path: str) -> None:
    page = new_page(browser, base, 390, 844)
    try:
        if path != "/login":
            log_in(page, "alice")
        page.goto(path)
        if path in ("/token/", "/sandbox/"):
            ready(page)
        page.wait_for_load_state("networkidle")
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], f"{path}: scrollWidth {widths[0]} > {widths[1]}"
    finally:
        page.context.close()


def test_the_chart_has_axes_and_values_and_the_page_one_countdown(
    browser: Browser, base: str
) -> None:
    page = new_page(browser, base)
    try:
        log_in(page, "alice")
        ready(page)
        chart = page.locator("#dashboard svg.bars")
        bars = chart.locator("rect.bar").count()
        assert bars > 0
        expect(chart.locator("line.y-axis")).to_have_count(1)
        expect(chart.locator("line.x-axis")).to_have_count(1)
        assert chart.locator("text.tick-label").count() >= 2
        values = chart.locator("text.value").all_text_contents()
        assert len(values) == bars
        assert all(value.startswith("$") for value in values)
        # One countdown: the host's token panel; the dashboard does not show its own.
        expect(page.locator("#token-expires")).to_be_visible()
        expect(page.locator("#dashboard [data-field=remaining]")).to_be_hidden()
    finally:
        page.context.close()


def test_logging_out_in_another_tab_shows_a_signed_out_state(browser: Browser, base: str) -> None:
    first = new_page(browser, base)
    try:
        log_in(first, "alice")
        ready(first)
        second = first.context.new_page()
        second.goto("/token/")
        second.locator("#logout").click()
        # The first tab learns it at its next refresh (forced here, not waited for).
        first.evaluate("() => window.embedgate.refresh().catch(() => null)")
        notice = first.locator("#signed-out")
        expect(notice).to_be_visible()
        expect(notice.locator("a")).to_have_attribute("href", "/login?next=%2Ftoken%2F")
        expect(first.locator("#dashboard")).to_have_count(0)
        assert "acme" not in (first.locator("main").text_content() or "")
    finally:
        first.context.close()
