"""Canonical JSON and digests: one byte string per value, so ``1``, ``1.0``, ``True`` and
``"1"`` never collide (unlike ``cachetools.keys.hashkey``)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace, no NaN: equal values give equal strings."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def digest(*parts: Any) -> str:
    """A hex SHA-256 over the canonical JSON of ``parts`` (types are part of the encoding)."""
    return hashlib.sha256(canonical_json(list(parts)).encode("utf-8")).hexdigest()


def short_hash(value: str) -> str:
    """A short, non-reversible tag for logs (e.g. a subject), never the value itself."""
    return hashlib.sha256(b"embedgate-log:" + value.encode("utf-8")).hexdigest()[:12]
