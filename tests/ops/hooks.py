"""An audit hook importable by name (EMBEDGATE_AUDIT_HOOK=tests.ops.hooks:collect)."""

from __future__ import annotations

from typing import Any

EVENTS: list[dict[str, Any]] = []


def collect(event: dict[str, Any]) -> None:
    EVENTS.append(event)


def explode(event: dict[str, Any]) -> None:
    raise RuntimeError("a broken audit hook")
