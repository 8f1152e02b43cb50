"""TieredCache: a short in-process tier in front of the shared RedisCache, kept
fresh by the invalidation listener; and tiered_cache_from_url, which builds it."""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Final

from ..cache import MemoryCache
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError
from ..token import EmbedToken
from .backend import RedisCache
from .codec import ValueCodec
from .invalidation import InvalidationListener

log = logging.getLogger("embedgate")

DEFAULT_LOCAL_TTL: Final = 30.0


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
        self._server_id: str | None = None  # Redis's run_id when last subscribed
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

    def _drop(self, session_tag: str | None, subject_tag: str | None) -> None:
        """Another process invalidated: the message names the subject by its keyed hash."""
        with self._fill_lock:
            self._generation += 1
            self.local.invalidate(
                session_tag=session_tag,
                subject_tag=subject_tag,
                tagger=self.shared.codec.subject_tag,
            )

    def _reset(self) -> None:
        """The listener (re)subscribed: Redis answers again, so the shared tier's breaker
        closes now (its locks are back before any miss needs one). Messages may have been
        missed while away: the local tier is emptied, unless Redis itself restarted (a new
        ``run_id``). Then it lost every entry, and the local ones are the only copies of
        the sessions' tokens: dropping them would make every worker mint for every session
        at once; they are kept, still bounded by ``local_ttl``."""
        self.shared.breaker.success()
        # This process's recent invalidations may not have reached the server it now hears.
        self.shared.journal.trouble()
        run_id = self._run_id()
        restarted = run_id is not None and self._server_id not in (None, run_id)
        if run_id is not None:
            self._server_id = run_id
        if restarted:
            log.info("embedgate: Redis restarted; keeping the in-process tier's tokens")
            return
        with self._fill_lock:
            self._generation += 1
            self.local.clear()

    def _run_id(self) -> str | None:
        client = self.shared.client
        if client is None:
            return None
        try:
            info = client.info("server")
        except Exception:  # the listener's next reconnect tries again
            return None
        run_id = info.get("run_id") if isinstance(info, dict) else None
        return run_id if isinstance(run_id, str) else None

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

    def exclusive(self, key: str) -> AbstractContextManager[bool | None]:
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

    def aexclusive(self, key: str) -> AbstractAsyncContextManager[bool | None]:
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
    codec: ValueCodec | None = None,
    **options: Any,
) -> TieredCache:
    """The two-tier cache for ``EMBEDGATE_REDIS_URL``; ``options`` go to
    :meth:`RedisCache.from_url` (``timeout``, ``lock_ttl``, ``lock_wait``, ``breaker``)."""
    shared = RedisCache.from_url(url, clock=clock, codec=codec, **options)
    return TieredCache(
        local if local is not None else MemoryCache(clock=clock),
        shared,
        local_ttl=local_ttl,
        clock=clock,
    )
