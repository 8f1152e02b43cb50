"""Metrics and traces through the OpenTelemetry SDK's in-memory reader and exporter, over
real flows: a page, a refresh, a provider failure (a fake Toucan on loopback), Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from opentelemetry.trace import StatusCode
from starlette.testclient import TestClient

from embedgate import ManualClock
from embedgate.telemetry import INSTRUMENTS
from tests.conftest import TEST_SECRET
from tests.ops.apps import ALICE, TOKEN_HEADERS, app, engine
from tests.ops.conftest import Otel
from tests.providers.fakes.server import serve
from tests.providers.fakes.toucan import FakeToucan, Plan

API_KEY = "tc-ops-key-SECRET-never-in-telemetry-8d2f"


@pytest.fixture
def toucan() -> Iterator[tuple[FakeToucan, str]]:
    fake = FakeToucan(API_KEY, lifetime=600)
    with serve(fake.app) as url:
        yield fake, url


def toucan_engine(clock: ManualClock, url: str):  # type: ignore[no-untyped-def]
    return engine(
        clock,
        secret=None,
        EMBEDGATE_PROVIDER="toucan",
        EMBEDGATE_PROVIDER_URL=url,
        EMBEDGATE_API_KEY=API_KEY,
        EMBEDGATE_TOUCAN_RETRIES="1",
        EMBEDGATE_TOUCAN_READ_TIMEOUT="5",
    )


def test_a_page_then_the_endpoint(otel: Otel, clock: ManualClock) -> None:
    with TestClient(app(engine(clock))) as client:
        page = client.get("/")
        answer = client.post("/_embedgate/token", headers=TOKEN_HEADERS)
    assert page.status_code == 200
    assert answer.status_code == 200
    token = answer.json()["token"]
    assert token in page.text

    ok = {"embedgate__provider": "generic", "embedgate__mode": "token", "embedgate__outcome": "ok"}
    assert otel.count("embedgate.tokens.issued", **ok) == 1
    assert otel.count("embedgate.cache.misses", embedgate__cache__tier="local") >= 1
    assert otel.count("embedgate.cache.hits", embedgate__cache__tier="local") >= 1
    assert otel.count("embedgate.injections", embedgate__reason="token") == 1
    assert otel.count("embedgate.endpoint.answers", http__response__status_code=200) == 1
    assert otel.count("embedgate.endpoint.duration", embedgate__route="token") == 1
    assert otel.count("embedgate.token.remaining", embedgate__served_by="page") == 1
    assert otel.count("embedgate.token.remaining", embedgate__served_by="endpoint") == 1
    (_remaining, point), *_ = otel.points("embedgate.token.remaining")
    assert 0 < point.sum / point.count <= 300
    # A local signer mints no upstream call and no remote-mint span.
    assert otel.points("embedgate.upstream.calls") == []
    assert otel.spans("embedgate.mint") == []
    assert set(INSTRUMENTS) >= {m for m in INSTRUMENTS if otel.points(m)}


def test_a_refresh_mints_again(otel: Otel, clock: ManualClock) -> None:
    eng = engine(clock, ttl=300)
    with TestClient(app(eng)) as client:
        first = client.post("/_embedgate/token", headers=TOKEN_HEADERS).json()
        clock.advance(first["refresh_in"] + 1)
        # Due: the still-valid token at once, the refresh beside the request.
        due = client.post("/_embedgate/token", headers=TOKEN_HEADERS).json()
        assert eng.service.wait_idle()
        second = client.post("/_embedgate/token", headers=TOKEN_HEADERS).json()
    assert due["token"] == first["token"]
    assert first["token"] != second["token"]
    assert otel.count("embedgate.tokens.issued", embedgate__outcome="ok") == 2
    assert otel.count("embedgate.endpoint.answers", http__response__status_code=200) == 3


def test_anonymous_and_refused_pages_are_skipped(otel: Otel, clock: ManualClock) -> None:
    with TestClient(app(engine(clock), principal=None)) as client:
        client.get("/")
        client.post("/_embedgate/token", headers=TOKEN_HEADERS)
    refusing = engine(clock, required_attributes="team")
    with TestClient(app(refusing)) as client:
        client.get("/")
    assert otel.count("embedgate.injections", embedgate__reason="anonymous") == 1
    assert otel.count("embedgate.injections", embedgate__reason="principal_refused") == 1
    assert otel.count("embedgate.injections", embedgate__injection="performed") == 0
    assert otel.count("embedgate.endpoint.answers", http__response__status_code=401) == 1


def test_rate_limited_requests(otel: Otel, clock: ManualClock) -> None:
    with TestClient(app(engine(clock, rate_limit=2))) as client:
        statuses = [
            client.post("/_embedgate/token", headers=TOKEN_HEADERS).status_code for _ in range(4)
        ]
    assert statuses == [200, 200, 429, 429]
    assert otel.count("embedgate.endpoint.rate_limited") == 2
    assert otel.count("embedgate.endpoint.answers", http__response__status_code=429) == 2


def test_remote_mints_are_traced(
    otel: Otel, clock: ManualClock, toucan: tuple[FakeToucan, str]
) -> None:
    _fake, url = toucan
    with TestClient(app(toucan_engine(clock, url))) as client:
        page = client.get("/")
    assert page.status_code == 200
    (span,) = otel.spans("embedgate.mint")
    assert span.attributes is not None
    assert span.attributes["embedgate.provider"] == "toucan"
    assert span.attributes["embedgate.outcome"] == "ok"
    assert span.status.status_code != StatusCode.ERROR
    assert otel.count("embedgate.upstream.calls", embedgate__outcome="ok") == 1
    ok = {"embedgate__provider": "toucan", "embedgate__outcome": "ok"}
    assert otel.count("embedgate.upstream.duration", **ok) == 1
    assert otel.count("embedgate.tokens.issued", **ok) == 1


def test_a_provider_failure(otel: Otel, clock: ManualClock, toucan: tuple[FakeToucan, str]) -> None:
    fake, url = toucan
    fake.plan(Plan(status=503), Plan(status=503))
    eng = toucan_engine(clock, url)
    with TestClient(app(eng)) as client:
        answer = client.post("/_embedgate/token", headers=TOKEN_HEADERS)
        # The answer may come at the page deadline; the mint (and its retry) goes on.
        assert eng.service.wait_idle()
    assert answer.status_code == 503
    # An answered failure is not retried within the call: the service backs off, shared.
    assert fake.calls == 1
    failed = {"embedgate__provider": "toucan", "embedgate__outcome": "provider_unavailable"}
    assert otel.count("embedgate.upstream.calls", **failed) == 1
    assert otel.count("embedgate.tokens.issued", **failed) == 1
    assert otel.count("embedgate.upstream.duration", **failed) == 1
    assert otel.count("embedgate.endpoint.answers", http__response__status_code=503) == 1
    (span,) = otel.spans("embedgate.mint")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["embedgate.outcome"] == "provider_unavailable"


def test_a_stale_token_served_while_the_provider_fails(
    otel: Otel, clock: ManualClock, toucan: tuple[FakeToucan, str]
) -> None:
    fake, url = toucan
    with TestClient(app(toucan_engine(clock, url))) as client:
        first = client.post("/_embedgate/token", headers=TOKEN_HEADERS).json()
        clock.advance(first["refresh_in"] + 1)
        fake.plan(Plan(status=503), Plan(status=503))
        again = client.post("/_embedgate/token", headers=TOKEN_HEADERS)
    assert again.status_code == 200
    assert again.json()["token"] == first["token"]
    assert otel.count("embedgate.tokens.stale_served", embedgate__provider="toucan") == 1


def test_no_identity_or_secret_in_any_attribute(
    otel: Otel, clock: ManualClock, toucan: tuple[FakeToucan, str]
) -> None:
    fake, url = toucan
    with TestClient(app(toucan_engine(clock, url))) as client:
        client.get("/")
        token = client.post("/_embedgate/token", headers=TOKEN_HEADERS).json()["token"]
        session = client.cookies["embedgate_session"]
        fake.plan(Plan(status=401))
        clock.advance(10_000)
        client.post("/_embedgate/token", headers=TOKEN_HEADERS)
    values = otel.attribute_values()
    assert values
    for secret in (token, API_KEY, session, ALICE.subject, "acme", "EU", url):
        assert not any(secret in value for value in values), secret


def test_redis_round_trips_are_spans(otel: Otel, clock: ManualClock, redis_url: str) -> None:
    with TestClient(app(engine(clock, redis_url=redis_url))) as client:
        client.get("/")
        # The invalidation listener's first subscription empties the local tier (messages
        # may have been missed before it): ask until the token is served from that tier.
        for _ in range(20):
            client.get("/")
            if otel.count("embedgate.cache.hits", embedgate__cache__tier="local") >= 1:
                break
            time.sleep(0.05)
    spans = otel.spans()
    redis_spans = [s for s in spans if s.name.startswith("embedgate.redis ")]
    assert redis_spans
    for span in redis_spans:
        assert span.attributes is not None
        assert span.attributes["db.system"] == "redis"
        assert span.attributes["embedgate.outcome"] == "ok"
    assert "embedgate.redis get" in {s.name for s in redis_spans}
    assert otel.count("embedgate.cache.misses", embedgate__cache__tier="redis") >= 1
    assert otel.count("embedgate.cache.hits", embedgate__cache__tier="local") >= 1


GLOBAL_SDK = """
import json
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from embedgate import Engine, Principal

engine = Engine.from_settings(environ={}, secret="Zq3vX9pL2mN8rT5wY1bK7cF4hJ6dG0sA")
service = engine.service
service.get_token(Principal(subject="before"), "s0")  # before the SDK: nothing recorded
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
trace.set_tracer_provider(TracerProvider())
service.get_token(Principal(subject="after"), "s1")
names = {
    m.name: sum(p.value for p in m.data.data_points)
    for r in reader.get_metrics_data().resource_metrics
    for s in r.scope_metrics
    for m in s.metrics
    if m.name == "embedgate.tokens.issued"
}
print(json.dumps(names))
"""


def test_the_hosts_global_sdk_is_picked_up_when_set() -> None:
    result = subprocess.run(
        [sys.executable, "-c", GLOBAL_SDK], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == {"embedgate.tokens.issued": 1}


WITHOUT_OTEL = """
import builtins, sys
real = builtins.__import__
def refuse(name, *args, **kwargs):
    if name.startswith("opentelemetry"):
        raise ImportError(name)
    return real(name, *args, **kwargs)
builtins.__import__ = refuse
from embedgate import Engine, Principal, telemetry
engine = Engine.from_settings(environ={}, secret="Zq3vX9pL2mN8rT5wY1bK7cF4hJ6dG0sA")
token = engine.service.get_token(Principal(subject="a"), "s")
with telemetry.remote_mint("toucan"):
    pass
print("ok", "opentelemetry" in sys.modules)
"""


def test_runs_without_the_otel_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_OTEL], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["ok", "False"]


def test_flask_pages_and_endpoint(otel: Otel) -> None:
    from tests.ops.test_testing import flask_app

    client = flask_app(secret=TEST_SECRET).test_client()
    client.get("/")  # anonymous
    client.post("/login/alice")
    client.get("/")
    assert client.post("/_embedgate/token", headers=TOKEN_HEADERS).status_code == 200
    assert client.get("/_embedgate/embedgate.js").status_code == 200
    assert otel.count("embedgate.injections", embedgate__reason="anonymous") == 1
    assert otel.count("embedgate.injections", embedgate__reason="token") == 1
    token_route = {"embedgate__route": "token", "http__response__status_code": 200}
    assert otel.count("embedgate.endpoint.answers", **token_route) == 1
    assert otel.count("embedgate.endpoint.duration", **token_route) == 1
    assert otel.count("embedgate.endpoint.answers", embedgate__route="script") == 1
