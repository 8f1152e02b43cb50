"""Token caches: the backend interface, cache keys, and the in-process backend."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Protocol

from cachetools import LRUCache

from . import telemetry
from .canonical import canonical_json, digest, utf8
from .clock import SYSTEM_CLOCK, Clock
from .token import EmbedToken

CACHE_KEY_VERSION = "v2"


SESSION_ID_BYTES = 24  # 192 random bits, above the 128 the OWASP session cheat sheet asks


def new_session_id() -> str:
    """A fresh random session id (base64url, 192 bits)."""
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def session_tag(session_id: str) -> str:
    """A digest standing for a session id wherever the id itself must not be kept."""
    return digest("session", session_id)


def _typed(value: object) -> str:
    # "s<length>:<text>" for a string, "n" for None, "j<length>:<json>" for anything else:
    # typed and length-prefixed, so no two inputs share an encoding ("s1:1" is the string
    # "1", "j1:1" the number, "j4:true" the boolean).
    if isinstance(value, str):
        return f"s{len(value)}:{value}"
    if value is None:
        return "n"
    text = canonical_json(value)
    return f"j{len(text)}:{text}"


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
    if (
        type(session_id) is type(subject) is type(claims_hash) is type(scope) is str
        and (tenant is None or type(tenant) is str)
        and (resource is None or type(resource) is str)
    ):
        # The usual case, on every request: the same encoding as _typed(), written inline.
        tenant_part = "n" if tenant is None else f"s{len(tenant)}:{tenant}"
        resource_part = "n" if resource is None else f"s{len(resource)}:{resource}"
        text = (
            f"{CACHE_KEY_VERSION}|s{len(session_id)}:{session_id}|{tenant_part}|"
            f"s{len(subject)}:{subject}|s{len(claims_hash)}:{claims_hash}|"
            f"s{len(scope)}:{scope}|{resource_part}"
        )
    else:
        parts = (session_id, tenant, subject, claims_hash, scope, resource)
        text = "|".join([CACHE_KEY_VERSION, *map(_typed, parts)])
    return hashlib.sha256(utf8(text)).hexdigest()


class CacheBackend(Protocol):
    """Where tokens are kept. Entries expire at ``token.expires_at - min_remaining``
    (the backend is told the deadline); the service decides freshness.

    ``exclusive(key)`` is a cross-process lock for single-flight: it yields True when
    this caller holds it and may mint, False when another holder has it (re-read: do not
    mint beside it), and None when no lock could be taken (a shared cache that is down):
    the service then mints only when nothing servable is cached.
    """

    def get(self, key: str) -> EmbedToken | None: ...

    def set(self, key: str, token: EmbedToken, deadline: float) -> None: ...

    def invalidate(self, *, session_tag: str | None = None, subject: str | None = None) -> int: ...

    def exclusive(self, key: str) -> AbstractContextManager[bool | None]: ...

    async def aget(self, key: str) -> EmbedToken | None: ...

    async def aset(self, key: str, token: EmbedToken, deadline: float) -> None: ...

    async def ainvalidate(
        self, *, session_tag: str | None = None, subject: str | None = None
    ) -> int: ...

    def aexclusive(self, key: str) -> AbstractAsyncContextManager[bool | None]: ...


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


Entry = tuple[EmbedToken, float]


class _Entries(LRUCache[str, Entry]):
    """An LRU cache that reports what it evicts (to keep the per-user index exact)."""

    def __init__(self, maxsize: int, on_evict: Callable[[str, Entry], None]) -> None:
        super().__init__(maxsize=maxsize)
        self._on_evict = on_evict

    def popitem(self) -> tuple[str, Entry]:
        key, value = super().popitem()
        self._on_evict(key, value)
        return key, value


class MemoryCache:
    """A bounded in-process cache (LRU, per-entry deadline), safe across threads.

    Every access holds a lock, none holds it across I/O, so the async face simply calls
    the sync one. An entry past its deadline is dropped when next read, or evicted as the
    least recently used once the cache is full.

    ``user_sessions`` bounds how many sessions of one user (tenant and subject) hold
    entries: past it the user's own least recently stored session goes first, so no user
    can push everyone else's tokens out of the cache by opening sessions.
    """

    def __init__(
        self,
        maxsize: int = 10_000,
        clock: Clock = SYSTEM_CLOCK,
        *,
        user_sessions: int | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        if user_sessions is not None and user_sessions < 1:
            raise ValueError("user_sessions must be at least 1")
        self._lock = threading.Lock()
        self._maxsize = maxsize
        self._now = clock.now
        self._user_sessions = user_sessions
        # user -> session tag -> keys, sessions in the order they were last stored to.
        self._users: dict[str, OrderedDict[str, set[str]]] = {}
        # key -> (token, deadline). cachetools' LRUCache bounds the size; deadlines are
        # checked on read (its TLRUCache costs a heap update per access, 5x slower here).
        self._entries: LRUCache[str, Entry] = (
            LRUCache(maxsize=maxsize)
            if user_sessions is None
            else _Entries(maxsize, lambda key, entry: self._untrack(key, entry[0]))
        )

    def get(self, key: str) -> EmbedToken | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self._now() >= entry[1]:
                self._drop(key)
                entry = None
        telemetry.cache_lookup("local", entry is not None)
        return None if entry is None else entry[0]

    def set(self, key: str, token: EmbedToken, deadline: float) -> None:
        with self._lock:
            if self._now() >= deadline:
                self._drop(key)
                return
            if self._user_sessions is not None:
                self._drop(key)
                self._entries[key] = (token, deadline)
                self._track(key, token)
            else:
                self._entries[key] = (token, deadline)

    # -- the per-user index (only with user_sessions) -------------------------------------

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and self._user_sessions is not None:
            self._untrack(key, entry[0])

    def _track(self, key: str, token: EmbedToken) -> None:
        assert self._user_sessions is not None
        sessions = self._users.setdefault(_user_of(token), OrderedDict())
        keys = sessions.get(token.session_tag)
        if keys is None:
            sessions[token.session_tag] = {key}
        else:
            keys.add(key)
            sessions.move_to_end(token.session_tag)
        while len(sessions) > self._user_sessions:
            _, doomed = sessions.popitem(last=False)
            for old in doomed:
                self._entries.pop(old, None)

    def _untrack(self, key: str, token: EmbedToken) -> None:
        user = _user_of(token)
        sessions = self._users.get(user)
        if sessions is None:
            return
        keys = sessions.get(token.session_tag)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del sessions[token.session_tag]
        if not sessions:
            del self._users[user]

    def invalidate(
        self,
        *,
        session_tag: str | None = None,
        subject: str | None = None,
        subject_tag: str | None = None,
        tagger: Callable[[str], str] | None = None,
    ) -> int:
        """Drop the entries of a session and/or a subject; returns how many went.

        ``subject_tag`` names the subject by its keyed hash (``tagger(subject)``), as the
        shared cache's invalidation messages do. A scan over at most ``maxsize`` entries:
        logout and privilege changes are rare, and the scan avoids per-entry index memory
        on the hot path.
        """
        if subject_tag is not None and tagger is None:
            raise ValueError("subject_tag needs the tagger that made it")
        if session_tag is None and subject is None and subject_tag is None:
            return 0
        with self._lock:
            doomed = [
                key
                for key, (token, _) in self._entries.items()
                if _matches(token, session_tag, subject)
                and (
                    subject_tag is None
                    or (tagger is not None and tagger(token.subject) == subject_tag)
                )
            ]
            for key in doomed:
                self._drop(key)
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._users.clear()

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
        """Entries held, including any past their deadline not yet read or evicted."""
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return f"MemoryCache(entries={len(self)}, maxsize={self._maxsize})"


def _tagged(token: EmbedToken, subject_tag: str, tagger: Callable[[str], str] | None) -> bool:
    return tagger is not None and hmac.compare_digest(tagger(token.subject), subject_tag)


def _user_of(token: EmbedToken) -> str:
    return token.subject


def _matches(token: EmbedToken, session_tag: str | None, subject: str | None) -> bool:
    if session_tag is not None and token.session_tag != session_tag:
        return False
    return subject is None or token.subject == subject
