"""Shared fixtures: system binaries (skip locally, fail in CI), free ports, keys."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from embedgate import ManualClock
from tests.support.binaries import require_binary

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# A fixed 32-byte test secret: tests verify what they sign with it.
TEST_SECRET = "test-secret-0123456789abcdef-0123456789"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_800_000_000.0)


@pytest.fixture
def redis_server_binary() -> str:
    return require_binary("redis-server")


@pytest.fixture
def chromium_binary() -> str:
    return require_binary("chromium")


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Iterator[str]:
    """A folder under test-output/ for screenshots and logs of this test."""
    path = os.path.join("test-output", request.node.name.replace("/", "_"))
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    return path


__all__ = ["IN_CI", "TEST_SECRET"]
