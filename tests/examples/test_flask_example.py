"""examples/flask under gunicorn (and `flask run`), from its own folder."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from embedgate import VerificationError
from tests.conftest import TEST_SECRET
from tests.examples.scenario import log_in, run_scenario
from tests.integrations.helpers import blocks, claims
from tests.support.net import PYTHON, free_port, run_server

FOLDER = Path(__file__).resolve().parents[2] / "examples" / "flask"
ENV = {"EMBEDGATE_SECRET": TEST_SECRET, "FLASK_SECRET_KEY": "flask-example-test-key"}


def test_under_gunicorn_each_user_gets_their_own_token() -> None:
    port = free_port()
    argv = [PYTHON, "-m", "gunicorn", "app:app", "--workers", "1", "-b", f"127.0.0.1:{port}"]
    with run_server(argv, port, cwd=str(FOLDER), env=ENV):
        run_scenario(f"http://127.0.0.1:{port}")


def test_flask_run_with_a_generated_development_secret() -> None:
    port = free_port()
    argv = [PYTHON, "-m", "flask", "run", "--host", "127.0.0.1", "--port", str(port)]
    env = {"EMBEDGATE_SECRET": "", "FLASK_SECRET_KEY": ""}
    with (
        run_server(argv, port, cwd=str(FOLDER), env=env) as process,
        httpx.Client(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        assert log_in(client, "carol").status_code == 303
        (block,) = blocks(client.get("/").text)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    assert "FOR DEVELOPMENT ONLY" in output
    assert block["token"] not in output
    # Signed with the random secret made at start-up, not with a known one.
    with pytest.raises(VerificationError, match="unknown key id"):
        claims(block["token"])
