"""Canonical JSON and digests: one byte string per value, so ``1``, ``1.0``, ``True`` and
``"1"`` never collide (unlike ``cachetools.keys.hashkey``)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Built once: json.dumps() with options builds a new encoder on every call (hot path).
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace, no NaN: equal values give equal strings."""
    return _ENCODER.encode(value)


def utf8(text: str) -> bytes:
    """UTF-8 for hashing; lone surrogates (valid in JSON claims) are kept, not refused."""
    return text.encode("utf-8", "surrogatepass")


def digest(*parts: Any) -> str:
    """A hex SHA-256 over the canonical JSON of ``parts`` (types are part of the encoding)."""
    return hashlib.sha256(utf8(canonical_json(list(parts)))).hexdigest()


def short_hash(value: str) -> str:
    """A short, non-reversible tag for logs (e.g. a subject), never the value itself."""
    return hashlib.sha256(b"embedgate-log:" + value.encode("utf-8")).hexdigest()[:12]
