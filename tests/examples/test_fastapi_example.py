"""examples/fastapi under uvicorn, from its own folder: with the generic provider, and
with Toucan (a fake Toucan on loopback) by configuration alone."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET
from tests.examples.scenario import log_in, run_scenario
from tests.integrations.helpers import page_token
from tests.providers.fakes.server import serve
from tests.providers.fakes.toucan import FakeToucan
from tests.support.net import PYTHON, free_port, run_server

FOLDER = Path(__file__).resolve().parents[2] / "examples" / "fastapi"
API_KEY = "tc-example-key-do-not-log-31d7"


def uvicorn(port: int) -> list[str]:
    return [PYTHON, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]


def test_under_uvicorn_each_user_gets_their_own_token() -> None:
    port = free_port()
    env = {"EMBEDGATE_SECRET": TEST_SECRET, "SESSION_SECRET": "session-test-key"}
    with run_server(uvicorn(port), port, cwd=str(FOLDER), env=env):
        run_scenario(f"http://127.0.0.1:{port}")


def test_another_provider_by_configuration_alone() -> None:
    toucan = FakeToucan(API_KEY)
    port = free_port()
    with serve(toucan.app) as toucan_url:
        env = {
            "EMBEDGATE_PROVIDER": "toucan",
            "EMBEDGATE_PROVIDER_URL": toucan_url,
            "EMBEDGATE_API_KEY": API_KEY,
            "EMBEDGATE_SECRET": "",
            "EXAMPLE_EMBED_RESOURCE": "dash-42",
        }
        with (
            run_server(uvicorn(port), port, cwd=str(FOLDER), env=env) as process,
            httpx.Client(base_url=f"http://127.0.0.1:{port}") as client,
        ):
            assert log_in(client, "bob").status_code == 303
            page = client.get("/").text
    token = page_token(page)
    assert token is not None
    assert '<tc-dashboard dashboard-id="dash-42"' in page
    assert f'auth-token="{token}"' in page or 'data-embedgate-token="auth-token"' in page
    users = [seen.body["user"] for seen in toucan.seen]
    assert {user["distinctId"] for user in users} == {"bob"}
    assert all(user["attributes"].get("region") == "US" for user in users)
    assert process.stdout is not None
    assert API_KEY not in process.stdout.read().decode()
