"""InvalidationListener: the per-process pub/sub thread that carries other processes'
invalidations to this one's local tier."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
from collections.abc import Callable
from typing import Any

from .client import SyncClient
from .keys import CHANNEL

log = logging.getLogger("embedgate")


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
            tag, subject = data.get("session_tag"), data.get("subject_tag")
        except (ValueError, TypeError, AttributeError, KeyError):
            return
        if isinstance(tag, (str, type(None))) and isinstance(subject, (str, type(None))):
            self.messages += 1
            self._on_invalidate(tag, subject)
