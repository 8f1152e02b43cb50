"""Resource refresh through the framework adapters' own token endpoints: Flask (its test
client), Starlette (httpx's ASGI transport; the pure ASGI middleware) and Django (a project served
by gunicorn and by uvicorn). Pages render embeds with the template helpers, so the grant is
what a real page makes; the browser's calls are replayed with the page's cookie."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import anyio.from_thread
import httpx
import jwt
import pytest
from flask import Flask, g, render_template_string, request
from jinja2 import DictLoader, Environment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from embedgate import Engine, Principal
from embedgate.asgi import EmbedgateMiddleware
from embedgate.integrations.flask import EmbedGate
from embedgate.integrations.starlette import install_templates
from embedgate.providers import base
from tests.conftest import TEST_SECRET
from tests.resource_tokens import profile
from tests.resource_tokens.conftest import METABASE_SECRET, METABASE_SITE, metabase_settings
from tests.support.blocks import without_binding
from tests.support.net import PYTHON, free_port, run_server

ROOT = Path(__file__).resolve().parents[2]
JSON = "application/json"
PAGES = {
    "dashboard": "<html><head><title>d</title></head><body>"
    "{{ embed_snippet('dashboard', '42') }}</body></html>",
    "reports": "<html><head><title>r</title></head><body>"
    "{{ embed_snippet('iframe', 'sales', url='/embedded#token={token}') }}"
    "{{ embed_snippet('report', '7') }}</body></html>",
}
REPORTS = {"EMBEDGATE_PROVIDER": profile.NAME, "EMBEDGATE_SECRET": TEST_SECRET}


class Site(Protocol):
    """A logged-in browser on one app: pages, and the token endpoint as embedgate.js calls it."""

    def page(self, path: str) -> str: ...

    def token(
        self, body: bytes | None, content_type: str = JSON, *, anonymous: bool = False
    ) -> tuple[int, dict[str, Any]]: ...


class HttpxSite:
    """Over an httpx client (Starlette's TestClient is one); it keeps the cookies."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        return response.text

    def token(
        self, body: bytes | None, content_type: str = JSON, *, anonymous: bool = False
    ) -> tuple[int, dict[str, Any]]:
        headers = {"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}
        if anonymous:
            headers["X-Test-User"] = ""
        if body:
            headers["Content-Type"] = content_type
        response = self.client.post("/_embedgate/token", content=body or b"", headers=headers)
        assert response.headers["content-type"] == JSON
        data: dict[str, Any] = response.json()
        return response.status_code, data


class PortalSite:
    """Over an async httpx client on an ASGI app, driven from this thread through a portal."""

    def __init__(self, portal: Any, client: httpx.AsyncClient) -> None:
        self.portal = portal
        self.client = client

    def page(self, path: str) -> str:
        response = self.portal.call(self.client.get, path)
        assert response.status_code == 200, response.text
        text: str = response.text
        return text

    def token(
        self, body: bytes | None, content_type: str = JSON, *, anonymous: bool = False
    ) -> tuple[int, dict[str, Any]]:
        headers = {"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}
        if anonymous:
            headers["X-Test-User"] = ""
        if body:
            headers["Content-Type"] = content_type
        post = functools.partial(
            self.client.post, "/_embedgate/token", content=body or b"", headers=headers
        )
        response = self.portal.call(post)
        assert response.headers["content-type"] == JSON
        data: dict[str, Any] = response.json()
        return response.status_code, data


class FlaskSite:
    def __init__(self, app: Flask) -> None:
        self.client = app.test_client()
        self.client.environ_base["HTTP_X_TEST_USER"] = "alice"

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        return response.text

    def token(
        self, body: bytes | None, content_type: str = JSON, *, anonymous: bool = False
    ) -> tuple[int, dict[str, Any]]:
        headers = {"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}
        response = self.client.post(
            "/_embedgate/token",
            data=body or b"",
            headers=headers,
            content_type=content_type if body else None,
            environ_overrides={"HTTP_X_TEST_USER": ""} if anonymous else None,
        )
        assert response.headers["content-type"] == JSON
        data: dict[str, Any] = response.get_json()
        return response.status_code, data


class Frames(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "iframe":
            self.found.append({k: v or "" for k, v in attrs})


def frames(page: str) -> list[dict[str, str]]:
    parser = Frames()
    parser.feed(page)
    return parser.found


def block(page: str) -> Any:
    """The page's data block, decoded."""
    start = page.index('id="embedgate-token">') + len('id="embedgate-token">')
    return without_binding(json.loads(page[start : page.index("</script>", start)]))


def block_token(page: str) -> str | None:
    """The session token of the page's data block (None: a null block)."""
    data = block(page)
    return None if data is None else str(data["token"])


def body(resource: str) -> bytes:
    return json.dumps({"resource": resource}).encode()


# -- the scenarios -----------------------------------------------------------------------------


def metabase_scenario(site: Site) -> None:
    page = site.page("/dashboard")
    # Static embedding has no session token: the block says so, nothing failed.
    assert block(page) == {"token": None, "session": False, "endpoint": "/_embedgate/token"}
    (frame,) = frames(page)
    assert frame["data-embedgate-resource"] == "dashboard:42"
    page_token = unquote(urlsplit(frame["src"]).path.rsplit("/", 1)[1])
    status, data = site.token(body("dashboard:42"))
    assert status == 200, data
    assert data["token"] == page_token  # the page's token: a cache hit
    assert data["url"] == f"{METABASE_SITE}/embed/dashboard/{page_token}#bordered=true&titled=true"
    assert data["resource"] == "dashboard:42"
    claims = jwt.decode(page_token, METABASE_SECRET, algorithms=["HS256"], audience="embedgate")
    assert claims["resource"] == {"dashboard": 42}

    status, data = site.token(body("dashboard:43"))
    assert (status, data["error"]) == (403, "resource_not_granted")
    status, data = site.token(b'["dashboard:42"]')
    assert (status, data["error"], data["field"]) == (400, "invalid_request", "body")
    status, data = site.token(b'{"resource": 42}')
    assert (status, data["field"]) == (400, "resource")
    status, data = site.token(body("dashboard:42"), "text/plain")
    assert (status, data["error"]) == (415, "unsupported_media_type")
    status, data = site.token(body("d" * 2000))
    assert (status, data["error"]) == (413, "body_too_large")
    # ... and the endpoint has none to give: a 404 (embedgate.js does not even ask).
    status, data = site.token(None)
    assert (status, data["error"]) == (404, "no_session_token")
    status, data = site.token(b"{}")  # an empty object asks what an empty body asks
    assert (status, data["error"]) == (404, "no_session_token")
    status, data = site.token(body("dashboard:42"))
    assert (status, data["token"]) == (200, page_token)  # the resource's token: unaffected
    anonymous_is_always_401(site)


def reports_scenario(site: Site) -> None:
    """A page with a session-token embed and a resource-bound one, and their refreshes."""
    page = site.page("/reports")
    session_frame, report_frame = frames(page)
    session_token = block_token(page)
    assert session_token is not None
    assert session_frame["src"] == f"/embedded#token={session_token}"
    assert report_frame["data-embedgate-resource"] == "report:7"
    report_token = unquote(report_frame["src"].split("#token=")[1])
    assert report_token != session_token

    status, data = site.token(None)
    assert (status, data["token"]) == (200, session_token)
    assert "resource" not in data
    status, data = site.token(body("report:7"))
    assert (status, data["token"], data["resource"]) == (200, report_token, "report:7")
    status, data = site.token(body("report:8"))
    assert (status, data["error"]) == (403, "resource_not_granted")
    status, data = site.token(None)
    assert (status, data["token"]) == (200, session_token)  # unaffected
    status, data = site.token(b"{}")  # an empty object asks what an empty body asks
    assert (status, data["token"]) == (200, session_token)
    assert "resource" not in data
    anonymous_is_always_401(site)


def anonymous_is_always_401(site: Site) -> None:
    """Who asks is checked before what is asked: nobody logged in is 401 whatever the body."""
    for sent, content_type in [
        (None, JSON),
        (b"{}", JSON),
        (body("report:7"), JSON),
        (b'["dashboard:42"]', JSON),
        (b'{"resource": 42}', JSON),
        (b"{", JSON),
        (body("d" * 2000), JSON),
        (body("dashboard:42"), "text/plain"),
    ]:
        status, data = site.token(sent, content_type, anonymous=True)
        assert (status, data["error"]) == (401, "unauthenticated"), sent


# -- Flask -------------------------------------------------------------------------------------


@pytest.fixture
def reports_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_PROFILES", dict(base._PROFILES))  # undone after the test
    profile.register()


def flask_app(settings: dict[str, str]) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="flask-test-key", TESTING=True, **settings)
    EmbedGate(app)

    @app.before_request
    def who() -> None:
        name = request.headers.get("X-Test-User")
        g.user = {"sub": name} if name else None

    @app.get("/<name>")
    def page(name: str) -> str:
        return render_template_string(PAGES[name])

    return app


def test_flask_refreshes_a_granted_metabase_dashboard() -> None:
    metabase_scenario(FlaskSite(flask_app(metabase_settings())))


def test_flask_keeps_the_session_token_apart(reports_profile: None) -> None:
    reports_scenario(FlaskSite(flask_app(REPORTS)))


# -- Starlette ---------------------------------------------------------------------------------


def starlette_app(settings: dict[str, str]) -> Starlette:
    pages = install_templates(
        Jinja2Templates(env=Environment(loader=DictLoader(PAGES), autoescape=True))
    )

    def page(request: Request) -> Response:
        return pages.TemplateResponse(request, request.path_params["name"])

    def user(scope: Any) -> Principal | None:
        name = dict(scope["headers"]).get(b"x-test-user", b"").decode()
        return Principal(subject=name) if name else None

    app = Starlette(routes=[Route("/{name}", page)])
    engine = Engine.from_settings(settings, environ={})
    app.add_middleware(EmbedgateMiddleware, engine=engine, user_resolver=user)
    return app


@pytest.fixture
def starlette_site() -> Iterator[Any]:
    with anyio.from_thread.start_blocking_portal() as portal:
        clients: list[httpx.AsyncClient] = []

        def make(settings: dict[str, str]) -> PortalSite:
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=starlette_app(settings)),
                base_url="http://testserver",
                headers={"X-Test-User": "alice"},
            )
            clients.append(client)
            return PortalSite(portal, client)

        yield make
        for client in clients:
            portal.call(client.aclose)


def test_starlette_refreshes_a_granted_metabase_dashboard(starlette_site: Any) -> None:
    metabase_scenario(starlette_site(metabase_settings()))


def test_starlette_keeps_the_session_token_apart(
    reports_profile: None, starlette_site: Any
) -> None:
    reports_scenario(starlette_site(REPORTS))


# -- Django, under gunicorn (WSGI) and uvicorn (ASGI) ------------------------------------------

PROJECT = "tests.resource_tokens.django_project"
SERVERS = {
    "wsgi": ["-m", "gunicorn", f"{PROJECT}.wsgi:application", "--workers", "1", "-b"],
    "asgi": ["-m", "uvicorn", f"{PROJECT}.asgi:application", "--host", "127.0.0.1", "--port"],
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def django_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    running: dict[str, str] = {}
    stack: list[Any] = []

    def serve(name: str, settings: dict[str, str]) -> HttpxSite:
        """This server kind with these settings (started once per module)."""
        if name not in running:
            port = free_port()
            argv = [PYTHON, *SERVERS[request.param]]
            argv.append(f"127.0.0.1:{port}" if request.param == "wsgi" else str(port))
            clean = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDGATE_")}
            env = {**clean, **settings, "PYTHONPATH": str(ROOT)}
            env["DJANGO_SETTINGS_MODULE"] = f"{PROJECT}.settings"
            server = run_server(argv, port, cwd=str(ROOT), env=env)
            server.__enter__()
            stack.append(server)
            running[name] = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=running[name], headers={"X-Test-User": "alice"})
        stack.append(client)
        return HttpxSite(client)

    try:
        yield serve
    finally:
        for item in reversed(stack):
            item.__exit__(None, None, None)


def test_django_refreshes_a_granted_metabase_dashboard(django_server: Any) -> None:
    metabase_scenario(django_server("metabase", metabase_settings()))


def test_django_keeps_the_session_token_apart(django_server: Any) -> None:
    reports_scenario(django_server("reports", REPORTS))
