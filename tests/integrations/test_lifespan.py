"""Configuration errors stop the app before it serves: at build time, or at the ASGI
lifespan start-up when the framework builds its middleware lazily (Starlette's
``add_middleware``). Served by the real uvicorn."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from embedgate import ConfigurationError
from embedgate.asgi import EmbedgateMiddleware
from tests.conftest import TEST_SECRET
from tests.support.net import PYTHON, free_port, run_server

APP = """
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from embedgate.asgi import EmbedgateMiddleware


@asynccontextmanager
async def lifespan(app):
    app.state.started = "yes"
    yield


app = FastAPI(lifespan=lifespan)
app.add_middleware(EmbedgateMiddleware, user_resolver=lambda scope: None)


@app.get("/started")
def started(request: Request) -> dict[str, str]:
    return {"started": request.app.state.started}
"""


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDGATE_")}
    return {**env, **settings}


def write_app(folder: Path) -> None:
    (folder / "app.py").write_text(APP, encoding="utf-8")


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, "EMBEDGATE_SECRET"),
        ({"EMBEDGATE_SECRET": TEST_SECRET, "EMBEDGATE_AUDIANCE": "x"}, "EMBEDGATE_AUDIENCE"),
        ({"EMBEDGATE_SECRET": TEST_SECRET, "EMBEDGATE_TTL": "soon"}, "EMBEDGATE_TTL"),
    ],
)
def test_uvicorn_refuses_to_start_naming_the_setting(
    tmp_path: Path, settings: dict[str, str], named: str
) -> None:
    write_app(tmp_path)
    argv = [PYTHON, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(free_port())]
    done = subprocess.run(
        argv, cwd=tmp_path, env=clean_env(**settings), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Application startup failed" in output
    assert named in output
    assert "unsupported" not in output
    assert TEST_SECRET not in output


def test_a_valid_configuration_passes_the_apps_own_lifespan_through(tmp_path: Path) -> None:
    write_app(tmp_path)
    port = free_port()
    argv = [PYTHON, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
    env = clean_env(EMBEDGATE_SECRET=TEST_SECRET)
    with run_server(argv, port, cwd=str(tmp_path), env=env) as server:
        response = httpx.get(f"http://127.0.0.1:{port}/started", timeout=10)
        assert response.json() == {"started": "yes"}
        server.terminate()
        out = server.communicate(timeout=20)[0].decode()
    assert "unsupported" not in out
    assert "Application startup complete" in out


def test_wrapping_an_app_directly_raises_when_the_app_is_built() -> None:
    with pytest.raises(ConfigurationError, match="EMBEDGATE_AUDIENCE"):
        EmbedgateMiddleware(Starlette(), secret=TEST_SECRET, audience="")
