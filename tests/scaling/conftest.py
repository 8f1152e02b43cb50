"""Fixtures for the multi-process tests: the redis-server binary (skipped locally, a
failure in CI when missing)."""

from __future__ import annotations

import pytest

from tests.support.binaries import require_binary


@pytest.fixture(scope="session")
def redis_binary() -> str:
    return require_binary("redis-server")
