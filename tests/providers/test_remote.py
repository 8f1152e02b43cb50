"""The remote minter over real HTTP: retries, timeouts, error codes, and the API key kept
out of URLs, logs and errors. Toucan's minter is the concrete one; the fake is a real
server on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import anyio
import pytest

from embedgate import IssuerError, Principal, Secret
from embedgate.issuers.remote import HttpPolicy
from embedgate.providers.toucan import ToucanMinter
from tests.providers.conftest import API_KEY, FAST, request_for
from tests.providers.fakes.toucan import FakeToucan, Plan
from tests.support.net import free_port


def minter(url: str, policy: HttpPolicy = FAST, key: str = API_KEY) -> ToucanMinter:
    return ToucanMinter(base_url=url, api_key=Secret(key), ttl=300, policy=policy)


def assert_key_hidden(error: BaseException, log_text: str) -> None:
    for text in (str(error), repr(error), log_text):
        assert API_KEY not in text
        assert "SECRET-do-not-log" not in text


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    # Every logger (embedgate, httpx, httpcore) at DEBUG: the key must not appear anywhere.
    caplog.set_level(logging.DEBUG)


def test_a_token_is_minted_with_the_key_in_a_header_only(
    toucan: tuple[FakeToucan, str], principal: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = toucan
    token = minter(url).issue(request_for(principal, time.time()))
    assert token.token.startswith("tc_1_ada")
    assert fake.calls == 1
    seen = fake.seen[0]
    assert seen.headers["x-api-key"] == API_KEY
    assert API_KEY not in seen.path + seen.query
    assert API_KEY not in caplog.text


def test_5xx_answers_are_retried_until_success(
    toucan: tuple[FakeToucan, str], principal: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = toucan
    fake.plan(Plan(status=500, body={"error": "boom"}), Plan(status=503, body={}))
    token = minter(url).issue(request_for(principal, time.time()))
    assert token.token.startswith("tc_")
    assert fake.calls == 3
    assert "retry 1 of 2" in caplog.text
    assert "retry 2 of 2" in caplog.text


def test_retries_are_bounded_and_the_last_5xx_is_reported(
    toucan: tuple[FakeToucan, str], principal: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = toucan
    fake.plan(*(Plan(status=502, body={}) for _ in range(5)))
    with pytest.raises(IssuerError) as caught:
        minter(url).issue(request_for(principal, time.time()))
    assert fake.calls == 3  # one try and FAST.retries == 2 retries
    error = caught.value
    assert (error.code, error.status, error.provider) == ("provider_unavailable", 502, "toucan")
    assert "toucan" in str(error)
    assert "502" in str(error)
    assert_key_hidden(error, caplog.text)


def test_a_401_is_not_retried_and_names_the_setting(
    toucan: tuple[FakeToucan, str], principal: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = toucan
    wrong = "tc-wrong-key-000000000000000"
    with pytest.raises(IssuerError) as caught:
        minter(url, key=wrong).issue(request_for(principal, time.time()))
    assert fake.calls == 1
    error = caught.value
    assert (error.code, error.status) == ("provider_rejected", 401)
    assert "EMBEDGATE_API_KEY" in str(error)
    assert wrong not in str(error) + repr(error) + caplog.text
    assert_key_hidden(error, caplog.text)


def test_other_4xx_are_not_retried(toucan: tuple[FakeToucan, str], principal: Principal) -> None:
    fake, url = toucan
    fake.plan(Plan(status=422, body={"error": "attribute region is not registered"}))
    with pytest.raises(IssuerError) as caught:
        minter(url).issue(request_for(principal, time.time()))
    assert fake.calls == 1
    assert (caught.value.code, caught.value.status) == ("provider_rejected", 422)
    assert "region is not registered" not in str(caught.value)  # bodies are not echoed


def test_429_carries_the_providers_retry_after(
    toucan: tuple[FakeToucan, str], principal: Principal
) -> None:
    fake, url = toucan
    fake.plan(Plan(status=429, body={}, headers={"retry-after": "17"}))
    with pytest.raises(IssuerError) as caught:
        minter(url).issue(request_for(principal, time.time()))
    assert fake.calls == 1
    assert (caught.value.code, caught.value.retry_after) == ("provider_rate_limited", 17.0)


def test_a_provider_that_is_down_is_unavailable(
    principal: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(IssuerError) as caught:
        minter(url).issue(request_for(principal, time.time()))
    error = caught.value
    assert (error.code, error.status) == ("provider_unavailable", None)
    assert "ConnectError" in str(error)
    assert caplog.text.count("could not reach") == 0  # retries log the code, not httpx text
    assert "retry 2 of 2" in caplog.text
    assert_key_hidden(error, caplog.text)


def test_a_slow_provider_times_out_and_each_attempt_is_bounded(
    toucan: tuple[FakeToucan, str], principal: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = toucan
    fake.delay = 1.5
    policy = replace(FAST, read_timeout=0.2, retries=1)
    started = time.monotonic()
    with pytest.raises(IssuerError) as caught:
        minter(url, policy).issue(request_for(principal, time.time()))
    assert time.monotonic() - started < 1.4  # two 0.2 s attempts, not the fake's 1.5 s
    assert fake.calls == 2
    assert caught.value.code == "provider_timeout"
    assert "ReadTimeout" in str(caught.value)
    assert_key_hidden(caught.value, caplog.text)


@pytest.mark.parametrize(
    "body",
    [b"<html>Bad Gateway</html>", b'["a", "list"]', b'{"token": ', b""],
    ids=["html", "not-an-object", "truncated", "empty"],
)
def test_malformed_answers_are_reported_not_retried(
    toucan: tuple[FakeToucan, str], principal: Principal, body: bytes
) -> None:
    fake, url = toucan
    fake.plan(Plan(status=200, body=body))
    with pytest.raises(IssuerError) as caught:
        minter(url).issue(request_for(principal, time.time()))
    assert fake.calls == 1
    assert (caught.value.code, caught.value.status) == ("provider_malformed", 200)


def test_an_answer_without_a_token_is_malformed(
    toucan: tuple[FakeToucan, str], principal: Principal
) -> None:
    fake, url = toucan
    fake.plan(Plan(status=200, body={"expiresIn": 3600}))
    with pytest.raises(IssuerError) as caught:
        minter(url).issue(request_for(principal, time.time()))
    assert caught.value.code == "provider_malformed"
    assert "without a token" in str(caught.value)


def test_the_sync_client_is_created_once_and_reused(
    toucan: tuple[FakeToucan, str], principal: Principal
) -> None:
    fake, url = toucan
    issuer = minter(url)
    assert issuer._client is None  # lazily created
    issuer.issue(request_for(principal, time.time()))
    first = issuer._client
    issuer.issue(request_for(principal, time.time()))
    assert issuer._client is first is not None
    assert fake.calls == 2
    issuer.close()
    assert issuer._client is None


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_async_face_applies_the_same_rules(
    toucan: tuple[FakeToucan, str],
    principal: Principal,
    backend: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, url = toucan
    fake.plan(Plan(status=500, body={}))
    issuer = minter(url)

    async def scenario() -> None:
        token = await issuer.aissue(request_for(principal, time.time()))
        assert token.token.startswith("tc_")
        client = issuer._loop_client()
        await issuer.aissue(request_for(principal, time.time()))
        assert issuer._loop_client() is client  # one shared AsyncClient per event loop
        fake.plan(Plan(status=401, body={}))
        with pytest.raises(IssuerError) as caught:
            await issuer.aissue(request_for(principal, time.time()))
        assert caught.value.code == "provider_rejected"
        assert_key_hidden(caught.value, caplog.text)
        await issuer.aclose()

    anyio.run(scenario, backend=backend)
    assert fake.calls == 4  # 500, retry OK, OK, 401 (not retried)


def test_a_new_event_loop_gets_its_own_async_client(
    toucan: tuple[FakeToucan, str], principal: Principal
) -> None:
    _, url = toucan
    issuer = minter(url)
    clients = []

    async def scenario() -> None:
        await issuer.aissue(request_for(principal, time.time()))
        clients.append(issuer._loop_client())

    anyio.run(scenario)
    anyio.run(scenario)  # the first loop is gone; its client must not be reused
    assert clients[0] is not clients[1]


def test_slow_async_attempts_time_out(toucan: tuple[FakeToucan, str], principal: Principal) -> None:
    fake, url = toucan
    fake.delay = 1.5
    issuer = minter(url, replace(FAST, read_timeout=0.2, retries=0))

    async def scenario() -> IssuerError:
        with pytest.raises(IssuerError) as caught:
            await issuer.aissue(request_for(principal, time.time()))
        return caught.value

    assert anyio.run(scenario).code == "provider_timeout"
    assert fake.calls == 1
