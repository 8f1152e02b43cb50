"""Shared caches must never keep a Django page that carries a token: injection, template
tags, a streaming response, HEAD, an error page and the token endpoint, each with every
caching header a CDN or proxy could obey set by the view. Over gunicorn (WSGI) and
uvicorn (ASGI), the adapter's two faces."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET
from tests.integrations.helpers import iframe_token, page_token
from tests.security.headers import assert_private
from tests.support.net import PYTHON, free_port, run_server

ROOT = Path(__file__).resolve().parents[2]
SITE = "tests.security.django_site"
SERVERS = {
    "wsgi": ["-m", "gunicorn", f"{SITE}.wsgi:application", "--workers", "1", "-b"],
    "asgi": ["-m", "uvicorn", f"{SITE}.asgi:application", "--host", "127.0.0.1", "--port"],
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    env = {
        "DJANGO_SETTINGS_MODULE": f"{SITE}.settings",
        "EMBEDGATE_SECRET": TEST_SECRET,
        # ahead of the project: lets this test run against another checkout of embedgate
        "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)])),
    }
    port = free_port()
    argv = [PYTHON, *SERVERS[request.param]]
    argv.append(f"127.0.0.1:{port}" if request.param == "wsgi" else str(port))
    with run_server(argv, port, cwd=str(ROOT), env=env):
        yield f"http://127.0.0.1:{port}"


def get(server: str, path: str, method: str = "GET", **headers: str) -> httpx.Response:
    with httpx.Client(base_url=server, timeout=20) as client:
        return client.request(method, path, headers={"X-User": "alice", **headers})


@pytest.mark.parametrize("path", ["/injected", "/helpers", "/streamed", "/error"])
def test_django_pages_carrying_a_token_leave_private(server: str, path: str) -> None:
    response = get(server, path)
    assert page_token(response.text) or iframe_token(response.text), path
    assert_private(response.headers.multi_items(), path)


@pytest.mark.parametrize("path", ["/injected", "/helpers"])
def test_django_head_answers_with_the_headers_of_its_get(server: str, path: str) -> None:
    response = get(server, path, method="HEAD")
    assert_private(response.headers.multi_items(), path)


def test_django_token_endpoint_is_private(server: str) -> None:
    response = get(server, "/_embedgate/token", method="POST", **{"X-Embedgate": "1"})
    assert response.status_code == 200
    assert_private(response.headers.multi_items())
