"""The Django adapter on a real Django project (tests/integrations/django_project), served
by gunicorn (WSGI) and by uvicorn (ASGI), driven over HTTP with a cookie jar."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from embedgate.integrations.django.runtime import settings_mapping
from tests.conftest import TEST_SECRET
from tests.integrations.helpers import blocks, claims, iframe_token, page_token
from tests.support.net import PYTHON, free_port, run_server

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "tests.integrations.django_project"
AUDIENCE, ISSUER = "analytics", "https://app.example.com"  # docs/snippets/django_settings.py
TOKEN = {"X-Embedgate": "1"}
SERVERS = {
    "wsgi": ["-m", "gunicorn", f"{PROJECT}.wsgi:application", "--workers", "1", "-b"],
    "asgi": ["-m", "uvicorn", f"{PROJECT}.asgi:application", "--host", "127.0.0.1", "--port"],
}


def django_env(db: Path, **extra: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": f"{PROJECT}.settings",
        "DJANGO_DB": str(db),
        "EMBEDGATE_SECRET": TEST_SECRET,
        "PYTHONPATH": str(ROOT),
        **extra,
    }


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    db = tmp_path_factory.mktemp("django") / "db.sqlite3"
    env = django_env(db)
    subprocess.run(
        [PYTHON, "-m", f"{PROJECT}.setup_db"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        timeout=60,
    )
    port = free_port()
    argv = [PYTHON, *SERVERS[request.param]]
    argv.append(f"127.0.0.1:{port}" if request.param == "wsgi" else str(port))
    with run_server(argv, port, cwd=str(ROOT), env=env):
        yield f"http://127.0.0.1:{port}"


def verified(token: str | None) -> dict[str, object]:
    assert token is not None
    return claims(token, audience=AUDIENCE, issuer=ISSUER)


def login(client: httpx.Client, name: str) -> None:
    response = client.post("/login", data={"username": name, "password": "demo"})
    assert response.status_code == 302


def test_anonymous_pages_carry_no_token(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert blocks(page.text) == []
        assert 'data-token=""' in page.text
        assert client.post("/_embedgate/token", headers=TOKEN).status_code == 401


def test_pages_tags_and_endpoint_carry_the_users_token(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        login(client, "alice")
        page = client.get("/")
        token = page_token(page.text)
        claim_set = verified(token)
        assert claim_set["sub"] == "alice"
        assert claim_set["email"] == "alice@acme.example"
        assert claim_set["name"] == "Alice Liddell"
        assert claim_set["groups"] == ["analysts"]
        assert f'data-token="{token}"' in page.text  # {% embed_token %}: the same session
        assert iframe_token(page.text) == token  # {% embed_snippet %}: one token per session
        # {% embed_binding %} and the snippet carry the binding the injected block says.
        bind = re.search(r'"bind":"([\w-]+)"', page.text)
        assert bind is not None
        assert page.text.count(f'data-embedgate-bind="{bind.group(1)}"') == 2
        assert page.headers["cache-control"] == "private, no-store"
        assert "embedgate_session" in client.cookies
        answer = client.post("/_embedgate/token", headers=TOKEN)
        assert answer.status_code == 200
        assert answer.json()["token"] == token
        assert client.post("/_embedgate/token").status_code == 403  # no X-Embedgate


def test_embed_script_tag_renders_the_block_with_the_nonce_and_sets_the_cookie(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        login(client, "bob")
        page = client.get("/script")
        (block,) = blocks(page.text)
        assert verified(block["token"])["sub"] == "bob"
        assert 'nonce="n0nce-from-django"' in page.text
        assert page.headers["cache-control"] == "private, no-store"
        assert "embedgate_session=" in page.headers["set-cookie"]
        assert client.post("/_embedgate/token", headers=TOKEN).json()["token"] == block["token"]


def test_plain_responses_and_async_views_get_the_token_injected(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        login(client, "alice")
        assert verified(page_token(client.get("/plain").text))["sub"] == "alice"
        page = client.get("/async")
        # The tags render in an async view too (through the async service), and agree with
        # the injected block.
        injected = page_token(page.text)
        assert verified(injected)["sub"] == "alice"
        assert f'data-token="{injected}"' in page.text
        assert iframe_token(page.text) == injected
        assert "embedgate-deferred" not in page.text
        assert page.headers["cache-control"] == "private, no-store"


def test_logout_purges_and_the_next_user_never_sees_the_previous_token(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        login(client, "alice")
        before = page_token(client.get("/").text)
        assert page_token(client.get("/").text) == before  # cached for the session
        client.post("/logout")
        assert blocks(client.get("/").text) == []
        assert client.post("/_embedgate/token", headers=TOKEN).status_code == 401
        login(client, "alice")
        again = page_token(client.get("/").text)
        assert again != before  # purged on logout, so minted anew
        client.post("/logout")
        login(client, "bob")
        page = client.get("/").text
        assert verified(page_token(page))["sub"] == "bob"
        assert before is not None
        assert again is not None
        assert before not in page
        assert again not in page


@pytest.mark.parametrize(("debug", "refused"), [("0", True), ("1", False)])
def test_production_is_not_debug(tmp_path: Path, debug: str, refused: bool) -> None:
    code = (
        "import django; django.setup()\n"
        "from embedgate.integrations.django.runtime import build_state\n"
        "build_state()\n"
    )
    env = django_env(
        tmp_path / "db.sqlite3",
        DJANGO_DEBUG=debug,
        EMBEDGATE_MODE="api_key",
        EMBEDGATE_API_KEY="sandbox-key-0123456789abcdef0123456789",
    )
    del env["EMBEDGATE_SECRET"]
    result = subprocess.run(
        [PYTHON, "-c", code],
        check=False,
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode != 0) is refused, result.stderr
    if refused:
        assert "ProductionRefusedError" in result.stderr


def test_settings_accept_field_names_and_embedgate_names() -> None:
    mapping = settings_mapping({"audience": "a", "TTL": 60, "EMBEDGATE_ISSUER": "i"})
    assert mapping == {"EMBEDGATE_AUDIENCE": "a", "EMBEDGATE_TTL": 60, "EMBEDGATE_ISSUER": "i"}
    assert settings_mapping(None) == {}


def test_a_session_emptied_without_logout_is_purged_by_the_middleware(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        login(client, "alice")
        before = page_token(client.get("/").text)
        client.post("/clear")  # no logout(), no user_logged_out signal
        login(client, "alice")
        assert page_token(client.get("/").text) != before


def test_another_user_logging_in_over_a_session_purges_its_tokens(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        login(client, "alice")
        before = page_token(client.get("/").text)
        login(client, "bob")  # no log-out in between
        login(client, "alice")
        assert page_token(client.get("/").text) != before
