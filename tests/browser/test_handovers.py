"""Each provider front end gets embedgate's fresh tokens, in a real Chromium against uvicorn.

The SDK scripts' real URLs are routed to stand-ins (nothing leaves 127.0.0.1) that record
what the page handed them: ``powerbi-client`` (``powerbi.embed`` with an Embed token, then
``report.setAccessToken``), ThoughtSpot's Visual Embed SDK (``init`` with cookieless trusted
auth and ``getAuthToken``), Preset's SDK (``fetchGuestToken``), Metabase's embedding SDK
(``fetchRequestToken`` answering ``{jwt}``), ``<tableau-viz token>`` and Toucan's
``<tc-dashboard>``/``<tc-ai-assistant>`` ``auth-token``. Tokens live 12 s and refresh ahead:
the test waits for a refresh and checks the new token reached each of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route

from tests.browser.handover_app import SDK_URLS
from tests.conftest import TEST_SECRET
from tests.integrations.helpers import claims
from tests.support.browser import chromium
from tests.support.net import PYTHON, free_port, run_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

STANDINS = {
    "powerbi": """
window["powerbi-client"] = { models: { TokenType: { Aad: 0, Embed: 1 } } };
window.powerbi = { reports: [], embed: function (el, config) {
  var report = { config: config, el: el.id, pushed: [],
    setAccessToken: function (t) { report.pushed.push(t); return Promise.resolve(); } };
  window.powerbi.reports.push(report);
  return report;
} };""",
    "thoughtspot": """
window.tsembed = { AuthType: { TrustedAuthTokenCookieless: "AuthServerCookieless" },
  inits: [], embeds: [],
  init: function (config) { window.tsembed.inits.push(config); return {}; },
  LiveboardEmbed: function (el, config) {
    window.tsembed.embeds.push({ el: el.id, config: config });
    this.render = function () { return this; };
  } };""",
    "preset": """
window.presetSdk = { calls: [], embedDashboard: function (o) {
  window.presetSdk.calls.push(o); return Promise.resolve({}); } };""",
    "tableau": """
window.seen = window.seen || {};
customElements.define("tableau-viz", class extends HTMLElement {
  static get observedAttributes() { return ["token"]; }
  attributeChangedCallback(name, old, value) {
    (window.seen[this.id] = window.seen[this.id] || []).push(value);
  }
});""",
    "toucan": """
window.seen = window.seen || {};
["tc-dashboard", "tc-ai-assistant"].forEach(function (tag) {
  customElements.define(tag, class extends HTMLElement {
    static get observedAttributes() { return ["auth-token"]; }
    attributeChangedCallback(name, old, value) {
      (window.seen[this.id] = window.seen[this.id] || []).push(value);
    }
  });
});""",
}
BY_URL = {url: STANDINS[name] for name, url in SDK_URLS.items()}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    argv = [PYTHON, "-m", "uvicorn", "--factory", "tests.browser.handover_app:create"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    env = {
        "HANDOVER_ORIGIN": f"http://127.0.0.1:{port}",
        "EMBEDGATE_SECRET": TEST_SECRET,
        "EMBEDGATE_TTL": "12",
        "EMBEDGATE_MIN_REMAINING": "2",
        "EMBEDGATE_REFRESH_MARGIN": "5",
    }
    with run_server(argv, port, env=env):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def standins(route: Route) -> None:
    url = route.request.url
    if url in BY_URL:
        route.fulfill(status=200, content_type="text/javascript", body=BY_URL[url])
    elif url.startswith("http://127.0.0.1:"):
        route.continue_()
    else:
        route.abort()  # nothing else leaves the machine


def current(page: Page) -> str:
    token: str = page.evaluate("() => window.embedgate.current().token")
    return token


def test_a_refresh_reaches_every_provider_front_end(browser: Browser, server: str) -> None:
    page = browser.new_page()
    page.route("**/*", standins)
    page.goto(f"{server}/")
    page.wait_for_function(
        "() => window.powerbi.reports.length && window.tsembed.embeds.length"
        " && window.presetSdk.calls.length"
    )
    first = current(page)
    assert claims(first)["sub"] == "alice"

    report: dict[str, Any] = page.evaluate("() => window.powerbi.reports[0].config")
    assert report == {
        "type": "report",
        "id": "r-1",
        "embedUrl": f"{server}/reportEmbed?reportId=r-1",
        "accessToken": first,
        "tokenType": 1,  # models.TokenType.Embed
    }
    init: dict[str, Any] = page.evaluate(
        "() => ({host: tsembed.inits[0].thoughtSpotHost, auth: tsembed.inits[0].authType,"
        " n: tsembed.inits.length})"
    )
    assert init == {"host": server, "auth": "AuthServerCookieless", "n": 1}
    assert page.evaluate("() => tsembed.embeds[0].config.liveboardId") == "lb-1"
    assert page.evaluate("() => presetSdk.calls[0].id") == "d-1"
    assert page.evaluate("() => presetSdk.calls[0].supersetDomain") == server

    # The refresh (12 s tokens, refreshed ~5 s before expiry).
    page.wait_for_function("t => window.embedgate.current().token !== t", arg=first, timeout=30_000)
    fresh = current(page)
    assert claims(fresh)["sub"] == "alice"
    # Pushed: Power BI's setAccessToken and the elements' attributes.
    page.wait_for_function("t => window.powerbi.reports[0].pushed.includes(t)", arg=fresh)
    for element in ("viz", "dash", "assistant"):
        seen: list[str] = page.evaluate("id => window.seen[id]", element)
        assert seen[-1] == fresh, element
        assert first in seen, element
    # Pulled: the SDKs' own callbacks answer the fresh token.
    assert page.evaluate("() => tsembed.inits[0].getAuthToken()") == fresh
    assert page.evaluate("() => presetSdk.calls[0].fetchGuestToken()") == fresh
    assert page.evaluate("() => window.embedgate.fetchRequestToken()") == {"jwt": fresh}
    # Each mount handed over once.
    assert page.evaluate("() => [powerbi.reports.length, presetSdk.calls.length]") == [1, 1]


def test_a_faked_token_event_reaches_no_sdk(browser: Browser, server: str) -> None:
    """Tokens reach the SDKs from the script itself: an ``embedgate:token`` event dispatched
    by the page (or by markup injected into it) hands nothing to Power BI."""
    page = browser.new_page()
    page.route("**/*", standins)
    page.goto(f"{server}/")
    page.wait_for_function("() => window.powerbi.reports.length")
    page.evaluate(
        "() => window.dispatchEvent(new CustomEvent('embedgate:token',"
        " {detail: {token: 'attacker', resource: null}}))"
    )
    assert page.evaluate("() => window.powerbi.reports[0].pushed") == []
