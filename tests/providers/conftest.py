"""Fixtures for provider tests: fake providers served on loopback, a principal, policies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from embedgate import IssueRequest, Principal
from embedgate.issuers.remote import HttpPolicy
from tests.providers.fakes.server import serve
from tests.providers.fakes.toucan import FakeToucan

API_KEY = "tc-live-7f3a9c-SECRET-do-not-log-5d1e"
# Fast backoff so retry tests take milliseconds; the timeouts stay explicit.
FAST = HttpPolicy(connect_timeout=1.0, read_timeout=2.0, retries=2, backoff=0.01, backoff_max=0.02)


@pytest.fixture
def principal() -> Principal:
    return Principal(
        subject="ada",
        email="ada@example.com",
        name="Ada Lovelace",
        tenant="acme",
        roles=("analyst",),
        groups=("finance",),
        attributes={"region": "EU", "level": 3, "teams": ["north", "south"]},
    )


@pytest.fixture
def toucan() -> Iterator[tuple[FakeToucan, str]]:
    fake = FakeToucan(API_KEY)
    with serve(fake.app) as url:
        yield fake, url


def request_for(principal: Principal, now: float, resource: str | None = None) -> IssueRequest:
    return IssueRequest(principal=principal, now=now, ttl=300, resource=resource)
