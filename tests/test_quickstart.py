"""The README's Flask and FastAPI quickstarts run verbatim: each snippet is copied into an
empty folder with its templates, a new virtualenv gets exactly the install line printed above
it (pointed at this checkout), the app is started under the server the README names, and a
user logs in over HTTP and finds a token in the page. Slow (a venv and an install each, from
the warm pip cache), hence the marker and the longer, still bounded, timeout."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET
from tests.integrations.helpers import claims, iframe_token
from tests.support.net import free_port, run_server

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SNIPPETS = ROOT / "docs" / "snippets"
SECRET = TEST_SECRET  # what tests.integrations.helpers.claims verifies with

pytestmark = [pytest.mark.quickstart, pytest.mark.timeout(600)]


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def shell_lines(text: str) -> list[str]:
    """The command lines of the section's first ```sh block."""
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block is not None
    return [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def install_argv(lines: list[str]) -> list[str]:
    """The README's `pip install ...` line, with `embedgate[...]` pointing at this checkout."""
    (line,) = [line for line in lines if line.startswith("pip install ")]
    args = shlex.split(line)[2:]
    out = []
    for arg in args:
        match = re.fullmatch(r"embedgate(\[[a-z,]+\])?", arg)
        out.append(f"{ROOT}{match.group(1) or ''}" if match else arg)
    assert any(a.startswith(str(ROOT)) for a in out), line
    return out


def copy_snippet(folder: Path, app: str, text: str) -> None:
    """What the README tells the reader to save: app.py and the templates it shows."""
    shutil.copy(SNIPPETS / app, folder / "app.py")
    (folder / "templates").mkdir()
    for name in ("dashboard.html", "login.html"):
        assert f"templates/{name}" in text
        shutil.copy(SNIPPETS / "templates" / name, folder / "templates" / name)


def new_venv(folder: Path, pip_args: list[str]) -> Path:
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *pip_args],
        check=True, timeout=420, cwd=folder,
    )  # fmt: skip
    return venv / "bin"


def clean_env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMBEDGATE_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["SESSION_SECRET"] = SECRET
    env["EMBEDGATE_SECRET"] = SECRET
    return env


def log_in_and_find_a_token(base: str, audience: str) -> None:
    with httpx.Client(base_url=base, timeout=20) as client:
        form = client.get("/login")
        assert form.status_code == 200
        assert 'name="username"' in form.text
        assert 'name="password"' in form.text
        client.post("/login", data={"username": "alice", "password": "demo"})
        page = client.get("/")
        assert page.status_code == 200, page.text
        token = iframe_token(page.text)
        assert token is not None, page.text
        assert claims(token, audience=audience)["sub"] == "alice"
        client.post("/logout")
        assert iframe_token(client.get("/", follow_redirects=True).text) is None


@pytest.mark.parametrize(
    ("title", "snippet", "server", "audience"),
    [
        ("Flask: one line", "flask_app.py", "flask", "analytics"),
        ("FastAPI / Starlette: two lines", "fastapi_app.py", "uvicorn", "embedgate"),
    ],
)
def test_the_quickstart_runs_as_written(
    tmp_path: Path, title: str, snippet: str, server: str, audience: str
) -> None:
    text = section(title)
    lines = shell_lines(text)
    for name in ("SESSION_SECRET", "EMBEDGATE_SECRET"):
        assert name in text
    copy_snippet(tmp_path, snippet, text)
    bin_dir = new_venv(tmp_path, install_argv(lines))
    (run,) = [line for line in lines if line.split()[0] == server]
    port = free_port()
    argv = [str(bin_dir / server), *shlex.split(run)[1:]]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    with run_server(argv, port, cwd=str(tmp_path), env=clean_env(bin_dir), timeout=60):
        log_in_and_find_a_token(f"http://127.0.0.1:{port}", audience)
