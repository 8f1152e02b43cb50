"""The README's snippets (docs/snippets/*) run as written, so they cannot rot."""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.integrations.helpers import claims, page_token

SNIPPETS = Path(__file__).resolve().parents[2] / "docs" / "snippets"
TOKEN = {"X-Embedgate": "1"}


def load(name: str) -> ModuleType:
    """Import a snippet file as a fresh module (each test gets its own app)."""
    path = SNIPPETS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"snippet_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and FastAPI resolve names through it
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_flask_snippet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_SECRET", "session-secret-for-tests")
    app = load("flask_app").app
    with app.test_client() as client:
        assert client.get("/").status_code == 302  # login_required: to the login form
        assert 'name="password"' in client.get("/login").text
        with client.session_transaction() as session:
            session["_user_id"] = "alice"  # what Flask-Login's login_user() stores
        page = client.get("/")
        token = page_token(page.text)
        assert token is not None
        claim_set = claims(token, audience="analytics")
        assert claim_set["sub"] == "alice"
        assert claim_set["tenant"] == "acme"
        assert claim_set["attributes"] == {"region": "EU"}
        assert 'src="https://bi.example.com/embed/sales#token=' in page.text
        answer = client.post("/_embedgate/token", headers=TOKEN)
        assert answer.json is not None
        assert answer.json["token"] == token


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_fastapi_snippet(anyio_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_SECRET", "session-secret-for-tests")
    app = load("fastapi_app").app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/")).status_code == 303  # to the login form
        assert 'name="password"' in (await client.get("/login")).text
        assert (await client.get("/api/embed-token")).status_code == 401
        bad = await client.post("/login", data={"username": "alice", "password": "nope"})
        assert bad.headers["location"] == "/login"
        await client.post("/login", data={"username": "alice", "password": "demo"})
        page = await client.get("/")
        token = page_token(page.text)
        assert token is not None
        claim_set = claims(token)
        assert claim_set["sub"] == "alice"
        assert claim_set["attributes"] == {"region": "EU"}
        assert 'src="https://bi.example.com/embed/sales#token=' in page.text
        api = await client.get("/api/embed-token")
        assert api.headers["cache-control"] == "no-store"
        assert api.json()["token"] == token
        endpoint = await client.post("/_embedgate/token", headers=TOKEN)
        assert endpoint.json()["token"] == token


def test_django_snippet_puts_the_middleware_after_authentication() -> None:
    settings = runpy.run_path(str(SNIPPETS / "django_settings.py"))
    middleware = settings["MIDDLEWARE"]
    ours = middleware.index("embedgate.integrations.django.middleware.EmbedgateMiddleware")
    assert ours > middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    assert "embedgate.integrations.django" in settings["INSTALLED_APPS"]
    # The rest of it is the settings of the Django project test_django.py serves.
