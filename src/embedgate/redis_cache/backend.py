"""RedisCache: the shared tier as a :class:`~embedgate.cache.CacheBackend` on redis-py,
with sync and async faces, every call guarded by the circuit breaker."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from typing import Any, Final

import anyio
import anyio.to_thread

from .. import telemetry
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError
from ..token import EmbedToken
from .breaker import CircuitBreaker
from .client import (
    _DOWN,
    _FAILURES,
    AsyncClient,
    SyncClient,
    check_url,
)
from .codec import ValueCodec
from .index import _deleted, _indexes, _members, _queue_deletes
from .keys import CHANNEL, redis_key
from .lock import _EXTEND_LOCK, _RELEASE_LOCK, _Attempt, _delays, _Lock, _Renewal
from .replay import InvalidationJournal
from .topology import Topology

log = logging.getLogger("embedgate")

DEFAULT_TIMEOUT: Final = 0.25


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class RedisCache:
    """A :class:`~embedgate.cache.CacheBackend` on Redis (sync and async faces).

    Build it with :meth:`from_url`, or pass clients you configured yourself (Sentinel's
    ``master_for``, ``RedisCluster``...); give them explicit socket timeouts and no
    retries, the circuit breaker handles failures. ``lock_ttl`` bounds how long a dead
    lock holder blocks a key (a live one extends its lock while its call runs, so the
    lock outlives the call it guards); ``lock_wait`` how long a caller waits for another's
    mint before giving up (without minting).

    ``exclusive(key)`` yields True when the lock is ours, False when another holder has
    it (re-read; a servable token may have landed), and None when Redis could not be
    asked: no cluster-wide lock exists then, and the service mints only if it must.
    """

    def __init__(
        self,
        client: SyncClient | None = None,
        async_client: AsyncClient | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        lock_ttl: float = 5.0,
        lock_wait: float = 5.0,
        breaker: CircuitBreaker | None = None,
        codec: ValueCodec | None = None,
    ) -> None:
        if client is None and async_client is None:
            raise ConfigurationError("EMBEDGATE_REDIS_URL", "RedisCache needs a Redis client")
        if lock_ttl <= 0 or lock_wait < 0:
            raise ConfigurationError("lock_ttl", "lock_ttl must be positive, lock_wait >= 0")
        self.client = client
        self.async_client = async_client
        self.clock = clock
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self.breaker = breaker or CircuitBreaker()
        self.codec = codec or ValueCodec()
        self.lock_waits = 0
        self.lock_timeouts = 0
        self._owns_clients = False
        self._release = client.register_script(_RELEASE_LOCK) if client is not None else None
        self._extend = client.register_script(_EXTEND_LOCK) if client is not None else None
        self.lock_extensions = 0
        self._arelease = (
            async_client.register_script(_RELEASE_LOCK) if async_client is not None else None
        )
        # Invalidations of the last minute, replayed after a failure (needs the sync face).
        self.journal = InvalidationJournal(self._replay_one)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> RedisCache:
        """Both faces from a URL: ``redis://``, ``rediss://``, ``unix://`` (one server),
        ``redis+cluster://h1:p1,h2:p2`` (Cluster seed nodes) or
        ``redis+sentinel://h1:p1,h2:p2/master/0`` (Sentinels); ``timeout`` seconds to
        connect and to read, and no client-side retries."""
        check_url(url)
        return cls.from_topology(Topology.parse(url), timeout=timeout, **options)

    @classmethod
    def from_topology(
        cls, topology: Topology, *, timeout: float = DEFAULT_TIMEOUT, **options: Any
    ) -> RedisCache:
        """Both faces for a parsed :class:`Topology` (one server, Cluster or Sentinel)."""
        client, async_client = topology.clients(timeout)
        cache = cls(client, async_client, **options)
        cache._owns_clients = True
        return cache

    # -- guarded calls ------------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any, _force: bool = False, **kwargs: Any) -> Any:
        """``fn(...)``, or :data:`_DOWN` when the breaker is open (unless ``_force``: a lock
        is worth a try) or the call fails."""
        if not self.breaker.allow() and not _force:
            return _DOWN
        try:
            with telemetry.redis_call(getattr(fn, "__name__", "script")):
                result = fn(*args, **kwargs)
        except _FAILURES as error:
            self.breaker.failure(error)
            self.journal.trouble()
            return _DOWN
        self.breaker.success()
        return result

    async def _acall(
        self, fn: Callable[..., Awaitable[Any]], *args: Any, _force: bool = False, **kwargs: Any
    ) -> Any:
        if not self.breaker.allow() and not _force:
            return _DOWN
        try:
            with telemetry.redis_call(getattr(fn, "__name__", "script")):
                result = await fn(*args, **kwargs)
        except _FAILURES as error:
            self.breaker.failure(error)
            self.journal.trouble()
            return _DOWN
        self.breaker.success()
        return result

    def _sync(self) -> SyncClient:
        if self.client is None:
            raise ConfigurationError(
                "EMBEDGATE_REDIS_URL",
                "this RedisCache has no sync client (needed by the sync face and on trio)",
            )
        return self.client

    def _async(self) -> AsyncClient | None:
        """The async client, or None when the async face must use the sync one in threads."""
        return self.async_client if self.async_client is not None and _on_asyncio() else None

    # -- values -------------------------------------------------------------------------

    def _decode(self, raw: Any, name: str) -> EmbedToken | None:
        if raw is None or raw is _DOWN:
            return None
        try:
            return self.codec.decode(name, raw)
        except (ValueError, TypeError, KeyError):
            log.debug("embedgate: ignoring an unreadable entry in the shared cache")
            return None

    def _servable(self, raw: Any, name: str) -> bool:
        """Whether a raw entry holds a token that may be served: entries expire in Redis at
        their deadline (``expires_at - min_remaining``), so one that is there is servable.
        A waiter that sees one re-reads instead of minting beside the lock holder."""
        token = self._decode(raw, name)
        return token is not None and bool(token.token) and self.clock.now() < token.expires_at

    def _write(self, pipe: Any, key: str, token: EmbedToken, deadline: float) -> bool:
        """Queue the writes for one entry and its index sets; False if already expired."""
        now = self.clock.now()
        ttl_ms = int((deadline - now) * 1000)
        if ttl_ms <= 0:
            return False
        name = redis_key("token", key)
        pipe.set(name, self.codec.encode(name, token), px=ttl_ms)
        for index in _indexes(token.session_tag or None, self.codec.subject_tag(token.subject)):
            pipe.zadd(index, {name: deadline * 1000})
            pipe.zremrangebyscore(index, "-inf", now * 1000)
            pipe.pexpire(index, ttl_ms, nx=True)
            pipe.pexpire(index, ttl_ms, gt=True)
        return True

    def _subject_tag(self, subject: str | None) -> str | None:
        return None if subject is None else self.codec.subject_tag(subject)

    def _message(self, session_tag: str | None, subject: str | None) -> str:
        # Other processes match their entries by the subject's keyed hash, never the subject.
        return json.dumps({"session_tag": session_tag, "subject_tag": self._subject_tag(subject)})

    # -- sync face ----------------------------------------------------------------------

    def get(self, key: str) -> EmbedToken | None:
        name = redis_key("token", key)
        token = self._decode(self._call(self._sync().get, name), name)
        telemetry.cache_lookup("redis", token is not None)
        return token

    def set(self, key: str, token: EmbedToken, deadline: float) -> None:
        pipe = self._sync().pipeline(transaction=False)
        if self._write(pipe, key, token, deadline):
            self._call(pipe.execute)

    def invalidate(self, *, session_tag: str | None = None, subject: str | None = None) -> int:
        """Delete the shared entries of a session and/or subject and tell every process.
        Replayed from the journal should any step fail (see :mod:`.replay`)."""
        if session_tag is None and subject is None:
            return 0
        self.journal.record(session_tag, subject)
        deleted, done = self._invalidate(session_tag, subject, force=False)
        if not done:
            self.journal.trouble()
        return deleted

    def _replay_one(self, session_tag: str | None, subject: str | None) -> bool:
        return self._invalidate(session_tag, subject, force=True)[1]

    def _invalidate(
        self, session_tag: str | None, subject: str | None, *, force: bool
    ) -> tuple[int, bool]:
        """(entries deleted, whether every step reached Redis)."""
        client = self._sync()
        indexes = _indexes(session_tag, self._subject_tag(subject))
        pipe = client.pipeline(transaction=False)
        for index in indexes:
            pipe.zrange(index, 0, -1)
        found = self._call(pipe.execute, _force=force)
        if found is _DOWN:
            return 0, False
        members = _members(found)
        pipe = client.pipeline(transaction=False)
        _queue_deletes(pipe, indexes, members)
        done = self._call(pipe.execute, _force=force)
        # Not in the pipeline: a cluster pipeline refuses PUBLISH (any node relays it).
        sent = self._call(
            client.publish, CHANNEL, self._message(session_tag, subject), _force=force
        )
        return _deleted(done, members), done is not _DOWN and sent is not _DOWN

    def exclusive(self, key: str) -> AbstractContextManager[bool | None]:
        return self._exclusive(key)

    @contextmanager
    def _exclusive(self, key: str) -> Iterator[bool | None]:
        lock = _Lock(key)
        ours = self._acquire(lock)
        renewal = self._renew(lock)
        try:
            yield ours
        finally:
            if renewal is not None:
                renewal.stop()
                self.lock_extensions += renewal.extensions
            if lock.held and self._release is not None:
                self._call(self._release, keys=[lock.name], args=[lock.owner], _force=True)

    def _renew(self, lock: _Lock) -> _Renewal | None:
        """Keep a held lock alive while the call it guards runs (sync client, a thread)."""
        if not lock.held or self._extend is None:
            return None
        extend, ttl_ms = self._extend, int(self.lock_ttl * 1000)

        def once() -> bool:
            done = self._call(extend, keys=[lock.name], args=[lock.owner, ttl_ms], _force=True)
            return done is not _DOWN and bool(done)

        return _Renewal(once, self.lock_ttl / 3)

    def _try_lock(self, lock: _Lock) -> _Attempt:
        """One attempt at the lock; failing that, a look at whether the holder has minted."""
        client = self._sync()
        ttl = int(self.lock_ttl * 1000)
        got = self._call(client.set, lock.name, lock.owner, nx=True, px=ttl, _force=True)
        if got is _DOWN:
            return "down"
        if got:
            lock.held = True
            return "mint"  # the service looks at the cache again before it mints
        raw = self._call(client.get, lock.token_key, _force=True)
        if raw is _DOWN:
            return "down"
        return "minted" if self._servable(raw, lock.token_key) else "busy"

    def _acquire(self, lock: _Lock) -> bool | None:
        """True: the lock is ours. False: another holder minted, or kept it past
        ``lock_wait``: re-read, do not mint. None: Redis could not be asked."""
        attempt = self._try_lock(lock)
        if attempt == "busy":
            self.lock_waits += 1
            deadline = time.monotonic() + self.lock_wait
            for delay in _delays():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.lock_timeouts += 1
                    log.debug("embedgate: gave up waiting for another process's mint")
                    return False
                time.sleep(min(delay, remaining))
                attempt = self._try_lock(lock)
                if attempt != "busy":
                    break
        return None if attempt == "down" else attempt == "mint"

    def close(self) -> None:
        """Close the clients this cache created (not the ones passed in)."""
        self.journal.close()
        if self._owns_clients and self.client is not None:
            self.client.close()

    # -- async face ---------------------------------------------------------------------

    async def aget(self, key: str) -> EmbedToken | None:
        client = self._async()
        if client is None:
            return await anyio.to_thread.run_sync(self.get, key)
        name = redis_key("token", key)
        token = self._decode(await self._acall(client.get, name), name)
        telemetry.cache_lookup("redis", token is not None)
        return token

    async def aset(self, key: str, token: EmbedToken, deadline: float) -> None:
        client = self._async()
        if client is None:
            await anyio.to_thread.run_sync(self.set, key, token, deadline)
            return
        pipe = client.pipeline(transaction=False)
        if self._write(pipe, key, token, deadline):
            await self._acall(pipe.execute)

    async def ainvalidate(
        self, *, session_tag: str | None = None, subject: str | None = None
    ) -> int:
        client = self._async()
        if client is None:
            return await anyio.to_thread.run_sync(
                lambda: self.invalidate(session_tag=session_tag, subject=subject)
            )
        if session_tag is None and subject is None:
            return 0
        if self.client is not None:
            self.journal.record(session_tag, subject)
        indexes = _indexes(session_tag, self._subject_tag(subject))
        pipe = client.pipeline(transaction=False)
        for index in indexes:
            pipe.zrange(index, 0, -1)
        found = await self._acall(pipe.execute)
        if found is _DOWN:
            self.journal.trouble()
            return 0
        members = _members(found)
        pipe = client.pipeline(transaction=False)
        _queue_deletes(pipe, indexes, members)
        done = await self._acall(pipe.execute)
        sent = await self._acall(client.publish, CHANNEL, self._message(session_tag, subject))
        if done is _DOWN or sent is _DOWN:
            self.journal.trouble()
        return _deleted(done, members)

    def aexclusive(self, key: str) -> AbstractAsyncContextManager[bool | None]:
        if self._async() is None:
            return _in_threads(self._exclusive(key))
        return self._aexclusive(key)

    @asynccontextmanager
    async def _aexclusive(self, key: str) -> AsyncIterator[bool | None]:
        lock = _Lock(key)
        ours = await self._aacquire(lock)
        renewal = self._renew(lock)
        try:
            yield ours
        finally:
            if renewal is not None:
                renewal.stop()
                self.lock_extensions += renewal.extensions
            if lock.held and self._arelease is not None:
                with anyio.CancelScope(shield=True):
                    await self._acall(
                        self._arelease, keys=[lock.name], args=[lock.owner], _force=True
                    )

    async def _atry_lock(self, lock: _Lock) -> _Attempt:
        client = self._async()
        assert client is not None
        ttl = int(self.lock_ttl * 1000)
        got = await self._acall(client.set, lock.name, lock.owner, nx=True, px=ttl, _force=True)
        if got is _DOWN:
            return "down"
        if got:
            lock.held = True
            return "mint"
        raw = await self._acall(client.get, lock.token_key, _force=True)
        if raw is _DOWN:
            return "down"
        return "minted" if self._servable(raw, lock.token_key) else "busy"

    async def _aacquire(self, lock: _Lock) -> bool | None:
        attempt = await self._atry_lock(lock)
        if attempt == "busy":
            self.lock_waits += 1
            deadline = time.monotonic() + self.lock_wait
            for delay in _delays():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.lock_timeouts += 1
                    log.debug("embedgate: gave up waiting for another process's mint")
                    return False
                await anyio.sleep(min(delay, remaining))
                attempt = await self._atry_lock(lock)
                if attempt != "busy":
                    break
        return None if attempt == "down" else attempt == "mint"

    async def aclose(self) -> None:
        """Close the async client this cache created (unused, so nothing to close, on trio)."""
        client = self._async()
        if self._owns_clients and client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"RedisCache(breaker={self.breaker.state!r}, lock_ttl={self.lock_ttl})"


@asynccontextmanager
async def _in_threads(
    manager: AbstractContextManager[bool | None],
) -> AsyncIterator[bool | None]:
    """A sync context manager entered and left in worker threads (trio has no
    redis.asyncio)."""
    ours = await anyio.to_thread.run_sync(manager.__enter__)
    try:
        yield ours
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(manager.__exit__, None, None, None)
