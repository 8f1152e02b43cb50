"""embedgate.js in real Chromium on a page that mixes the genuine embeds with user-supplied
hostile markup (tests/security/app.py): every request of the page is recorded, and no
request to an origin other than the page's own and the provider's carries a token, no
hostile script runs, no hostile element gets a token, and the genuine embeds still refresh.

Tokens live 12 s, so the test sees at least one refresh."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import Browser, Route

from tests.conftest import TEST_SECRET
from tests.support.browser import chromium
from tests.support.net import PYTHON, free_port, run_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

TTL = 12

# Every attribute of every element that holds a token, except the genuine embeds'.
# (Through the prototypes: the hostile markup clobbers document.querySelectorAll & co.)
LEAKS = """tokens => {
  const genuine = new Set(["frame", "local", "element", "handwritten"]);
  const found = [];
  for (const el of Document.prototype.querySelectorAll.call(document, "*")) {
    if (genuine.has(Element.prototype.getAttribute.call(el, "id"))) continue;
    for (const a of el.attributes) {
      if (tokens.some(t => a.value.includes(t) || a.value.includes(encodeURIComponent(t)))) {
        found.push(el.localName + " " + a.name);
      }
    }
  }
  return found;
}"""


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    port = free_port()
    page_origin = f"http://127.0.0.1:{port}"
    provider = f"http://localhost:{port}"  # another origin of the same server
    settings = {
        "EMBEDGATE_SECRET": TEST_SECRET,
        "EMBEDGATE_TTL": str(TTL),
        "EMBEDGATE_MIN_REMAINING": "2",
        "EMBEDGATE_REFRESH_MARGIN": "5",
        "EMBEDGATE_PROVIDER_URL": provider,
    }
    argv = [PYTHON, "-m", "uvicorn", "--factory", "tests.security.app:create"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with run_server(argv, port, env=settings):
        yield page_origin, provider


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else url


@pytest.mark.parametrize("path", ["/", "/injected", "/clobbered"])
def test_hostile_markup_never_gets_the_token_and_the_genuine_embeds_refresh(
    browser: Browser, server: tuple[str, str], path: str
) -> None:
    page_origin, provider = server
    context = browser.new_context()
    requests: list[dict[str, Any]] = []

    def recorded(request: Any) -> None:
        requests.append(
            {"url": request.url, "headers": request.headers, "body": request.post_data or ""}
        )

    def offline(route: Route) -> None:
        # Nothing leaves the machine: other origins get an empty answer (still recorded).
        if origin(route.request.url) in (page_origin, provider):
            route.continue_()
        else:
            route.fulfill(status=204, body="")

    context.on("request", recorded)
    context.route("**/*", offline)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(page_origin + path)
    page.wait_for_function("() => window.seen.length >= 2")  # the page's token, then a new one
    first, second = page.evaluate("() => window.seen.slice(0, 2)")
    assert second != first
    frame_src = "Document.prototype.getElementById.call(document, 'frame').getAttribute('src')"
    page.wait_for_function(f"() => {frame_src}.includes({quote(second, safe='')!r})")

    # The genuine embeds follow the new token.
    assert page.get_attribute("#frame", "src") == (
        f"{provider}/provider/embed#token={quote(second, safe='')}"
    )
    assert page.get_attribute("#local", "src") == (
        f"{page_origin}/local/embed#token={quote(second, safe='')}"
    )
    assert page.get_attribute("#element", "auth") == second
    assert page.get_attribute("#handwritten", "auth-token") == second

    tokens = page.evaluate("() => window.seen")
    # No hostile script ran; no hostile element holds a token.
    assert page.evaluate("() => window.pwned") == 0
    assert page.evaluate(LEAKS, tokens) == []
    # No request to another origin carries a token (URL, headers or body).
    allowed = {page_origin, provider}
    leaked = [
        r["url"]
        for r in requests
        if origin(r["url"]) not in allowed
        and any(
            t in blob or quote(t, safe="") in blob
            for t in tokens
            for blob in (r["url"], r["body"], repr(r["headers"]))
        )
    ]
    assert leaked == []
    # The forged data block was never read: nothing was handed to an SDK or asked for a
    # resource, and the endpoint was only asked for the session's token.
    assert page.evaluate("() => typeof window.embedgate.getToken") == "function"
    asked = [r for r in requests if r["url"].endswith("/_embedgate/token")]
    assert asked
    assert all(r["body"] == "" for r in asked)
    context.close()


# Bound elements (the page's own script copies the response's binding) asking for what no
# policy allows: nothing is written, each refusal is reported once.
BOUND = """async cases => {
  const genuine = Document.prototype.getElementById.call(document, "element");
  const bind = genuine.getAttribute("data-embedgate-bind");
  const box = document.createElement("div");
  box.innerHTML = cases.join("");
  for (const el of box.querySelectorAll("[data-embedgate-token]")) {
    el.setAttribute("data-embedgate-bind", bind);
  }
  const before = window.errors.length;
  document.body.appendChild(box);
  for (let n = 0; n < 100 && window.errors.length - before < cases.length - 1; n++) {
    await new Promise(r => setTimeout(r, 50));
  }
  const token = window.embedgate.current().token;
  return {
    written: [...box.querySelectorAll("[data-embedgate-token]")].map(el => {
      const name = el.getAttribute("data-embedgate-token");
      return [el.localName, name, (el.getAttribute(name) || "").includes(token)];
    }),
    codes: window.errors.slice(before).map(e => e.code),
  };
}"""


@pytest.mark.timeout(60)
def test_bound_elements_get_only_allowed_attributes(
    browser: Browser, server: tuple[str, str]
) -> None:
    page_origin, _ = server
    page = browser.new_page()
    page.goto(page_origin + "/plain")
    page.wait_for_function("() => window.embedgate.current() !== null")
    cases = [
        '<x-widget data-embedgate-token="auth"></x-widget>',  # allowed: a custom element's
        '<x-widget data-embedgate-token="onclick"></x-widget>',
        '<x-widget data-embedgate-token="style"></x-widget>',
        '<x-widget data-embedgate-token="href"></x-widget>',
        '<x-widget data-embedgate-token="srcdoc"></x-widget>',
        '<img data-embedgate-token="title">',
        '<img data-embedgate-token="onerror" src="/missing.png">',
        '<a data-embedgate-token="href">x</a>',
        '<iframe data-embedgate-token="srcdoc"></iframe>',
        '<iframe data-embedgate-token="src"></iframe>',  # no template: never the bare token
        '<svg><image data-embedgate-token="href"></image></svg>',
        '<form data-embedgate-token="action"></form>',
    ]
    result = page.evaluate(BOUND, cases)
    assert [w[2] for w in result["written"]] == [True] + [False] * (len(cases) - 1)
    assert sorted(set(result["codes"])) == ["attribute_refused", "url_refused"]
    assert len(result["codes"]) == len(cases) - 1
    assert page.evaluate("() => window.pwned") == 0
    page.close()
