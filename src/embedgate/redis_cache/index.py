"""Helpers for the invalidation index sets: which indexes an entry or a request names,
the entries they share, and the deletes that drop them."""

from __future__ import annotations

from typing import Any

from .client import _DOWN
from .keys import redis_key


def _indexes(session_tag: str | None, subject: str | None) -> list[str]:
    names = []
    if session_tag:
        names.append(redis_key("session", session_tag))
    if subject is not None:
        names.append(redis_key("subject", subject))
    return names


def _members(found: list[list[Any]]) -> list[Any]:
    """The entries listed in every index read (one index, or a session and a subject)."""
    first, *others = found
    common = set.intersection(*(set(members) for members in others)) if others else None
    return [m for m in first if common is None or m in common]


def _queue_deletes(pipe: Any, indexes: list[str], members: list[Any]) -> None:
    # One DEL per key: a cluster pipeline refuses multi-key DEL across slots.
    for member in members:
        pipe.delete(member)
    if len(indexes) == 1:
        pipe.delete(indexes[0])
    elif members:
        for index in indexes:
            pipe.zrem(index, *members)


def _deleted(done: Any, members: list[Any]) -> int:
    return 0 if done is _DOWN else sum(int(n) for n in done[: len(members)])
