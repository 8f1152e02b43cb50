"""`embedgate doctor` against real local servers: the fake providers on loopback, a real
redis-server, one that is down, an app publishing its JWKS, a provider whose clock is off."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from embedgate import Engine, Principal
from embedgate.doctor import Check, Doctor, Options, redact, report
from embedgate.keys import generate_private_pem
from tests.conftest import TEST_SECRET
from tests.ops.apps import app
from tests.providers.fakes.server import serve
from tests.providers.fakes.superset import FakeSuperset
from tests.providers.fakes.toucan import FakeToucan, Plan
from tests.support.net import PYTHON, free_port
from tests.support.redis_server import RedisServer

API_KEY = "tc-doctor-key-SECRET-9f8e7d6c5b4a"
GENERIC = {"EMBEDGATE_SECRET": TEST_SECRET}


def run(environ: dict[str, str], **options: Any) -> dict[str, Check]:
    checks = Doctor(environ, Options(**options)).run()
    names = [c.name for c in checks]
    assert len(names) == len(set(names)), names
    return {c.name: c for c in checks}


def healthy(checks: dict[str, Check]) -> bool:
    return all(c.status != "fail" for c in checks.values())


@pytest.fixture
def toucan() -> Iterator[tuple[FakeToucan, str]]:
    fake = FakeToucan(API_KEY)
    with serve(fake.app) as url:
        yield fake, url


def toucan_env(url: str) -> dict[str, str]:
    return {
        "EMBEDGATE_PROVIDER": "toucan",
        "EMBEDGATE_PROVIDER_URL": url,
        "EMBEDGATE_API_KEY": API_KEY,
        "EMBEDGATE_TOUCAN_RETRIES": "0",
    }


def test_a_healthy_generic_deployment() -> None:
    checks = run(GENERIC)
    assert healthy(checks)
    assert checks["settings"].status == "ok"
    assert checks["key"].status == "ok"
    assert checks["mint"].status == "ok"
    assert "verified" in checks["mint"].detail
    assert checks["redis"].status == "skip"
    assert checks["provider"].status == "skip"


def test_invalid_settings_name_the_setting() -> None:
    checks = run({"EMBEDGATE_SECRET": "short"})
    assert list(checks) == ["settings"]
    assert checks["settings"].status == "fail"
    assert "EMBEDGATE_SECRET" in checks["settings"].detail


def test_a_guessable_secret_fails() -> None:
    checks = run({"EMBEDGATE_SECRET": "a" * 40})
    (failed,) = [c for c in checks.values() if c.status == "fail"]
    assert failed.name in ("settings", "key")
    assert "keygen" in failed.detail + failed.fix
    assert "a" * 40 not in json.dumps([c.__dict__ for c in checks.values()])


def test_production_refuses_api_key_mode_and_insecure_cookies() -> None:
    sandbox = run({**GENERIC, "EMBEDGATE_ENV": "production", "EMBEDGATE_MODE": "api_key"})
    assert not healthy(sandbox)
    assert "api_key" in json.dumps([c.__dict__ for c in sandbox.values()])
    cookies = run({**GENERIC, "EMBEDGATE_ENV": "production", "EMBEDGATE_COOKIE_SECURE": "0"})
    assert cookies["production"].status == "fail"
    assert run({**GENERIC, "EMBEDGATE_ENV": "production"})["production"].status == "ok"


def test_the_fake_toucan_reachable_and_a_test_mint_accepted(
    toucan: tuple[FakeToucan, str],
) -> None:
    fake, url = toucan
    checks = run(toucan_env(url))
    assert healthy(checks), checks
    assert checks["provider"].status == "ok"
    assert checks["clock"].status == "ok"
    assert checks["mint"].status == "ok"
    assert "accepted" in checks["mint"].detail
    (seen,) = fake.seen
    assert seen.body["user"]["distinctId"] == "embedgate-doctor"
    assert API_KEY not in json.dumps([c.__dict__ for c in checks.values()])
    assert run(toucan_env(url), mint=False)["mint"].status == "skip"


def test_a_refused_test_mint(toucan: tuple[FakeToucan, str]) -> None:
    fake, url = toucan
    fake.plan(Plan(status=401))
    checks = run(toucan_env(url))
    assert checks["mint"].status == "fail"
    assert "credentials" in checks["mint"].fix
    assert not healthy(checks)


def test_the_fake_superset_test_mint() -> None:
    fake = FakeSuperset(username="embedder", password="pw-SECRET-123", guest_secret=TEST_SECRET)
    with serve(fake.app) as url:
        checks = run(
            {
                "EMBEDGATE_PROVIDER": "superset",
                "EMBEDGATE_PROVIDER_URL": url,
                "EMBEDGATE_SUPERSET_USERNAME": "embedder",
                "EMBEDGATE_SUPERSET_PASSWORD": "pw-SECRET-123",
                "EMBEDGATE_SUPERSET_DASHBOARDS": "d-1",
                "EMBEDGATE_SUPERSET_RETRIES": "0",
            }
        )
    assert checks["mint"].status == "ok", checks["mint"]
    assert fake.guest_calls == 1
    assert healthy(checks)


def test_an_unreachable_provider() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    checks = run(toucan_env(url))
    assert checks["provider"].status == "fail"
    assert "EMBEDGATE_PROVIDER_URL" in checks["provider"].fix
    assert checks["mint"].status == "fail"


class _SkewedDate(BaseHTTPRequestHandler):
    skew = 0.0

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def date_time_string(self, timestamp: float | None = None) -> str:
        import time

        return formatdate(time.time() + self.skew, usegmt=True)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.mark.parametrize(("skew", "status"), [(0.0, "ok"), (120.0, "fail"), (-90.0, "fail")])
def test_clock_skew_from_the_providers_date(skew: float, status: str) -> None:
    handler = type("Handler", (_SkewedDate,), {"skew": skew})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        checks = run({**GENERIC, "EMBEDGATE_PROVIDER_URL": url})
    finally:
        server.shutdown()
        thread.join(10)
    assert checks["clock"].status == status, checks["clock"]
    if status == "fail":
        assert "NTP" in checks["clock"].fix


def test_redis_reachable_and_keys_as_expected(redis_url: str) -> None:
    engine = Engine.from_settings(environ={}, secret=TEST_SECRET, redis_url=redis_url)
    engine.service.get_token(Principal(subject="alice"), "session-1")
    checks = run({**GENERIC, "EMBEDGATE_REDIS_URL": redis_url})
    assert checks["redis"].status == "ok"
    assert "Redis 7" in checks["redis"].detail
    assert checks["redis.write"].status == "ok"
    assert checks["redis.keys"].status == "ok"
    assert "0 embedgate" not in checks["redis.keys"].detail
    assert healthy(checks)


def test_redis_entries_sealed_under_another_secret(redis_url: str) -> None:
    other = "q7Vt2mXc9RpL4sZk8YwN3bHf6JdG1aEu5TiOoP0rQe"  # a strong secret, not the tests'
    engine = Engine.from_settings(environ={}, secret=other, redis_url=redis_url)
    engine.service.get_token(Principal(subject="alice"), "session-1")
    checks = run({**GENERIC, "EMBEDGATE_REDIS_URL": redis_url})
    assert checks["redis.keys"].status == "fail"
    assert "cannot open" in checks["redis.keys"].detail
    assert "alice" not in checks["redis.keys"].detail


def test_redis_keys_that_are_not_embedgates(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.set("embedgate:v1:token:forever", "not json")  # no expiry, not a token
    checks = run({**GENERIC, "EMBEDGATE_REDIS_URL": redis_url})
    assert checks["redis.keys"].status == "fail"
    assert "without expiry" in checks["redis.keys"].detail
    assert not healthy(checks)


def test_redis_down(redis_server: RedisServer) -> None:
    url = f"redis://:hunter2-SECRET@127.0.0.1:{free_port()}/0"
    checks = run({**GENERIC, "EMBEDGATE_REDIS_URL": url})
    assert checks["redis"].status == "fail"
    assert "ConnectionError" in checks["redis"].detail
    assert "hunter2" not in json.dumps([c.__dict__ for c in checks.values()])
    assert not healthy(checks)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key.pem"
    path.write_bytes(generate_private_pem("ES256"))
    return path


def test_the_published_jwks_matches_the_signing_keys(key_file: Path, tmp_path: Path) -> None:
    env = {"EMBEDGATE_PRIVATE_KEY_FILE": str(key_file)}
    served = Engine.from_settings(environ=env)
    with serve(app(served)) as url:
        same = run(env, app_url=url)
        other = tmp_path / "other.pem"
        other.write_bytes(generate_private_pem("ES256"))
        different = run({"EMBEDGATE_PRIVATE_KEY_FILE": str(other)}, app_url=url)
    assert same["jwks"].status == "ok", same["jwks"]
    assert different["jwks"].status == "fail"
    assert "missing or different" in different["jwks"].detail
    assert "not among the signing keys" in different["jwks"].detail


def test_hmac_apps_publish_nothing() -> None:
    with serve(app(Engine.from_settings(environ=GENERIC))) as url:
        checks = run(GENERIC, app_url=url)
    assert checks["jwks"].status == "ok"
    assert "404" in checks["jwks"].detail


def test_the_report_lines_and_json() -> None:
    checks = [Check("a", "ok", "fine"), Check("b", "fail", "broken", "do this")]
    lines: list[str] = []
    assert report(checks, as_json=False, write=lines.append) == 1
    assert lines[0].startswith("OK    a")
    assert lines[1].startswith("FAIL  b  broken")
    assert "fix: do this" in lines[1]
    out: list[str] = []
    assert report(checks[:1], as_json=True, write=out.append) == 0
    assert json.loads(out[0]) == {
        "ok": True,
        "checks": [{"name": "a", "status": "ok", "detail": "fine", "fix": ""}],
    }
    assert redact("redis://user:pw@host:6379/0") == "redis://host:6379/0"


def test_the_command(toucan: tuple[FakeToucan, str], redis_url: str) -> None:
    base = {"PATH": "/usr/bin:/bin"}
    ok = subprocess.run(
        [PYTHON, "-m", "embedgate.cli", "doctor", "--json"],
        env={**base, **toucan_env(toucan[1]), "EMBEDGATE_REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    down = subprocess.run(
        [PYTHON, "-m", "embedgate.cli", "doctor"],
        env={**base, **GENERIC, "EMBEDGATE_REDIS_URL": f"redis://127.0.0.1:{free_port()}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert down.returncode == 1
    assert "FAIL  redis" in down.stdout
    assert down.stdout.rstrip().endswith("1 check(s) failed")
