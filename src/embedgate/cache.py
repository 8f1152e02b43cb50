"""Token caches: the backend interface, cache keys, and the in-process backend."""

from __future__ import annotations

import threading
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Protocol

from cachetools import TLRUCache

from .canonical import digest
from .clock import SYSTEM_CLOCK, Clock
from .token import EmbedToken

CACHE_KEY_VERSION = "v1"


def session_tag(session_id: str) -> str:
    """A digest standing for a session id wherever the id itself must not be kept."""
    return digest("session", session_id)


def cache_key(
    *,
    session_id: str,
    tenant: str | None,
    subject: str,
    claims_hash: str,
    scope: str,
    resource: str | None,
) -> str:
    """The digest a session's token is cached under.

    Every input is typed in the digest (``1``, ``True``, ``1.0`` and ``"1"`` differ), and
    a change of claims, audience, key or resource gives a new key.
    """
    return digest(CACHE_KEY_VERSION, session_id, tenant, subject, claims_hash, scope, resource)


class CacheBackend(Protocol):
    """Where tokens are kept. Entries expire at ``token.expires_at - min_remaining``
    (the backend is told the deadline); the service decides freshness.

    ``exclusive(key)`` is a cross-process lock for single-flight: it yields True when
    this caller should mint, False when another holder minted meanwhile (re-read).
    """

    def get(self, key: str) -> EmbedToken | None: ...

    def set(self, key: str, token: EmbedToken, deadline: float) -> None: ...

    def invalidate(self, *, session_tag: str | None = None, subject: str | None = None) -> int: ...

    def exclusive(self, key: str) -> AbstractContextManager[bool]: ...

    async def aget(self, key: str) -> EmbedToken | None: ...

    async def aset(self, key: str, token: EmbedToken, deadline: float) -> None: ...

    async def ainvalidate(
        self, *, session_tag: str | None = None, subject: str | None = None
    ) -> int: ...

    def aexclusive(self, key: str) -> AbstractAsyncContextManager[bool]: ...


class _Always:
    """A lock that is always ours: one process needs no cross-process lock."""

    def __enter__(self) -> bool:
        return True

    def __exit__(self, *exc: object) -> None:
        return None

    async def __aenter__(self) -> bool:
        return True

    async def __aexit__(self, *exc: object) -> None:
        return None


_ALWAYS = _Always()


class MemoryCache:
    """A bounded in-process cache (LRU, per-entry expiry), safe across threads.

    cachetools caches are not thread-safe, so every access holds a lock; none holds it
    across I/O, so the async face simply calls the sync one.
    """

    def __init__(self, maxsize: int = 10_000, clock: Clock = SYSTEM_CLOCK) -> None:
        self._lock = threading.Lock()
        self._deadlines: dict[str, float] = {}
        self._entries: TLRUCache[str, EmbedToken] = TLRUCache(
            maxsize=maxsize, ttu=self._time_to_use, timer=clock.now
        )

    def _time_to_use(self, key: str, token: EmbedToken, now: float) -> float:
        return self._deadlines.pop(key, token.expires_at)

    def get(self, key: str) -> EmbedToken | None:
        with self._lock:
            return self._entries.get(key)

    def set(self, key: str, token: EmbedToken, deadline: float) -> None:
        with self._lock:
            self._deadlines[key] = deadline
            try:
                self._entries[key] = token
            finally:
                self._deadlines.pop(key, None)

    def invalidate(self, *, session_tag: str | None = None, subject: str | None = None) -> int:
        """Drop the entries of a session and/or a subject; returns how many went.

        A scan over at most ``maxsize`` entries: logout and privilege changes are rare,
        and the scan avoids per-entry index memory on the hot path.
        """
        if session_tag is None and subject is None:
            return 0
        with self._lock:
            doomed = [
                key for key, token in self._entries.items() if _matches(token, session_tag, subject)
            ]
            for key in doomed:
                del self._entries[key]
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def exclusive(self, key: str) -> AbstractContextManager[bool]:
        return _ALWAYS

    async def aget(self, key: str) -> EmbedToken | None:
        return self.get(key)

    async def aset(self, key: str, token: EmbedToken, deadline: float) -> None:
        self.set(key, token, deadline)

    async def ainvalidate(
        self, *, session_tag: str | None = None, subject: str | None = None
    ) -> int:
        return self.invalidate(session_tag=session_tag, subject=subject)

    def aexclusive(self, key: str) -> AbstractAsyncContextManager[bool]:
        return _ALWAYS

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return f"MemoryCache(entries={len(self)}, maxsize={self._entries.maxsize})"


def _matches(token: EmbedToken, session_tag: str | None, subject: str | None) -> bool:
    if session_tag is not None and token.session_tag != session_tag:
        return False
    return subject is None or token.subject == subject
