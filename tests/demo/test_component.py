"""The <demo-dashboard> web component in a real Chromium, against the provider mounted in a
host app on 127.0.0.1 (as `embedgate demo` will mount it)."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

from embedgate import LocalSigner, Principal, Secret
from embedgate.demo.provider import create_provider_app
from tests.demo.conftest import API_KEY, AUDIENCE, ISSUER, USERS, Host, make_keys, serve
from tests.support.browser import chromium

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>host</title></head><body>
<script>
  window.events = [];
  for (const name of ["load", "error", "expired"]) {{
    const record = (e) => window.events.push([name, e.detail]);
    document.addEventListener("demo-dashboard:" + name, record);
  }}
</script>
<script src="/provider/static/demo-dashboard.js"></script>
<demo-dashboard id="dash" dashboard="sales" auth-token="{token}"></demo-dashboard>
</body></html>
"""


@pytest.fixture(scope="module")
def host() -> Host:
    keys = make_keys("HS256")
    return Host(keys, LocalSigner(keys, issuer=ISSUER, audience=AUDIENCE))


@pytest.fixture(scope="module")
def site(host: Host) -> Iterator[str]:
    provider = create_provider_app(
        keys=host.keys, audience=AUDIENCE, issuer=ISSUER, api_key=Secret(API_KEY)
    )

    async def page(request: Request) -> HTMLResponse:
        token = host.token(USERS["alice"])
        return HTMLResponse(PAGE.format(token=html.escape(token)))

    app = Starlette(routes=[Route("/", page), Mount("/provider", app=provider)])
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, site: str) -> Iterator[Page]:
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.goto(site + "/")
    yield tab
    context.close()


def dash(page: Page, selector: str = "") -> Any:
    return page.locator(f"#dash {selector}".strip())


def set_token(page: Page, token: str) -> None:
    page.evaluate("(t) => document.getElementById('dash').setAttribute('auth-token', t)", token)


def column(page: Page, name: str) -> set[str]:
    return set(dash(page, f"td[data-col={name}]").all_text_contents())


def test_renders_the_viewers_rows_identity_and_chart(page: Page) -> None:
    expect(dash(page)).to_have_attribute("data-state", "ready")
    expect(dash(page, "[data-field=subject]")).to_have_text("alice")
    expect(dash(page, "[data-field=tenant]")).to_have_text("acme")
    expect(dash(page, "[data-field=region]")).to_have_text("EU")
    expect(dash(page, "[data-field=remaining]")).to_have_text(re.compile(r"^4m \d\ds$"))
    assert column(page, "tenant") == {"acme"}
    assert column(page, "region") == {"EU"}
    assert dash(page, "tbody tr").count() == 25
    expect(dash(page, "svg rect.bar")).to_have_count(12)
    expect(dash(page, "[data-field=filter]")).to_contain_text("tenant acme, region EU")
    expect(dash(page, ".error")).to_be_hidden()
    events = page.evaluate("window.events")
    assert [e[0] for e in events] == ["load"]
    assert events[0][1]["subject"] == "alice"
    assert events[0][1]["rows"] == 48


def test_a_new_auth_token_refetches_as_the_new_viewer(page: Page, host: Host) -> None:
    expect(dash(page, "[data-field=subject]")).to_have_text("alice")
    set_token(page, host.token(USERS["bob"]))
    expect(dash(page, "[data-field=subject]")).to_have_text("bob")
    expect(dash(page)).to_have_attribute("data-state", "ready")
    assert column(page, "tenant") == {"globex"}
    assert column(page, "region") == {"US"}
    set_token(page, host.token(USERS["carol"]))
    expect(dash(page, "[data-field=subject]")).to_have_text("carol")
    expect(dash(page, "table caption")).to_contain_text("of 432 sales")
    loads = [e[1]["subject"] for e in page.evaluate("window.events") if e[0] == "load"]
    assert loads == ["alice", "bob", "carol"]


@pytest.mark.parametrize("problem", ["expired", "bad_signature"])
def test_a_rejected_token_shows_an_error_and_no_data(page: Page, host: Host, problem: str) -> None:
    expect(dash(page)).to_have_attribute("data-state", "ready")
    if problem == "expired":
        token = host.token(USERS["bob"], ttl=60, now=time.time() - 600)
    else:
        head, payload, signature = host.token(USERS["bob"]).split(".")
        token = f"{head}.{payload}.{signature[:10]}{'A' if signature[10] != 'A' else 'B'}"
        token += signature[11:]
    set_token(page, token)
    expect(dash(page)).to_have_attribute("data-state", "error")
    error = dash(page, ".error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(f"({problem}, HTTP 401)")
    expect(dash(page, "tbody tr")).to_have_count(0)
    expect(dash(page, "[data-field=subject]")).to_have_text("—")
    errors = [e[1] for e in page.evaluate("window.events") if e[0] == "error"]
    assert errors == [{"status": 401, "code": problem, "message": errors[0]["message"]}]
    # A good token again clears the error.
    set_token(page, host.token(USERS["alice"]))
    expect(dash(page)).to_have_attribute("data-state", "ready")
    expect(error).to_be_hidden()


def test_the_countdown_reaches_expired_and_says_so(page: Page, host: Host) -> None:
    # Two seconds of life: the provider still serves it (leeway), the component counts down.
    set_token(page, host.token(USERS["bob"], ttl=2))
    expect(dash(page, "[data-field=subject]")).to_have_text("bob")
    expect(dash(page)).to_have_attribute("data-state", "expired", timeout=6_000)
    expect(dash(page, "[data-field=remaining]")).to_have_text("expired")
    expect(dash(page, ".status")).to_contain_text("token expired")
    assert [e[0] for e in page.evaluate("window.events")][-1] == "expired"


def test_token_values_are_shown_as_text_never_as_markup(page: Page, host: Host) -> None:
    evil = '<img src=x onerror="window.pwned=1">'
    set_token(page, host.token(Principal("eve", tenant=evil, attributes={"region": evil})))
    expect(dash(page, "[data-field=tenant]")).to_have_text(evil)
    expect(dash(page, "[data-field=region]")).to_have_text(evil)
    expect(dash(page, "tbody tr")).to_have_count(0)  # a tenant that matches no rows
    assert dash(page, "img").count() == 0
    assert page.evaluate("window.pwned") is None
