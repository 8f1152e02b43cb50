"""The Litestar and Quart example apps under their real servers (uvicorn, hypercorn) on
127.0.0.1: log in as alice, the page carries her token, the endpoint answers it, logout."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET
from tests.integrations.helpers import claims, page_token
from tests.support.net import PYTHON, free_port, run_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SERVERS = {
    "litestar": lambda port: [
        PYTHON,
        "-m",
        "uvicorn",
        "app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ],
    "quart": lambda port: [PYTHON, "-m", "hypercorn", "app:app", "--bind", f"127.0.0.1:{port}"],
}


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_example_under_its_server(name: str) -> None:
    port = free_port()
    env = {"EMBEDGATE_SECRET": TEST_SECRET, "SESSION_SECRET": "00112233445566778899aabbccddeeff"}
    with run_server(SERVERS[name](port), port, cwd=str(EXAMPLES / name), env=env):
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as http:
            assert page_token(http.get("/").text) is None
            login = http.post("/login", data={"username": "alice", "password": "demo"})
            assert login.status_code == 303
            page = http.get("/")
            token = page_token(page.text)
            assert token is not None
            assert claims(token)["sub"] == "alice"
            assert page.headers["cache-control"] == "private, no-store"
            headers = {"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}
            answer = http.post("/_embedgate/token", headers=headers)
            assert answer.json()["token"] == token
            assert http.post("/logout").status_code == 303
            assert http.post("/_embedgate/token", headers=headers).status_code == 401
