"""Template helpers rendered inside an async Starlette/FastAPI view mint through the async
token service: while a remote provider (a real server on loopback, 200 ms a token) holds the
mint, the same event loop keeps answering other requests. Without that, the sync service
would block the loop for the whole mint and nothing else could be answered meanwhile."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from jinja2 import DictLoader, Environment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from embedgate import Engine, Principal
from embedgate.asgi import EmbedgateMiddleware
from embedgate.integrations.starlette import install_templates
from tests.providers.fakes.server import serve
from tests.providers.fakes.toucan import FakeToucan

API_KEY = "tc-async-helpers-key-do-not-log"
PAGE = (
    "<html><head><title>t</title></head><body>"
    '<p data-token="{{ embed_token() }}"></p>'
    "{{ embed_snippet('dashboard', 'sales') }}"
    "</body></html>"
)


class CountingToucan(FakeToucan):
    """A fake Toucan that says how many mints it is holding right now."""

    def __init__(self) -> None:
        super().__init__(API_KEY, delay=0.2)
        self.in_flight = 0

    async def generate(self, request: Request) -> Response:
        self.in_flight += 1
        try:
            return await super().generate(request)
        finally:
            self.in_flight -= 1


@pytest.fixture
def toucan() -> Iterator[tuple[CountingToucan, str]]:
    fake = CountingToucan()
    with serve(fake.app) as url:
        yield fake, url


def app_for(toucan: CountingToucan, url: str) -> Starlette:
    templates = install_templates(
        Jinja2Templates(env=Environment(loader=DictLoader({"page.html": PAGE}), autoescape=True))
    )
    seen_in_flight: list[int] = []

    async def page(request: Request) -> Response:
        return templates.TemplateResponse(request, "page.html")

    async def ping(request: Request) -> Response:
        seen_in_flight.append(toucan.in_flight)
        return JSONResponse({"in_flight": toucan.in_flight})

    def user(scope: Any) -> Principal | None:
        return Principal(subject="alice", tenant="acme")

    app = Starlette(routes=[Route("/", page), Route("/ping", ping)])
    app.state.seen = seen_in_flight
    engine = Engine.from_settings(
        environ={},
        provider="toucan",
        provider_url=url,
        api_key=API_KEY,
    )
    app.add_middleware(EmbedgateMiddleware, engine=engine, user_resolver=user)
    return app


def test_an_async_view_mints_without_blocking_the_loop(
    toucan: tuple[CountingToucan, str],
) -> None:
    fake, url = toucan
    app = app_for(fake, url)

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            done: list[httpx.Response] = []

            async def load_page() -> None:
                done.append(await client.get("/"))

            async with anyio.create_task_group() as group:
                group.start_soon(load_page)
                for _ in range(2000):  # bounded: the page is done long before
                    if done:
                        break
                    await client.get("/ping")
                    await anyio.sleep(0.005)
            return done[0]

    page = anyio.run(scenario)
    assert fake.calls == 1  # one remote mint, shared by both helpers
    assert max(app.state.seen) == 1, "no request was served while the provider held the mint"
    token = "tc_1_alice"
    assert f'data-token="{token}"' in page.text
    assert re.search(rf'<tc-dashboard [^>]*auth-token="{token}"', page.text), page.text
    assert "embedgate-deferred" not in page.text
    assert page.headers["content-length"] == str(len(page.content))
    assert page.headers["cache-control"] == "private, no-store"


def test_a_sync_view_still_renders_with_the_sync_service(
    toucan: tuple[CountingToucan, str],
) -> None:
    fake, url = toucan
    app = app_for(fake, url)

    def sync_page(request: Request) -> Response:  # run in a worker thread by Starlette
        templates = install_templates(
            Jinja2Templates(env=Environment(loader=DictLoader({"p": PAGE}), autoescape=True))
        )
        return templates.TemplateResponse(request, "p")

    app.router.routes.append(Route("/sync", sync_page))

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/sync")

    page = anyio.run(scenario)
    assert 'data-token="tc_1_alice"' in page.text
    assert page.headers["content-length"] == str(len(page.content))
