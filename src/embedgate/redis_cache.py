"""The shared token cache on Redis, for apps that run several worker processes.

:class:`RedisCache` is a :class:`~embedgate.cache.CacheBackend` on redis-py: tokens as
JSON under hashed ``embedgate:v1:`` keys, a cluster-wide lock per key for single-flight,
and invalidation by session and by subject. :class:`TieredCache` puts a short in-process
tier in front of it, so hot hits never leave the process.

Design decisions:

* Keys never carry raw ids: every key is ``embedgate:v1:<kind>:<sha256>``. The value is
  ``EmbedToken.to_json()`` and so holds the raw subject: the service compares it with the
  requester's before serving (a guard against collisions and a poisoned cache), and the
  token next to it is a bearer credential that usually carries ``sub`` anyway. Invalidation
  messages carry it too (a subject hash could not be matched against the local tier
  without hashing every entry). Treat the Redis instance as a secret store.
* Invalidation reaches other processes through the pub/sub channel
  ``embedgate:v1:invalidate``, listened to by one daemon thread per process (started
  lazily, restarted after a fork). A generation counter per process would cost a Redis
  round trip on every local hit, which is what the local tier exists to avoid. Pub/sub
  is fire-and-forget, so the bound does not depend on it: a local entry never outlives
  ``local_ttl`` (30 s by default), and the local tier is emptied whenever the listener
  (re)subscribes, since messages may have been missed while it was away.
* Index sets are sorted sets scored by each entry's deadline: expired members are pruned
  on every write, so the index of a busy subject (the sandbox subject, say) stays bounded.
  Index expiry uses ``PEXPIRE ... NX`` / ``GT``: Redis 7.0 or newer.
* A circuit breaker guards every Redis call: after ``threshold`` consecutive failures the
  shared tier is skipped (reads miss, writes and invalidations are dropped, ``exclusive``
  yields True) and tokens come from the local tier or are minted directly; one probe per
  cool-down tests whether Redis is back. Invalidations made while it is open reach this
  process's local tier only: the Redis copies live out their deadlines. An issued token
  cannot be revoked by a cache anyway; invalidation only stops re-serving it.
* The async face uses ``redis.asyncio`` on asyncio. redis.asyncio does not run on trio,
  so there the async face runs the sync client in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from typing import Any, Final, Literal, Union

import anyio
import anyio.to_thread

from .cache import MemoryCache
from .clock import SYSTEM_CLOCK, Clock
from .errors import ConfigurationError
from .token import EmbedToken

try:
    import redis
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as exc:
    raise ConfigurationError(
        "EMBEDGATE_REDIS_URL",
        "the shared Redis cache needs redis-py: pip install embedgate[redis]",
    ) from exc

log = logging.getLogger("embedgate")

PREFIX: Final = "embedgate:v1:"
CHANNEL: Final = PREFIX + "invalidate"
SCHEMES: Final = ("redis", "rediss", "unix")
DEFAULT_TIMEOUT: Final = 0.25
DEFAULT_LOCAL_TTL: Final = 30.0

SyncClient = Union[redis.Redis, "redis.RedisCluster"]
AsyncClient = Union[aioredis.Redis, "aioredis.RedisCluster"]

# Compare-and-delete: only the owner that set the lock may remove it.
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# "mint": this caller mints; "minted": another just did, re-read; "busy": keep waiting.
_Attempt = Literal["mint", "minted", "busy"]

_FAILURES: Final = (redis.RedisError, OSError)
_DOWN: Final = object()  # what a guarded call returns when Redis could not be used


def redis_key(kind: str, value: str) -> str:
    """``embedgate:v1:<kind>:<sha256>``: the name Redis sees, never the raw value."""
    hashed = hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()
    return f"{PREFIX}{kind}:{hashed}"


class CircuitBreaker:
    """Closed, open after ``threshold`` consecutive failures, then one probe per
    ``cooldown`` seconds (half-open) until a call succeeds.

    Opening and closing are logged once each, at warning; failed probes only at debug.
    The counters are for tests and metrics.
    """

    CLOSED: Final = "closed"
    OPEN: Final = "open"
    HALF_OPEN: Final = "half_open"

    def __init__(
        self,
        threshold: int = 3,
        cooldown: float = 5.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ConfigurationError("threshold", f"must be at least 1, got {threshold}")
        if cooldown <= 0:
            raise ConfigurationError("cooldown", f"must be positive, got {cooldown}")
        self.threshold = threshold
        self.cooldown = cooldown
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.state: str = self.CLOSED
        self.consecutive_failures = 0
        self.failures = 0
        self.opened = 0
        self.recoveries = 0
        self.rejected = 0
        self._probe_at = 0.0

    def allow(self) -> bool:
        """Whether a call may go to Redis now (when not closed: one probe per cool-down)."""
        if self.state == self.CLOSED:
            return True
        with self._lock:
            if self.state == self.CLOSED:
                return True
            now = self._monotonic()
            if now >= self._probe_at:
                # A probe that never reports back (a cancelled task) frees the next slot.
                self.state = self.HALF_OPEN
                self._probe_at = now + self.cooldown
                return True
            self.rejected += 1
            return False

    def success(self) -> None:
        if self.state == self.CLOSED and not self.consecutive_failures:
            return
        with self._lock:
            self.consecutive_failures = 0
            if self.state != self.CLOSED:
                self.state = self.CLOSED
                self.recoveries += 1
                log.warning("embedgate: Redis is reachable again; the shared cache is back")

    def failure(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self.consecutive_failures += 1
            if self.state == self.HALF_OPEN:
                self.state = self.OPEN
                self._probe_at = self._monotonic() + self.cooldown
                log.debug("embedgate: Redis probe failed (%s)", type(error).__name__)
            elif self.state == self.CLOSED and self.consecutive_failures >= self.threshold:
                self.state = self.OPEN
                self.opened += 1
                self._probe_at = self._monotonic() + self.cooldown
                log.warning(
                    "embedgate: Redis unreachable (%s); the shared cache is off, serving "
                    "from the in-process cache and minting locally until it returns",
                    type(error).__name__,
                )

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self.state!r}, opened={self.opened})"


class _Lock:
    """One attempt at a key's lock: its Redis name, a random owner, whether we hold it."""

    __slots__ = ("held", "name", "owner", "token_key")

    def __init__(self, key: str) -> None:
        self.name = redis_key("lock", key)
        self.token_key = redis_key("token", key)
        self.owner = secrets.token_hex(16)
        self.held = False


def _delays() -> Iterator[float]:
    """Polling delays: exponential from 10 ms to 250 ms, each with +-50 % jitter."""
    delay = 0.01
    while True:
        # The module's generator, reseeded in forked workers: theirs must not move in step.
        yield delay * (0.5 + random.random())  # noqa: S311 - jitter only
        delay = min(delay * 1.6, 0.25)


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
    lock holder blocks a key; ``lock_wait`` how long a caller waits for another's mint.
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
        self.lock_waits = 0
        self.lock_timeouts = 0
        self._owns_clients = False
        self._release = client.register_script(_RELEASE_LOCK) if client is not None else None
        self._arelease = (
            async_client.register_script(_RELEASE_LOCK) if async_client is not None else None
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> RedisCache:
        """Both faces from a ``redis://``, ``rediss://`` or ``unix://`` URL, with
        ``timeout`` seconds to connect and to read, and no client-side retries."""
        check_url(url)
        common: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }
        # TCP keepalive notices a silently dead peer; Unix sockets do not take the option.
        keepalive = {} if url.lower().startswith("unix://") else {"socket_keepalive": True}
        try:
            client = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **keepalive, **common)
            async_client = aioredis.Redis.from_url(url, retry=AsyncRetry(NoBackoff(), 0), **common)
        except (ValueError, TypeError):
            # The message may quote the URL, and the URL may hold a password.
            raise ConfigurationError(
                "EMBEDGATE_REDIS_URL", "not a valid Redis URL (check its options)"
            ) from None
        cache = cls(client, async_client, **options)
        cache._owns_clients = True
        return cache

    # -- guarded calls ------------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(...)``, or :data:`_DOWN` when the breaker is open or the call fails."""
        if not self.breaker.allow():
            return _DOWN
        try:
            result = fn(*args, **kwargs)
        except _FAILURES as error:
            self.breaker.failure(error)
            return _DOWN
        self.breaker.success()
        return result

    async def _acall(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        if not self.breaker.allow():
            return _DOWN
        try:
            result = await fn(*args, **kwargs)
        except _FAILURES as error:
            self.breaker.failure(error)
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

    def _decode(self, raw: Any) -> EmbedToken | None:
        if raw is None or raw is _DOWN:
            return None
        try:
            return EmbedToken.from_json(json.loads(raw))
        except (ValueError, TypeError, KeyError):
            log.debug("embedgate: ignoring an unreadable entry in the shared cache")
            return None

    def _fresh(self, raw: Any) -> bool:
        """Whether a raw entry holds a token not yet due for refresh (someone just minted)."""
        token = self._decode(raw)
        return token is not None and self.clock.now() < token.refresh_at

    def _write(self, pipe: Any, key: str, token: EmbedToken, deadline: float) -> bool:
        """Queue the writes for one entry and its index sets; False if already expired."""
        now = self.clock.now()
        ttl_ms = int((deadline - now) * 1000)
        if ttl_ms <= 0:
            return False
        name = redis_key("token", key)
        value = json.dumps(token.to_json(), separators=(",", ":"))
        pipe.set(name, value, px=ttl_ms)
        for index in _indexes(token.session_tag or None, token.subject):
            pipe.zadd(index, {name: deadline * 1000})
            pipe.zremrangebyscore(index, "-inf", now * 1000)
            pipe.pexpire(index, ttl_ms, nx=True)
            pipe.pexpire(index, ttl_ms, gt=True)
        return True

    def _message(self, session_tag: str | None, subject: str | None) -> str:
        return json.dumps({"session_tag": session_tag, "subject": subject})

    # -- sync face ----------------------------------------------------------------------

    def get(self, key: str) -> EmbedToken | None:
        return self._decode(self._call(self._sync().get, redis_key("token", key)))

    def set(self, key: str, token: EmbedToken, deadline: float) -> None:
        pipe = self._sync().pipeline(transaction=False)
        if self._write(pipe, key, token, deadline):
            self._call(pipe.execute)

    def invalidate(self, *, session_tag: str | None = None, subject: str | None = None) -> int:
        """Delete the shared entries of a session and/or subject and tell every process."""
        if session_tag is None and subject is None:
            return 0
        client = self._sync()
        indexes = _indexes(session_tag, subject)
        pipe = client.pipeline(transaction=False)
        for index in indexes:
            pipe.zrange(index, 0, -1)
        found = self._call(pipe.execute)
        if found is _DOWN:
            return 0
        members = _members(found)
        pipe = client.pipeline(transaction=False)
        _queue_deletes(pipe, indexes, members)
        pipe.publish(CHANNEL, self._message(session_tag, subject))
        return _deleted(self._call(pipe.execute), members)

    def exclusive(self, key: str) -> AbstractContextManager[bool]:
        return self._exclusive(key)

    @contextmanager
    def _exclusive(self, key: str) -> Iterator[bool]:
        lock = _Lock(key)
        ours = self._acquire(lock)
        try:
            yield ours
        finally:
            if lock.held and self._release is not None:
                self._call(self._release, keys=[lock.name], args=[lock.owner])

    def _try_lock(self, lock: _Lock) -> _Attempt:
        """One attempt at the lock; failing that, a look at whether the holder has minted."""
        client = self._sync()
        got = self._call(client.set, lock.name, lock.owner, nx=True, px=int(self.lock_ttl * 1000))
        if got is _DOWN:
            return "mint"
        if got:
            lock.held = True
            return "mint"  # the service looks at the cache again before it mints
        raw = self._call(client.get, lock.token_key)
        if raw is _DOWN:
            return "mint"
        return "minted" if self._fresh(raw) else "busy"

    def _acquire(self, lock: _Lock) -> bool:
        """True: mint (the lock is ours, or Redis is down). False: re-read the cache."""
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
        return attempt == "mint"

    def close(self) -> None:
        """Close the clients this cache created (not the ones passed in)."""
        if self._owns_clients and self.client is not None:
            self.client.close()

    # -- async face ---------------------------------------------------------------------

    async def aget(self, key: str) -> EmbedToken | None:
        client = self._async()
        if client is None:
            return await anyio.to_thread.run_sync(self.get, key)
        return self._decode(await self._acall(client.get, redis_key("token", key)))

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
        indexes = _indexes(session_tag, subject)
        pipe = client.pipeline(transaction=False)
        for index in indexes:
            pipe.zrange(index, 0, -1)
        found = await self._acall(pipe.execute)
        if found is _DOWN:
            return 0
        members = _members(found)
        pipe = client.pipeline(transaction=False)
        _queue_deletes(pipe, indexes, members)
        pipe.publish(CHANNEL, self._message(session_tag, subject))
        return _deleted(await self._acall(pipe.execute), members)

    def aexclusive(self, key: str) -> AbstractAsyncContextManager[bool]:
        if self._async() is None:
            return _in_threads(self._exclusive(key))
        return self._aexclusive(key)

    @asynccontextmanager
    async def _aexclusive(self, key: str) -> AsyncIterator[bool]:
        lock = _Lock(key)
        ours = await self._aacquire(lock)
        try:
            yield ours
        finally:
            if lock.held and self._arelease is not None:
                with anyio.CancelScope(shield=True):
                    await self._acall(self._arelease, keys=[lock.name], args=[lock.owner])

    async def _atry_lock(self, lock: _Lock) -> _Attempt:
        client = self._async()
        assert client is not None
        got = await self._acall(
            client.set, lock.name, lock.owner, nx=True, px=int(self.lock_ttl * 1000)
        )
        if got is _DOWN:
            return "mint"
        if got:
            lock.held = True
            return "mint"
        raw = await self._acall(client.get, lock.token_key)
        if raw is _DOWN:
            return "mint"
        return "minted" if self._fresh(raw) else "busy"

    async def _aacquire(self, lock: _Lock) -> bool:
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
        return attempt == "mint"

    async def aclose(self) -> None:
        """Close the async client this cache created (unused, so nothing to close, on trio)."""
        client = self._async()
        if self._owns_clients and client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"RedisCache(breaker={self.breaker.state!r}, lock_ttl={self.lock_ttl})"


def check_url(url: str) -> None:
    """Refuse anything but a Redis URL, without quoting it (it may hold a password)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise ConfigurationError(
            "EMBEDGATE_REDIS_URL", "expected a redis://, rediss:// or unix:// URL"
        )


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


@asynccontextmanager
async def _in_threads(manager: AbstractContextManager[bool]) -> AsyncIterator[bool]:
    """A sync context manager entered and left in worker threads (trio has no
    redis.asyncio)."""
    ours = await anyio.to_thread.run_sync(manager.__enter__)
    try:
        yield ours
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(manager.__exit__, None, None, None)


class InvalidationListener:
    """Listens to :data:`CHANNEL` in a daemon thread: one per process, started on first
    use and again in a forked child (threads do not survive a fork).

    It reconnects with back-off after any failure and reports every (re)subscription,
    after which messages may have been missed.
    """

    def __init__(
        self,
        client: SyncClient,
        on_invalidate: Callable[[str | None, str | None], None],
        on_subscribed: Callable[[], None],
    ) -> None:
        self._client = client
        self._on_invalidate = on_invalidate
        self._on_subscribed = on_subscribed
        self._lock = threading.Lock()
        self._pid = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.subscribed = threading.Event()
        self.subscriptions = 0
        self.messages = 0

    def ensure_running(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            self._pid = pid
            self._stop = threading.Event()
            self.subscribed = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="embedgate-invalidation", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        with self._lock:
            self._stop.set()
            thread, self._thread = self._thread, None
            self._pid = 0
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self, stop: threading.Event) -> None:
        delay = 0.1
        while not stop.is_set():
            pubsub: Any = None
            try:
                # RedisCluster.pubsub is untyped; both give a PubSub.
                pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
                pubsub.subscribe(CHANNEL)
                while not stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        self._handle(message)
                        delay = 0.1
            except Exception as error:
                # Whatever went wrong, the listener must outlive it.
                self.subscribed.clear()
                log.debug("embedgate: invalidation listener lost Redis (%s)", type(error).__name__)
                stop.wait(delay * (0.5 + random.random()))  # noqa: S311 - jitter only
                delay = min(delay * 2, 5.0)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()

    def _handle(self, message: dict[str, Any]) -> None:
        if message.get("type") == "subscribe":
            self.subscriptions += 1
            self._on_subscribed()
            self.subscribed.set()
            return
        if message.get("type") != "message":
            return
        try:
            data = json.loads(message["data"])
            tag, subject = data.get("session_tag"), data.get("subject")
        except (ValueError, TypeError, AttributeError, KeyError):
            return
        if isinstance(tag, (str, type(None))) and isinstance(subject, (str, type(None))):
            self.messages += 1
            self._on_invalidate(tag, subject)


class TieredCache:
    """A short, bounded in-process tier in front of a :class:`RedisCache`.

    Reads try the local tier first, writes go to both. A local entry lives at most
    ``local_ttl`` seconds and is dropped as soon as any process invalidates it (pub/sub),
    so ``local_ttl`` bounds staleness should a message be lost. A local entry due for
    refresh is looked up again in Redis, where another worker may have refreshed it.
    """

    def __init__(
        self,
        local: MemoryCache,
        shared: RedisCache,
        *,
        local_ttl: float = DEFAULT_LOCAL_TTL,
        clock: Clock = SYSTEM_CLOCK,
        listen: bool = True,
    ) -> None:
        if local_ttl <= 0:
            raise ConfigurationError("local_ttl", f"must be positive, got {local_ttl}")
        self.local = local
        self.shared = shared
        self.local_ttl = local_ttl
        self.clock = clock
        # Bumped on every invalidation: a Redis read that raced one is not kept locally.
        self._generation = 0
        self._fill_lock = threading.Lock()
        self._closed = False
        self.listener: InvalidationListener | None = None
        if listen and shared.client is not None:
            self.listener = InvalidationListener(shared.client, self._drop, self._reset)
        elif listen:
            log.info(
                "embedgate: no sync Redis client, so no invalidation listener; other "
                "processes' invalidations reach this one's local tier within %s s",
                local_ttl,
            )

    def _listen(self) -> None:
        if self.listener is not None and not self._closed:
            self.listener.ensure_running()

    def _drop(self, session_tag: str | None, subject: str | None) -> None:
        with self._fill_lock:
            self._generation += 1
            self.local.invalidate(session_tag=session_tag, subject=subject)

    def _reset(self) -> None:
        with self._fill_lock:
            self._generation += 1
            self.local.clear()

    def _local(self, key: str) -> tuple[EmbedToken | None, bool]:
        """The local entry, and whether it is good enough to serve without asking Redis."""
        token = self.local.get(key)
        return token, token is not None and self.clock.now() < token.refresh_at

    def _merge(
        self, key: str, local: EmbedToken | None, shared: EmbedToken | None, generation: int
    ) -> EmbedToken | None:
        if shared is None or (local is not None and local.refresh_at >= shared.refresh_at):
            return local
        with self._fill_lock:
            if generation == self._generation:
                deadline = min(self.clock.now() + self.local_ttl, shared.expires_at)
                self.local.set(key, shared, deadline)
        return shared

    def _local_deadline(self, deadline: float) -> float:
        return min(deadline, self.clock.now() + self.local_ttl)

    # -- sync face ----------------------------------------------------------------------

    def get(self, key: str) -> EmbedToken | None:
        self._listen()
        local, good = self._local(key)
        if good:
            return local
        generation = self._generation
        return self._merge(key, local, self.shared.get(key), generation)

    def set(self, key: str, token: EmbedToken, deadline: float) -> None:
        self._listen()
        self.local.set(key, token, self._local_deadline(deadline))
        self.shared.set(key, token, deadline)

    def invalidate(self, *, session_tag: str | None = None, subject: str | None = None) -> int:
        """Drop the entries here and in Redis, and tell every other process."""
        with self._fill_lock:
            self._generation += 1
            here = self.local.invalidate(session_tag=session_tag, subject=subject)
        return max(here, self.shared.invalidate(session_tag=session_tag, subject=subject))

    def exclusive(self, key: str) -> AbstractContextManager[bool]:
        return self.shared.exclusive(key)

    # -- async face ---------------------------------------------------------------------

    async def aget(self, key: str) -> EmbedToken | None:
        self._listen()
        local, good = self._local(key)
        if good:
            return local
        generation = self._generation
        return self._merge(key, local, await self.shared.aget(key), generation)

    async def aset(self, key: str, token: EmbedToken, deadline: float) -> None:
        self._listen()
        self.local.set(key, token, self._local_deadline(deadline))
        await self.shared.aset(key, token, deadline)

    async def ainvalidate(
        self, *, session_tag: str | None = None, subject: str | None = None
    ) -> int:
        with self._fill_lock:
            self._generation += 1
            here = self.local.invalidate(session_tag=session_tag, subject=subject)
        there = await self.shared.ainvalidate(session_tag=session_tag, subject=subject)
        return max(here, there)

    def aexclusive(self, key: str) -> AbstractAsyncContextManager[bool]:
        return self.shared.aexclusive(key)

    # -- lifecycle ----------------------------------------------------------------------

    def wait_listening(self, timeout: float = 5.0) -> bool:
        """Start the invalidation listener if needed; True once it is subscribed."""
        if self.listener is None:
            return False
        self._listen()
        return self.listener.subscribed.wait(timeout)

    def close(self) -> None:
        """Stop the listener and close the clients the shared tier created."""
        self._closed = True
        if self.listener is not None:
            self.listener.stop()
        self.shared.close()

    async def aclose(self) -> None:
        self.close()
        await self.shared.aclose()

    def __repr__(self) -> str:
        return f"TieredCache(local={self.local!r}, shared={self.shared!r}, ttl={self.local_ttl})"


def tiered_cache_from_url(
    url: str,
    *,
    local: MemoryCache | None = None,
    clock: Clock = SYSTEM_CLOCK,
    local_ttl: float = DEFAULT_LOCAL_TTL,
    **options: Any,
) -> TieredCache:
    """The two-tier cache for ``EMBEDGATE_REDIS_URL``; ``options`` go to
    :meth:`RedisCache.from_url` (``timeout``, ``lock_ttl``, ``lock_wait``, ``breaker``)."""
    shared = RedisCache.from_url(url, clock=clock, **options)
    return TieredCache(
        local if local is not None else MemoryCache(clock=clock),
        shared,
        local_ttl=local_ttl,
        clock=clock,
    )


__all__ = [
    "CHANNEL",
    "PREFIX",
    "CircuitBreaker",
    "InvalidationListener",
    "RedisCache",
    "TieredCache",
    "redis_key",
    "tiered_cache_from_url",
]
