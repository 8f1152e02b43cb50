"""A real Apache Superset on 127.0.0.1 for the interop suite: sqlite metadata, the
EMBEDDED_SUPERSET feature flag, one dataset, a chart on an embedded dashboard and a second
embedded dashboard, all made through its CLI and REST API as an admin."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.interop.peers import server_process
from tests.support.binaries import IN_CI
from tests.support.net import free_port

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / ".venv-interop" / "superset" / "bin" / "superset"
ADMIN = ("admin", "interop-admin-" + secrets.token_hex(8))
ROWS = [("EU", 10), ("EU", 20), ("US", 30), ("APAC", 40)]
CONFIG = """
SECRET_KEY = {secret_key!r}
SQLALCHEMY_DATABASE_URI = {metadata!r}
FEATURE_FLAGS = {{"EMBEDDED_SUPERSET": True}}
GUEST_TOKEN_JWT_SECRET = {guest_secret!r}
# Guests get Gamma's permissions (read dashboards and chart data); which dashboards and
# rows come from the guest token.
GUEST_ROLE_NAME = "Gamma"
# The example data lives in a sqlite file.
PREVENT_UNSAFE_DB_CONNECTIONS = False
TALISMAN_ENABLED = False
"""


@dataclass
class Superset:
    url: str
    guest_secret: str
    dashboard: int
    embedded: str
    other_dashboard: int
    other_embedded: str
    chart: int
    query_context: dict[str, Any]

    @contextlib.contextmanager
    def admin(self) -> Iterator[httpx.Client]:
        """An httpx client logged in as the admin, with the CSRF header and cookie."""
        with httpx.Client(base_url=self.url, timeout=60) as client:
            yield self._login(client)

    def _login(self, client: httpx.Client) -> httpx.Client:
        login = client.post(
            "/api/v1/security/login",
            json={"username": ADMIN[0], "password": ADMIN[1], "provider": "db", "refresh": True},
        )
        login.raise_for_status()
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        csrf = client.get("/api/v1/security/csrf_token/")
        csrf.raise_for_status()
        client.headers.update({"X-CSRFToken": csrf.json()["result"], "Referer": f"{self.url}/"})
        return client

    def rows(self, guest_token: str, *, chart_data: dict[str, Any] | None = None) -> Any:
        """POST /api/v1/chart/data as the guest: the response (rows under result[0].data)."""
        return httpx.post(
            f"{self.url}/api/v1/chart/data",
            json=chart_data or self.query_context,
            headers={"X-GuestToken": guest_token},
            timeout=60,
        )


def superset_binary() -> Path:
    path = Path(os.environ.get("EMBEDGATE_INTEROP_SUPERSET", DEFAULT_BIN))
    if not path.exists():
        message = f"Superset is not installed at {path}: run `make interop`"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def _cli(binary: Path, env: dict[str, str], log: Path, *args: str) -> None:
    with log.open("ab") as out:
        done = subprocess.run(
            [str(binary), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=400,
            check=False,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"superset {args[0]} failed ({done.returncode}):\n{tail}")


def _check(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), f"{response.request.url}: {response.text[:1000]}"
    data: dict[str, Any] = response.json()
    return data


def _content(superset: Superset, home: Path) -> Superset:
    data = home / "data.db"
    with contextlib.closing(sqlite3.connect(data)) as db:
        db.execute("CREATE TABLE sales (region TEXT, amount INTEGER)")
        db.executemany("INSERT INTO sales VALUES (?, ?)", ROWS)
        db.commit()
    with superset.admin() as admin:
        database = _check(
            admin.post(
                "/api/v1/database/",
                json={"database_name": "interop", "sqlalchemy_uri": f"sqlite:///{data}"},
            )
        )["id"]
        dataset = _check(
            admin.post("/api/v1/dataset/", json={"database": database, "table_name": "sales"})
        )["id"]
        dashboards = [
            _check(
                admin.post("/api/v1/dashboard/", json={"dashboard_title": t, "published": True})
            )["id"]
            for t in ("Interop sales", "Another dashboard")
        ]
        form_data = {
            "datasource": f"{dataset}__table",
            "viz_type": "table",
            "query_mode": "raw",
            "all_columns": ["region", "amount"],
            "row_limit": 1000,
        }
        chart = _check(
            admin.post(
                "/api/v1/chart/",
                json={
                    "slice_name": "Sales rows",
                    "viz_type": "table",
                    "datasource_id": dataset,
                    "datasource_type": "table",
                    "params": json.dumps(form_data),
                    "dashboards": [dashboards[0]],
                },
            )
        )["id"]
        # What the embedded dashboard posts to /api/v1/chart/data for this chart: a guest
        # may only run the query the chart stores.
        query_context = {
            "datasource": {"id": dataset, "type": "table"},
            "force": False,
            "queries": [
                {
                    "columns": ["region", "amount"],
                    "filters": [],
                    "extras": {"having": "", "where": ""},
                    "row_limit": 1000,
                    "orderby": [],
                    "metrics": [],
                }
            ],
            "form_data": {**form_data, "slice_id": chart, "dashboardId": dashboards[0]},
            "result_format": "json",
            "result_type": "full",
        }
        _check(
            admin.put(
                f"/api/v1/chart/{chart}",
                json={"query_context": json.dumps(query_context), "query_context_generation": True},
            )
        )
        embedded = [
            _check(admin.post(f"/api/v1/dashboard/{d}/embedded", json={"allowed_domains": []}))[
                "result"
            ]["uuid"]
            for d in dashboards
        ]
    superset.dashboard, superset.other_dashboard = dashboards
    superset.embedded, superset.other_embedded = embedded
    superset.chart, superset.query_context = chart, query_context
    return superset


@contextlib.contextmanager
def running_superset(home: Path) -> Iterator[Superset]:
    """Install nothing: set up metadata, an admin and roles, start the server, add content."""
    binary = superset_binary()
    guest_secret = secrets.token_urlsafe(32)
    config = home / "superset_config.py"
    config.write_text(
        CONFIG.format(
            secret_key=secrets.token_urlsafe(32),
            metadata=f"sqlite:///{home / 'superset.db'}",
            guest_secret=guest_secret,
        )
    )
    env = {**os.environ, "SUPERSET_CONFIG_PATH": str(config), "SUPERSET_HOME": str(home)}
    log = home / "superset-setup.log"
    _cli(binary, env, log, "db", "upgrade")
    _cli(
        binary, env, log, "fab", "create-admin", "--username", ADMIN[0], "--password", ADMIN[1],
        "--firstname", "Interop", "--lastname", "Admin", "--email", "admin@interop.test",
    )  # fmt: skip
    _cli(binary, env, log, "init")
    port = free_port()
    argv = [str(binary), "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"]
    with server_process(argv, port, home / "superset.log", env=env, timeout=180):
        url = f"http://127.0.0.1:{port}"
        superset = Superset(url, guest_secret, 0, "", 0, "", 0, {})
        yield _content(superset, home)
