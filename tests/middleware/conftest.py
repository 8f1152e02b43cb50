"""Fixtures of the middleware tests: each test of the web rules runs through both shells."""

from __future__ import annotations

import pytest

from tests.middleware.shells import SHELLS, Shell


@pytest.fixture(params=SHELLS, ids=lambda s: s.kind)
def shell(request: pytest.FixtureRequest) -> Shell:
    chosen: Shell = request.param
    return chosen
