"""Fixtures for the framework adapters: a clean EMBEDGATE_* environment."""

from __future__ import annotations

import os

import pytest

from tests.conftest import TEST_SECRET


@pytest.fixture(autouse=True)
def embedgate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the test secret: settings a developer exported must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("EMBEDGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("EMBEDGATE_SECRET", TEST_SECRET)
