"""Examples started with several workers and no fixed keys refuse to start with one clear
line, under the real gunicorn -w 2 and uvicorn --workers 2, instead of each worker making
its own random key; with the keys set they serve."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from embedgate.workers import worker_count
from tests.conftest import TEST_SECRET
from tests.support.net import PYTHON, free_port, run_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SERVERS = {
    "flask": ["-m", "gunicorn", "-w", "2", "app:app", "-b"],
    "fastapi": ["-m", "uvicorn", "app:app", "--workers", "2", "--host", "127.0.0.1", "--port"],
}
KEYS = {"flask": "FLASK_SECRET_KEY", "fastapi": "SESSION_SECRET"}


def argv(example: str, port: int) -> list[str]:
    bind = f"127.0.0.1:{port}" if example == "flask" else str(port)
    return [PYTHON, *SERVERS[example], bind]


def clean_env(**extra: str) -> dict[str, str]:
    names = ("EMBEDGATE_", "FLASK_SECRET_KEY", "SESSION_SECRET", "WEB_CONCURRENCY")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(names)}, **extra}


@pytest.mark.parametrize("example", sorted(SERVERS))
@pytest.mark.parametrize("missing", ["session", "embedgate"])
def test_two_workers_without_fixed_keys_refuse_to_start(example: str, missing: str) -> None:
    env = clean_env()
    if missing == "embedgate":
        env[KEYS[example]] = "s" * 40
    else:
        env["EMBEDGATE_SECRET"] = TEST_SECRET
    done = subprocess.run(
        argv(example, free_port()), cwd=EXAMPLES / example, env=env, capture_output=True,
        text=True, timeout=90, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr  # the server stopped by itself (uvicorn's status is 0)
    assert "failed to start" in output or "Worker failed to boot" in output, output
    named = "EMBEDGATE_SECRET" if missing == "embedgate" else KEYS[example]
    assert f"{named} must be set when the server runs 2 workers" in output
    assert f'export {named}="$(embedgate keygen)"' in output


@pytest.mark.parametrize("example", sorted(SERVERS))
def test_two_workers_with_fixed_keys_serve(example: str) -> None:
    port = free_port()
    env = clean_env(EMBEDGATE_SECRET=TEST_SECRET, **{KEYS[example]: "s" * 40})
    with run_server(argv(example, port), port, cwd=str(EXAMPLES / example), env=env):
        assert httpx.get(f"http://127.0.0.1:{port}/login", timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["/venv/bin/gunicorn", "-w", "2", "app:app"], {}, 2),
        (["/venv/bin/gunicorn", "--workers=3", "app:app"], {}, 3),
        (["/venv/bin/gunicorn", "-w4", "app:app"], {}, 4),
        (["/venv/bin/uvicorn", "app:app", "--workers", "2"], {}, 2),
        (["/venv/lib/gunicorn/__main__.py", "-w", "2"], {}, 2),
        (["/venv/bin/gunicorn", "app:app"], {"WEB_CONCURRENCY": "5"}, 5),
        (["/venv/bin/flask", "run"], {}, 1),
        (["/venv/bin/pytest", "-w", "9"], {}, 1),
        (["/venv/bin/gunicorn", "-w", "many"], {}, 1),
    ],
)
def test_worker_count(argv: list[str], environ: dict[str, str], expected: int) -> None:
    assert worker_count(argv, environ) == expected
