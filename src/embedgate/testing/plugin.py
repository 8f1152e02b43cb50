"""embedgate's pytest plugin (entry point ``pytest11``): fixtures for a host app's tests.

* ``embedgate_clock`` — a :class:`~embedgate.ManualClock` embedgate's system clock reads
  for the test (``embedgate_clock.advance(300)`` expires tokens, triggers refreshes);
* ``embedgate_fake_toucan`` / ``embedgate_fake_superset`` — in-process fake providers whose
  ``EMBEDGATE_*`` settings are in the environment for the test; ``fake.install(app)``
  points an app built earlier at them;
* ``embedgate_audit_events`` — the audit events emitted during the test, as dicts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ..audit import AUDIT_LOGGER
from ..clock import ManualClock
from ._clock import manual_clock

if TYPE_CHECKING:
    from ._fakes import FakeSuperset, FakeToucan

_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


@pytest.fixture
def embedgate_clock() -> Iterator[ManualClock]:
    """embedgate's clock, moved by hand for this test (starts at the real time)."""
    with manual_clock() as clock:
        yield clock


@pytest.fixture
def embedgate_fake_toucan(monkeypatch: pytest.MonkeyPatch) -> FakeToucan:
    """A fake Toucan in process; its settings are in the environment for this test."""
    from ._fakes import FakeToucan

    fake = FakeToucan()
    for name, value in fake.settings().items():
        monkeypatch.setenv(name, value)
    return fake


@pytest.fixture
def embedgate_fake_superset(monkeypatch: pytest.MonkeyPatch) -> FakeSuperset:
    """A fake Superset (API mode) in process; its settings are in the environment."""
    from ._fakes import FakeSuperset

    fake = FakeSuperset()
    for name, value in fake.settings().items():
        monkeypatch.setenv(name, value)
    return fake


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append({k: v for k, v in record.__dict__.items() if k not in _FIELDS})


@pytest.fixture
def embedgate_audit_events() -> Iterator[list[dict[str, Any]]]:
    """Every audit event (``token_issued``, ``tokens_purged``) emitted during the test."""
    logger = logging.getLogger(AUDIT_LOGGER)
    collector = _Collector()
    level = logger.level
    logger.addHandler(collector)
    logger.setLevel(logging.INFO)
    try:
        yield collector.events
    finally:
        logger.removeHandler(collector)
        logger.setLevel(level)
