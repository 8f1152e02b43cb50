"""Each example app's own test suite (examples/*/test_app.py, written with embedgate's
pytest plugin as a host app would) passes, run from the repository as `pytest` would."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.net import PYTHON

ROOT = Path(__file__).resolve().parents[2]
SUITES = sorted(p.relative_to(ROOT) for p in (ROOT / "examples").glob("*/test_app.py"))


def test_every_example_app_has_its_suite() -> None:
    assert {p.parent.name for p in SUITES} >= {"flask", "fastapi"}


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.parent.name)
def test_the_example_suite_passes(suite: Path) -> None:
    # One process per example: both import their app as the module `app`.
    result = subprocess.run(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def _clean_env() -> dict[str, str]:
    # The example suites configure themselves: no EMBEDGATE_* from the caller's environment.
    return {k: v for k, v in os.environ.items() if not k.startswith("EMBEDGATE_")}
