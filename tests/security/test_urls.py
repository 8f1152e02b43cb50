"""URL and path checks follow the WHATWG URL rules browsers use, identically in Python
(``embedgate.urls``, ada-url) and in Chromium (``new URL()``, embedgate.js).

The shared corpus (url_corpus.json) and Hypothesis-made strings go through both parsers; the
corpus's templates also go through embedgate.js's own check on a real page, which must accept
exactly those ``check_url_template`` accepts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser, Page

from embedgate.errors import ConfigurationError
from embedgate.providers.looker import parse_resource
from embedgate.urls import (
    PAGE_ORIGIN,
    check_path_id,
    check_url_template,
    origin_of,
    resolve,
    url_class,
)
from tests.conftest import TEST_SECRET
from tests.support.browser import chromium
from tests.support.net import PYTHON, free_port, run_server

CORPUS: list[str] = json.loads((Path(__file__).parent / "url_corpus.json").read_text())["cases"]
BASES = (
    "https://page.example/a/b?q#f",
    "http://page.example:8080/a/",
    "https://provider.example/embed/",
)
# What Chromium's URL says of (input, base): the href and origin, or null where it throws.
CHROMIUM_PARSE = """([inputs, bases]) => inputs.map(input => bases.map(base => {
  try {
    const u = base === null ? new URL(input) : new URL(input, base);
    return [u.href, u.origin];
  } catch (e) {
    return null;
  }
}))"""
URLISH = st.lists(
    st.sampled_from([*"/\\:@.%?#[]-_ \t\nahtpsxe2fE0123456789", "%2e", "%2F", "//", "https:"]),
    max_size=16,
).map("".join)


def python_parse(value: str, base: str | None) -> list[str] | None:
    href = resolve(value, base)
    if href is None:
        return None
    # Serialised like the browser's URL.origin ("null" for an opaque origin).
    return [href, origin_of(href) or ("null" if not href.startswith("blob:") else "")]


def agree(python: list[str] | None, browser: list[str] | None) -> bool:
    """The same verdict: both throw, or the same href (and the same http(s) origin).

    Chromium keeps a few URLs the standard refuses (a space in a host: ``https://a b/``
    becomes ``https://a%20b/``); those agree when Chromium's origin is one no configured
    origin can ever equal (it does not parse back as itself), so both checks refuse it."""
    if python is None and browser is not None:
        return origin_of(browser[1]) != browser[1]
    if python is None or browser is None:
        return python is browser
    if python[0] != browser[0]:
        return False
    web = origin_of(python[0]) is not None
    return not web or python[1] == browser[1]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def blank(browser: Browser) -> Iterator[Page]:
    page = browser.new_page()
    yield page
    page.close()


@pytest.mark.browser
def test_the_corpus_parses_the_same_in_python_and_in_chromium(blank: Page) -> None:
    bases: list[str | None] = [None, *BASES]
    seen: list[Any] = blank.evaluate(CHROMIUM_PARSE, [CORPUS, bases])
    differ = [
        (value, base, python_parse(value, base), got)
        for value, row in zip(CORPUS, seen, strict=True)
        for base, got in zip(bases, row, strict=True)
        if not agree(python_parse(value, base), got)
    ]
    assert differ == []


@pytest.mark.browser
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(URLISH, min_size=20, max_size=40))
def test_made_up_urls_parse_the_same_in_python_and_in_chromium(
    blank: Page, values: list[str]
) -> None:
    bases: list[str | None] = [None, *BASES]
    seen: list[Any] = blank.evaluate(CHROMIUM_PARSE, [values, bases])
    for value, row in zip(values, seen, strict=True):
        for base, got in zip(bases, row, strict=True):
            assert agree(python_parse(value, base), got), (value, base)


# -- Python's checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "/\\evil.example/{token}",
        "//evil.example/{token}",
        "\\\\evil.example/{token}",
        "\\/evil.example/{token}",
        "/\t/evil.example/{token}",
        "https:evil.example/{token}",
        "http:/evil.example/{token}",
        "java\tscript:alert(1)//{token}",
        " javascript:alert(1)//{token}",
        "data:text/html,{token}",
        "ftp://evil.example/{token}",
    ],
)
def test_templates_a_browser_reads_as_another_site_are_refused(template: str) -> None:
    with pytest.raises(ConfigurationError):
        check_url_template("url", template, (PAGE_ORIGIN,))
    with pytest.raises(ConfigurationError):
        check_url_template("url", template, (PAGE_ORIGIN, "https://provider.example"))


def test_paths_and_provider_urls_are_classified_as_the_browser_reads_them() -> None:
    assert url_class("/embed#t=x") == PAGE_ORIGIN
    assert url_class("embed?t=x") == PAGE_ORIGIN
    assert url_class("HTTPS://Provider.Example:443/e") == "https://provider.example"
    assert url_class("ht\ttps://provider.example/e") == "https://provider.example"
    assert url_class("https://provider.example@evil.example/") == "https://evil.example"
    origins = (PAGE_ORIGIN, "https://provider.example")
    assert check_url_template("url", "https://provider.example/e#{token}", origins)
    with pytest.raises(ConfigurationError, match=r"https://evil\.example"):
        check_url_template("url", "https://provider.example@evil.example/{token}", origins)
    with pytest.raises(ConfigurationError):
        check_url_template("url", "/embed#{token}", ("https://provider.example",))


@pytest.mark.parametrize(
    "ident",
    [".", "..", "%2e", "%2E%2e", ".%2e", "a/..", "../a", "a/./b", "a\\b", "a/%2e%2e", "a//b", "a?b",
     "a#b", "a\tb", "a\nb", "/a", "a/", "%2f", "a%2fb", "ä"],
)  # fmt: skip
def test_ids_that_would_become_other_path_segments_are_refused(ident: str) -> None:
    with pytest.raises(ConfigurationError):
        check_path_id("id", ident, segments=2)
    for resource in (f"dashboard:{ident}", f"look:{ident}", f"explore:thelook/{ident}"):
        with pytest.raises(ConfigurationError):
            parse_resource(resource)


def test_plain_looker_ids_still_pass() -> None:
    assert parse_resource("dashboard:12") == ("dashboard", "12")
    assert parse_resource("dashboard:thelook::orders") == ("dashboard", "thelook::orders")
    assert parse_resource("explore:thelook/orders") == ("explore", "thelook/orders")


@settings(deadline=None)  # a loaded CI machine: no timing here
@given(ident=st.text(alphabet=st.sampled_from(list("ab1.:_-/\\%2eE")), min_size=1, max_size=12))
def test_an_accepted_id_is_read_back_as_exactly_its_own_segments(ident: str) -> None:
    try:
        check_path_id("id", ident, segments=2)
    except ConfigurationError:
        return
    base = "https://looker.example/embed/dashboards/"
    href = resolve(base + ident)
    assert href == base + ident  # nothing normalised, decoded or collapsed
    assert all(part not in (".", "..") for part in ident.split("/"))


@settings(deadline=None)  # a loaded CI machine: no timing here
@given(value=URLISH)
def test_a_same_site_reference_stays_on_every_page_origin(value: str) -> None:
    found = url_class(value)
    for base in BASES:
        if found == PAGE_ORIGIN:
            assert origin_of(value, base) == origin_of(base)
        elif found is not None:
            assert origin_of(value, base) == found


# -- embedgate.js's check on a real page --------------------------------------------------

# Bound iframes (the page's own script copies the response's binding), one per template;
# resolves once each has its src written or its refusal reported.
PROBE = """async templates => {
  const genuine = Document.prototype.getElementById.call(document, "frame");
  const bind = genuine.getAttribute("data-embedgate-bind");
  const box = document.createElement("div");
  templates.forEach((t, i) => {
    const el = document.createElement("iframe");
    el.id = "probe-" + i;
    el.setAttribute("data-embedgate-bind", bind);
    el.setAttribute("data-embedgate-token", "src");
    el.setAttribute("data-embedgate-url-template", t);
    box.appendChild(el);
  });
  const before = window.errors.length;
  document.body.appendChild(box);
  for (let n = 0; n < 200; n++) {
    const written = templates.filter((t, i) => box.children[i].hasAttribute("src")).length;
    const refused = window.errors.length - before;
    if (written + refused >= templates.length) break;
    await new Promise(r => setTimeout(r, 50));
  }
  return templates.map((t, i) => box.children[i].hasAttribute("src"));
}"""


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    port = free_port()
    provider = f"http://localhost:{port}"
    env = {"EMBEDGATE_SECRET": TEST_SECRET, "EMBEDGATE_PROVIDER_URL": provider}
    argv = [PYTHON, "-m", "uvicorn", "--factory", "tests.security.app:create"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with run_server(argv, port, env=env):
        yield f"http://127.0.0.1:{port}", provider


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_embedgate_js_accepts_exactly_the_templates_python_accepts(
    browser: Browser, server: tuple[str, str]
) -> None:
    page_origin, provider = server
    host = provider.split("//", 1)[1]
    templates = [
        t.replace("provider.example", host) for t in CORPUS if "{token}" in t and "\0" not in t
    ]
    context = browser.new_context()
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith((page_origin, provider))
            else route.fulfill(status=204, body="")
        ),
    )
    page = context.new_page()
    page.goto(page_origin + "/plain")
    page.wait_for_function("() => window.embedgate.current() !== null")
    written: list[bool] = page.evaluate(PROBE, templates)

    def python_accepts(template: str) -> bool:
        try:
            check_url_template("url", template, (PAGE_ORIGIN, provider))
        except ConfigurationError:
            return False
        return True

    differ = [
        (t, python, js)
        for t, js in zip(templates, written, strict=True)
        if (python := python_accepts(t)) != js
    ]
    assert differ == []
    assert any(written)  # the page's own paths and the provider's URLs are accepted
    assert page.evaluate("() => window.pwned") == 0
    context.close()
