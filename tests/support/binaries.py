"""Finding system binaries: a visible skip on a developer's machine, a failure in CI."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_binary(name: str) -> str:
    """The path of ``name``; skips with a reason locally, fails when ``CI`` is set."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package: see .ci/run)"
        if IN_CI:
            pytest.fail(f"{message}; CI must install it", pytrace=False)
        pytest.skip(message)
    return path
